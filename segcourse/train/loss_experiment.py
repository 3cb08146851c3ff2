"""The helpers of lesson 06's loss comparison: the losses compared, a fixed-step training run, and the scores.

The experiment trains one network per seed with a *warm-up* loss, then fine-tunes a copy of it with each
candidate loss for the same number of steps on the same batch order, so that every loss starts from the
same weights and sees the same batches (runs paired by seed, as :mod:`segcourse.teaching.compare` expects):

    >>> import torch
    >>> from segcourse.losses import CrossEntropyLoss
    >>> from segcourse.models.unet import unet
    >>> x, y = torch.rand(8, 3, 16, 16), torch.zeros(8, 16, 16, dtype=torch.long)
    >>> history = train_steps(unet(depth=2, base_channels=4), x, y, CrossEntropyLoss(), steps=2, batch_size=4, seed=0)
    >>> history.stop_reason, len(history.records)
    ('epochs', 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..losses.boundary import boundary_loss
from ..losses.modules import (
    CEDiceLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LovaszSoftmaxLoss,
    OHEMCrossEntropyLoss,
    TverskyLoss,
)
from ..losses.overlap import ce_dice_loss
from ..metrics import confusion_matrix, scores_from_confusion
from ..metrics.boundary import boundary_band

#: Weight of the boundary term added to CE + Dice (Kervadec et al. add it to a regional loss with a small weight).
BOUNDARY_WEIGHT = 0.05


def ce_dice_boundary(logits: torch.Tensor, target: torch.Tensor, weight: float = BOUNDARY_WEIGHT) -> torch.Tensor:
    """``ce_dice_loss + weight * boundary_loss``: the boundary term is never used alone (its minimum is negative)."""
    return ce_dice_loss(logits, target) + weight * boundary_loss(logits, target)


def loss_candidates(weights: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, Callable]:
    """The losses of lesson 06: name -> ``callable(logits, target) -> scalar``.

    Args:
        weights: class weights for "weighted CE" (computed once, from the training set).
        names: keep only these, in this order (default: all of them).

    Raises:
        ValueError: an unknown name.
    """
    every = {
        "CE": CrossEntropyLoss(),
        "weighted CE": CrossEntropyLoss(weight=weights),
        "OHEM CE": OHEMCrossEntropyLoss(keep_ratio=0.25),
        "Focal": FocalLoss(gamma=2.0),
        "Dice": DiceLoss(),
        "Tversky": TverskyLoss(alpha=0.3, beta=0.7),
        "Lovasz": LovaszSoftmaxLoss(),
        "CE + Dice": CEDiceLoss(),
        "CE + Dice + boundary": ce_dice_boundary,
    }
    if names is None:
        return every
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ValueError(f"unknown loss name(s) {unknown}; the candidates are {list(every)}")
    return {n: every[n] for n in names}


def train_steps(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, loss_fn: Callable, *, steps: int,
                seed: int, batch_size: int = 16, lr: float = 3e-3, device="cpu"):
    """Train ``model`` in place for exactly ``steps`` optimizer steps with :func:`segcourse.train.fit`.

    The batches are drawn without replacement (reshuffled after each pass over the data) by a generator
    seeded with ``seed``: two calls with the same ``seed`` and data see the same batches in the same order,
    whatever the loss. AdamW at ``lr`` with the "poly" schedule (decays to 0 at the last step).

    Args:
        model: returns logits ``(N, C, H, W)``.
        images: ``(N, 3, H, W)`` float; masks: ``(N, H, W)`` int64.
        loss_fn: ``loss_fn(logits, target) -> scalar``.
        steps: optimizer steps (>= 1); seed: the batch order's seed.

    Returns:
        fit's :class:`~segcourse.train.History` (``stop_reason`` is ``"epochs"``: the steps ran out).

    Raises:
        ValueError: ``steps`` or ``batch_size`` below 1, or images and masks of different lengths.
    """
    from .fit import fit

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
    if len(images) != len(masks):
        raise ValueError(f"images ({len(images)}) and masks ({len(masks)}) must have the same length")
    data = torch.utils.data.TensorDataset(images, masks)
    order = torch.utils.data.RandomSampler(data, num_samples=steps * batch_size,
                                           generator=torch.Generator().manual_seed(int(seed)))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=order)
    return fit(model, loader, loss_fn=loss_fn, epochs=1, lr=lr, scheduler="poly", progress=False, verbose=False,
               device=device)


def gradient_share(loss_fn: Callable, target: torch.Tensor, cls: int = 1, num_classes: int = 2) -> float:
    """Share of ``|d loss / d logits|`` that lands on the pixels of class ``cls``, for logits 0 everywhere.

    With all logits 0 every pixel is equally wrong (p = 1/C), so the share measures only how the loss
    weighs the pixels: for plain CE it is the class's share of the pixels.

    Args:
        loss_fn: ``loss_fn(logits, target) -> scalar``.
        target: ``(N, H, W)`` class ids.
    """
    z = torch.zeros(len(target), num_classes, *target.shape[1:], requires_grad=True)
    loss_fn(z, target).backward()
    g = z.grad.abs().sum(1)                                                  # (N, H, W)
    return float(g[target == cls].sum() / g.sum())


def margin_gradient(loss_fn: Callable, margin: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``d loss / d s`` at every pixel for two-class logits ``(-s/2, s/2)``: ``s`` is the class-1-minus-class-0 margin.

    Args:
        loss_fn: ``loss_fn(logits, target) -> scalar``.
        margin: ``(N, H, W)`` float; target: ``(N, H, W)`` class ids 0/1.

    Returns:
        ``(N, H, W)``: the gradient of the loss with respect to each pixel's margin.
    """
    s = margin.detach().clone().requires_grad_(True)
    loss_fn(torch.stack([-s / 2, s / 2], dim=1), target).backward()
    return s.grad


def building_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Building (class 1) IoU, precision and recall from the pooled confusion matrix, and its Boundary IoU.

    Args:
        pred, target: ``(N, H, W)`` class ids (0 ground, 1 building).

    Returns:
        ``{"IoU", "precision", "recall", "boundary IoU"}``; Boundary IoU pools the inner bands
        (:func:`~segcourse.metrics.boundary.boundary_band`) of all the tiles, NaN when both are empty.

    Raises:
        ValueError: ``pred`` and ``target`` have different shapes.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same (N, H, W) shape")
    s = scores_from_confusion(confusion_matrix(pred, target, num_classes=2))
    bands = [(boundary_band(p == 1), boundary_band(t == 1)) for p, t in zip(pred.numpy(), target.numpy())]
    inter = sum(int((a & b).sum()) for a, b in bands)
    union = sum(int((a | b).sum()) for a, b in bands)
    return {"IoU": float(s["iou"][1]), "precision": float(s["precision"][1]), "recall": float(s["recall"][1]),
            "boundary IoU": inter / union if union else float("nan")}


__all__ = ["BOUNDARY_WEIGHT", "building_scores", "ce_dice_boundary", "gradient_share", "loss_candidates", "margin_gradient",
           "train_steps"]
