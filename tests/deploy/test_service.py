"""The prediction service over real HTTP: a real server on 127.0.0.1, a free port, stopped by PID.

Every bad input of the issue is sent and answered with a 4xx JSON error while the server keeps
serving; a prediction equals in-process inference (EXIF-rotated and transparent uploads included);
50 concurrent requests with the default settings are all answered correctly; a full queue or a
passed queue deadline is 503 with Retry-After, a slow prediction 504, never a crash; /metrics is
valid Prometheus text; every answer carries an X-Request-ID. The OpenAPI schema is fuzzed by
schemathesis in test_schemathesis.py.

Nothing here depends on timing: the admission tests hold a prediction with a gate the test opens (the
service's app in uvicorn on a thread of the test process, the same app ``segcourse serve`` runs), so
"busy" is a state the test sets, not a race between threads and the machine's speed.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fastapi  # noqa: F401  (the server runs on it: a missing install fails here, by name, not in a subprocess)
import httpx  # pinned (requirements/course.txt): a broken install must fail, not skip
import numpy as np
import pytest
import torch
from PIL import Image

from segcourse.data.coco import rle_to_mask
from segcourse.deploy import export_onnx
from segcourse.deploy.load import ServiceProcess, free_port
from segcourse.deploy.service import Limits, Predictor, create_app, load_predictor, predict_mask
from segcourse.models.unet import unet
from segcourse.train import save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["ground", "building"]


def _free_port() -> int:
    return free_port()


def Server(model: Path, *options: str, log: Path) -> ServiceProcess:
    """``python -m segcourse serve`` on 127.0.0.1 and a free port; ``.stop()`` ends it by its PID."""
    return ServiceProcess(model, *options, log=log)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    net = unet(in_channels=3, num_classes=2, depth=3, base_channels=8).eval()
    with torch.no_grad():                                    # a bias that makes both classes appear
        x = torch.from_numpy(np.stack([_image(i, 64, 64) for i in range(4)])).permute(0, 3, 1, 2).float() / 255
        logits = net(x)
        net.head.bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    onnx = export_onnx(net, folder / "unet.onnx", metadata={"classes": '["ground", "building"]'})
    ckpt = save_checkpoint(folder / "unet.safetensors", net,
                           config={"model": "unet", "model_kwargs": {"depth": 3, "base_channels": 8},
                                   "classes": CLASSES})
    return {"onnx": onnx, "ckpt": ckpt, "folder": folder}


@pytest.fixture(scope="module")
def server(models):
    srv = Server(models["onnx"], "--max-upload-mb", "1", "--max-pixels", "1000000", "--workers", "2",
                 log=models["folder"] / "server.log")
    yield srv
    srv.stop()


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _image(seed: int, h: int = 70, w: int = 90) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _post(url: str, data: bytes, params: str = "", name: str = "x.png", client=None):
    return (client or httpx).post(f"{url}/predict{params}", files={"file": (name, data, "image/png")}, timeout=120)


def _bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A valid small PNG whose header declares ``width x height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)            # 8-bit grey
    idat = zlib.compress(b"\x00" * 1024, 9)                                  # a few rows of zeros
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_health_docs_and_schema(server):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["classes"] == CLASSES and health["runtime"] == "onnx"
    assert httpx.get(server.url + "/docs").status_code == 200
    schema = httpx.get(server.url + "/openapi.json").json()
    assert "/predict" in schema["paths"] and "/health" in schema["paths"]
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "<form" in page.text


def test_prediction_equals_in_process_inference(server, models):
    image = _image(1)
    reply = _post(server.url, _png(image))
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    served = np.asarray(Image.open(io.BytesIO(reply.content)))
    expected = predict_mask(load_predictor(models["onnx"]), image)
    assert served.shape == image.shape[:2] and np.array_equal(served, expected)
    assert 0 < expected.mean() < 1                                     # both classes present: a real comparison
    # the checkpoint route (PyTorch, weights only) gives the same mask
    assert np.array_equal(predict_mask(load_predictor(models["ckpt"]), image), expected)


def test_json_areas_and_rle(server):
    image = _image(2)
    mask = np.asarray(Image.open(io.BytesIO(_post(server.url, _png(image)).content)))
    summary = _post(server.url, _png(image), "?format=json&rle=true").json()
    assert (summary["width"], summary["height"]) == (90, 70)
    for entry in summary["classes"]:
        assert entry["pixels"] == int((mask == entry["id"]).sum())
        assert np.array_equal(rle_to_mask(entry["rle"]), mask == entry["id"])
    assert sum(e["pixels"] for e in summary["classes"]) == 70 * 90


def test_overlay_is_an_image_of_the_input_size(server):
    reply = _post(server.url, _png(_image(3, 40, 56)), "?format=overlay")
    assert reply.status_code == 200 and Image.open(io.BytesIO(reply.content)).size == (56, 40)


def _truncated_png() -> bytes:
    data = _png(_image(4, 64, 64))
    return data[: len(data) // 2]


def _encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _sixteen_bit_rgb(extension: str) -> bytes:
    """48-bit RGB (16 bits per channel), written by OpenCV: Pillow would silently keep the high byte."""
    import cv2

    rgb = (np.random.default_rng(0).random((12, 10, 3)) * 65535).astype(np.uint16)
    ok, encoded = cv2.imencode(extension, rgb)
    assert ok
    return encoded.tobytes()


BAD_INPUTS = {
    "not an image": (lambda: b"hello, this is text" * 10, 415),
    "wrong format (GIF)": (lambda: _encoded(_image(4, 16, 16), "GIF"), 415),
    "truncated image": (_truncated_png, 400),
    "empty file": (lambda: b"", 400),
    "decompression bomb (huge declared header)": (_bomb_png, 413),
    "16-bit grey": (lambda: _encoded(np.full((20, 20), 40000, dtype=np.uint16), "PNG"), 415),
    "16-bit RGB PNG": (lambda: _sixteen_bit_rgb(".png"), 415),
    "16-bit RGB TIFF": (lambda: _sixteen_bit_rgb(".tiff"), 415),
    "too many declared pixels for the limit": (lambda: _bomb_png(1200, 1000), 413),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_uploads_get_a_json_4xx_and_the_server_keeps_serving(server, models, case):
    make, status = BAD_INPUTS[case]
    reply = _post(server.url, make())
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert isinstance(body["error"], str) and body["error"]
    assert str(models["folder"]) not in reply.text and "Traceback" not in reply.text and "/work" not in reply.text
    assert server.alive() and httpx.get(server.url + "/health").status_code == 200


def test_a_huge_http_header_is_refused_and_the_server_keeps_serving(server):
    # uvicorn's HTTP parser caps a request head at 16 KiB (h11_max_incomplete_event_size): it answers 4xx or
    # closes the connection, before the app sees anything; either way nothing is buffered without bound
    try:
        status = httpx.get(server.url + "/health", headers={"X-Padding": "x" * 200_000}, timeout=30).status_code
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        status = "connection closed"
    assert status == "connection closed" or 400 <= status < 500, status
    assert server.alive() and httpx.get(server.url + "/health").status_code == 200


def test_missing_field_and_empty_body(server):
    empty = httpx.post(server.url + "/predict", timeout=30)
    assert empty.status_code == 422 and "file" in empty.json()["error"]
    wrong_field = httpx.post(server.url + "/predict", files={"image": ("x.png", _png(_image(5)), "image/png")})
    assert wrong_field.status_code == 422
    assert httpx.post(server.url + "/predict?format=svg", files={"file": ("x.png", _png(_image(5)))}).status_code == 422


def test_json_answers_are_counted_in_health_and_metrics_are_prometheus_text(server):
    from prometheus_client.parser import text_string_to_metric_families  # the reference parser

    before = httpx.get(server.url + "/health").json()
    assert _post(server.url, _png(_image(30)), "?format=json").status_code == 200
    assert _post(server.url, b"").status_code == 400
    after = httpx.get(server.url + "/health").json()
    assert after["served_by_format"]["json"] == before["served_by_format"]["json"] + 1
    assert after["served"] == before["served"] + 1 and after["bad_requests"] == before["bad_requests"] + 1
    reply = httpx.get(server.url + "/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    requests = {(s.labels["route"], s.labels["status"]): s.value for s in families["segcourse_requests"].samples}
    assert requests[("/predict", "200")] >= 1 and requests[("/predict", "400")] >= 1
    histogram = families["segcourse_request_duration_seconds"]
    assert histogram.type == "histogram"
    counts = {s.labels["route"]: s.value for s in histogram.samples if s.name.endswith("_count")}
    assert counts["/predict"] == sum(v for (route, _), v in requests.items() if route == "/predict")
    assert {s.labels["reason"] for s in families["segcourse_rejected"].samples} == {"queue_full", "deadline"}


def test_every_answer_carries_a_request_id_and_the_access_log_has_it(server, models):
    with httpx.Client(headers={"X-Request-ID": "client-42.a"}) as client:
        mine = _post(server.url, _png(_image(31)), client=client)
    assert mine.headers["x-request-id"] == "client-42.a"
    made = httpx.post(server.url + "/predict", files={"file": ("x.png", b"")}, headers={"X-Request-ID": "bad id\t!"})
    assert made.status_code == 400 and len(made.headers["x-request-id"]) == 32     # replaced by a fresh uuid4 hex
    big = httpx.post(server.url + "/predict", content=b"x" * (3 * 2**20), headers={"X-Request-ID": "too-big"})
    assert big.status_code == 413 and big.headers["x-request-id"] == "too-big"    # refused before the app: still
    log = (models["folder"] / "server.log").read_text()
    assert '"POST /predict" 200' in log and "id=client-42.a" in log and "id=too-big" in log


@pytest.mark.parametrize("method,path,allowed", [("PUT", "/predict", "POST"), ("DELETE", "/health", "GET"),
                                                 ("POST", "/metrics", "GET")])
def test_a_method_a_route_does_not_have_is_405_with_allow(server, method, path, allowed):
    reply = httpx.request(method, server.url + path)
    assert reply.status_code == 405 and allowed in reply.headers["allow"] and reply.json()["error"]


def test_uploads_over_the_size_limit_are_refused_before_being_read(server):
    big = os.urandom(3 * 2**20)                                            # 3 MiB > the 1 MiB limit
    declared = _post(server.url, big)
    assert declared.status_code == 413 and "limit" in declared.json()["error"]

    def chunks():                                                          # no Content-Length: chunked
        for _ in range(48):
            yield b"x" * 65536

    chunked = httpx.post(server.url + "/predict", content=chunks(),
                         headers={"content-type": "multipart/form-data; boundary=abc"}, timeout=60)
    assert chunked.status_code == 413
    assert server.alive() and httpx.get(server.url + "/health").status_code == 200


@pytest.mark.parametrize("mode,note", [("L", "grey -> RGB"), ("P", "palette -> RGB")])
def test_grey_and_palette_images_are_converted(server, models, mode, note):
    rgb = _image(6, 48, 40)
    pil = Image.fromarray(rgb).convert(mode)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    reply = _post(server.url, buffer.getvalue())
    assert reply.status_code == 200 and reply.headers["x-channels"] == note
    served = np.asarray(Image.open(io.BytesIO(reply.content)))
    expected = predict_mask(load_predictor(models["onnx"]), np.asarray(pil.convert("RGB")))
    assert np.array_equal(served, expected)


def test_rgba_is_composited_onto_white(server, models):
    rgb = _image(7, 48, 40)
    alpha = np.zeros((48, 40), dtype=np.uint8)
    alpha[:, 20:] = 255                                        # left half transparent, right half opaque
    reply = _post(server.url, _png(np.dstack([rgb, alpha])))
    assert reply.status_code == 200 and reply.headers["x-channels"] == "alpha composited on white"
    # the reference: alpha blending written out, a * rgb + (1 - a) * white, with a in {0, 1} here
    flat = np.where(alpha[..., None] == 255, rgb, 255).astype(np.uint8)
    expected = predict_mask(load_predictor(models["onnx"]), flat)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(reply.content))), expected)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_exif_rotated_photo_is_predicted_as_displayed(server, models, fmt):
    stored = _image(8, 30, 50)                                # as the camera stored it: 30 rows x 50 columns
    exif = Image.Exif()
    exif[0x0112] = 6                                          # EXIF orientation 6: display rotated 90 deg clockwise
    data = _encoded(stored, fmt, exif=exif, **({"lossless": True} if fmt == "WEBP" else {}))
    displayed = np.ascontiguousarray(np.rot90(stored, k=-1))  # what a viewer shows: 50 rows x 30 columns
    reply = _post(server.url, data)
    assert reply.status_code == 200 and "orientation 6" in reply.headers["x-channels"]
    served = np.asarray(Image.open(io.BytesIO(reply.content)))
    assert served.shape == (50, 30)
    assert np.array_equal(served, predict_mask(load_predictor(models["onnx"]), displayed))


def test_fifty_concurrent_requests_with_the_default_settings_are_all_answered_correctly(models):
    """The issue's burst: 50 small requests at once against `segcourse serve MODEL` with no option at all."""
    images = [_image(10 + i, 128, 160) for i in range(5)]
    predictor = load_predictor(models["onnx"])
    expected = [predict_mask(predictor, im) for im in images]
    payloads = [_png(im) for im in images]
    with ServiceProcess(models["onnx"], threads=None, log=models["folder"] / "default.log") as srv:
        health = httpx.get(srv.url + "/health").json()
        assert health["workers"] * health["threads"] <= (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                                         else os.cpu_count())
        with ThreadPoolExecutor(max_workers=50) as pool, httpx.Client(limits=httpx.Limits(max_connections=60)) as c:
            replies = list(pool.map(lambda i: (i % 5, _post(srv.url, payloads[i % 5], client=c)), range(50)))
        assert [r.status_code for _, r in replies] == [200] * 50
        for k, reply in replies:
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(reply.content))), expected[k])
        health = httpx.get(srv.url + "/health").json()
        assert (health["in_flight"], health["served"], health["rejected"]) == (0, 50, 0)


