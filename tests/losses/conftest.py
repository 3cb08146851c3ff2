"""Seeded random inputs for the loss tests."""

from __future__ import annotations

import torch

from segcourse.constants import IGNORE_INDEX


def make_multiclass(seed: int, n=2, c=3, h=6, w=7, ignore_fraction=0.0, dtype=torch.float32, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, h, w, generator=g) * scale).to(dtype)
    target = torch.randint(0, c, (n, h, w), generator=g)
    if ignore_fraction:
        target[torch.rand(n, h, w, generator=g) < ignore_fraction] = IGNORE_INDEX
    return logits, target


def make_binary(seed: int, n=2, h=6, w=7, ignore_fraction=0.0, dtype=torch.float32, fg=0.3):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, 1, h, w, generator=g) * 2).to(dtype)
    target = (torch.rand(n, h, w, generator=g) < fg).long()
    if ignore_fraction:
        target[torch.rand(n, h, w, generator=g) < ignore_fraction] = IGNORE_INDEX
    return logits, target

