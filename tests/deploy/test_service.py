"""The prediction service over real HTTP: a real server on 127.0.0.1, a free port, stopped by PID.

Every bad input of the issue is sent and answered with a 4xx JSON error while the server keeps
serving; a prediction equals in-process inference; 50 concurrent requests are all answered
correctly; beyond capacity the answer is 503, never a crash.

Nothing here depends on timing: the capacity test holds a prediction with a gate the test opens (the
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
    srv = Server(models["onnx"], "--max-upload-mb", "1", "--max-pixels", "1000000", "--max-pending", "64",
                 "--workers", "2", log=models["folder"] / "server.log")
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


BAD_INPUTS = {
    "not an image": (b"hello, this is text" * 10, 400),
    "truncated image": (_truncated_png(), 400),
    "empty file": (b"", 400),
    "decompression bomb": (_bomb_png(), 413),
    "16-bit grey": (None, 415),
    "too many declared pixels for the limit": (_bomb_png(1200, 1000), 413),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_uploads_get_a_json_4xx_and_the_server_keeps_serving(server, models, case):
    data, status = BAD_INPUTS[case]
    if case == "16-bit grey":
        buffer = io.BytesIO()
        Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)).save(buffer, format="PNG")
        data = buffer.getvalue()
    reply = _post(server.url, data)
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert isinstance(body["error"], str) and body["error"]
    assert str(models["folder"]) not in reply.text and "Traceback" not in reply.text and "/work" not in reply.text
    assert server.alive() and httpx.get(server.url + "/health").status_code == 200


def test_missing_field_and_empty_body(server):
    empty = httpx.post(server.url + "/predict", timeout=30)
    assert empty.status_code == 422 and "file" in empty.json()["error"]
    wrong_field = httpx.post(server.url + "/predict", files={"image": ("x.png", _png(_image(5)), "image/png")})
    assert wrong_field.status_code == 422
    assert httpx.post(server.url + "/predict?format=svg", files={"file": ("x.png", _png(_image(5)))}).status_code == 422


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


@pytest.mark.parametrize("mode,note", [("L", "grey -> RGB"), ("RGBA", "alpha dropped"), ("P", "palette -> RGB")])
def test_grey_rgba_and_palette_images_are_converted(server, models, mode, note):
    rgb = _image(6, 48, 40)
    pil = Image.fromarray(rgb).convert(mode)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    reply = _post(server.url, buffer.getvalue())
    assert reply.status_code == 200 and reply.headers["x-channels"] == note
    served = np.asarray(Image.open(io.BytesIO(reply.content)))
    expected = predict_mask(load_predictor(models["onnx"]), np.asarray(pil.convert("RGB")))
    assert np.array_equal(served, expected)


def test_fifty_concurrent_requests_are_all_answered_correctly(server, models):
    images = [_image(10 + i, 128, 160) for i in range(5)]
    predictor = load_predictor(models["onnx"])
    expected = [predict_mask(predictor, im) for im in images]
    payloads = [_png(im) for im in images]
    # 50 requests at once, under the server's capacity (--max-pending 64): every one is answered, none with 503
    with ThreadPoolExecutor(max_workers=50) as pool, httpx.Client(limits=httpx.Limits(max_connections=60)) as c:
        replies = list(pool.map(lambda i: (i % 5, _post(server.url, payloads[i % 5], client=c)), range(50)))
    assert [r.status_code for _, r in replies] == [200] * 50
    for k, reply in replies:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(reply.content))), expected[k])
    assert httpx.get(server.url + "/health").json()["in_flight"] == 0


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


def test_beyond_capacity_the_answer_is_503_health_answers_and_the_service_goes_on(models):
    real = load_predictor(models["onnx"])
    held = _HeldModel(real)
    predictor = Predictor(held, num_classes=real.num_classes, in_channels=real.in_channels, classes=real.classes,
                          kind=real.kind, name=real.name)
    image = _image(20, 64, 64)
    expected = predict_mask(real, image)
    with _served_in_process(predictor, Limits(max_pending=1, workers=1)) as url, \
            ThreadPoolExecutor(max_workers=1) as pool, httpx.Client() as client:
        try:
            first = pool.submit(_post, url, _png(image))
            assert held.started.acquire(timeout=120), "the first request never reached the model"
            # the first request is being predicted (held): the capacity of 1 is used up
            busy = _post(url, _png(image), client=client)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1", busy.text
            assert "capacity" in busy.json()["error"]
            health = client.get(url + "/health").json()           # answered while the prediction runs
            assert (health["in_flight"], health["capacity"], health["rejected"], health["served"]) == (1, 1, 1, 0)
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
