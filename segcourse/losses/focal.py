"""Focal loss: cross-entropy that turns down the pixels the model already gets right.

``FL(p_t) = -alpha_t (1 - p_t)^gamma log p_t`` (Lin et al. 2017). With ``gamma = 0`` it is
(alpha-weighted) cross-entropy; with ``gamma = 2`` a pixel classified with ``p_t = 0.9`` weighs
``(0.1)^2 = 1/100`` of its CE, while a hard pixel with ``p_t = 0.1`` keeps ``0.81`` of it. On an
imbalanced image most background pixels are easy, so the rare class's hard pixels dominate.

Two versions, because the libraries disagree on what "multiclass focal loss" means:

* :func:`focal_loss` -- **softmax** focal loss: one ``p_t`` per pixel from a softmax over the C classes
  (the paper's multiclass form; MONAI ``FocalLoss(use_softmax=True)``).
* :func:`binary_focal_loss` -- **sigmoid** focal loss of one channel (the paper's binary form;
  ``torchvision.ops.sigmoid_focal_loss``, smp ``FocalLoss("binary")``, MONAI ``FocalLoss()``).

segmentation_models_pytorch's ``FocalLoss("multiclass")`` is *neither*: it applies the sigmoid focal
loss to each class channel against ``target == c`` separately and averages over classes (a one-vs-rest
sum of C binary problems, whose logits are not coupled by a softmax). ``tests/losses`` checks that it
equals ``mean_c binary_focal_loss(logits[:, c:c+1], target == c)``; lesson 06 shows the difference.

``alpha``: ``None`` (no class weighting), a float (``alpha`` for the foreground classes and
``1 - alpha`` for class 0, MONAI's convention and the paper's binary alpha), or a sequence of C
per-class weights. A scalar alpha multiplying every pixel alike (as in one of the course's source
articles) only rescales the loss; it balances nothing.

References:
    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object Detection",
    ICCV 2017, https://arxiv.org/abs/1708.02002
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..constants import IGNORE_INDEX
from ._checks import check_binary, check_multiclass, check_reduction, reduce_masked


def focal_weight(p_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """The modulating factor ``(1 - p_t)^gamma`` (the part that makes focal loss focal)."""
    return (1.0 - p_t).clamp_min(0.0).pow(gamma)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               alpha: float | Sequence[float] | torch.Tensor | None = None,
               ignore_index: int = IGNORE_INDEX, reduction: str = "mean") -> torch.Tensor:
    """Softmax focal loss per pixel, ``-alpha_t (1 - p_t)^gamma log p_t``, averaged over non-ignored pixels.

    Args:
        logits: (N, C, H, W) float.
        target: (N, H, W) int64 in ``[0, C)`` or ``ignore_index``.
        gamma: focusing parameter >= 0 (0 gives cross-entropy).
        alpha: ``None``, a float in [0, 1] (class 0 gets ``1 - alpha``, the others ``alpha``), or (C,) weights.
        ignore_index: label that contributes nothing.
        reduction: ``"mean"`` (over non-ignored pixels; 0 if every pixel is ignored), ``"sum"`` or ``"none"``
            ((N, H, W), zero where ignored).

    Returns:
        A scalar tensor, or (N, H, W); the mean is 0 with a zero gradient when every pixel is ignored.

    Reference conventions (equal to 1e-5 in ``tests/losses``):
        * ``gamma=0, alpha=None`` == ``F.cross_entropy``;
        * ``alpha=None``, mean == smp's functional ``softmax_focal_loss_with_logits`` (no ignored pixels);
        * ``reduction="none"`` == ``monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True, gamma, alpha,
          reduction="none")(logits, target[:, None]).sum(1)``. MONAI's ``reduction="mean"`` also averages over
          the C one-hot channels (all but one of which are zero), so it is ours divided by C.
    """
    if gamma < 0:
        raise ValueError(f"focal_loss: gamma must be >= 0, got {gamma}")
    check_reduction(reduction, name="focal_loss")
    valid = check_multiclass(logits, target, ignore_index, "focal_loss")
    safe = torch.where(valid, target, torch.zeros_like(target))
    log_p = logits.log_softmax(dim=1)                                    # (N, C, H, W)
    log_pt = log_p.gather(1, safe.unsqueeze(1)).squeeze(1)               # (N, H, W)
    loss = -focal_weight(log_pt.exp(), gamma) * log_pt
    if alpha is not None:
        num_classes = logits.shape[1]
        if isinstance(alpha, (float, int)):
            if not 0.0 <= float(alpha) <= 1.0:
                raise ValueError(f"focal_loss: a scalar alpha must be in [0, 1], got {alpha}")
            a = torch.full((num_classes,), float(alpha), dtype=logits.dtype, device=logits.device)
            a[0] = 1.0 - float(alpha)
        else:
            a = torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device)
            if a.ndim != 1 or a.numel() != num_classes:
                raise ValueError(f"focal_loss: alpha must be a float or hold one weight per class ({num_classes}), "
                                 f"got shape {tuple(a.shape)}")
        loss = a[safe] * loss
    return reduce_masked(loss, valid, reduction)


def binary_focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0, alpha: float | None = None,
                      ignore_index: int = IGNORE_INDEX, reduction: str = "mean") -> torch.Tensor:
    """Sigmoid focal loss of one channel, averaged over non-ignored pixels.

    ``p_t = s(x)`` for foreground pixels and ``1 - s(x)`` for background; ``alpha_t = alpha`` for
    foreground and ``1 - alpha`` for background (no weighting when ``alpha`` is None).

    Args:
        logits: (N, 1, H, W) float.
        target: (N, H, W) or (N, 1, H, W) with 0, 1 or ``ignore_index``.
        gamma: focusing parameter >= 0.
        alpha: ``None`` or a float in [0, 1] (the paper uses 0.25).
        ignore_index: value that contributes nothing.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` ((N, 1, H, W)).

    Returns:
        A scalar tensor, or (N, 1, H, W).

    Reference conventions (equal to 1e-5 in ``tests/losses``): ``torchvision.ops.sigmoid_focal_loss``
    (its ``alpha=-1`` meaning our ``None``), smp ``FocalLoss("binary", alpha, gamma, ignore_index)`` and
    MONAI ``FocalLoss(gamma, alpha)``.
    """
    if gamma < 0:
        raise ValueError(f"binary_focal_loss: gamma must be >= 0, got {gamma}")
    if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"binary_focal_loss: alpha must be None or in [0, 1], got {alpha}")
    check_reduction(reduction, name="binary_focal_loss")
    target, valid = check_binary(logits, target, ignore_index, "binary_focal_loss")
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # -log p_t
    p_t = torch.exp(-ce)
    loss = focal_weight(p_t, gamma) * ce
    if alpha is not None:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return reduce_masked(loss, valid, reduction)
