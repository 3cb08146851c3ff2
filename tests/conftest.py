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
