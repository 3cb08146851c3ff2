"""Open lesson 07 in a real JupyterLab in headless Chromium, run every cell, drive a widget.

What this proves that nbval cannot: the explorers render as live widgets in the browser (no
"Error displaying widget"), and moving a slider round-trips to the kernel and changes the output.

Setup facts (see BROWSER_TESTING.md beside the repository): Debian's ``chromium`` driven by
Playwright over the DevTools protocol (no browser download), JupyterLab on 127.0.0.1 with a random
port and token and private config/data/runtime/workspace/settings directories, ``jupyter_lsp``
disabled, ``--LabApp.expose_app_in_browser`` to read the real kernel status. Everything this test
starts is stopped in the fixtures' teardown: the server through ``/api/shutdown`` then by PID, the
kernels and Chromium by PID (never by name).

Run with ``make test-browser`` (``pytest tests -m browser``); ``make test`` excludes it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "07_metrics.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000"]
KERNEL_NAME = "segcourse"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (Linux /proc), children first."""
    out: list[int] = []
    stack = [pid]
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


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _stop(proc: subprocess.Popen, extra_pids: list[int]) -> None:
    """Terminate ``proc`` (and the given PIDs), escalating to SIGKILL."""
    pids = _descendants(proc.pid) + extra_pids
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _kill(pids, signal.SIGTERM)
    time.sleep(0.3)
    _kill(pids)


@pytest.fixture
def sandbox(tmp_path):
    """Private HOME, Jupyter dirs and a copy of the lesson."""
    if not NOTEBOOK.exists():
        pytest.skip(f"{NOTEBOOK} is missing")
    dirs = {name: tmp_path / name for name in ("home", "config", "data", "runtime", "workspaces", "settings", "work")}
    for d in dirs.values():
        d.mkdir()
    shutil.copy(NOTEBOOK, dirs["work"] / NOTEBOOK.name)
    (dirs["config"] / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}}}))
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notify = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return dirs


