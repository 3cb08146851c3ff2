"""CPU latency of the lesson's U-Net: eager PyTorch vs ONNX Runtime (float32, int8 dynamic, int8 static).

    python benchmarks/deploy.py                          # 1 x 3 x 256 x 256, U-Net depth 4 / 16 channels
    python benchmarks/deploy.py --size 512 --threads 2 --markdown
    python benchmarks/deploy.py --checkpoint ckpt/unet.safetensors   # a trained model instead of random weights
    python benchmarks/deploy.py --service --markdown     # also: the HTTP service at 1, 8 and 50 clients
    python benchmarks/deploy.py --service-only --markdown    # only the HTTP service, with its default settings

All variants run in one process on the same input with the same number of threads, timed in turn
(round robin, so load from other processes hits each alike): the script prints each one's median
latency and its ratio to eager PyTorch (goal for ONNX Runtime float32: <= 0.8), and what each
costs in accuracy against the float model: the largest logit difference and the share of pixels
whose class changes. With ``--service`` it then starts ``python -m segcourse serve`` on the ONNX
model with its default settings (workers x threads <= cores; 127.0.0.1, a free port, stopped by PID)
and reports requests per second and p50/p95 latency at 1, 8 and 50 concurrent clients. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from segcourse.data import load_arrays
from segcourse.deploy import OnnxPredictor, deployable, export_onnx
from segcourse.deploy.quantize import quantize_onnx
from segcourse.models.unet import unet


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--service", action="store_true", help="also load-test the HTTP service")
    parser.add_argument("--service-only", action="store_true", help="only load-test the HTTP service")
    parser.add_argument("--service-size", type=int, default=128, help="side of the uploaded image (default 128)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.checkpoint:
        from segcourse.train import load_checkpoint

        model = load_checkpoint(args.checkpoint).model
    else:
        model = unet(in_channels=3, num_classes=2, depth=4, base_channels=16)
    model = deployable(model.eval())
    tiles = load_arrays("aerial", "val", count=args.batch + 4, size=args.size)
    images = torch.from_numpy(tiles["images"]).permute(0, 3, 1, 2).float() / 255
    x, calib = images[:args.batch], images[args.batch:]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "unet.onnx")
        if args.service_only:
            _print_service(*_service(fp32, tiles["images"][0], args), args)
            return
        variants = {
            "eager PyTorch": lambda v: model(v),
            "ONNX Runtime fp32": OnnxPredictor(fp32, threads=args.threads),
            "ONNX Runtime int8 dynamic": OnnxPredictor(quantize_onnx(fp32, Path(tmp) / "dyn.onnx", mode="dynamic"),
                                                       threads=args.threads),
            "ONNX Runtime int8 static": OnnxPredictor(
                quantize_onnx(fp32, Path(tmp) / "static.onnx", mode="static", calibration=calib),
                threads=args.threads),
        }
        if args.service:
            service_rows, health = _service(fp32, tiles["images"][0], args)
        times = {name: [] for name in variants}
        with torch.no_grad():
            reference = model(x)
            outputs = {name: fn(x) for name, fn in variants.items()}       # warm-up
            for _ in range(args.repeats):
                for name, fn in variants.items():
                    start = time.perf_counter()
                    fn(x)
                    times[name].append(time.perf_counter() - start)
    eager = times["eager PyTorch"]
    print(f"U-Net depth 4, 16 base channels, input {args.batch}x3x{args.size}x{args.size} (aerial val tiles), "
          f"{args.threads} thread(s), {args.repeats} repeats, torch {torch.__version__}")
    rows = []
    for name, ts in times.items():
        ratio = statistics.median(a / b for a, b in zip(ts, eager))
        diff = float((outputs[name] - reference).abs().max())
        changed = float((outputs[name].argmax(1) != reference.argmax(1)).float().mean())
        rows.append((name, statistics.median(ts) * 1e3, ratio, diff, changed))
    if args.markdown:
        print("| variant | median latency (ms) | ratio to eager | max abs logit diff | pixels whose class changes |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, ms, ratio, diff, changed in rows:
            print(f"| {name} | {ms:.1f} | {ratio:.2f} | {diff:.1e} | {changed:.3%} |")
    else:
        for name, ms, ratio, diff, changed in rows:
            print(f"{name:27s} {ms:8.1f} ms  ratio {ratio:.2f}  max|diff| {diff:.1e}  class changed {changed:.3%}")
    if args.service:
        _print_service(service_rows, health, args)


def _print_service(rows, health, args):
    import os
    import platform

    print(f"\nservice: ONNX Runtime fp32, default settings: {health['workers']} workers x {health['threads']} "
          f"intra-op thread(s), queue {health['capacity'] - health['workers']} for {health['queue_timeout_s']:g} s; "
          f"{args.service_size}x{args.service_size} PNG uploads, PNG mask answers; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| clients | requests | answered 200 | 503 | requests/s | p50 (ms) | p95 (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['ok']} | {r['busy']} | {r['rps']:.1f} | "
              f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")


def _service(onnx_path, image, args):
    import numpy as np

    from segcourse.deploy.load import ServiceProcess, load_test, png_bytes

    tile = np.ascontiguousarray(image[:args.service_size, :args.service_size])
    payload = png_bytes(tile)
    import httpx

    rows = []
    with ServiceProcess(onnx_path, threads=None) as service:                            # the default settings
        load_test(service.url, payload, clients=2, requests=4)                          # warm-up
        for clients in (1, 8, 50):
            rows.append(load_test(service.url, payload, clients=clients, requests=max(20, 2 * clients)))
        health = httpx.get(service.url + "/health").json()
    return rows, health


if __name__ == "__main__":
    main()
