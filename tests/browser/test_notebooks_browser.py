"""Every notebook in ``notebooks/`` and ``solutions/`` run in a real JupyterLab in headless Chromium.

What this proves that nbval cannot: the notebook runs in the browser a learner uses, every widget
renders as a live view (no "Error displaying widget", none left empty), and moving a lesson's first
slider round-trips to the kernel and changes what the explorer shows (lesson 12: a click on its click
widget changes the mask). Cells run in smoke mode.

Each pytest worker (``make test-browser`` runs two) starts one JupyterLab and one Chromium for all its
notebooks (``_jupyterlab.py``, ``_chromium.py``) and shuts each notebook's kernel down after it; the
notebooks are copies in the server's private folder, so checkpoints they write land there.
Set ``SEGCOURSE_BROWSER_SHOTS=<folder>`` to keep a picture of every notebook.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

from coursetools.site import WIDGET_MIME

from ._chromium import launch_chromium, playwright
from ._jupyterlab import jupyterlab, move_first_slider, run_notebook, screenshot_notebook

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = [(folder, path.name) for folder in ("solutions", "notebooks")
             for path in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))]


def _has_slider(name: str) -> bool:
    """Whether the lesson shows a slider: its solution's stored outputs hold a widget with one."""
    path = ROOT / "solutions" / name
    if not path.is_file():
        return False
    nb = nbformat.read(path, as_version=4)
    return any("Slider(" in "".join(o.get("data", {}).get("text/plain", "")) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []) if WIDGET_MIME in o.get("data", {}))


@pytest.fixture(scope="session")
def lab_browser(tmp_path_factory):
    """One JupyterLab and one Chromium (over Playwright) per pytest worker; both stopped by PID afterwards."""
    sandbox = tmp_path_factory.mktemp("lab")
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one kernel per core
    with launch_chromium(sandbox / "chromium-home") as endpoint, jupyterlab(sandbox / "server", env=threads) as lab:
        browser = playwright().chromium.connect_over_cdp(endpoint)
        try:
            yield lab, browser
        finally:
            browser.close()


# The explorers of lesson 07 as the browser drew them: descriptions cut off ("drop smal..."), pictures
# drawn at another aspect ratio than their PNG (a flex row stretches them to a tall table beside).
_LAYOUT = """() => {
  const boxes = [...document.querySelectorAll('.widget-vbox')].filter(
    b => b.querySelector('img.widget-image') && !b.parentElement.closest('.widget-vbox'));
  const cut = [...document.querySelectorAll('.widget-slider .widget-label, .widget-dropdown .widget-label')]
    .filter(l => l.scrollWidth > l.clientWidth + 1).map(l => l.textContent);
  const images = [...document.querySelectorAll('img.widget-image')].filter(i => i.naturalWidth > 0).map(i => ({
    natural: i.naturalWidth / i.naturalHeight, shown: i.clientWidth / Math.max(i.clientHeight, 1)}));
  return {explorers: boxes.length, cut, images};
}"""


def _lesson07_layout(page) -> None:
    layout = page.evaluate(_LAYOUT)
    assert layout["explorers"] >= 4, f"expected lesson 07's four explorers, found {layout['explorers']}"
    assert page.locator(".widget-slider").count() >= 6, "expected the sliders of lesson 07's explorers"
    assert not layout["cut"], f"control descriptions cut off in the browser: {layout['cut']}"
    stretched = [im for im in layout["images"] if abs(im["shown"] / im["natural"] - 1) > 0.02]
    assert not stretched, f"explorer figures drawn at another aspect ratio than their PNG: {stretched}"


# Lesson 12's click widget: a grid of buttons over the image; a click must reach the kernel, run the decoder on the
# cached embedding and change the masks picture and the numbers (not the encoder count).
_CLICK_STATE = """() => {
  const grid = document.querySelector('.widget-gridbox');
  if (!grid) return null;
  const box = grid.closest('.widget-vbox');
  const img = box.querySelector('img.widget-image');
  const html = box.querySelector('.widget-html');
  return {buttons: grid.querySelectorAll('button').length, src: img ? img.src : '', text: html ? html.textContent : ''};
}"""


def _lesson12_click(page, timeout: float = 60) -> None:
    before = page.evaluate(_CLICK_STATE)
    assert before is not None, "lesson 12 shows no click grid"
    assert before["buttons"] >= 16 * 16, f"expected a 16 x 16 grid of click buttons, found {before['buttons']}"
    button = page.locator(".widget-gridbox button").nth(8 * 16 + 8)
    button.scroll_into_view_if_needed()
    button.click()
    deadline = time.monotonic() + timeout
    after = page.evaluate(_CLICK_STATE)
    while after["src"] == before["src"] and time.monotonic() < deadline:
        time.sleep(0.25)
        after = page.evaluate(_CLICK_STATE)
    assert after["src"] != before["src"], "a click on the grid did not change the masks picture"
    assert "clicks1" in after["text"].replace(" ", "") and "encodercalls1" in after["text"].replace(" ", ""), (
        f"after one click the widget should show 1 click and 1 encoder call, it shows {after['text']!r}")


EXTRA_CHECKS = {"07": _lesson07_layout, "12": _lesson12_click}


@pytest.mark.parametrize(("folder", "name"), NOTEBOOKS, ids=[f"{f}/{n}" for f, n in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(lab_browser, folder, name):
    lab, browser = lab_browser
    relpath = lab.add(ROOT / folder / name, folder)
    context = browser.contexts[0] if browser.contexts else browser.new_context()
    page = context.new_page()
    page.set_viewport_size({"width": 1400, "height": 1000})
    start = time.monotonic()
    try:
        result = run_notebook(page, lab, relpath)
        cells, dom = result["cells"], result["dom"]
        assert result["kernel"].startswith("segcourse|"), f"{relpath} got kernel {result['kernel']!r}, expected segcourse"
        assert not cells["errors"], f"{relpath}: cells raised errors (notebook model): {cells['errors']}"
        assert cells["done"] == cells["code"], f"{relpath}: {cells['code'] - cells['done']} code cells did not run"
        assert not dom["tracebacks"], f"{relpath}: tracebacks in the page: {dom['tracebacks']}"
        assert not dom["failed"] and not dom["errorText"], f"{relpath}: widgets failed to render: {dom['failed']}"
        assert not dom["loading"], f"{relpath}: widget outputs never rendered (stuck loading): {dom['loading']}"
        assert dom["rendered"] + dom["closed"] == dom["widgets"]
        slider = move_first_slider(page)
        if _has_slider(name):
            assert slider is not None, f"{relpath}: its explorers have sliders, but the page shows none"
        if slider is not None:
            assert slider["after"] != slider["before"], f"{relpath}: the slider {slider['label']!r} did not move"
            assert slider["changed"], (f"{relpath}: moving the slider {slider['label']!r} from {slider['before']} to "
                                       f"{slider['after']} did not change its output")
        if name[:2] in EXTRA_CHECKS:
            EXTRA_CHECKS[name[:2]](page)
        shots = os.environ.get("SEGCOURSE_BROWSER_SHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            screenshot_notebook(page, Path(shots) / f"{folder}_{Path(name).stem}.png")
        print(f"{relpath}: {cells['code']} code cells, {dom['widgets']} widgets, "
              f"slider {slider['label'] + ' moved' if slider else 'none'}; {time.monotonic() - start:.1f} s")
    finally:
        page.close()
        lab.shutdown_kernels()
