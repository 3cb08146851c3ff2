"""Training throughput of a U-Net on the ``cells`` data: images per second of a training step.

What it measures (each after warm-up steps, with the engine's own ``train_one_epoch``, so the
numbers are what ``segcourse.train.fit`` gets):

* ``loader: in-memory``  -- iterating a DataLoader over pre-generated arrays (with random flips);
* ``loader: on the fly`` -- a DataLoader that generates each sample when asked (like decoding files);
* ``train: CPU fp32``    -- forward + loss + backward + AdamW step on the CPU;
* on a CUDA machine also ``GPU fp32``, ``GPU AMP`` (bf16, or fp16 + GradScaler) and
  ``GPU AMP + channels_last``.

If the loader's images/s are well above the training step's, data loading is not the bottleneck.

Usage::

    python benchmarks/train_throughput.py                      # defaults: 96x96, batch 8, U-Net width 16
    python benchmarks/train_throughput.py --size 256 --batch 16 --width 32 --steps 30   # GPU-sized
    python benchmarks/train_throughput.py --markdown           # a table for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.data import DataLoader, Dataset

from coursetools.speed import machine_name


def machine() -> str:
    return f"{machine_name()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"


class OnTheFly(Dataset):
    """Generates each ``cells`` sample on request (a stand-in for reading + decoding files)."""

    def __init__(self, count: int, size: int):
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        from segcourse.data.synthetic import generate

        s = generate("cells", i, size=self.size)
        return torch.from_numpy(s.image).permute(2, 0, 1).float().div_(255), torch.from_numpy(s.mask).long()


def loader_rate(loader, repeats: int = 2) -> float:
    """Images per second of iterating ``loader`` (after one warm-up pass over the first batch)."""
    next(iter(loader))
    start, n = time.perf_counter(), 0
    for _ in range(repeats):
        for images, _ in loader:
            n += images.shape[0]
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="image side (default 96, the quick-mode cells size)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=16, help="U-Net base channels (default 16)")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the loader rows")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from coursetools.speed import train_rate
    from segcourse import seed_everything
    from segcourse.data.synthetic import load_arrays
    from segcourse.models import unet
    from segcourse.train.cli import ArrayDataset

    seed_everything(0, deterministic=False)
    count = args.batch * (args.steps + args.warmup)
    arrays = load_arrays("cells", "train", count=count, size=args.size)
    memory = DataLoader(ArrayDataset(arrays["images"], arrays["masks"], augment=True), batch_size=args.batch,
                        shuffle=True, num_workers=args.workers)
    fly = DataLoader(OnTheFly(count, args.size), batch_size=args.batch, num_workers=args.workers)

    def model_fn():
        return unet(num_classes=2, depth=args.depth, base_channels=args.width)

    rows = [("loader: in-memory arrays + flips", "cpu", loader_rate(memory)),
            ("loader: generated on the fly", "cpu", loader_rate(fly, repeats=1)),
            ("train step: CPU fp32", "cpu", train_rate(model_fn, memory, "cpu", "off", False, args.warmup))]
    if torch.cuda.is_available():
        rows += [("train step: GPU fp32", "cuda", train_rate(model_fn, memory, "cuda", "off", False, args.warmup)),
                 ("train step: GPU AMP", "cuda", train_rate(model_fn, memory, "cuda", "on", False, args.warmup)),
                 ("train step: GPU AMP + channels_last", "cuda",
                  train_rate(model_fn, memory, "cuda", "on", True, args.warmup))]
    n_params = sum(p.numel() for p in model_fn().parameters())

    print(f"machine: {machine()}")
    print(f"U-Net depth {args.depth}, base width {args.width} ({n_params:,} parameters), "
          f"cells {args.size}x{args.size}, "
          f"batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, workers {args.workers}")
    if args.markdown:
        print("\n| what | device | images/s |\n| --- | --- | ---: |")
        for name, dev, rate in rows:
            print(f"| {name} | {dev} | {rate:,.1f} |")
    else:
        width = max(len(r[0]) for r in rows)
        print(f"\n{'what'.ljust(width)}  device  images/s")
        for name, dev, rate in rows:
            print(f"{name.ljust(width)}  {dev:6}  {rate:9.1f}")
    if not torch.cuda.is_available():
        print("\nGPU figures: not measured -- no CUDA GPU is available on this machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
