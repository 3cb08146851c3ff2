"""Pixel-wise cross-entropy losses: CE with class weights, BCE-with-logits, OHEM, and class weights from data.

Cross-entropy treats every pixel as an independent classification; the loss is the mean
over pixels of ``-log p_t`` (``p_t`` the softmax probability of the true class). On an
imbalanced set the majority class dominates that mean; two classic answers live here:

* **class weights** computed once from the *training set* (not from each batch, as one of the
  course's source articles does: batch-wise weights jump from step to step and are infinite
  for a class missing from the batch): :func:`inverse_frequency_weights` and
  :func:`median_frequency_weights` (Eigen & Fergus 2015);
* **OHEM** (online hard example mining, Shrivastava et al. 2016): average only the hardest pixels.

References:
    D. Eigen, R. Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a Common
    Multi-Scale Convolutional Architecture", ICCV 2015, https://arxiv.org/abs/1411.4734
    (median frequency balancing).
    A. Shrivastava, A. Gupta, R. Girshick, "Training Region-based Object Detectors with Online
    Hard Example Mining", CVPR 2016, https://arxiv.org/abs/1604.03540
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..constants import IGNORE_INDEX
from ..data.stats import class_statistics
from ._checks import check_binary, check_multiclass, check_reduction, reduce_masked


def _as_weight(weight, logits: torch.Tensor, name: str) -> torch.Tensor | None:
    if weight is None:
        return None
    weight = torch.as_tensor(weight, dtype=logits.dtype, device=logits.device)
    if weight.ndim != 1 or weight.numel() != logits.shape[1]:
        raise ValueError(f"{name}: weight must hold one value per class ({logits.shape[1]}), got shape {tuple(weight.shape)}")
    if (weight < 0).any():
        raise ValueError(f"{name}: class weights must be >= 0, got {weight.tolist()}")
    return weight


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, weight: Sequence[float] | torch.Tensor | None = None,
                  ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Softmax cross-entropy per pixel, optionally class-weighted.

    ``loss_i = -w[t_i] log softmax(logits_i)[t_i]``; with ``reduction="mean"`` the sum is divided by
    the sum of the weights of the non-ignored pixels (PyTorch's convention for weighted CE), so a
    uniform weight vector leaves the loss unchanged.

    Args:
        logits: (N, C, H, W) float, raw scores.
        target: (N, H, W) int64 class ids in ``[0, C)`` or ``ignore_index``.
        weight: (C,) class weights, e.g. from :func:`inverse_frequency_weights`; ``None`` for plain CE.
        ignore_index: label of pixels that contribute nothing.
        label_smoothing: as in :func:`torch.nn.functional.cross_entropy`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N, H, W)``, zero at ignored pixels).

    Returns:
        A scalar tensor (or ``(N, H, W)`` with ``reduction="none"``). When no pixel counts (every
        pixel ignored, or every kept pixel has class weight 0) the mean is 0 with a zero gradient,
        the policy of every loss in :mod:`segcourse.losses` (PyTorch returns NaN, 0/0, there).

    Raises:
        TypeError / ValueError: see :func:`segcourse.losses._checks.check_multiclass`; a weight of the wrong length.

    Reference:
        Equals ``torch.nn.functional.cross_entropy(logits, target, weight, ignore_index=...)``, which it calls
        after checking the arguments, whenever at least one pixel counts.
    """
    valid = check_multiclass(logits, target, ignore_index, "cross_entropy")
    check_reduction(reduction, name="cross_entropy")
    w = _as_weight(weight, logits, "cross_entropy")
    if reduction == "mean":
        counted = float(w[target[valid]].sum()) if w is not None else int(valid.sum())
        if counted == 0:
            return logits.sum() * 0.0  # nothing to average: 0 with a zero gradient, not 0/0 = NaN
    return F.cross_entropy(logits, target, weight=w, ignore_index=ignore_index,
                           label_smoothing=label_smoothing, reduction=reduction)


