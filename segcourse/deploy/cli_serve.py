"""``python -m segcourse serve MODEL [--host 127.0.0.1] [--port 8000]``: the prediction service.

``MODEL`` is an ``.onnx`` file (from ``python -m segcourse export``; served with ONNX Runtime) or a
checkpoint (``.safetensors`` / ``.pt`` weights; read without unpickling). Open
``http://HOST:PORT/`` for the demo page, ``/docs`` for the API and ``/metrics`` for Prometheus.
Examples::

    python -m segcourse serve ckpt/unet.onnx
    python -m segcourse serve ckpt/unet.safetensors --port 8080 --max-upload-mb 4 --workers 1

Defaults never oversubscribe the CPU: ``--workers`` predictions run at once (one per core, at most
4) with ``--threads`` intra-op threads each, ``workers x threads <= cores``. Up to ``--max-queue``
more requests wait at most ``--queue-timeout`` seconds; past that, 503 with ``Retry-After``.
An access log line per request (with its X-Request-ID) goes to stderr (``--no-access-log`` to stop it).

The default host is the loopback address: the service is reachable from this machine only.
Expose it (``--host 0.0.0.0``) only behind a reverse proxy that adds TLS and authentication.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .service import Limits, available_cores, default_threads

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
    parser.add_argument("--workers", type=int, default=d.workers,
                        help=f"predictions running at once (default: one per core, at most 4; here {d.workers})")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads per prediction (default: cores // workers; here "
                             f"{default_threads(d.workers)} of {available_cores()} cores)")
    parser.add_argument("--max-queue", type=int, default=d.max_queue,
                        help=f"requests that may wait for a worker (default {d.max_queue})")
    parser.add_argument("--queue-timeout", type=float, default=d.queue_timeout,
                        help=f"seconds a request may wait before 503 + Retry-After (default {d.queue_timeout:g})")
    parser.add_argument("--inference-timeout", type=float, default=d.inference_timeout,
                        help=f"seconds a prediction may take before 504 (default {d.inference_timeout:g})")
    parser.add_argument("--window", type=int, default=d.window,
                        help=f"sliding-window size for larger images (default {d.window})")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="do not write a log line per request to stderr")


def run(args: argparse.Namespace) -> int:
    try:
        import logging

        import uvicorn

        from .service import Limits, create_app, default_threads, load_predictor

        for name in ("port", "max_pixels", "max_side", "workers", "window"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        threads = args.threads or default_threads(args.workers)
        if threads < 1:
            raise ValueError("--threads must be >= 1")
        import torch

        torch.set_num_threads(threads)
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        predictor = load_predictor(args.model, classes=classes, threads=threads)
        limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                        max_side=args.max_side, workers=args.workers, max_queue=args.max_queue,
                        queue_timeout=args.queue_timeout, inference_timeout=args.inference_timeout,
                        window=args.window)
        app = create_app(predictor, limits, threads=threads)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"segcourse serve: error: {err}", file=sys.stderr)
        return 2
    if args.access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log = logging.getLogger("segcourse.service.access")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    print(f"serving {args.model.name} ({predictor.kind}, {predictor.num_classes} classes) on "
          f"http://{args.host}:{args.port}/  (API: /docs, health: /health, metrics: /metrics); "
          f"{limits.workers} workers x {threads} threads, queue {limits.max_queue} for {limits.queue_timeout:g} s",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
