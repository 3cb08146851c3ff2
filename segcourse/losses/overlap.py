"""Overlap losses: soft Dice, Tversky, and CE + Dice.

They score the *region* a class covers instead of each pixel: with ``p`` the softmax (or sigmoid)
probabilities and ``g`` the one-hot target, summed over the pixels,

* ``TP = sum p g``, ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g``;
* soft Dice ``D = (2 TP + smooth) / (2 TP + FP + FN + smooth)`` and loss ``1 - D``
  (Milletari et al. 2016, https://arxiv.org/abs/1606.04797);
* Tversky ``T = (TP + smooth) / (TP + alpha FP + beta FN + smooth)`` (Salehi et al. 2017,
  https://arxiv.org/abs/1706.05721): ``alpha`` weighs false positives and ``beta`` false negatives,
  so ``beta > alpha`` trades precision for recall of a rare class. ``alpha = beta = 0.5`` with
  ``smooth = 0`` is Dice. (One of the course's source articles says the opposite: with the formula
  it writes, ``alpha > beta`` penalises false *positives* more, not false negatives.)

Because every pixel of a class shares one denominator, a class with few pixels counts as much
as the background: that is why these losses help rare classes.

Two choices change the number, and the reference libraries make them differently:

``reduce_batch``
    ``True`` sums TP/FP/FN over the whole batch before the ratio (one Dice per class; smp's default);
    ``False`` computes one Dice per image and class and averages them (MONAI's default ``batch=False``).
``absent``
    what a class with no target pixels (in the reduction unit) contributes. ``"zero"``: loss 0,
    still counted in the mean over classes (segmentation_models_pytorch); ``"smooth"``: the formula
    as written, which gives ``1 - smooth / (FP + smooth)``, close to 1 when the class is predicted at
    all (MONAI). With ``"smooth"`` and ``smooth = 0``, an absent class that is also never predicted
    would be 0/0, so that combination requires ``smooth > 0``.

Smoothing convention: ``smooth`` is added once to the numerator and once to the denominator of
the ratio as written above, like MONAI's ``smooth_nr = smooth_dr``. smp writes Dice as
``(TP + s) / (TP + (FP + FN) / 2 + s)``, so smp's ``smooth=s`` equals our ``smooth=2 s``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..constants import IGNORE_INDEX
from ._checks import check_binary, check_multiclass
from .pixelwise import cross_entropy

_ABSENT = ("zero", "smooth")


def _one_hot(target: torch.Tensor, valid: torch.Tensor, num_classes: int, dtype) -> torch.Tensor:
    """(N, *S) labels -> (N, C, *S) one-hot, zero at ignored pixels."""
    safe = torch.where(valid, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, num_classes).movedim(-1, 1).to(dtype)
    return onehot * valid.unsqueeze(1)


def overlap_counts(probs: torch.Tensor, onehot: torch.Tensor, *, reduce_batch: bool = True):
    """Soft TP, FP, FN per class.

    Args:
        probs: (N, C, *S) probabilities (ignored pixels already zeroed).
        onehot: (N, C, *S) targets in {0, 1} (ignored pixels zeroed).
        reduce_batch: sum over the batch too (result (C,)) or not (result (N, C)).

    Returns:
        ``(tp, fp, fn)``, each (C,) or (N, C).
    """
    dims = (0, *range(2, probs.ndim)) if reduce_batch else tuple(range(2, probs.ndim))
    tp = (probs * onehot).sum(dims)
    fp = (probs * (1 - onehot)).sum(dims)
    fn = ((1 - probs) * onehot).sum(dims)
    return tp, fp, fn


def _tversky_from_counts(tp, fp, fn, *, alpha: float, beta: float, smooth: float, eps: float, absent: str,
                         name: str) -> torch.Tensor:
    if absent not in _ABSENT:
        raise ValueError(f"{name}: absent must be one of {_ABSENT}, got {absent!r}")
    if absent == "smooth" and smooth <= 0:
        raise ValueError(f"{name}: absent='smooth' needs smooth > 0 (an absent, unpredicted class would be 0/0)")
    score = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(eps)
    loss = 1.0 - score
    if absent == "zero":
        loss = loss * ((tp + fn) > 0).to(loss.dtype)
    return loss


def _check_common(alpha, beta, smooth, name):
    if alpha < 0 or beta < 0:
        raise ValueError(f"{name}: alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
    if smooth < 0:
        raise ValueError(f"{name}: smooth must be >= 0, got {smooth}")


def _multiclass_region_loss(logits, target, *, alpha, beta, smooth, eps, reduce_batch, absent,
                            include_background, class_weights, ignore_index, name):
    _check_common(alpha, beta, smooth, name)
    valid = check_multiclass(logits, target, ignore_index, name)
    num_classes = logits.shape[1]
    probs = logits.log_softmax(dim=1).exp() * valid.unsqueeze(1)          # (N, C, H, W)
    onehot = _one_hot(target, valid, num_classes, probs.dtype)            # (N, C, H, W)
    tp, fp, fn = overlap_counts(probs, onehot, reduce_batch=reduce_batch)  # (C,) or (N, C)
    loss = _tversky_from_counts(tp, fp, fn, alpha=alpha, beta=beta, smooth=smooth, eps=eps, absent=absent, name=name)
    if not include_background:
        if num_classes == 1:
            raise ValueError(f"{name}: include_background=False needs at least 2 classes")
        loss = loss[..., 1:]
    if class_weights is None:
        return loss.mean()
    w = torch.as_tensor(class_weights, dtype=loss.dtype, device=loss.device)
    if w.ndim != 1 or w.numel() != loss.shape[-1]:
        raise ValueError(f"{name}: class_weights must hold one weight per scored class ({loss.shape[-1]}), got {tuple(w.shape)}")
    return (loss * w).sum(-1).mean() / w.sum()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 0.0, eps: float = 1e-7,
              reduce_batch: bool = True, absent: str = "zero", include_background: bool = True,
              class_weights: Sequence[float] | torch.Tensor | None = None,
              ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Multiclass soft Dice loss: ``1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)``, averaged over classes.

    Args:
        logits: (N, C, H, W) float; a softmax over C gives the probabilities.
        target: (N, H, W) int64 in ``[0, C)`` or ``ignore_index``.
        smooth: added to numerator and denominator (see the module docstring for smp's convention).
        eps: lower bound of the denominator.
        reduce_batch: one Dice per class over the whole batch (True) or per image and class (False).
        absent: ``"zero"`` or ``"smooth"``, the policy for classes with no target pixels (module docstring).
        include_background: score class 0 too.
        class_weights: optional (C,) (or (C-1,) without background) weights of a weighted mean over classes.
        ignore_index: pixels with this label are removed from prediction and target.

    Returns:
        A scalar tensor in [0, 1]; 0 with a zero gradient when every pixel is ignored (every class
        is then absent from target and masked prediction).

    Reference conventions (equal to 1e-5 in ``tests/losses``):
        * defaults == ``segmentation_models_pytorch.losses.DiceLoss("multiclass", ignore_index=...)``;
        * ``smooth=s, reduce_batch=False, absent="smooth"`` == ``monai.losses.DiceLoss(softmax=True,
          to_onehot_y=True, smooth_nr=s, smooth_dr=s)`` on ``target[:, None]``.

    References:
        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net", 3DV 2016, https://arxiv.org/abs/1606.04797
    """
    return _multiclass_region_loss(logits, target, alpha=0.5, beta=0.5, smooth=smooth / 2, eps=eps / 2,
                                   reduce_batch=reduce_batch, absent=absent, include_background=include_background,
                                   class_weights=class_weights, ignore_index=ignore_index, name="dice_loss")


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.5, beta: float = 0.5,
                 smooth: float = 0.0, eps: float = 1e-7, reduce_batch: bool = True, absent: str = "zero",
                 include_background: bool = True, class_weights: Sequence[float] | torch.Tensor | None = None,
                 ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Multiclass Tversky loss: ``1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth)``, averaged over classes.

    Args:
        alpha: weight of false positives. beta: weight of false negatives (raise it to favour recall).
        Others: as in :func:`dice_loss`.

    Returns:
        A scalar tensor (0 with a zero gradient when every pixel is ignored, as :func:`dice_loss`).

    Reference conventions (equal to 1e-5 in ``tests/losses``):
        * defaults == ``segmentation_models_pytorch.losses.TverskyLoss("multiclass", alpha=..., beta=...)``;
        * ``smooth=s, reduce_batch=False, absent="smooth"`` == ``monai.losses.TverskyLoss(softmax=True,
          to_onehot_y=True, alpha=..., beta=..., smooth_nr=s, smooth_dr=s)``.

    References:
        S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image segmentation using
        3D fully convolutional deep networks", 2017, https://arxiv.org/abs/1706.05721
    """
    return _multiclass_region_loss(logits, target, alpha=alpha, beta=beta, smooth=smooth, eps=eps,
                                   reduce_batch=reduce_batch, absent=absent, include_background=include_background,
                                   class_weights=class_weights, ignore_index=ignore_index, name="tversky_loss")


def binary_tversky_loss(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.5, beta: float = 0.5,
                        smooth: float = 0.0, eps: float = 1e-7, reduce_batch: bool = True, absent: str = "zero",
                        ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Tversky loss of one sigmoid channel (the foreground only; background is not scored).

    Args:
        logits: (N, 1, H, W) float. target: (N, H, W) or (N, 1, H, W) with 0, 1 or ``ignore_index``.
        Others: as in :func:`tversky_loss`.

    Reference conventions: defaults == smp ``TverskyLoss("binary")``; ``reduce_batch=False,
    absent="smooth", smooth=s`` == MONAI ``TverskyLoss(sigmoid=True, smooth_nr=s, smooth_dr=s)``.
    """
    _check_common(alpha, beta, smooth, "binary_tversky_loss")
    target, valid = check_binary(logits, target, ignore_index, "binary_tversky_loss")
    probs = F.logsigmoid(logits).exp() * valid                            # (N, 1, H, W)
    tp, fp, fn = overlap_counts(probs, target, reduce_batch=reduce_batch)  # (1,) or (N, 1)
    loss = _tversky_from_counts(tp, fp, fn, alpha=alpha, beta=beta, smooth=smooth, eps=eps, absent=absent,
                                name="binary_tversky_loss")
    return loss.mean()


