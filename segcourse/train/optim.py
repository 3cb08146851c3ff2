"""The optimiser and learning-rate schedule :func:`~segcourse.train.fit` builds from its options.

References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (AdamW, the default optimizer),
    https://arxiv.org/abs/1711.05101
    Chen et al., "DeepLab: ... Atrous Convolution, and Fully Connected CRFs" (the "poly" schedule),
    https://arxiv.org/abs/1606.00915
    Smith & Topin, "Super-Convergence" (the one-cycle schedule), https://arxiv.org/abs/1708.07120
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

OptimizerName = Literal["adamw", "adam", "sgd"]
SchedulerName = Literal["poly", "cosine", "onecycle"]
OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd")
SCHEDULERS: tuple[str, ...] = ("poly", "cosine", "onecycle")


def build_optimizer(name: OptimizerName, model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``"adamw"`` (the default), ``"adam"`` or ``"sgd"`` (momentum 0.9) over the trainable parameters of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got {name!r}")


def build_scheduler(name: SchedulerName | None, optimizer: torch.optim.Optimizer,
                    total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A learning-rate schedule over ``total_steps`` optimizer steps, stepped after every one of them.

    ``"poly"``: ``lr * (1 - t/T)**0.9`` (DeepLab's); ``"cosine"``: cosine annealing to 0;
    ``"onecycle"``: a warm-up over the first 10 % of the steps to ``lr``, then cosine annealing
    (``torch.optim.lr_scheduler.OneCycleLR(max_lr=lr, pct_start=0.1)``); ``None``: a constant ``lr``. With
    at most 10 steps the warm-up takes 1.5 steps (OneCycleLR needs it to end after step 0); under 3, a constant ``lr``.
    """
    if name is None:
        return None
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be None or one of {', '.join(map(repr, SCHEDULERS))}, got {name!r}")
    total = max(1, total_steps)
    if name == "poly":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - min(step, total) / total) ** 0.9)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    max_lr = [group["lr"] for group in optimizer.param_groups]
    if total < 3:                  # no room for a warm-up and an annealing phase: a constant lr
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    # OneCycleLR's warm-up ends at step pct_start * total - 1, which must be after step 0: at most 10 steps
    # would divide by zero with 10 %, so the warm-up then takes 1.5 steps' worth
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=max(0.1, 1.5 / total))
