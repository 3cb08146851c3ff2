"""How many weights a model has, and how much it computes: the numbers the lessons compare architectures by."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_flops", "count_parameters"]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model`` (every ``p.numel()`` summed; buffers such as
    BatchNorm running statistics are not parameters and are not counted).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad`` (e.g. a frozen encoder excluded).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Floating-point operations of one forward pass of ``model`` on ``x``, counted by PyTorch.

    Uses ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add as **2** FLOPs
    (a ``k × k`` convolution from ``C_in`` to ``C_out`` channels on an ``H × W`` output:
    ``2 · k² · C_in · C_out · H · W``) and counts convolutions, matrix products and attention only (not
    BatchNorm, activations or pooling, which are cheap beside them). Unlike a timing it is exact and the
    same on every machine: the cost of an architecture choice, not of this CPU's mood.

    Args:
        model: any module (run in ``eval`` mode under ``torch.no_grad()`` here; its mode is restored).
        x: an input batch, e.g. ``(N, 3, H, W) float``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