def binary_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 0.0, eps: float = 1e-7,
                     reduce_batch: bool = True, absent: str = "zero", ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Soft Dice loss of one sigmoid channel: ``1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)``.

    Args:
        logits: (N, 1, H, W) float. target: (N, H, W) or (N, 1, H, W) with 0, 1 or ``ignore_index``.
        Others: as in :func:`dice_loss`.

    Reference conventions (equal to 1e-5 in ``tests/losses``):
        * defaults == ``segmentation_models_pytorch.losses.DiceLoss("binary", ignore_index=...)``;
        * ``smooth=s, reduce_batch=False, absent="smooth"`` == ``monai.losses.DiceLoss(sigmoid=True,
          smooth_nr=s, smooth_dr=s)``.
    """
    return binary_tversky_loss(logits, target, alpha=0.5, beta=0.5, smooth=smooth / 2, eps=eps / 2,
                               reduce_batch=reduce_batch, absent=absent, ignore_index=ignore_index)


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, ce_weight: float = 1.0, dice_weight: float = 1.0,
                 class_weights: Sequence[float] | torch.Tensor | None = None, smooth: float = 1e-5,
                 reduce_batch: bool = False, absent: str = "smooth", include_background: bool = True,
                 ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """``ce_weight * CE + dice_weight * soft Dice``: the usual robust default for segmentation.

    CE gives every pixel a well-scaled gradient from the first step; Dice keeps the rare class from
    being drowned by the background. The defaults follow MONAI's ``DiceCELoss``.

    Args:
        logits: (N, C, H, W) float. target: (N, H, W) int64.
        ce_weight, dice_weight: the two coefficients (MONAI's ``lambda_ce``, ``lambda_dice``).
        class_weights: optional (C,) weights of the CE term.
        smooth, reduce_batch, absent, include_background: the Dice term's options (see :func:`dice_loss`).
        ignore_index: pixels ignored by both terms.

    Returns:
        A scalar tensor (0 with a zero gradient when every pixel is ignored, like each term).

    Reference convention:
        defaults == ``monai.losses.DiceCELoss(softmax=True, to_onehot_y=True)`` (``smooth_nr = smooth_dr = 1e-5``,
        ``batch=False``) on ``target[:, None]`` when no pixel is ignored.
    """
    if ce_weight < 0 or dice_weight < 0:
        raise ValueError(f"ce_dice_loss: ce_weight and dice_weight must be >= 0, got {ce_weight}, {dice_weight}")
    ce = cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index)
    dice = dice_loss(logits, target, smooth=smooth, reduce_batch=reduce_batch, absent=absent,
                     include_background=include_background, ignore_index=ignore_index)
    return ce_weight * ce + dice_weight * dice