def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, pos_weight: float | None = None,
                         ignore_index: int = IGNORE_INDEX, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy on one sigmoid channel: ``-[y log s(x) + (1 - y) log(1 - s(x))]``.

    Computed from the logits (``log-sum-exp`` form), never as ``sigmoid`` then ``log``, which
    overflows to ``inf`` for confident wrong pixels.

    Args:
        logits: (N, 1, H, W) float.
        target: (N, H, W) or (N, 1, H, W), values in [0, 1] (soft labels allowed) or ``ignore_index``.
        pos_weight: multiplies the loss of the positive term (``> 1`` raises recall of the foreground).
        ignore_index: pixels with this target value contribute nothing; the mean is over the others.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N, 1, H, W)``, zero at ignored pixels).

    Returns:
        A scalar tensor (or ``(N, 1, H, W)``).

    Reference:
        Equals ``torch.nn.BCEWithLogitsLoss(pos_weight=...)`` on the non-ignored pixels.
    """
    check_reduction(reduction, name="binary_cross_entropy")
    target, valid = check_binary(logits, target, ignore_index, "binary_cross_entropy", soft=True)
    pw = None if pos_weight is None else torch.tensor([float(pos_weight)], dtype=logits.dtype, device=logits.device)
    loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")
    return reduce_masked(loss, valid, reduction)


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, keep_ratio: float = 0.25, min_kept: int = 0,
                       weight: Sequence[float] | torch.Tensor | None = None,
                       ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy averaged over the hardest pixels only (online hard example mining).

    The per-pixel CE of the non-ignored pixels is sorted and the mean of the largest
    ``k = min(n_valid, max(min_kept, ceil(keep_ratio * n_valid)))`` values is returned. Easy pixels
    (most of the background) get no gradient at all. Ignored pixels are removed *before* counting,
    so they can neither be selected nor shrink ``k`` (the source article's version counted them).

    Args:
        logits: (N, C, H, W) float.
        target: (N, H, W) int64.
        keep_ratio: fraction of the valid pixels kept, in (0, 1]; 1 gives plain CE.
        min_kept: keep at least this many pixels (when that many are valid).
        weight: optional (C,) class weights, applied to the per-pixel losses before ranking;
            the result is then the plain mean of the kept weighted losses.
        ignore_index: label that contributes nothing.

    Returns:
        A scalar tensor (0 with a zero gradient when every pixel is ignored).

    Raises:
        ValueError: ``keep_ratio`` not in (0, 1] or ``min_kept < 0``.

    Reference:
        Shrivastava et al. 2016, https://arxiv.org/abs/1604.03540 (for detection); the pixel-wise
        top-k form used by segmentation codebases. With ``keep_ratio=1`` (and no weight) it equals
        ``F.cross_entropy(..., ignore_index=...)``.
    """
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"ohem_cross_entropy: keep_ratio must be in (0, 1], got {keep_ratio}")
    if min_kept < 0:
        raise ValueError(f"ohem_cross_entropy: min_kept must be >= 0, got {min_kept}")
    valid = check_multiclass(logits, target, ignore_index, "ohem_cross_entropy")
    w = _as_weight(weight, logits, "ohem_cross_entropy")
    per_pixel = F.cross_entropy(logits, target, weight=w, ignore_index=ignore_index, reduction="none")
    losses = per_pixel[valid]
    n_valid = losses.numel()
    if n_valid == 0:
        return logits.sum() * 0.0
    k = min(n_valid, max(int(min_kept), math.ceil(keep_ratio * n_valid)))
    hardest, _ = torch.topk(losses, k)
    return hardest.mean()


# --------------------------------------------------------------------------- class weights from data


def inverse_frequency_weights(source, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Class weights ``w_c = n / (K * n_c)`` from a dataset's pixel counts.

    ``n`` is the number of labelled pixels, ``n_c`` that of class ``c`` and ``K`` the number of classes that
    occur (usually C); a perfectly balanced dataset
    gives all ones, and a class with 5 % of the pixels in a 2-class set gets ``1 / (2 * 0.05) = 10``
    (the same "balanced" heuristic as scikit-learn's ``compute_class_weight``). A class that never
    occurs gets weight 0 (it has no pixels to weight; stated rather than dividing by zero).

    Args:
        source: masks as :func:`segcourse.data.stats.class_statistics` takes them (an array or tensor, a
            list, a Dataset or a DataLoader); compute the weights on the *training set*, once.
        num_classes: C.

    Returns:
        (C,) float32 tensor, to pass as ``weight=`` to :func:`cross_entropy`.
    """
    stats = class_statistics(source, num_classes, ignore_index=ignore_index)
    return torch.tensor(stats.inverse_frequency_weights(), dtype=torch.float32)


def median_frequency_weights(source, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Median frequency balancing (Eigen & Fergus 2015): ``w_c = median(freq) / freq_c``.

    ``freq_c = n_c / image_pixels_c``: pixels of class ``c`` divided by the total pixels of the images
    in which ``c`` is present (so a class that is rare *inside* the images where it occurs is boosted);
    the median is taken over the classes that occur. A class that never occurs gets weight 0.

    Args:
        source: as for :func:`inverse_frequency_weights`.
        num_classes: C.

    Returns:
        (C,) float32 tensor.

    Reference:
        https://arxiv.org/abs/1411.4734 (section 4.1), also used by SegNet (https://arxiv.org/abs/1511.00561).
    """
    stats = class_statistics(source, num_classes, ignore_index=ignore_index)
    return torch.tensor(stats.median_frequency_weights(), dtype=torch.float32)
