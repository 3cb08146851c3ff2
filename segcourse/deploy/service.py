"""A hardened HTTP prediction service: FastAPI + uvicorn, ``python -m segcourse serve``.

Endpoints:

* ``POST /predict`` -- a multipart upload in the field ``file``; ``?format=png`` (default) answers
  an indexed PNG whose pixel values are class ids, ``?format=overlay`` the image with the mask
  blended in, ``?format=json`` the per-class pixel areas and, with ``&rle=true``, a COCO RLE per class;
* ``GET /health`` -- liveness and load (running, queued, capacity, answers counted by kind);
* ``GET /metrics`` -- Prometheus text exposition: requests by route and status, a latency
  histogram, rejections, inference timeouts, queue depth;
* ``GET /docs`` -- the OpenAPI page FastAPI generates; ``GET /`` -- a demo page to upload an image
  and see the overlay.

Every answer the service sends is in its OpenAPI schema (``/openapi.json``): 200 (PNG or JSON),
400 / 413 / 415 / 422 / 500 / 503 / 504 with the JSON body :class:`ErrorBody`; a method a route
does not have is answered 405 with an ``Allow`` header. Every answer carries ``X-Request-ID``
(the client's own when it sent a valid one), also written in the access log.

Hardening (every rule is a :class:`Limits` setting with a safe default, and tested over real HTTP):

* the upload size is checked **before the body is read whole**: a ``Content-Length`` over the limit
  is answered 413 at once; a body without one (chunked) is counted while it arrives and refused as
  soon as it passes the limit;
* only the accepted formats are parsed (``Image.open(..., formats=FORMATS)``: no other Pillow
  plugin ever sees the bytes), and the header is read before any pixel is decoded: a
  **decompression bomb** (a small file declaring a huge pixel count) is refused from its declared
  size; empty, truncated and corrupt files are 400, other formats 415;
* pixels: the EXIF orientation is applied (a phone photo is predicted the way it is displayed, and
  the mask comes back in that orientation); grey, palette and CMYK images are converted to RGB;
  transparent images (RGBA, LA, PA, a palette with a transparent colour) are composited onto
  :data:`BACKGROUND` (white); images with 16 bits per channel (grey ``I;16`` or 48-bit RGB) and
  floating-point images are refused with 415 and a message saying how to convert them (their value
  range, 12-bit microscopy or full 16-bit, cannot be known from the file);
* the model is loaded **weights only** (safetensors, ``torch.load(weights_only=True)``, or an ONNX
  graph); nothing from a request is ever unpickled or evaluated;
* errors are JSON ``{"error": ...}`` written by the service, never a traceback or a server path;
* **admission** (as Triton's and TorchServe's queues do): ``workers`` requests run at a time, in a
  thread pool off the event loop (so ``/health`` answers while predictions run); up to
  ``max_queue`` more wait in a first-in-first-out queue for at most ``queue_timeout`` seconds. A
  request that finds the queue full, or whose wait passes the deadline, gets **503** with
  ``Retry-After`` (the estimated time for the queue to drain); a burst the workers can clear within
  the deadline is served, not refused;
* **inference timeout**: a prediction that takes longer than ``inference_timeout`` seconds is
  answered 504; its worker stays busy until the computation ends (a thread cannot be killed), so
  the queue accounts for it;
* threads: ``workers`` x ``threads`` (intra-op threads of each prediction) never exceeds the cores
  this process may use, by default (:func:`default_workers`).
"""


import asyncio
import collections
import contextlib
import io
import json
import logging
import math
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

from ..files import save_indexed_png

#: image formats accepted (PIL names); no other Pillow plugin parses an upload
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
#: their media types, as the OpenAPI schema declares them for the ``file`` part
MEDIA_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/tiff", "image/webp")
#: the colour transparent pixels are composited onto (RGB, white)
BACKGROUND = (255, 255, 255)
#: PIL modes converted to RGB; other modes (16-bit "I;16", 32-bit "I", float "F") are refused
CONVERTIBLE = {"RGB": "as is", "L": "grey -> RGB", "P": "palette -> RGB", "RGBA": "alpha composited on white",
               "LA": "grey + alpha composited on white", "CMYK": "CMYK -> RGB", "1": "1-bit -> RGB",
               "PA": "palette + alpha composited on white"}