@pytest.fixture
def jupyter_server(sandbox):
    """JupyterLab from this virtual environment on 127.0.0.1; always shut down afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "HOME": str(sandbox["home"]), "JUPYTER_CONFIG_DIR": str(sandbox["config"]),
           "JUPYTER_DATA_DIR": str(sandbox["data"]), "JUPYTER_RUNTIME_DIR": str(sandbox["runtime"]),
           "SEGCOURSE_MODE": "smoke", "PYTHONUNBUFFERED": "1"}
    env.pop("MPLBACKEND", None)  # the browser shows inline figures
    log = open(sandbox["home"] / "jupyter.log", "w")  # noqa: SIM115 - closed in teardown
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={sandbox['work']}", f"--LabApp.workspaces_dir={sandbox['workspaces']}",
           f"--LabApp.user_settings_dir={sandbox['settings']}", "--LabApp.expose_app_in_browser=True",
           f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    kernel_pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}; log:\n"
                                   f"{(sandbox['home'] / 'jupyter.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("jupyter lab did not answer within 30 s")
            time.sleep(0.2)
        yield {"base": base, "token": token, "proc": proc, "log": sandbox["home"] / "jupyter.log"}
    finally:
        kernel_pids = _descendants(proc.pid)  # the kernels run in their own sessions: remember them now
        try:
            req = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=5).close()
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001, S110 - fall through to killing by PID
            pass
        _stop(proc, kernel_pids)
        log.close()


@pytest.fixture
def chromium(sandbox):
    """Debian's Chromium with a DevTools port, started by us so that we own (and kill) its PID."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium chromium-driver)")
    pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    profile = sandbox["home"] / "chromium-profile"
    env = {**os.environ, "HOME": str(sandbox["home"])}
    proc = subprocess.Popen([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        endpoint = None
        deadline = time.monotonic() + 20
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                endpoint = match.group(1)
        if endpoint is None:
            raise RuntimeError("chromium did not print its DevTools endpoint")
        yield endpoint
    finally:
        _stop(proc, [])


_KERNEL_STATE = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  const ctx = w && w.sessionContext;
  const k = ctx && ctx.session && ctx.session.kernel;
  return k ? k.name + "|" + k.status : null;
}"""

_CELL_STATE = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  let code = 0, done = 0, errors = [];
  nb.widgets.forEach((cell, i) => {
    if (cell.model.type !== "code") return;
    code += 1;
    if (cell.model.executionCount !== null) done += 1;
    const outs = cell.model.outputs.toJSON();
    for (const o of outs) if (o.output_type === "error") errors.push(i + ": " + o.ename + ": " + o.evalue);
  });
  const busy = document.querySelectorAll(".jp-InputPrompt").length
    && [...document.querySelectorAll(".jp-InputPrompt")].some(p => p.textContent.includes("*"));
  return {code, done, errors, busy};
}"""


# Layout of every explorer as the browser drew it: descriptions cut off ("drop smal..."), pictures
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


def _wait(page, script: str, ok, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if ok(value):
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last state: {value!r}")


def test_lesson07_runs_and_widgets_respond(chromium, jupyter_server, tmp_path):
    from playwright.sync_api import sync_playwright

    start = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(chromium)
        try:
            context = browser.contexts[0] if browser.contexts else browser.new_context()
            page = context.new_page()
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.goto(f"{jupyter_server['base']}/lab/tree/{NOTEBOOK.name}?token={jupyter_server['token']}",
                      wait_until="domcontentloaded", timeout=60_000)
            # Wait for the real kernel (the toolbar shows "idle" even while it is still "No Kernel").
            state = _wait(page, _KERNEL_STATE, lambda v: bool(v) and v.endswith("|idle"), 60, "the kernel")
            assert state.startswith(KERNEL_NAME + "|"), f"the notebook got kernel {state!r}, expected {KERNEL_NAME}"

            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            cells = _wait(page, _CELL_STATE,
                          lambda v: v["errors"] or (v["code"] > 0 and v["done"] == v["code"] and not v["busy"]),
                          120, "every cell to run")
            assert not cells["errors"], f"cells raised errors: {cells['errors']}"
            _wait(page, _KERNEL_STATE, lambda v: bool(v) and v.endswith("|idle"), 30, "the kernel to go idle")

            # Every explorer rendered as a live widget.
            page.wait_for_selector(".widget-slider .noUi-handle", timeout=20_000)
            assert page.get_by_text("Error displaying widget").count() == 0, "a widget failed to render"
            sliders = page.locator(".widget-slider")
            assert sliders.count() >= 6, f"expected the sliders of four explorers, found {sliders.count()}"
            assert page.locator("img.widget-image").count() >= 4, "expected one figure per explorer"
            stderr_tracebacks = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]', has_text="Traceback")
            assert stderr_tracebacks.count() == 0

            # Move the threshold slider and watch the numbers change (a kernel round trip).
            slider = page.locator(".widget-slider", has_text="threshold").first
            explorer = page.locator(".widget-vbox", has=slider).last
            summary = explorer.locator(".widget-html").first
            readout = slider.locator(".widget-readout")
            before_text, before_value = summary.inner_text(), readout.inner_text()
            handle = slider.locator(".noUi-handle")
            handle.focus()
            for _ in range(5):
                handle.press("ArrowRight")
            deadline = time.monotonic() + 20
            while summary.inner_text() == before_text and time.monotonic() < deadline:
                time.sleep(0.2)
            after_value = readout.inner_text()
            assert after_value != before_value, f"the slider did not move (readout {before_value!r})"
            assert summary.inner_text() != before_text, "moving the slider did not change the explorer's numbers"

            _wait(page, _KERNEL_STATE, lambda v: bool(v) and v.endswith("|idle"), 30, "the kernel to go idle")
            layout = page.evaluate(_LAYOUT)
            print("explorer layout:", layout)
            assert layout["explorers"] >= 4, f"expected four explorers, found {layout['explorers']}"
            assert not layout["cut"], f"control descriptions cut off in the browser: {layout['cut']}"
            stretched = [im for im in layout["images"] if abs(im["shown"] / im["natural"] - 1) > 0.02]
            assert not stretched, f"explorer figures drawn at another aspect ratio than their PNG: {stretched}"
            # One picture per explorer (look at them: tmp_path, or SEGCOURSE_BROWSER_SHOTS=<folder> to keep them).
            shots = Path(os.environ.get("SEGCOURSE_BROWSER_SHOTS") or tmp_path)
            shots.mkdir(parents=True, exist_ok=True)
            boxes = page.locator(".jp-OutputArea-output > .widget-vbox:has(img.widget-image)")
            for i in range(boxes.count()):
                boxes.nth(i).scroll_into_view_if_needed()
                boxes.nth(i).screenshot(path=str(shots / f"lesson07_explorer{i}.png"))
            # Grow the viewport to the whole notebook (JupyterLab scrolls inside a fixed-height panel).
            height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
                '.jp-WindowedPanel-inner, .jp-WindowedPanel-outer, .jp-Notebook')].map(e => e.scrollHeight))""")
            page.set_viewport_size({"width": 1400, "height": min(max(int(height) + 200, 1000), 16000)})
            page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach(e => e.scrollTop = 0)")
            page.screenshot(path=str(shots / "lesson07.png"), full_page=True)
            assert (shots / "lesson07.png").stat().st_size > 10_000
        finally:
            browser.close()
    elapsed = time.monotonic() - start
    print(f"lesson 07 in the browser: {elapsed:.1f} s")
