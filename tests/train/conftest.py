"""Fixtures of the training-engine tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ._train_helpers import tiny_data


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

