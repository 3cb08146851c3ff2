"""A hardened HTTP prediction service: FastAPI + uvicorn, ``python -m segcourse serve``.

Endpoints:

* ``POST /predict`` -- a multipart upload in the field ``file``; ``?format=png`` (default) answers
  an indexed PNG whose pixel values are class ids, ``?format=overlay`` the image with the mask
  blended in, ``?format=json`` the per-class pixel areas and, with ``&rle=true``, a COCO RLE per class;
* ``GET /health`` -- liveness and load (requests in flight, capacity);
* ``GET /docs`` -- the OpenAPI page FastAPI generates; ``GET /`` -- a demo page to upload an image
  and see the overlay.

Hardening (every rule is a :class:`Limits` setting with a safe default, and tested over real HTTP):

* the upload size is checked **before the body is read whole**: a ``Content-Length`` over the limit
  is answered 413 at once; a body without one (chunked) is counted while it arrives and refused as
  soon as it passes the limit;
* the image header is read before any pixel is decoded: a **decompression bomb** (a small file
  declaring a huge pixel count) is refused from its declared size; not-an-image, truncated images,
  empty uploads and unsupported formats are 400/415 answers;
* channels: grey and palette images are converted to RGB, RGBA drops its alpha, CMYK is converted;
  16-bit and floating-point images are refused with a message saying how to convert them;
* the model is loaded **weights only** (safetensors, ``torch.load(weights_only=True)``, or an ONNX
  graph); nothing from a request is ever unpickled or evaluated;
* errors are JSON ``{"error": ...}`` written by the service, never a traceback or a server path;
* inference runs in a worker thread pool, off the event loop, so ``/health`` answers while
  predictions run; requests beyond ``max_pending`` (running + waiting) get **503** with
  ``Retry-After``, never a crash.
"""


import asyncio
import contextlib
import functools
import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from ..files import save_indexed_png

#: image formats accepted (PIL names)
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
#: PIL modes converted to RGB; other modes (16-bit "I;16", 32-bit "I", float "F") are refused
CONVERTIBLE = {"RGB": "as is", "L": "grey -> RGB", "P": "palette -> RGB", "RGBA": "alpha dropped",
               "LA": "grey + alpha -> RGB", "CMYK": "CMYK -> RGB", "1": "1-bit -> RGB", "PA": "palette + alpha -> RGB"}
DEFAULT_PALETTE = ((0, 0, 0), (255, 200, 0), (0, 160, 255), (230, 30, 60), (60, 200, 90), (170, 80, 255),
                   (255, 120, 0), (0, 220, 220))


@dataclass(frozen=True)
class Limits:
    """The service's limits. Defaults are safe for a laptop; every one is a ``serve`` option.

    Attributes:
        max_upload_bytes: largest request body (the encoded file plus the multipart framing).
        max_pixels: largest declared ``width * height`` (a decompression-bomb guard).
        max_side: largest width or height.
        workers: inference threads.
        max_pending: requests running or waiting for a worker; beyond it: 503.
        window: images with a side larger than this are predicted in sliding windows of this size.
    """

    max_upload_bytes: int = 8 * 2**20
    max_pixels: int = 4096 * 4096
    max_side: int = 8192
    workers: int = 2
    max_pending: int = 16
    window: int = 512


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

    model, config = load_checkpoint(path)                  # safetensors / weights_only: never unpickles
    wrapped = deployable(model)
    channels = _in_channels(wrapped)
    with torch.no_grad():
        num = int(wrapped(torch.zeros(1, channels, 32, 32)).shape[1])
    return Predictor(wrapped, num_classes=num, in_channels=channels, classes=classes or config.get("classes"),
                     kind="pytorch", name=path.name)


