"""Start the prediction service in a subprocess and measure it under concurrent clients.

Used by the lesson (the server started from the notebook and stopped by its PID, its pages
photographed in headless Chromium when one is installed) and by ``benchmarks/deploy.py``.
Loopback only; every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """``python -m segcourse serve MODEL`` on 127.0.0.1 and a free port, in a subprocess.

    Use as a context manager; :meth:`stop` terminates it by its PID (then kills it if it lingers).
    ``threads``: intra-op threads per prediction (``None``: the service's default); ``log``: a file
    for the server's output (its access log: one line per request, with the request id).

    Example::

        with ServiceProcess("unet.onnx") as service:
            httpx.get(service.url + "/health").json()
    """

    def __init__(self, model: str | os.PathLike, *options: str, threads: int | None = 1, timeout: float = 90,
                 log: str | os.PathLike | None = None) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env, thread_option = dict(os.environ), []
        if threads is not None:               # None: the service's own default (workers x threads <= cores)
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            thread_option = ["--threads", str(threads)]
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "segcourse", "serve", str(model), "--host", "127.0.0.1",
                                      "--port", str(self.port), *thread_option, *options],
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with code {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the service did not answer /health within {timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def load_test(url: str, payload: bytes, *, clients: int, requests: int, params: str = "") -> dict:
    """Send ``requests`` uploads of ``payload`` from ``clients`` concurrent clients.

    Returns:
        ``{"clients", "requests", "ok", "busy" (503s), "other", "rps", "p50_ms", "p95_ms", "retry_after"}``;
        the latencies are of the successful requests, ``rps`` counts them over the wall time,
        ``retry_after`` lists the distinct ``Retry-After`` values of the 503 answers.
    """
    import httpx

    def one(client):
        start = time.perf_counter()
        reply = client.post(f"{url}/predict{params}", files={"file": ("x.png", payload, "image/png")}, timeout=300)
        return reply.status_code, time.perf_counter() - start, reply.headers.get("retry-after")

    with httpx.Client(limits=httpx.Limits(max_connections=clients + 4)) as client, \
            ThreadPoolExecutor(max_workers=clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda _: one(client), range(requests)))
        wall = time.perf_counter() - start
    ok = sorted(t for code, t, _ in results if code == 200)
    p95 = ok[min(len(ok) - 1, round(0.95 * (len(ok) - 1)))] if ok else float("nan")
    return {"clients": clients, "requests": requests, "ok": len(ok),
            "busy": sum(code == 503 for code, _, _ in results),
            "other": sum(code not in (200, 503) for code, _, _ in results),
            "rps": len(ok) / wall, "p50_ms": statistics.median(ok) * 1e3 if ok else float("nan"),
            "p95_ms": p95 * 1e3,
            "retry_after": sorted({int(r) for code, _, r in results if code == 503 and r is not None})}


#: Chromium flags for a quiet headless run on a closed network (no background connections, no GPU)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def screenshot_pages(url: str, upload: bytes | None = None, *, paths=("/", "/docs"), width: int = 1100,
                     height: int = 760, timeout: float = 60) -> dict | None:
    """Screenshots of the service's pages in headless Chromium, or ``None`` where no browser is installed.

    On ``/`` with ``upload`` (image bytes) the demo page's form is used: the image is uploaded and the
    overlay awaited before the screenshot. The browser is the system's Chromium (``chromium`` on the
    PATH) or Playwright's own, run with :data:`CHROMIUM_FLAGS`, a private profile and ``HOME``, in a
    thread of its own (Playwright's synchronous API refuses to run inside Jupyter's event loop).

    Returns:
        ``{path: (H, W, 3) uint8}`` or ``None`` (no Playwright, or no browser it can start).
    """
    import shutil
    import tempfile

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                       if shutil.which(n)), None)

    def run(folder: str) -> dict | None:
        import io

        import numpy as np
        from PIL import Image

        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS),
                                             env={**os.environ, "HOME": folder}, timeout=timeout * 1000)
            except Exception:  # noqa: BLE001 - no browser Playwright can start: the caller says so
                return None
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                shots = {}
                for path in paths:
                    page.goto(url + path, timeout=timeout * 1000)
                    if path == "/" and upload is not None:
                        image = Path(folder) / "upload.png"
                        image.write_bytes(upload)
                        page.set_input_files("#file", str(image))
                        page.click("#send")
                        page.wait_for_function("document.getElementById('status').textContent === 'done'",
                                               timeout=timeout * 1000)
                    else:
                        page.wait_for_load_state("networkidle", timeout=timeout * 1000)
                    shots[path] = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
                return shots
            finally:
                browser.close()

    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run, folder).result(timeout=4 * timeout)


def png_bytes(image) -> bytes:
    """``(H, W, 3)`` uint8 -> PNG bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = ["ServiceProcess", "free_port", "load_test", "png_bytes", "screenshot_pages"]
