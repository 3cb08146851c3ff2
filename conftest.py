"""Setup for the ``>>>`` examples in segcourse's docstrings (``make test`` runs them with ``--doctest-modules``).

Each example runs offline, in smoke mode, on one torch thread, with the datasets it generates in a
temporary folder (never the learner's ``datasets/``) and no report file. The package tests have their
own setup in ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctest_environment(request, tmp_path_factory, monkeypatch):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    import torch

    monkeypatch.setenv("SEGCOURSE_MODE", "smoke")
    monkeypatch.setenv("SEGCOURSE_DATA", str(tmp_path_factory.mktemp("doctest-datasets")))
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.delenv("SEGCOURSE_REPORT", raising=False)
    monkeypatch.delenv("SEGCOURSE_SEED_OFFSET", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
