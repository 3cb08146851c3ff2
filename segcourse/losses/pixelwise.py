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
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..constants import IGNORE_INDEX
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


def _iter_masks(source) -> Iterable[np.ndarray]:
    """Yield (H, W) integer masks from an array, a tensor, or an iterable of masks / (image, mask) pairs / batches."""
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        if source.ndim == 2:
            yield source
            return
        if source.ndim < 2:
            raise ValueError(f"masks must be (H, W) or (N, H, W), got an array of shape {source.shape}")
        yield from source.reshape(-1, *source.shape[-2:])
        return
    try:
        iterator = iter(source)
    except TypeError:
        raise TypeError(f"expected masks as an array/tensor (N, H, W), a dataset or a DataLoader, got {type(source).__name__}") from None
    for item in iterator:
        if isinstance(item, (tuple, list)):
            if len(item) < 2:
                raise ValueError("a dataset item must be (image, mask): got a sequence of length < 2")
            item = item[1]
        elif isinstance(item, dict):
            if "mask" not in item:
                raise ValueError(f"a dataset item given as a dict needs a 'mask' key, got keys {sorted(item)}")
            item = item["mask"]
        yield from _iter_masks(item)


def class_pixel_counts(source, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Count the pixels of each class over a whole dataset.

    Args:
        source: masks as an (N, H, W) / (H, W) array or tensor, a list of masks, a Dataset
            returning ``(image, mask)``, or a DataLoader returning ``(images, masks)`` batches.
        num_classes: C.
        ignore_index: label that is not counted.

    Returns:
        ``(pixels, image_pixels)``, both (C,) int64: ``pixels[c]`` is the number of pixels of class ``c``;
        ``image_pixels[c]`` the number of (non-ignored) pixels of the images in which ``c`` occurs
        (what median frequency balancing divides by).

    Raises:
        ValueError: a mask holds a label outside ``[0, C)`` that is not ``ignore_index``, or no mask was found.
    """
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    seen = 0
    for mask in _iter_masks(source):
        mask = np.asarray(mask)
        if np.issubdtype(mask.dtype, np.floating):
            raise TypeError(f"masks must hold integer class ids, got dtype {mask.dtype}")
        labels = mask[mask != ignore_index].astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            bad = labels[(labels < 0) | (labels >= num_classes)][0]
            raise ValueError(f"mask holds label {bad}, outside [0, {num_classes}) and not the ignore_index ({ignore_index})")
        counts = np.bincount(labels, minlength=num_classes)
        pixels += counts
        image_pixels[counts > 0] += labels.size
        seen += 1
    if seen == 0:
        raise ValueError("no masks found in the source: it is empty")
    return pixels, image_pixels


def inverse_frequency_weights(source, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Class weights ``w_c = n / (K * n_c)`` from a dataset's pixel counts.

    ``n`` is the number of labelled pixels, ``n_c`` that of class ``c`` and ``K`` the number of classes that
    occur (usually C); a perfectly balanced dataset
    gives all ones, and a class with 5 % of the pixels in a 2-class set gets ``1 / (2 * 0.05) = 10``
    (the same "balanced" heuristic as scikit-learn's ``compute_class_weight``). A class that never
    occurs gets weight 0 (it has no pixels to weight; stated rather than dividing by zero).

    Args:
        source: see :func:`class_pixel_counts` (compute it on the *training set*, once).
        num_classes: C.

    Returns:
        (C,) float32 tensor, to pass as ``weight=`` to :func:`cross_entropy`.
    """
    pixels, _ = class_pixel_counts(source, num_classes, ignore_index=ignore_index)
    total = pixels.sum()
    present = int((pixels > 0).sum())
    weights = np.where(pixels > 0, total / (max(present, 1) * np.maximum(pixels, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def median_frequency_weights(source, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Median frequency balancing (Eigen & Fergus 2015): ``w_c = median(freq) / freq_c``.

    ``freq_c = n_c / image_pixels_c``: pixels of class ``c`` divided by the total pixels of the images
    in which ``c`` is present (so a class that is rare *inside* the images where it occurs is boosted);
    the median is taken over the classes that occur. A class that never occurs gets weight 0.

    Args:
        source: see :func:`class_pixel_counts`.
        num_classes: C.

    Returns:
        (C,) float32 tensor.

    Reference:
        https://arxiv.org/abs/1411.4734 (section 4.1), also used by SegNet (https://arxiv.org/abs/1511.00561).
    """
    pixels, image_pixels = class_pixel_counts(source, num_classes, ignore_index=ignore_index)
    present = pixels > 0
    freq = np.zeros(num_classes, dtype=np.float64)
    freq[present] = pixels[present] / image_pixels[present]
    median = np.median(freq[present]) if present.any() else 0.0
    weights = np.where(present, median / np.where(present, freq, 1.0), 0.0)
    return torch.tensor(weights, dtype=torch.float32)
