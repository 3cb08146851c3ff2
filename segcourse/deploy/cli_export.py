"""``python -m segcourse export CKPT --onnx OUT.onnx``: a checkpoint to an ONNX model.

The checkpoint is read with :func:`segcourse.train.load_checkpoint` (safetensors, never
unpickled; or a ``.pt`` state dict through ``torch.load(weights_only=True)``'s restricted
unpickler), rebuilt from its stored config, exported with
dynamic batch, height and width, then checked: ONNX Runtime's logits are compared with
PyTorch's on a few input sizes, odd ones included, and the largest difference is printed.
Example::

    python -m segcourse train unet --data aerial --out ckpt/unet.safetensors
    python -m segcourse export ckpt/unet.safetensors --onnx ckpt/unet.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: sizes the export is checked on (odd ones included)
CHECK_SIZES = ((64, 64), (97, 75), (33, 128))
TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint written by train / fit")
    parser.add_argument("--onnx", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"segcourse export: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from ..train import load_checkpoint
    from .export import OnnxPredictor, export_onnx, max_logit_difference

    model, config = load_checkpoint(args.checkpoint)
    meta = {"model": config.get("model", "")}
    path = export_onnx(model, args.onnx, opset=args.opset, metadata=meta)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), inputs (N, C, H, W) with dynamic N, H, W")
    if args.no_check:
        return 0
    diffs = max_logit_difference(model, OnnxPredictor(path), CHECK_SIZES)
    worst = max(diffs.values())
    for (h, w), d in diffs.items():
        print(f"  {h}x{w}: max |ONNX Runtime - PyTorch| = {d:.2e}")
    if worst > TOLERANCE:
        print(f"segcourse export: error: ONNX Runtime differs from PyTorch by {worst:.2e} > {TOLERANCE}",
              file=sys.stderr)
        return 1
    print(f"parity ok (<= {TOLERANCE})")
    return 0
