"""Speed of the pooled confusion matrix + scores against torchmetrics' MulticlassJaccardIndex.

    python benchmarks/metrics.py                      # 16 x 512 x 512, 21 classes, CPU (+ CUDA when present)
    python benchmarks/metrics.py --repeats 15 --batch 8 --size 256

Both sides get the same int64 predictions and targets with 5 % ignored pixels (255) and
compute the dataset mIoU (update + compute), timed alternately so that load from other
processes hits both alike. The script prints the median time of each and the median of the
per-repeat ratios ours / torchmetrics (goal: <= 1.0). Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.classification import MulticlassJaccardIndex

from segcourse.constants import IGNORE_INDEX
from segcourse.metrics import ConfusionMatrix


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_pair(fn_a, fn_b, device: torch.device, repeats: int) -> tuple[list[float], list[float]]:
    """Time two functions alternately (a, b, a, b, ...) so that load from other processes hits both alike."""
    fn_a(), fn_b()  # warm-up (allocations, CUDA kernels)
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
    return times_a, times_b


def bench(device: torch.device, batch: int, size: int, num_classes: int, repeats: int,
          validate_args: bool = True) -> dict[str, float]:
    """Median times of ours (which always validates its input) and torchmetrics on one device."""
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, num_classes, (batch, size, size), generator=g)
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.7, target,
                       torch.randint(0, num_classes, target.shape, generator=g))
    target[torch.rand(target.shape, generator=g) < 0.05] = IGNORE_INDEX
    pred, target = pred.to(device), target.to(device)

    def ours() -> float:
        cm = ConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX)
        cm.update(pred, target)
        return cm.scores()["miou"]

    reference = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=IGNORE_INDEX,
                                       validate_args=validate_args).to(device)

    def theirs() -> float:
        reference.reset()
        reference.update(pred, target)
        return float(reference.compute())

    assert abs(ours() - theirs()) < 1e-5, "the two mIoUs differ"
    a, b = _time_pair(ours, theirs, device, repeats)
    ratios = [x / y for x, y in zip(a, b)]
    return {"ours_ms": 1e3 * statistics.median(a), "torchmetrics_ms": 1e3 * statistics.median(b),
            "ratio": statistics.median(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"{args.batch}x{args.size}x{args.size}, {args.classes} classes, 5% ignored, median of {args.repeats}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        for validate in (True, False):
            r = bench(device, args.batch, args.size, args.classes, args.repeats, validate_args=validate)
            print(f"{name:>24} (torchmetrics validate_args={validate!s:5}): ours {r['ours_ms']:8.2f} ms   "
                  f"torchmetrics {r['torchmetrics_ms']:8.2f} ms   ratio (median) {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
