"""How many weights a model has: the number the lessons compare architectures by."""

from __future__ import annotations

from torch import nn

__all__ = ["count_parameters"]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model`` (every ``p.numel()`` summed; buffers such as
    BatchNorm running statistics are not parameters and are not counted).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad`` (e.g. a frozen encoder excluded).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
