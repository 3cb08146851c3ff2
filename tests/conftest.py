"""Shared test setup: every test runs in smoke mode with its generated data in a temporary folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SEGCOURSE_MODE", "smoke")
os.environ.setdefault("MPLBACKEND", "agg")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: the tests use tiny tensors, and `make test` runs two pytest workers
    on two cores, so two threads each would only fight over the CPU. Restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A private folder for generated datasets (``$SEGCOURSE_DATA``)."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("SEGCOURSE_DATA", str(root))
    return root


# --------------------------------------------------------------------------- skips
# The reference libraries and the browser are pinned dependencies: a test that skips because one is
# missing hides a broken install. `make test` lists every skipped test by name at the end, and in CI
# (CI=true) any skip other than a CUDA-only one fails the run.

_ALLOWED_SKIP_WORDS = ("CUDA", "GPU")


def _skip_reports(terminalreporter):
    reports = []
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reports.append((report.nodeid, reason.removeprefix("Skipped: ")))
    return reports


def _forbidden_skips(reports):
    return [(nodeid, reason) for nodeid, reason in reports if not any(w in reason for w in _ALLOWED_SKIP_WORDS)]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reports = _skip_reports(terminalreporter)
    if not reports:
        return
    terminalreporter.section("skipped tests")
    for nodeid, reason in reports:
        terminalreporter.write_line(f"{nodeid}: {reason}")
    bad = _forbidden_skips(reports)
    if bad and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        terminalreporter.write_line(f"CI: {len(bad)} test(s) skipped for a reason other than CUDA: "
                                    "a missing dependency must fail, not skip", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and _forbidden_skips(_skip_reports(reporter)) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
