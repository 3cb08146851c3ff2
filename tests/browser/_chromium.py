"""Headless Chromium for the browser tests, and the process helpers every browser test uses.

Setup facts (BROWSER_TESTING.md beside the repository): Debian's ``chromium`` at ``/usr/bin/chromium``
(no browser download is possible), started by the test itself with a DevTools port, a fresh profile and
its own ``HOME``, driven by Playwright over CDP (``connect_over_cdp``), and stopped by its PID (never by
name). Without the background-networking flags it floods the closed network with failing connections.

A missing Chromium skips a browser test on a developer's machine (``make test-browser`` installs it), and
fails it in CI (``CI=true``): a browser test that does not run must not look green.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000"]


_PLAYWRIGHT = None


def playwright():
    """This process's one Playwright (sync API), started on first use and stopped at exit.

    Playwright's sync API runs an event loop: a second ``sync_playwright()`` while one is active (a
    session-scoped browser of one test module and another module's test in the same pytest worker)
    fails, so every browser test shares this one.
    """
    global _PLAYWRIGHT
    if _PLAYWRIGHT is None:
        from playwright.sync_api import sync_playwright

        _PLAYWRIGHT = sync_playwright().start()
        atexit.register(_PLAYWRIGHT.stop)
    return _PLAYWRIGHT


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_chromium() -> Path:
    """The Chromium binary; skips the test without it, except in CI, where it fails."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"needs Debian's chromium at {CHROMIUM} (make test-browser installs it: apt-get install chromium)"
    if in_ci():
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (Linux /proc), parents before their children."""
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


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_process(proc: subprocess.Popen, extra_pids: list[int] = ()) -> None:
    """Terminate ``proc``, its descendants and ``extra_pids``, escalating to SIGKILL; by PID only."""
    pids = descendants(proc.pid) + list(extra_pids)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    kill_pids(pids, signal.SIGTERM)
    time.sleep(0.3)
    kill_pids(pids)


@contextlib.contextmanager
def launch_chromium(home: Path, timeout: float = 30) -> Iterator[str]:
    """Start headless Chromium with ``home`` as its HOME and profile; yield its DevTools ``ws://`` endpoint.

    Always stopped (with its helper processes) by PID on exit.

    Raises:
        RuntimeError: Chromium did not print its DevTools endpoint within ``timeout`` seconds.
    """
    binary = require_chromium()
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(binary), *CHROMIUM_FLAGS, f"--user-data-dir={home / 'chromium-profile'}",
                             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
                            env={**os.environ, "HOME": str(home)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        endpoint, deadline = None, time.monotonic() + timeout
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = match.group(1) if match else None
        if endpoint is None:
            raise RuntimeError(f"chromium did not print its DevTools endpoint within {timeout:.0f} s "
                               f"(exit code {proc.poll()})")
        # keep reading its stderr, or a chatty Chromium blocks on a full pipe
        drain = threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True)
        drain.start()
        yield endpoint
    finally:
        stop_process(proc)
        if drain is not None:
            drain.join(timeout=5)
        proc.stderr.close()
