"""A private JupyterLab for the browser tests, and the driver that runs a notebook in it.

Setup facts (BROWSER_TESTING.md beside the repository): JupyterLab from this virtual environment on
127.0.0.1 with a random free port and a random token, its own HOME and config, data, runtime,
workspace and settings directories, ``jupyter_lsp`` disabled (it runs ``npm`` at start-up), windowing
off (every cell in the DOM), ``--LabApp.expose_app_in_browser`` to read the real kernel status and the
notebook model from ``window.jupyterapp``. The server is stopped through ``/api/shutdown``, then by
PID with its kernels (never by name).

:func:`run_notebook` opens a notebook, waits for the real kernel (the toolbar says "idle" while it is
still "No Kernel"), runs every cell and returns what the DOM and the notebook model say about errors
and widgets; :func:`move_first_slider` moves the notebook's first slider and reports whether the
output around it changed (a kernel round trip).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ._chromium import descendants, free_port, stop_process

KERNEL_NAME = "segcourse"


class JupyterLab:
    """A running JupyterLab server whose root is ``sandbox / "work"``."""

    def __init__(self, base: str, token: str, work: Path, log: Path, proc: subprocess.Popen):
        self.base, self.token, self.work, self.log, self.proc = base, token, work, log, proc

    def add(self, notebook: Path, folder: str) -> str:
        """Copy ``notebook`` into ``work/folder/`` without its stored outputs; return its path relative to the root.

        The copy has no outputs and no execution counts, so a cell counts as run only when it ran in this
        session, and a stored widget output (whose state is not saved) cannot be mistaken for a fresh one.
        """
        target = self.work / folder / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb.get("metadata", {}).pop("widgets", None)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return f"{folder}/{notebook.name}"

    def url(self, relpath: str) -> str:
        return f"{self.base}/lab/tree/{relpath}?token={self.token}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel (each notebook's kernel holds torch and its data: free them between notebooks)."""
        for session in self.api("/api/sessions") or []:
            with contextlib.suppress(OSError):
                self.api(f"/api/sessions/{session['id']}", method="DELETE")
        for kernel in self.api("/api/kernels") or []:
            with contextlib.suppress(OSError):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def _write_settings(sandbox: Path) -> dict[str, Path]:
    dirs = {name: sandbox / name for name in ("home", "config", "data", "runtime", "workspaces", "settings", "work")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    (dirs["config"] / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}}}))
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notify = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True, exist_ok=True)
    (notify / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return dirs


@contextlib.contextmanager
def jupyterlab(sandbox: Path, env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[JupyterLab]:
    """Start JupyterLab in ``sandbox`` (created); yield it; always shut it and its kernels down by PID.

    ``env`` is added to the server's (and so the kernels') environment; ``SEGCOURSE_MODE`` defaults to
    ``smoke`` and ``MPLBACKEND`` is removed (the browser shows inline figures).

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout`` seconds (with its log).
    """
    dirs = _write_settings(Path(sandbox))
    port, token = free_port(), secrets.token_hex(16)
    full_env = {**os.environ, "HOME": str(dirs["home"]), "JUPYTER_CONFIG_DIR": str(dirs["config"]),
                "JUPYTER_DATA_DIR": str(dirs["data"]), "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
                "SEGCOURSE_MODE": "smoke", "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("MPLBACKEND", None)
    log_path = dirs["home"] / "jupyter.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={dirs['work']}", f"--LabApp.workspaces_dir={dirs['workspaces']}",
           f"--LabApp.user_settings_dir={dirs['settings']}", "--LabApp.expose_app_in_browser=True",
           f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        lab = JupyterLab(f"http://127.0.0.1:{port}", token, dirs["work"], log_path, proc)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited with {proc.returncode}; log:\n{lab.log_tail()}")
                try:
                    lab.api("/api/status")
                    break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s; log:\n{lab.log_tail()}")
                time.sleep(0.2)
            yield lab
        finally:
            kernel_pids = descendants(proc.pid)  # the kernels run in their own sessions: remember them now
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # then by PID
                lab.api("/api/shutdown", method="POST")
                proc.wait(timeout=10)
            stop_process(proc, kernel_pids)


# --------------------------------------------------------------------------- the page

KERNEL_STATE = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  const ctx = w && w.sessionContext;
  const k = ctx && ctx.session && ctx.session.kernel;
  return k ? k.name + "|" + k.status : null;
}"""

# Progress of "run all" and the errors in the notebook model (a SyntaxError has no "Traceback" in the DOM).
CELL_STATE = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  let code = 0, done = 0, errors = [];
  nb.widgets.forEach((cell, i) => {
    if (cell.model.type !== "code") return;
    code += 1;
    if (cell.model.executionCount !== null) done += 1;
    for (const o of cell.model.outputs.toJSON())
      if (o.output_type === "error") errors.push("cell " + i + ": " + o.ename + ": " + o.evalue);
  });
  const busy = [...document.querySelectorAll(".jp-InputPrompt")].some(p => p.textContent.includes("*"));
  return {code, done, errors, busy};
}"""

# What the DOM shows: tracebacks in error/stderr outputs, and for every widget output in the model
# whether it rendered as a live view, failed ("Error displaying widget"), was closed by the kernel
# (hidden and empty) or is still empty (loading).
DOM_STATE = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const tracebacks = [...document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .filter(e => /Traceback|Error:/.test(e.textContent) && /^\\s*(Traceback|[A-Za-z]*Error)/m.test(e.textContent))
    .map(e => e.textContent.slice(0, 300));
  let widgets = 0, rendered = 0, closed = 0, failed = [], loading = [];
  nb.widgets.forEach((cell, i) => {
    if (cell.model.type !== "code") return;
    const outs = cell.model.outputs;
    const children = cell.outputArea.widgets;
    for (let j = 0; j < outs.length; j++) {
      const data = outs.get(j).data || {};
      if (!data["application/vnd.jupyter.widget-view+json"]) continue;
      widgets += 1;
      const node = children[j] && children[j].node;
      // a widget the kernel closed (tqdm's bars with leave=False) leaves a hidden, empty output
      const output = node && node.querySelector(".jp-OutputArea-output");
      if (output && output.classList.contains("lm-mod-hidden") && !output.textContent.trim()) { closed += 1; continue; }
      const text = node ? node.textContent : "";
      if (/Error (displaying|creating|rendering) widget/i.test(text)) { failed.push("cell " + i + ": " + text.slice(0, 120)); continue; }
      const view = node && [...node.querySelectorAll(".jupyter-widgets")].find(
          e => !/Error (displaying|creating|rendering) widget/i.test(e.textContent));
      if (!view || view.getBoundingClientRect().height === 0) loading.push("cell " + i + " output " + j);
      else rendered += 1;
    }
  });
  const errorText = [...document.querySelectorAll(".jupyter-widgets")]
    .filter(e => /Error (displaying|creating|rendering) widget/i.test(e.textContent)).length;
  return {tracebacks, widgets, rendered, closed, failed, loading, errorText};
}"""

# The notebook's first slider, and a fingerprint of the output it lives in without the slider itself.
SLIDER_OUTPUT = """(mark) => {
  const slider = document.querySelector(".widget-slider");
  if (!slider) return null;
  const out = slider.closest(".jp-OutputArea-output") || slider.closest(".jp-OutputArea");
  const copy = out.cloneNode(true);
  copy.querySelectorAll(".widget-slider").forEach(s => s.remove());
  const images = [...out.querySelectorAll("img")].map(i => i.src.length + ":" + i.src.slice(-64));
  if (mark) slider.setAttribute("data-first-slider", "1");
  return {label: slider.querySelector(".widget-label") ? slider.querySelector(".widget-label").textContent : "",
          readout: slider.querySelector(".widget-readout") ? slider.querySelector(".widget-readout").textContent : "",
          fingerprint: copy.textContent + "|" + images.join(",")};
}"""


def wait_for(page, script: str, ok, timeout: float, what: str, arg=None):
    """Evaluate ``script`` until ``ok(value)``; return the value, or fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(script, arg) if arg is not None else page.evaluate(script)
        if ok(value):
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last state: {value!r}")


def _idle(v) -> bool:
    return bool(v) and v.endswith("|idle")


def run_notebook(page, lab: JupyterLab, relpath: str, timeout: float = 600, widget_wait: float = 90) -> dict:
    """Open ``relpath`` in JupyterLab, run every cell, and report on it.

    Returns ``{"cells": CELL_STATE, "dom": DOM_STATE, "kernel": "segcourse|idle", "seconds": ...}`` once
    every code cell ran (or one raised) and the kernel is idle with every widget output settled (rendered
    or failed) or ``widget_wait`` seconds passed.

    Raises:
        AssertionError: the kernel did not start, or the cells did not finish within ``timeout`` seconds.
    """
    start = time.monotonic()
    page.goto(lab.url(relpath), wait_until="domcontentloaded", timeout=120_000)
    kernel = wait_for(page, KERNEL_STATE, _idle, 120, f"the kernel of {relpath}")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    cells = wait_for(page, CELL_STATE, lambda v: v["errors"] or (v["code"] > 0 and v["done"] == v["code"] and not v["busy"]),
                     timeout, f"every cell of {relpath} to run")
    wait_for(page, KERNEL_STATE, _idle, 60, f"the kernel of {relpath} to go idle")
    # widget views are created asynchronously after their output arrives: give them time (a loaded CI machine
    # with two kernels and two browsers took over 20 s once)
    deadline = time.monotonic() + widget_wait
    dom = page.evaluate(DOM_STATE)
    while dom["loading"] and time.monotonic() < deadline:
        time.sleep(0.5)
        dom = page.evaluate(DOM_STATE)
    cells = page.evaluate(CELL_STATE)
    return {"cells": cells, "dom": dom, "kernel": kernel, "seconds": time.monotonic() - start}


def move_first_slider(page, presses: int = 3, timeout: float = 60) -> dict | None:
    """Press ArrowRight on the notebook's first slider; return ``{"label", "before", "after", "changed"}``.

    ``None`` when the notebook has no slider. ``changed``: the output around the slider (text and
    pictures, the slider itself excluded) is different after the kernel answered.
    """
    before = page.evaluate(SLIDER_OUTPUT, True)
    if before is None:
        return None
    slider = page.locator('.widget-slider[data-first-slider="1"]')
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")
    deadline = time.monotonic() + timeout
    after = page.evaluate(SLIDER_OUTPUT, False)
    while after["fingerprint"] == before["fingerprint"] and time.monotonic() < deadline:
        time.sleep(0.25)
        after = page.evaluate(SLIDER_OUTPUT, False)
    wait_for(page, KERNEL_STATE, _idle, 60, "the kernel to go idle after the slider moved")
    return {"label": before["label"], "before": before["readout"], "after": after["readout"],
            "changed": after["fingerprint"] != before["fingerprint"]}


def screenshot_notebook(page, path: Path) -> None:
    """A picture of the whole notebook: the viewport grown to its height (JupyterLab scrolls inside a panel)."""
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
        '.jp-WindowedPanel-inner, .jp-WindowedPanel-outer, .jp-Notebook')].map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": 1400, "height": min(max(int(height) + 200, 1000), 16000)})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach(e => e.scrollTop = 0)")
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
