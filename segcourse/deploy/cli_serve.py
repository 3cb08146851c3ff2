"""``python -m segcourse serve MODEL [--host 127.0.0.1] [--port 8000]``: the prediction service.

``MODEL`` is an ``.onnx`` file (from ``python -m segcourse export``; served with ONNX Runtime) or a
checkpoint (``.safetensors`` / ``.pt`` weights; read without unpickling). Open
``http://HOST:PORT/`` for the demo page and ``/docs`` for the API. Examples::

    python -m segcourse serve ckpt/unet.onnx
    python -m segcourse serve ckpt/unet.safetensors --port 8080 --max-upload-mb 4 --workers 1

The default host is the loopback address: the service is reachable from this machine only.
Expose it (``--host 0.0.0.0``) only behind a reverse proxy that adds TLS and authentication.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .service import Limits

    d = Limits()
    parser.add_argument("model", type=Path, help="an .onnx model or a .safetensors / .pt checkpoint")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--classes", default=None, help="comma-separated class names (default: from the model)")
    parser.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 2**20,
                        help=f"largest upload in MiB (default {d.max_upload_bytes / 2**20:g})")
    parser.add_argument("--max-pixels", type=int, default=d.max_pixels,
                        help=f"largest declared width x height (default {d.max_pixels:,})")
    parser.add_argument("--max-side", type=int, default=d.max_side, help=f"largest side (default {d.max_side})")
    parser.add_argument("--workers", type=int, default=d.workers, help=f"inference threads (default {d.workers})")
    parser.add_argument("--max-pending", type=int, default=d.max_pending,
                        help=f"requests running or waiting before 503 (default {d.max_pending})")
    parser.add_argument("--window", type=int, default=d.window,
                        help=f"sliding-window size for larger images (default {d.window})")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime / torch intra-op threads")


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .service import Limits, create_app, load_predictor

        for name in ("port", "max_pixels", "max_side", "workers", "max_pending", "window"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        predictor = load_predictor(args.model, classes=classes, threads=args.threads)
        limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                        max_side=args.max_side, workers=args.workers, max_pending=args.max_pending,
                        window=args.window)
        app = create_app(predictor, limits)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"segcourse serve: error: {err}", file=sys.stderr)
        return 2
    print(f"serving {args.model.name} ({predictor.kind}, {predictor.num_classes} classes) on "
          f"http://{args.host}:{args.port}/  (API: /docs, health: /health)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
