"""Tiny models and data for the training-engine tests (CPU, milliseconds per epoch).

Imported by the test modules of this folder (pytest puts the folder on ``sys.path``)."""

from __future__ import annotations

import torch
from torch import nn


def tiny_net(num_classes: int = 2, width: int = 8) -> nn.Module:
    """Two convolutions, no BatchNorm (so gradient accumulation is exactly a larger batch)."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, num_classes, 1))


def tiny_data(n: int = 32, size: int = 16, seed: int = 0, num_classes: int = 2):
    """Images whose class is readable from the first channel: learnable by ``tiny_net`` in a few steps."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    target = torch.clamp((images[:, 0] * num_classes).long(), max=num_classes - 1)
    return images, target


class FixedPrediction(nn.Module):
    """A 'model' whose logits are the one-hot encoding of stored predictions, looked up by a
    per-image index written into channel 0 of the image (so evaluation is exactly known)."""

    def __init__(self, predictions: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("predictions", predictions)
        self.num_classes = num_classes
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        index = images[:, 0, 0, 0].long()
        pred = self.predictions[index]
        return nn.functional.one_hot(pred, self.num_classes).permute(0, 3, 1, 2).float() + 0 * self.dummy
