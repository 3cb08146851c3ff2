"""Speed of segcourse.inference.sliding_window against MONAI's sliding_window_inference.

    python benchmarks/sliding_window.py                       # 1 x 3 x 512 x 512, window 128, CPU
    python benchmarks/sliding_window.py --size 1024 --repeats 7 --markdown

Both get the same image, window, overlap, blending mode and predictor, and run under
``torch.no_grad``; they are timed alternately (so that load from other processes hits both alike)
and the script prints the median time of each and the median of the per-repeat ratios
ours / MONAI (goal: <= 1.0). Two predictors: a 1x1 convolution, where the time is the windowing
itself, and the lesson's U-Net, where the network dominates. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from monai.inferers import sliding_window_inference

from segcourse.inference import sliding_window
from segcourse.models.unet import unet


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(predictor, image, window, overlap, mode, batch, repeats, device):
    ours_t, theirs_t = [], []

    def ours():
        return sliding_window(predictor, image, window, overlap=overlap, mode=mode, batch_size=batch)

    def theirs():
        with torch.no_grad():
            return sliding_window_inference(image, window, batch, predictor, overlap=overlap, mode=mode)

    diff = (ours() - theirs()).abs().max().item()         # also the warm-up
    for _ in range(repeats):
        for fn, times in ((ours, ours_t), (theirs, theirs_t)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
    ratio = statistics.median(a / b for a, b in zip(ours_t, theirs_t))
    return statistics.median(ours_t), statistics.median(theirs_t), ratio, diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    image = torch.rand(1, 3, args.size, args.size, device=device)
    predictors = {
        "1x1 conv": torch.nn.Conv2d(3, 2, 1).to(device).eval(),
        "U-Net d4 c16": unet(in_channels=3, num_classes=2, depth=4, base_channels=16).to(device).eval(),
    }
    rows = []
    for name, net in predictors.items():
        for mode in ("constant", "gaussian"):
            t_ours, t_monai, ratio, diff = bench(net, image, args.window, args.overlap, mode, args.batch,
                                                 args.repeats, device)
            rows.append((name, mode, t_ours, t_monai, ratio, diff))
    print(f"image 1x3x{args.size}x{args.size}, window {args.window}, overlap {args.overlap}, batch {args.batch}, "
          f"{args.repeats} repeats, device {device}, torch threads {torch.get_num_threads()}")
    if args.markdown:
        print("| predictor | mode | ours (ms) | MONAI (ms) | ratio ours/MONAI | max abs diff |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for name, mode, a, b, r, d in rows:
            print(f"| {name} | {mode} | {a * 1e3:.1f} | {b * 1e3:.1f} | {r:.2f} | {d:.1e} |")
    else:
        for name, mode, a, b, r, d in rows:
            print(f"{name:14s} {mode:9s} ours {a * 1e3:8.1f} ms  MONAI {b * 1e3:8.1f} ms  ratio {r:.2f}  "
                  f"max|diff| {d:.1e}")


if __name__ == "__main__":
    main()
