"""The service's demo page in headless Chromium: upload an image, the overlay appears.

Chromium is Debian's (``/usr/bin/chromium``), started by the shared launcher
(``tests/browser/_chromium.py``) with a DevTools port and a private profile and HOME, driven by
Playwright over CDP, and stopped by its PID; the service is a
real ``python -m segcourse serve`` on 127.0.0.1 and a free port, stopped by its PID (see
BROWSER_TESTING.md beside the repository). Run with ``make test-browser``; ``make test`` skips it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from segcourse.deploy import export_onnx
from segcourse.models.unet import unet

from ..browser._chromium import launch_chromium, playwright
from .test_service import Server

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium(tmp_path):
    """Headless Chromium (the shared launcher in tests/browser/_chromium.py): its DevTools endpoint."""
    with launch_chromium(tmp_path / "home") as endpoint:
        yield endpoint


def test_demo_page_uploads_an_image_and_shows_the_overlay(chromium, tmp_path):
    torch.manual_seed(0)
    model = export_onnx(unet(in_channels=3, num_classes=2, depth=3, base_channels=8), tmp_path / "unet.onnx")
    picture = tmp_path / "tile.png"
    Image.fromarray((np.random.default_rng(0).random((60, 84, 3)) * 255).astype(np.uint8)).save(picture)
    server = Server(model, log=tmp_path / "server.log")
    try:
        browser = playwright().chromium.connect_over_cdp(chromium)
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
    assert "415" in message and "not an image" in message


def test_the_lessons_screenshots_show_the_demo_after_an_upload_and_the_docs(tmp_path):
    """`screenshot_pages` (lesson 10 shows its result): the demo page with the overlay, and /docs, which lists the
    operations and their answers even offline (the Swagger UI comes from a CDN, unreachable here)."""
    from segcourse.deploy.load import png_bytes, screenshot_pages

    torch.manual_seed(0)
    model = export_onnx(unet(in_channels=3, num_classes=2, depth=3, base_channels=8), tmp_path / "unet.onnx")
    tile = (np.random.default_rng(1).random((60, 84, 3)) * 255).astype(np.uint8)
    server = Server(model, log=tmp_path / "server.log")
    try:
        shots = screenshot_pages(server.url, png_bytes(tile), width=900, height=600)
    finally:
        server.stop()
    assert shots is not None, "Chromium is installed for the browser tests, so the screenshots must be taken"
    assert set(shots) == {"/", "/docs"}
    for shot in shots.values():
        assert shot.shape == (600, 900, 3) and shot.std() > 10          # something drawn, not a blank page
    log = (tmp_path / "server.log").read_text()
    assert '"POST /predict?format=overlay' not in log and '"POST /predict" 200' in log   # the form was used
    assert '"GET /openapi.json" 200' in log                              # the docs page read the schema