class _HeldModel:
    """The served model behind a gate the test opens: each call says it has started (``started``), then waits
    for ``release`` before predicting. While a call is held, the service is busy for as long as the test needs,
    whatever the machine's speed: no sleep, no timing."""

    def __init__(self, real) -> None:
        self.real, self.started, self.release = real, threading.Semaphore(0), threading.Event()

    def __call__(self, images):
        self.started.release()
        assert self.release.wait(timeout=120), "the test never released the held prediction"
        return self.real(images)


@contextlib.contextmanager
def _served_in_process(predictor, limits: Limits):
    """The service's app (the one `segcourse serve` runs) in uvicorn on a thread of this process, on a socket
    bound and listening before the server starts, so requests can be sent at once; stopped on leaving."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(create_app(predictor, limits), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "the in-process server did not stop"


def _held(models):
    real = load_predictor(models["onnx"])
    held = _HeldModel(real)
    return real, held, Predictor(held, num_classes=real.num_classes, in_channels=real.in_channels,
                                 classes=real.classes, kind=real.kind, name=real.name)


def test_a_burst_waits_in_the_queue_and_is_served(models):
    real, held, predictor = _held(models)
    image = _image(20, 64, 64)
    expected = predict_mask(real, image)
    with _served_in_process(predictor, Limits(workers=1, max_queue=8, queue_timeout=120)) as url, \
            ThreadPoolExecutor(max_workers=5) as pool, httpx.Client() as client:
        try:
            futures = [pool.submit(_post, url, _png(image))]
            assert held.started.acquire(timeout=120), "the first request never reached the model"
            futures += [pool.submit(_post, url, _png(image)) for _ in range(4)]
            for _ in range(600):                                # until the four are queued (each poll is a request)
                health = client.get(url + "/health").json()
                if health["queued"] == 4:
                    break
                time.sleep(0.05)
            assert (health["running"], health["queued"], health["in_flight"]) == (1, 4, 5)
        finally:
            held.release.set()
        replies = [f.result(timeout=120) for f in futures]
    assert [r.status_code for r in replies] == [200] * 5
    assert all(np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), expected) for r in replies)


@pytest.mark.parametrize("reason", ["queue_full", "deadline"])
def test_a_full_queue_or_a_passed_deadline_is_503_with_retry_after(models, reason):
    real, held, predictor = _held(models)
    image = _image(21, 64, 64)
    expected = predict_mask(real, image)
    limits = Limits(workers=1, max_queue=0) if reason == "queue_full" else \
        Limits(workers=1, max_queue=4, queue_timeout=0.2)
    with _served_in_process(predictor, limits) as url, ThreadPoolExecutor(max_workers=1) as pool, \
            httpx.Client() as client:
        try:
            first = pool.submit(_post, url, _png(image))
            assert held.started.acquire(timeout=120), "the first request never reached the model"
            # the only worker is held: the queue is full (0 places), or the wait passes its 0.2 s deadline
            busy = _post(url, _png(image), client=client)
            assert busy.status_code == 503, busy.text
            assert int(busy.headers["retry-after"]) >= 1 and "busy" in busy.json()["error"]
            health = client.get(url + "/health").json()           # answered while the prediction runs
            assert (health["running"], health["queued"], health["rejected"], health["served"]) == (1, 0, 1, 0)
            metrics = client.get(url + "/metrics").text
            assert f'segcourse_rejected_total{{reason="{reason}"}} 1' in metrics
        finally:
            held.release.set()
        reply = first.result(timeout=120)
        assert reply.status_code == 200
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(reply.content))), expected)
        # the rejection left nothing behind: the next request is served, the counters add up
        again = _post(url, _png(image), client=client)
        assert again.status_code == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(again.content))), expected)
        health = client.get(url + "/health").json()
        assert (health["in_flight"], health["rejected"], health["served"]) == (0, 1, 2)


def test_a_prediction_over_the_inference_timeout_is_504_and_its_worker_stays_counted(models):
    real, held, predictor = _held(models)
    image = _image(22, 64, 64)
    with _served_in_process(predictor, Limits(workers=1, max_queue=0, inference_timeout=0.2)) as url, \
            httpx.Client() as client:
        try:
            slow = _post(url, _png(image), client=client)      # held past 0.2 s
            assert slow.status_code == 504 and "limit of 0.2 s" in slow.json()["error"], slow.text
            health = client.get(url + "/health").json()
            assert (health["timeouts"], health["running"]) == (1, 1)       # the thread still computes
            assert _post(url, _png(image), client=client).status_code == 503  # so its worker is not free
        finally:
            held.release.set()
        for _ in range(600):                                   # the held computation ends: the worker is free again
            if client.get(url + "/health").json()["running"] == 0:
                break
            time.sleep(0.05)
        again = _post(url, _png(image), client=client)
        assert again.status_code == 200
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(again.content))), predict_mask(real, image))


class _Exploit:
    """Unpickling this runs ``Path.touch`` on a marker file: what a pickled 'model' can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_checkpoints_are_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pth"
    evil.write_bytes(pickle.dumps({"weight": _Exploit(marker)}, protocol=2))  # torch.load warns about others
    with pytest.raises(ValueError, match="weights_only"):
        load_predictor(evil)
    assert not marker.exists()
    # the command refuses it the same way, without a traceback
    run = subprocess.run([sys.executable, "-m", "segcourse", "serve", str(evil), "--port", str(_free_port())],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 2 and "Traceback" not in run.stderr and not marker.exists()