DEFAULT_PALETTE = ((0, 0, 0), (255, 200, 0), (0, 160, 255), (230, 30, 60), (60, 200, 90), (170, 80, 255),
                   (255, 120, 0), (0, 220, 220))
#: upper bounds (seconds) of the latency histogram in ``/metrics``
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: a client's X-Request-ID is kept only if it looks like an id (else a fresh one is made)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

access_log = logging.getLogger("segcourse.service.access")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, e.g. in a container)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_workers(cores: int | None = None) -> int:
    """Inference threads by default: one per core, at most 4 (more rarely helps one model on one machine)."""
    return max(1, min(cores or available_cores(), 4))


def default_threads(workers: int, cores: int | None = None) -> int:
    """Intra-op threads per prediction such that ``workers * threads <= cores`` (at least 1)."""
    return max(1, (cores or available_cores()) // max(1, workers))


@dataclass(frozen=True)
class Limits:
    """The service's limits. Defaults are safe for a laptop; every one is a ``serve`` option.

    Attributes:
        max_upload_bytes: largest uploaded file (the request body may add 64 KiB of multipart framing).
        max_pixels: largest declared ``width * height`` (a decompression-bomb guard).
        max_side: largest width or height.
        workers: predictions that run at once (threads of the pool); default :func:`default_workers`.
        max_queue: requests that may wait for a worker; one more is answered 503 at once.
        queue_timeout: seconds a request may wait in the queue; past it, 503 with ``Retry-After``.
        inference_timeout: seconds a prediction (decode, model, encode) may take; past it, 504.
        window: images with a side larger than this are predicted in sliding windows of this size.
    """

    max_upload_bytes: int = 8 * 2**20
    max_pixels: int = 4096 * 4096
    max_side: int = 8192
    workers: int = default_workers()
    max_queue: int = 64
    queue_timeout: float = 10.0
    inference_timeout: float = 120.0
    window: int = 512

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_side", "workers", "window"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_queue < 0 or self.queue_timeout <= 0 or self.inference_timeout <= 0:
            raise ValueError(f"Limits: max_queue must be >= 0 and the timeouts > 0, got max_queue={self.max_queue}, "
                             f"queue_timeout={self.queue_timeout}, inference_timeout={self.inference_timeout}")


class BadImage(Exception):
    """An upload the service refuses; ``status`` is the HTTP status, the message is safe to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message
# ---------------------------------------------------------------------------------------------
# model loading and prediction (no web code: used in-process by the lesson and the tests too)
# ---------------------------------------------------------------------------------------------


class Predictor:
    """A model behind one call: ``predictor(images (N, C, H, W) float) -> logits (N, K, H, W)``.

    Built by :func:`load_predictor` from an ``.onnx`` file (ONNX Runtime) or a checkpoint
    (PyTorch, weights only). ``classes`` are the class names.
    """

    def __init__(self, fn, *, num_classes: int, in_channels: int, classes, kind: str, name: str) -> None:
        self._fn, self.num_classes, self.in_channels, self.kind, self.name = fn, num_classes, in_channels, kind, name
        self.classes = list(classes) if classes else [f"class {i}" for i in range(num_classes)]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._fn(images)


def load_predictor(path: str | os.PathLike, *, classes=None, threads: int | None = None) -> Predictor:
    """Load an ONNX model or a weights-only checkpoint for serving.

    Args:
        path: ``.onnx`` (from :func:`~segcourse.deploy.export_onnx`) or ``.safetensors`` / ``.pt``
            (from :func:`~segcourse.train.save_checkpoint` / ``fit``; read without unpickling).
        classes: class names (default: from the model's metadata, else ``class 0``, ``class 1``...).
        threads: ONNX Runtime intra-op threads.
    """
    path = Path(path)
    if path.suffix == ".onnx":
        from .export import OnnxPredictor

        session = OnnxPredictor(path, threads=threads)
        meta_classes = session.metadata.get("classes")
        names = classes or (json.loads(meta_classes) if meta_classes else None)
        num = session.num_classes or (len(names) if names else 2)
        return Predictor(session, num_classes=num, in_channels=session.in_channels, classes=names, kind="onnx",
                         name=path.name)
    from ..train import load_checkpoint
    from .export import _in_channels, deployable

    model, config = load_checkpoint(path)    # safetensors: no pickle; a .pt: torch's restricted weights_only unpickler
    wrapped = deployable(model)
    channels = _in_channels(wrapped)
    with torch.no_grad():
        num = int(wrapped(torch.zeros(1, channels, 32, 32)).shape[1])
    return Predictor(wrapped, num_classes=num, in_channels=channels, classes=classes or config.get("classes"),
                     kind="pytorch", name=path.name)


def _bits_per_channel(probe) -> int:
    """8 or 16: Pillow reads 48-bit RGB PNG/TIFF as mode "RGB" (keeping the high byte); its raw mode says 16."""
    for tile in probe.tile or ():
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")
        if ";16" in rawmode:
            return 16
    return 8


def decode_image(data: bytes, limits: Limits = Limits(), *, channels: int = 3) -> tuple[np.ndarray, str]:
    """Decode an uploaded image safely.

    Only the :data:`FORMATS` plugins parse the bytes. The header is read first (``PIL.Image.open``
    decodes no pixels): the format, the declared size, the mode and the bit depth are checked before
    :meth:`~PIL.Image.Image.load` decodes anything. Then the EXIF orientation is applied
    (``ImageOps.exif_transpose``) and transparent images are composited onto :data:`BACKGROUND`.

    Returns:
        ``(image, note)``: ``(H, W, channels)`` uint8, ``H, W`` as displayed (after the EXIF
        rotation), and how the pixels were converted (e.g. ``"alpha composited on white"``).

    Raises:
        BadImage: 400 empty / truncated / corrupt; 413 too many pixels or too large a side; 415 not
            one of the accepted formats, or 16-bit / floating-point pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise BadImage(400, "the uploaded file is empty")
    accepted = ", ".join(FORMATS)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
            fmt, (width, height), mode, bits = probe.format, probe.size, probe.mode, _bits_per_channel(probe)
    except UnidentifiedImageError:
        raise BadImage(415, f"the upload is not an image in an accepted format ({accepted})") from None
    except Image.DecompressionBombError:
        raise BadImage(413, f"the image declares too many pixels (limit {limits.max_pixels:,})") from None
    except Exception:  # noqa: BLE001 - any parser failure on untrusted bytes is the client's bad file
        raise BadImage(400, "the image header is corrupt") from None
    if width < 1 or height < 1:
        raise BadImage(400, "the image has no pixels")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise BadImage(413, f"the image is {width} x {height}; the limits are {limits.max_pixels:,} pixels and "
                            f"{limits.max_side} per side")
    if mode not in CONVERTIBLE or bits != 8:
        raise BadImage(415, f"{fmt} image with mode {mode} and {bits} bits per channel is not accepted (16-bit or "
                            "floating-point pixels): convert it to 8-bit RGB or grey first, scaling its real value "
                            "range to 0-255 (e.g. 16-bit values by 255 / 65535)")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            image.load()                                  # decodes; raises on truncated data
            note = CONVERTIBLE[mode]
            upright = ImageOps.exif_transpose(image)      # a phone photo: rotate as it is displayed
            orientation = image.getexif().get(0x0112, 1)
            if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = upright.convert("RGBA")
                flat = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
                flat.alpha_composite(rgba)
                upright = flat
                note = CONVERTIBLE[mode] if mode in ("RGBA", "LA", "PA") else \
                    f"{CONVERTIBLE[mode]}; transparent colour composited on white"
            converted = upright.convert("RGB" if channels == 3 else "L")
    except Image.DecompressionBombError:
        raise BadImage(413, f"the image declares too many pixels (limit {limits.max_pixels:,})") from None
    except (OSError, SyntaxError, ValueError):
        raise BadImage(400, "the image is truncated or corrupt") from None
    if orientation not in (1, None):
        note += f"; EXIF orientation {orientation} applied"
    array = np.asarray(converted, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return array, note


def predict_mask(predictor, image: np.ndarray, *, window: int = 512) -> np.ndarray:
    """Class ids ``(H, W)`` uint8 for one ``(H, W, C)`` uint8 image (RGB / 255, as in training).

    Images with a side larger than ``window`` are predicted with
    :func:`~segcourse.inference.sliding_window` (Gaussian blending, overlap 0.25).
    """
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255   # (1, C, H, W)
    if max(x.shape[-2:]) > window:
        from ..inference import sliding_window

        logits = sliding_window(predictor, x, (min(window, x.shape[-2]), min(window, x.shape[-1])),
                                overlap=0.25, mode="gaussian", batch_size=2)
    else:
        logits = predictor(x)
    logits = logits[0]
    labels = (logits[0] > 0).long() if logits.shape[0] == 1 else logits.argmax(0)
    return labels.to(torch.uint8).numpy()


def _palette(num_classes: int) -> list[tuple[int, int, int]]:
    return [DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i in range(max(num_classes, 2))]


def mask_png(mask: np.ndarray, num_classes: int) -> bytes:
    """An indexed PNG: pixel value = class id, with a palette so that it is visible."""
    buffer = io.BytesIO()
    save_indexed_png(buffer, mask, _palette(num_classes))
    return buffer.getvalue()


def overlay_png(image: np.ndarray, mask: np.ndarray, num_classes: int, alpha: float = 0.5) -> bytes:
    """The image with every non-background class blended in its colour, as a PNG."""
    from PIL import Image

    rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    colours = np.asarray(_palette(num_classes), dtype=np.float32)[mask]          # (H, W, 3)
    blend = np.where(mask[..., None] > 0, (1 - alpha) * rgb + alpha * colours, rgb)
    buffer = io.BytesIO()
    Image.fromarray(blend.round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def mask_summary(mask: np.ndarray, classes, *, rle: bool = False) -> dict:
    """Per-class pixel areas (and COCO RLE with ``rle=True``) of a class-id mask."""
    from ..data.coco import mask_to_rle

    height, width = mask.shape
    counts = np.bincount(mask.ravel(), minlength=len(classes))
    out = {"width": int(width), "height": int(height), "classes": []}
    for k, name in enumerate(classes):
        entry = {"id": k, "name": str(name), "pixels": int(counts[k]), "fraction": float(counts[k] / mask.size)}
        if rle:
            encoded = mask_to_rle(mask == k)
            counts_field = encoded["counts"]
            entry["rle"] = {"size": [int(height), int(width)],
                            "counts": counts_field.decode() if isinstance(counts_field, bytes) else counts_field}
        out["classes"].append(entry)
    return out


# ---------------------------------------------------------------------------------------------
# admission, metrics and the request log (plain asyncio / ASGI: no web framework needed)
# ---------------------------------------------------------------------------------------------


class Busy(Exception):
    """No worker within the deadline: ``reason`` is ``"queue_full"`` or ``"deadline"``."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after, self.reason = retry_after, reason


class Admission:
    """``workers`` slots and a first-in-first-out queue of at most ``max_queue`` waiting requests.

    A request takes a free slot at once, or waits in the queue for at most ``timeout`` seconds; a
    full queue or a passed deadline raises :class:`Busy` with the estimated seconds until the queue
    drains (the mean service time of recent requests times the requests ahead, over ``workers``).
    A released slot goes to the oldest waiter. Used from the event loop thread only.
    """

    def __init__(self, workers: int, max_queue: int, timeout: float) -> None:
        self.workers, self.max_queue, self.timeout = workers, max_queue, timeout
        self.running = 0
        self._waiters: collections.deque = collections.deque()
        self._mean: float | None = None                       # seconds per request (moving average)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def retry_after(self) -> int:
        per_request = self._mean if self._mean is not None else 1.0
        return max(1, math.ceil(per_request * (self.queued + self.running) / self.workers))

    async def acquire(self) -> None:
        if self.running < self.workers and not self._waiters:
            self.running += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise Busy(self.retry_after(), "queue_full")
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await asyncio.wait_for(turn, self.timeout)
        except asyncio.TimeoutError:
            self._forget(turn)
            raise Busy(self.retry_after(), "deadline") from None
        except BaseException:                                  # cancelled: hand on a slot it was given
            if turn.done() and not turn.cancelled():
                self.release(None)
            else:
                self._forget(turn)
            raise

    def _forget(self, turn) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(turn)

    def release(self, seconds: float | None) -> None:
        if seconds is not None:
            self._mean = seconds if self._mean is None else 0.8 * self._mean + 0.2 * seconds
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)                          # the slot passes on: running is unchanged
                return
        self.running -= 1


class Metrics:
    """Counters and a latency histogram, written in the Prometheus text exposition format (0.0.4)."""

    def __init__(self) -> None:
        self.requests: collections.Counter = collections.Counter()        # (route, status) -> count
        self.latency: dict[str, list] = {}                                 # route -> [bucket counts, sum, count]
        self.rejected = collections.Counter({"queue_full": 0, "deadline": 0})
        self.timeouts = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        buckets, total, count = self.latency.setdefault(route, [[0] * len(LATENCY_BUCKETS), 0.0, 0])
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                buckets[i] += 1
        self.latency[route] = [buckets, total + seconds, count + 1]

    def render(self, admission: Admission) -> str:
        lines = ["# HELP segcourse_requests_total HTTP requests answered, by route and status code.",
                 "# TYPE segcourse_requests_total counter"]
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'segcourse_requests_total{{route="{route}",status="{status}"}} {count}')
        lines += ["# HELP segcourse_request_duration_seconds Time from request to the end of the answer.",
                  "# TYPE segcourse_request_duration_seconds histogram"]
        for route, (buckets, total, count) in sorted(self.latency.items()):
            for bound, n in zip(LATENCY_BUCKETS, buckets):
                lines.append(f'segcourse_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} {n}')
            lines.append(f'segcourse_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {count}')
            lines.append(f'segcourse_request_duration_seconds_sum{{route="{route}"}} {total:.6f}')
            lines.append(f'segcourse_request_duration_seconds_count{{route="{route}"}} {count}')
        lines += ["# HELP segcourse_rejected_total Predictions refused with 503: queue full or wait deadline passed.",
                  "# TYPE segcourse_rejected_total counter"]
        lines += [f'segcourse_rejected_total{{reason="{r}"}} {n}' for r, n in sorted(self.rejected.items())]
        lines += ["# HELP segcourse_inference_timeouts_total Predictions answered 504 (inference timeout).",
                  "# TYPE segcourse_inference_timeouts_total counter",
                  f"segcourse_inference_timeouts_total {self.timeouts}",
                  "# HELP segcourse_running Predictions running now.", "# TYPE segcourse_running gauge",
                  f"segcourse_running {admission.running}",
                  "# HELP segcourse_queued Predictions waiting for a worker now.", "# TYPE segcourse_queued gauge",
                  f"segcourse_queued {admission.queued}"]
        return "\n".join(lines) + "\n"


class RequestLog:
    """ASGI middleware (outermost): a request id, an access-log line and the metrics of every answer.

    The id is the client's ``X-Request-ID`` when it is 1-128 characters of ``[A-Za-z0-9._:-]``,
    else a new random one; it is returned in the ``X-Request-ID`` header and written in the log line
    ``client "METHOD path" status duration id=...`` (logger ``segcourse.service.access``).
    """

    def __init__(self, app, metrics: Metrics, routes) -> None:
        self.app, self.metrics, self.routes = app, metrics, frozenset(routes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        start, status, recorded = time.perf_counter(), 500, False

        def record():
            # once per request, before the last byte of the answer goes out: a client that has its
            # answer finds the request already in the access log and in /metrics
            nonlocal recorded
            if recorded:
                return
            recorded = True
            seconds = time.perf_counter() - start
            path = scope.get("path", "")
            self.metrics.observe(path if path in self.routes else "other", status, seconds)
            client = scope.get("client") or ("-", 0)
            access_log.info('%s "%s %s" %d %.1f ms id=%s', client[0], scope.get("method"), path, status,
                            seconds * 1e3, request_id)

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record()                                   # an answer that never completed (an error, a disconnect)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes before they are read whole.

    A declared ``Content-Length`` over the limit is answered 413 without reading the body; a body
    without one is buffered up to the limit and refused as soon as it passes it.
    """

    def __init__(self, app, limit: int, shown: int | None = None) -> None:
        self.app, self.limit = app, limit
        self.message = {"error": f"the upload is larger than the limit of {shown or limit:,} bytes"}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _send_json(send, 400, {"error": "invalid Content-Length header"})
            if size > self.limit:
                return await _send_json(send, 413, self.message)
            return await self.app(scope, receive, send)
        # no Content-Length (chunked): read up to the limit, then replay the buffered body to the app
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            total += len(message.get("body", b""))
            if total > self.limit:
                return await _send_json(send, 413, self.message)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------
# the web app
# ---------------------------------------------------------------------------------------------

#: every error status /predict sends, with what it means (the OpenAPI schema lists them all)
ERROR_STATUSES = {
    400: "The file is empty, truncated or corrupt.",
    413: "The upload is over the size limit, or the image declares too many pixels or too large a side.",
    415: "Not an image in an accepted format (PNG, JPEG, BMP, TIFF, WebP), or 16-bit / floating-point pixels.",
    422: "The request is not multipart form data with a `file` field, or a query parameter is invalid.",
    500: "An internal error while predicting (no details are sent; see the server log).",
    503: "Busy: the queue is full or the wait passed the queue deadline. Retry after `Retry-After` seconds.",
    504: "The prediction took longer than the inference timeout.",
}
_ID_HEADER = {"X-Request-ID": {"description": "the request's id (the client's own X-Request-ID when valid); it "
                                              "is in the server's access log", "schema": {"type": "string"}}}


def _models():
    from pydantic import BaseModel, Field

    class ErrorBody(BaseModel):
        """Every error answer: what went wrong, in a sentence safe to show a user."""

        error: str
        problems: list[str] | None = Field(None, description="with 422: each invalid part of the request")

    class ClassArea(BaseModel):
        id: int
        name: str
        pixels: int
        fraction: float
        rle: dict | None = Field(None, description="with rle=true: COCO RLE {size: [H, W], counts: str}")

    class PredictionSummary(BaseModel):
        """``format=json``: the mask's size and, per class, its pixel count and share."""

        width: int
        height: int
        classes: list[ClassArea]
        channels: str = Field(description="how the upload's pixels were converted (also the X-Channels header)")

    class Health(BaseModel):
        status: str
        model: str
        runtime: str
        classes: list[str]
        workers: int
        threads: int = Field(description="intra-op threads of each prediction (0: not set by the service)")
        running: int
        queued: int
        in_flight: int = Field(description="running + queued")
        capacity: int = Field(description="workers + max_queue: more requests at once are answered 503")
        queue_timeout_s: float
        inference_timeout_s: float
        served: int = Field(description="predictions answered 200, every format")
        served_by_format: dict[str, int]
        rejected: int = Field(description="predictions answered 503 (busy)")
        bad_requests: int = Field(description="predictions answered 4xx")
        timeouts: int = Field(description="predictions answered 504")

    return ErrorBody, PredictionSummary, Health


def create_app(predictor: Predictor, limits: Limits = Limits(), *, threads: int | None = None):
    """The ASGI application serving ``predictor`` under ``limits``.

    ``threads`` (intra-op threads per prediction) is only reported in ``/health``; the caller sets it
    on the runtime (``load_predictor(threads=...)``, ``torch.set_num_threads``).
    """
    from fastapi import FastAPI, File, Query, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    ErrorBody, PredictionSummary, Health = _models()
    pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="predict")
    admission = Admission(limits.workers, limits.max_queue, limits.queue_timeout)
    metrics = Metrics()
    counts = {"served": collections.Counter(), "bad_requests": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="segcourse prediction service", lifespan=lifespan, version="2", docs_url=None,
                  description="Upload an image to `/predict` (multipart form data, field `file`); get its "
                              "segmentation mask. Transparent pixels are composited onto white; the EXIF "
                              "orientation is applied; 16-bit images are refused (convert them to 8 bits).")

    def error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):                    # 404, 405 (its Allow header kept)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        if request.url.path == "/predict":
            counts["bad_requests"] += 1
        return JSONResponse({"error": "invalid request: send the image as multipart form data in the field 'file'",
                             "problems": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal_error(request, exc):          # never a traceback or a path
        return error(500, "internal error while predicting")

    def documented(*codes):
        out = {}
        for code in codes:
            headers = dict(_ID_HEADER)
            if code == 503:
                headers["Retry-After"] = {"description": "seconds until the queue is expected to have drained",
                                          "schema": {"type": "integer", "minimum": 1}}
            out[code] = {"model": ErrorBody, "description": ERROR_STATUSES[code], "headers": headers}
        return out

    @app.get("/health", response_model=Health, responses={200: {"headers": _ID_HEADER}})
    async def health():
        """Liveness and load: running and queued predictions, the capacity, and the answers counted by kind."""
        served = counts["served"]
        return {"status": "ok", "model": predictor.name, "runtime": predictor.kind, "classes": predictor.classes,
                "workers": limits.workers, "threads": threads or 0, "running": admission.running,
                "queued": admission.queued, "in_flight": admission.running + admission.queued,
                "capacity": limits.workers + limits.max_queue, "queue_timeout_s": limits.queue_timeout,
                "inference_timeout_s": limits.inference_timeout, "served": sum(served.values()),
                "served_by_format": {f: served[f] for f in ("png", "overlay", "json")},
                "rejected": sum(metrics.rejected.values()), "bad_requests": counts["bad_requests"],
                "timeouts": metrics.timeouts}

    @app.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "headers": _ID_HEADER,
                              "description": "Prometheus text exposition format 0.0.4"}})
    async def prometheus_metrics():
        """Request counts by route and status, a latency histogram, rejections and timeouts (Prometheus text)."""
        return PlainTextResponse(metrics.render(admission), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def demo() -> str:
        return DEMO_PAGE

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs():
        """FastAPI's Swagger UI (loaded from a CDN), and a plain list of the operations when it cannot load."""
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs").body.decode()
        return HTMLResponse(page.replace("</body>", OFFLINE_DOCS + "</body>"))

    def answer(data: bytes, fmt: str, rle: bool):                 # runs in a worker thread
        image, note = decode_image(data, limits, channels=predictor.in_channels)
        mask = predict_mask(predictor, image, window=limits.window)
        if fmt == "json":
            return {**mask_summary(mask, predictor.classes, rle=rle), "channels": note}, note
        body = overlay_png(image, mask, predictor.num_classes) if fmt == "overlay" else \
            mask_png(mask, predictor.num_classes)
        return body, note

    def release_from_thread(loop, seconds):
        with contextlib.suppress(RuntimeError):                    # the loop closed while a prediction ran
            loop.call_soon_threadsafe(admission.release, seconds)

    @app.post("/predict", response_model=PredictionSummary,
              responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                               "description": "format=png: an indexed PNG whose pixel values are class ids; "
                                              "format=overlay: an RGB PNG; format=json: PredictionSummary",
                               "headers": {**_ID_HEADER, "X-Channels": {
                                   "description": "how the upload's pixels were converted",
                                   "schema": {"type": "string"}}}},
                         **documented(400, 413, 415, 422, 500, 503, 504)})
    async def predict(file: Annotated[UploadFile, File(description="the image: PNG, JPEG, BMP, TIFF or WebP, "
                                                                   "8 bits per channel, not empty")],
                      format: Annotated[Literal["png", "overlay", "json"],
                                        Query(description="png: class-id mask; overlay: blended image; "
                                                          "json: per-class areas")] = "png",
                      rle: Annotated[bool, Query(description="with format=json: a COCO RLE per class")] = False):
        """Segment one uploaded image."""
        data = await file.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            counts["bad_requests"] += 1
            return error(413, f"the upload is larger than the limit of {limits.max_upload_bytes:,} bytes")
        if not data:
            counts["bad_requests"] += 1
            return error(400, "the uploaded file is empty")
        try:
            await admission.acquire()
        except Busy as busy:
            metrics.rejected[busy.reason] += 1
            why = "the queue is full" if busy.reason == "queue_full" else \
                f"no worker was free within the queue deadline of {limits.queue_timeout:g} s"
            return error(503, f"busy: {why}; retry after {busy.retry_after} s",
                         headers={"Retry-After": str(busy.retry_after)})
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        job = pool.submit(answer, data, format, rle)
        job.add_done_callback(lambda _: release_from_thread(loop, time.perf_counter() - started))
        try:
            body, note = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job)), limits.inference_timeout)
        except asyncio.TimeoutError:
            metrics.timeouts += 1
            return error(504, f"the prediction took longer than the limit of {limits.inference_timeout:g} s")
        except BadImage as err:
            counts["bad_requests"] += 1
            return error(err.status, err.message)
        counts["served"][format] += 1
        if format == "json":
            return JSONResponse(body, headers={"X-Channels": note})
        return Response(body, media_type="image/png", headers={"X-Channels": note})

    def openapi() -> dict:
        """FastAPI's schema plus what it cannot say from the types: the file part is a non-empty image."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            form = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
            form["encoding"] = {"file": {"contentType": ", ".join(MEDIA_TYPES)}}
            name = form["schema"]["$ref"].rsplit("/", 1)[-1]
            schema["components"]["schemas"][name]["properties"]["file"]["minLength"] = 1
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    routes = ("/predict", "/health", "/metrics", "/", "/docs", "/openapi.json")
    # the app behind the body limit (plus room for the multipart framing), all behind the request log
    return RequestLog(BodyLimit(app, limits.max_upload_bytes + 64 * 1024, shown=limits.max_upload_bytes),
                      metrics, routes)


#: appended to the Swagger UI page: offline (no CDN), it lists the operations and their answers instead
OFFLINE_DOCS = """<script>
window.addEventListener("load", async () => {
  if (window.SwaggerUIBundle) return;
  const spec = await (await fetch("/openapi.json")).json();
  const root = document.getElementById("swagger-ui"), add = (parent, tag, text) => {
    const node = document.createElement(tag); node.textContent = text; parent.appendChild(node); return node; };
  root.style.fontFamily = "system-ui, sans-serif"; root.style.margin = "2rem";
  add(root, "h1", spec.info.title + " " + spec.info.version);
  add(root, "p", spec.info.description || "");
  add(root, "p", "(The interactive Swagger UI comes from a CDN and could not be loaded: offline? "
                 + "The schema itself is at /openapi.json.)").style.color = "#666";
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      add(root, "h2", method.toUpperCase() + " " + path);
      add(root, "p", op.description || op.summary || "");
      for (const p of op.parameters || []) add(root, "div", "query " + p.name + ": " + (p.description || ""));
      const list = add(root, "ul", "");
      for (const [code, answer] of Object.entries(op.responses)) add(list, "li", code + ": " + answer.description);
    }
  }
});
</script>
"""

DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>segcourse: segment an image</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 60rem; }
  .pair { display: flex; gap: 1rem; flex-wrap: wrap; }
  .pair img { max-width: 28rem; border: 1px solid #ccc; }
  #status { margin: 1rem 0; color: #444; }
  #status.error { color: #b00020; }
</style>
</head>
<body>
<h1>Segment an image</h1>
<p>Choose an image (PNG, JPEG, BMP, TIFF or WebP); the service returns its mask, shown blended over it.
The API is documented at <a href="/docs">/docs</a>.</p>
<form id="form">
  <input id="file" type="file" name="file" accept="image/*">
  <button id="send" type="submit">Segment</button>
</form>
<div id="status"></div>
<div class="pair">
  <figure><img id="input" alt="your image" hidden><figcaption>input</figcaption></figure>
  <figure><img id="overlay" alt="predicted mask over the image" hidden><figcaption>prediction</figcaption></figure>
</div>
<pre id="areas"></pre>
<script>
const form = document.getElementById("form"), status = document.getElementById("status");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("file").files[0];
  if (!file) { status.textContent = "choose an image first"; status.className = "error"; return; }
  document.getElementById("input").src = URL.createObjectURL(file);
  document.getElementById("input").hidden = false;
  status.textContent = "predicting..."; status.className = "";
  const body = new FormData(); body.append("file", file);
  try {
    const [overlay, areas] = await Promise.all([
      fetch("/predict?format=overlay", {method: "POST", body}),
      fetch("/predict?format=json", {method: "POST", body}),
    ]);
    if (!overlay.ok) {
      const err = await overlay.json().catch(() => ({error: overlay.statusText}));
      status.textContent = "error " + overlay.status + ": " + err.error; status.className = "error"; return;
    }
    const img = document.getElementById("overlay");
    img.src = URL.createObjectURL(await overlay.blob()); img.hidden = false;
    if (areas.ok) {
      const summary = await areas.json();
      document.getElementById("areas").textContent = summary.classes
        .map(c => c.name + ": " + c.pixels + " pixels (" + (100 * c.fraction).toFixed(1) + " %)").join("\\n");
    }
    status.textContent = "done"; status.className = "done";
  } catch (e) {
    status.textContent = "the service did not answer: " + e; status.className = "error";
  }
});
</script>
</body>
</html>
"""
