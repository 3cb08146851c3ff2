"""Shared test setup: every test runs in smoke mode with its generated data in a temporary folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SEGCOURSE_MODE", "smoke")
os.environ.setdefault("MPLBACKEND", "agg")


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A private folder for generated datasets (``$SEGCOURSE_DATA``)."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("SEGCOURSE_DATA", str(root))
    return root
