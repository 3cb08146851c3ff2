"""The course site in headless Chromium: the pages a reader opens, offline.

The site is built from the solutions into a temporary folder (``coursetools.site.build``), served
by ``python -m http.server`` on 127.0.0.1 and a free port (stopped by its PID), and opened with the
shared Chromium launcher. Checked: the front page lists every lesson, every lesson page loads with
each image decoded (natural width > 0) and its math typeset by the site's own MathJax, a search for
"RoIAlign" finds lesson 08, and no page logs a console error or fails a request.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from coursetools.site import build, lesson_paths

from ._chromium import free_port, launch_chromium, playwright, stop_process

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
LESSONS = [p.stem for p in lesson_paths(ROOT / "solutions")]


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    result = build(out)
    print(f"site built in {result['seconds']:.1f} s, {result['bytes'] / 1e6:.1f} MB")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/index.html", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the site server did not start (exit code {proc.poll()})") from None
                time.sleep(0.2)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def page(site_url, tmp_path_factory):
    with launch_chromium(tmp_path_factory.mktemp("chromium")) as endpoint:
        browser = playwright().chromium.connect_over_cdp(endpoint)
        try:
            page = browser.contexts[0].new_page()
            page.set_viewport_size({"width": 1300, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.problems = problems
            yield page
        finally:
            browser.close()


def _visit(page, url: str) -> None:
    page.problems.clear()
    page.goto(url, wait_until="load", timeout=60_000)


def test_front_page_lists_every_lesson(page, site_url):
    _visit(page, f"{site_url}/index.html")
    hrefs = page.eval_on_selector_all("article a[href]", "links => links.map(a => a.getAttribute('href'))")
    missing = [stem for stem in LESSONS if f"lessons/{stem}.html" not in hrefs]
    assert not missing, f"the front page's course map does not link lessons {missing}; links: {hrefs}"
    assert page.locator("article table tbody tr").count() == len(LESSONS)
    assert not page.problems, page.problems


@pytest.mark.parametrize("stem", LESSONS)
def test_lesson_page_loads_with_its_images_and_math(page, site_url, stem):
    _visit(page, f"{site_url}/lessons/{stem}.html")
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    images = page.evaluate("() => [...document.querySelectorAll('article img')].map(i => [i.src, i.naturalWidth])")
    nb = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", as_version=4)
    figures = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert len(images) >= figures, f"{stem}: {figures} figures in the notebook, {len(images)} images on the page"
    broken = [src for src, width in images if width == 0]
    assert not broken, f"{stem}: images not decoded: {broken}"
    if page.locator("article .math").count():
        page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=30_000)
    downloads = page.eval_on_selector_all("a.download", "links => links.map(a => a.getAttribute('href'))")
    assert len(downloads) == 2 and all(h.endswith(f"/{stem}.ipynb") for h in downloads), downloads
    assert not page.problems, f"{stem}: {page.problems}"


def test_search_finds_roialign_in_lesson_08(page, site_url):
    lesson08 = next(stem for stem in LESSONS if stem.startswith("08_"))
    _visit(page, f"{site_url}/search.html?q=RoIAlign")
    page.wait_for_selector("#search-results ul.search li a", timeout=30_000)
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.getAttribute('href'))")
    assert any(f"lessons/{lesson08}.html" in h for h in hrefs), f"searching RoIAlign did not find {lesson08}: {hrefs}"
    assert not page.problems, page.problems
