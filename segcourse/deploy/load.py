"""Start the prediction service in a subprocess and measure it under concurrent clients.

Used by the lesson (the server started from the notebook and stopped by its PID) and by
``benchmarks/deploy.py``. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


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
        ``{"clients", "requests", "ok", "busy" (503s), "other", "rps", "p50_ms", "p95_ms"}``; the
        latencies are of the successful requests, ``rps`` counts them over the wall time.
    """
    import httpx

    def one(client):
        start = time.perf_counter()
        reply = client.post(f"{url}/predict{params}", files={"file": ("x.png", payload, "image/png")}, timeout=300)
        return reply.status_code, time.perf_counter() - start

    with httpx.Client(limits=httpx.Limits(max_connections=clients + 4)) as client, \
            ThreadPoolExecutor(max_workers=clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda _: one(client), range(requests)))
        wall = time.perf_counter() - start
    ok = sorted(t for code, t in results if code == 200)
    p95 = ok[min(len(ok) - 1, round(0.95 * (len(ok) - 1)))] if ok else float("nan")
    return {"clients": clients, "requests": requests, "ok": len(ok),
            "busy": sum(code == 503 for code, _ in results),
            "other": sum(code not in (200, 503) for code, _ in results),
            "rps": len(ok) / wall, "p50_ms": statistics.median(ok) * 1e3 if ok else float("nan"),
            "p95_ms": p95 * 1e3}


def png_bytes(image) -> bytes:
    """``(H, W, 3)`` uint8 -> PNG bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = ["ServiceProcess", "free_port", "load_test", "png_bytes"]