def decode_image(data: bytes, limits: Limits = Limits(), *, channels: int = 3) -> tuple[np.ndarray, str]:
    """Decode an uploaded image safely.

    The header is read first (``PIL.Image.open`` decodes no pixels): the format, the declared size
    and the mode are checked before :meth:`~PIL.Image.Image.load` decodes anything.

    Returns:
        ``(image, note)``: ``(H, W, channels)`` uint8 and how the channels were converted.

    Raises:
        BadImage: 400 empty / not an image / truncated / corrupt; 413 too many pixels or too large a
            side; 415 an unsupported format or mode (16-bit, float).
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadImage(400, "the uploaded file is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, (width, height), mode = probe.format, probe.size, probe.mode
    except UnidentifiedImageError:
        raise BadImage(400, "the upload is not an image this service can read (send PNG, JPEG, BMP, TIFF or WebP)") \
            from None
    except Image.DecompressionBombError:
        raise BadImage(413, f"the image declares too many pixels (limit {limits.max_pixels:,})") from None
    except Exception:  # noqa: BLE001 - any parser failure on untrusted bytes is the client's bad file
        raise BadImage(400, "the image header is corrupt") from None
    if fmt not in FORMATS:
        raise BadImage(415, f"image format {fmt} is not accepted; send one of {', '.join(FORMATS)}")
    if width < 1 or height < 1:
        raise BadImage(400, "the image has no pixels")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise BadImage(413, f"the image is {width} x {height}; the limits are {limits.max_pixels:,} pixels and "
                            f"{limits.max_side} per side")
    if mode not in CONVERTIBLE:
        raise BadImage(415, f"image mode {mode} (16-bit or floating-point) is not accepted: convert it to 8-bit "
                            "RGB or grey first (e.g. scale 16-bit values by 255 / 65535)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()                                  # decodes; raises on truncated data
            note = CONVERTIBLE[mode]
            converted = image.convert("RGB" if channels == 3 else "L")
    except Image.DecompressionBombError:
        raise BadImage(413, f"the image declares too many pixels (limit {limits.max_pixels:,})") from None
    except (OSError, SyntaxError, ValueError):
        raise BadImage(400, "the image is truncated or corrupt") from None
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
# the web app
# ---------------------------------------------------------------------------------------------


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


def create_app(predictor: Predictor, limits: Limits = Limits()):
    """The FastAPI application serving ``predictor`` under ``limits``."""
    from fastapi import FastAPI, File, Query, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="predict")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="segcourse prediction service", lifespan=lifespan,
                  description="Upload an image to `/predict`; get its segmentation mask.", version="1")
    state = {"pending": 0, "served": 0, "rejected": 0}
    lock = threading.Lock()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return JSONResponse({"error": "invalid request: send the image as multipart form data in the field 'file'",
                             "problems": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal_error(request, exc):          # never a traceback or a path
        return JSONResponse({"error": "internal error while predicting"}, status_code=500)

    @app.get("/health")
    async def health() -> dict:
        """Liveness and load: requests in flight (running + waiting) and the capacity."""
        return {"status": "ok", "model": predictor.name, "runtime": predictor.kind,
                "classes": predictor.classes, "in_flight": state["pending"], "capacity": limits.max_pending,
                "served": state["served"], "rejected": state["rejected"]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def demo() -> str:
        return DEMO_PAGE

    @app.post("/predict", responses={200: {"content": {"image/png": {}, "application/json": {}}}})
    async def predict(file: Annotated[UploadFile, File(description="the image (PNG, JPEG, BMP, TIFF, WebP)")],
                      format: Annotated[str, Query(pattern="^(png|overlay|json)$",
                                                   description="png: class-id mask; overlay: blended image; "
                                                               "json: per-class areas")] = "png",
                      rle: Annotated[bool, Query(description="with format=json: a COCO RLE per class")] = False):
        """Segment one uploaded image."""
        with lock:
            if state["pending"] >= limits.max_pending:
                state["rejected"] += 1
                return JSONResponse({"error": "the service is at capacity; retry shortly"}, status_code=503,
                                    headers={"Retry-After": "1"})
            state["pending"] += 1
        try:
            data = await file.read(limits.max_upload_bytes + 1)
            if len(data) > limits.max_upload_bytes:
                return JSONResponse({"error": f"the upload is larger than the limit of "
                                              f"{limits.max_upload_bytes:,} bytes"}, status_code=413)
            loop = asyncio.get_running_loop()
            try:
                image, note = await loop.run_in_executor(
                    pool, functools.partial(decode_image, data, limits, channels=predictor.in_channels))
            except BadImage as err:
                return JSONResponse({"error": err.message}, status_code=err.status)
            mask = await loop.run_in_executor(pool, lambda: predict_mask(predictor, image, window=limits.window))
            headers = {"X-Channels": note}
            if format == "json":
                return JSONResponse({**mask_summary(mask, predictor.classes, rle=rle), "channels": note},
                                    headers=headers)
            if format == "overlay":
                body = await loop.run_in_executor(pool, overlay_png, image, mask, predictor.num_classes)
            else:
                body = await loop.run_in_executor(pool, mask_png, mask, predictor.num_classes)
            with lock:
                state["served"] += 1
            return Response(body, media_type="image/png", headers=headers)
        finally:
            with lock:
                state["pending"] -= 1

    # the whole app behind the body limit (plus room for the multipart framing around the file)
    return BodyLimit(app, limits.max_upload_bytes + 64 * 1024, shown=limits.max_upload_bytes)


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
