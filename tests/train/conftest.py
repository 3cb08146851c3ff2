"""Fixtures of the training-engine tests."""

from __future__ import annotations

import pytest
import torch
from _train_helpers import tiny_data
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@pytest.fixture
def loaders():
    torch.manual_seed(0)
    images, target = tiny_data()
    train = DataLoader(TensorDataset(images, target), batch_size=8, shuffle=True)
    val = DataLoader(TensorDataset(images[:16], target[:16]), batch_size=8)
    return train, val


@pytest.fixture
def ce():
    from segcourse import IGNORE_INDEX

    return nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)


@pytest.fixture(autouse=True)
def _one_thread():
    """The engine tests use tiny tensors: one thread is faster than two fighting over a shared CPU
    (and `make test` runs two pytest workers on two cores). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
