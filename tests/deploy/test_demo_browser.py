"""The service's demo page in headless Chromium: upload an image, the overlay appears.

Chromium is Debian's (``/usr/bin/chromium``), started by this test with a DevTools port and a
private profile and HOME, driven by Playwright over CDP, and stopped by its PID; the service is a
real ``python -m segcourse serve`` on 127.0.0.1 and a free port, stopped by its PID (see
BROWSER_TESTING.md beside the repository). Run with ``make test-browser``; ``make test`` skips it.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segcourse.deploy import export_onnx
from segcourse.models.unet import unet

from .test_service import Server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,900"]


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        parent = stack.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                out.append(child)
                stack.append(child)
    return out


@pytest.fixture
def chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.Popen([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={home / 'profile'}",
                             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
                            env={**os.environ, "HOME": str(home)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        endpoint, deadline = None, time.monotonic() + 30
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = match.group(1) if match else None
        if endpoint is None:
            raise RuntimeError("chromium did not print its DevTools endpoint")
        yield endpoint
    finally:
        pids = _descendants(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_demo_page_uploads_an_image_and_shows_the_overlay(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    torch.manual_seed(0)
    model = export_onnx(unet(in_channels=3, num_classes=2, depth=3, base_channels=8), tmp_path / "unet.onnx")
    picture = tmp_path / "tile.png"
    Image.fromarray((np.random.default_rng(0).random((60, 84, 3)) * 255).astype(np.uint8)).save(picture)
    server = Server(model, log=tmp_path / "server.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(chromium)
            page = browser.contexts[0].new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.set_input_files("#file", str(picture))
            page.click("#send")
            page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
            size = page.evaluate("() => { const i = document.getElementById('overlay');"
                                 " return [i.naturalWidth, i.naturalHeight, i.hidden]; }")
            areas = page.inner_text("#areas")
            shot = page.screenshot()
            # a bad upload shows the service's error message, and the page keeps working
            bad = tmp_path / "notes.png"
            bad.write_bytes(b"not an image at all")
            page.set_input_files("#file", str(bad))
            page.click("#send")
            page.wait_for_function("document.getElementById('status').className === 'error'", timeout=60_000)
            message = page.inner_text("#status")
            browser.close()
    finally:
        server.stop()
    assert size == [84, 60, False]
    assert "pixels" in areas and not errors
    assert Image.open(io.BytesIO(shot)).size[0] > 0
    assert "400" in message and "not an image" in message
