"""The confusion matrix and every semantic-segmentation score derived from it.

A segmentation metric over a *dataset* is computed from one confusion matrix summed
over every pixel of every image, never by averaging per-image or per-batch scores
(a batch where a class is absent would otherwise vote with a meaningless 0 or 1, and
small batches would weigh as much as large ones). :class:`ConfusionMatrix` is that
streaming sum: O(C²) memory whatever the dataset size.

Convention (torchvision's ``references/segmentation`` and torchmetrics'
``MulticlassConfusionMatrix``): ``cm[t, p]`` counts pixels whose **target** class is
``t`` and whose **predicted** class is ``p``, so rows are targets and columns predictions.

References:
    * Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
      CVPR 2015, https://arxiv.org/abs/1411.4038 (section 5: pixel accuracy, mean accuracy,
      mean IU, frequency weighted IU).
    * Everingham et al., "The PASCAL Visual Object Classes Challenge: A Retrospective",
      IJCV 2015 (the dataset-level IoU of VOC).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._checks import check_int
from ..constants import IGNORE_INDEX

__all__ = ["ConfusionMatrix", "confusion_matrix", "logits_to_pred", "scores_from_confusion"]


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """A torch view of ``x`` (numpy arrays are wrapped without a copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == np.uint16 or x.dtype == np.uint32 or x.dtype == np.uint64:
            x = x.astype(np.int64)  # torch has limited support for wide unsigned types
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array of class ids, got {type(x).__name__}")


def _check_labels(x: torch.Tensor, name: str) -> None:
    if x.is_floating_point() or x.is_complex():
        raise ValueError(
            f"{name} must hold integer class ids (int64/uint8/bool), got dtype {x.dtype}; "
            f"for logits (N, C, H, W) use logits_to_pred(logits) (argmax over dim 1) first"
        )


def confusion_matrix(pred: Any, target: Any, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> torch.Tensor:
    """Count (target class, predicted class) pairs over all pixels with one ``bincount``.

    Args:
        pred: predicted class ids, any shape, e.g. ``(N, H, W)``; integer or bool dtype;
            a torch tensor (CPU or CUDA) or a numpy array.
        target: ground-truth class ids, same shape as ``pred``; integer or bool dtype.
        num_classes: ``C``, the number of classes; valid ids are ``0 .. C-1``.
        ignore_index: a target value whose pixels are left out entirely, whatever was predicted
            there; default ``segcourse.IGNORE_INDEX`` (255), as in every loss. ``None``: no ignore
            value, so a 255 in ``target`` is an error (pass ``None`` when 255 is a real class id, with
            more than 255 classes).

    Shapes:
        pred, target: ``(*)`` identical; returns ``(C, C)`` int64.

    Returns:
        ``cm`` (int64, on the device of the inputs; CPU for numpy input) with
        ``cm[t, p]`` = number of kept pixels of target class ``t`` predicted as ``p``
        (rows = target, columns = prediction, as torchvision/torchmetrics).

    Raises:
        TypeError: inputs are neither torch tensors nor numpy arrays.
        ValueError: shapes differ; a float dtype (pass class ids, not logits/probabilities);
            ``num_classes`` < 1; a target value outside ``[0, C)`` that is not ``ignore_index``;
            a predicted value outside ``[0, C)`` on a pixel that is not ignored.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, IGNORE_INDEX]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    num_classes = check_int(num_classes, "num_classes")
    num_classes = int(num_classes)
    pred_t = _as_tensor(pred, "pred")
    target_t = _as_tensor(target, "target")
    if pred_t.shape != target_t.shape:
        raise ValueError(
            f"pred and target must have the same shape (class ids per pixel), got pred {tuple(pred_t.shape)} "
            f"and target {tuple(target_t.shape)}; for logits (N, C, H, W) use logits_to_pred(logits) first"
        )
    if pred_t.device != target_t.device:
        raise ValueError(f"pred is on {pred_t.device} but target is on {target_t.device}; move both to one device")
    _check_labels(pred_t, "pred")
    _check_labels(target_t, "target")
    p = pred_t.reshape(-1)
    t = target_t.reshape(-1)
    if p.numel() == 0:
        return torch.zeros(num_classes, num_classes, dtype=torch.int64, device=p.device)
    if p.dtype == torch.bool:
        p = p.to(torch.uint8)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)

    # Pixels whose target is the ignore value are sent to an extra bin (index C*C) rather than
    # removed: boolean indexing copies both tensors and is the slowest step on large batches.
    keep = None
    if ignore_index is not None:
        keep = t != ignore_index
        if bool(keep.all()):
            keep = None
        elif not bool(keep.any()):
            return torch.zeros(num_classes, num_classes, dtype=torch.int64, device=p.device)

    def value_range(x: torch.Tensor) -> tuple[int, int]:
        lo, hi = torch.aminmax(x)
        if keep is not None and (int(lo) < 0 or int(hi) >= num_classes):
            lo, hi = torch.aminmax(torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device)))
        return int(lo), int(hi)

    t_min, t_max = value_range(t)
    if t_min < 0 or t_max >= num_classes:
        bad = t_min if t_min < 0 else t_max
        hint = "" if ignore_index is not None else " (pass ignore_index=segcourse.IGNORE_INDEX if it marks void pixels)"
        raise ValueError(
            f"target holds class id {bad}, expected ids in [0, {num_classes}) or ignore_index={ignore_index}{hint}"
        )
    p_min, p_max = value_range(p)
    if p_min < 0 or p_max >= num_classes:
        bad = p_min if p_min < 0 else p_max
        raise ValueError(f"pred holds class id {bad} on a non-ignored pixel, expected ids in [0, {num_classes})")

    # One pass: index = target * C + pred (int64), then a single bincount.
    index = torch.add(p, t.to(torch.int64), alpha=num_classes)
    bins = num_classes * num_classes
    if keep is None:
        return torch.bincount(index, minlength=bins).reshape(num_classes, num_classes)
    index = torch.where(keep, index, bins)
    return torch.bincount(index, minlength=bins + 1)[:bins].reshape(num_classes, num_classes)


def logits_to_pred(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Class ids from a network's output.

    Args:
        logits: ``(N, C, H, W)`` float with C >= 2 (argmax over dim 1), or ``(N, 1, H, W)``
            float for a binary network (``sigmoid(logits) > threshold``).
        threshold: probability threshold for the one-channel case.

    Returns:
        ``(N, H, W)`` int64 class ids.

    Raises:
        ValueError: ``logits`` is not 4-D float.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 4 or not logits.is_floating_point():
        got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a float tensor (N, C, H, W), got {got}")
    if logits.shape[1] == 1:
        return (torch.sigmoid(logits[:, 0]) > threshold).long()
    return logits.argmax(dim=1)


class ConfusionMatrix:
    """Streaming confusion matrix: sum over a whole dataset, then score once.

    The MONAI/torchmetrics pattern of a pure function beside a stateful accumulator::

        cm = ConfusionMatrix(num_classes=3, ignore_index=IGNORE_INDEX)
        for images, target in loader:
            cm.update(model(images).argmax(1), target)
        scores = cm.scores()          # from the pooled matrix, never per-batch averages

    Args:
        num_classes: ``C``.
        ignore_index: target value left out of the counts (default ``IGNORE_INDEX``; ``None``: none).

    Memory is O(C²) whatever the number of pixels; the matrix lives on the device of
    the first batch (int64).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> None:
        num_classes = check_int(num_classes, "num_classes")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self._cm: torch.Tensor | None = None

    def update(self, pred: Any, target: Any) -> ConfusionMatrix:
        """Add one batch: ``pred`` and ``target`` class ids of the same shape (see :func:`confusion_matrix`)."""
        batch = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        if self._cm is None:
            self._cm = batch
        else:
            self._cm += batch.to(self._cm.device)
        return self

    def compute(self) -> torch.Tensor:
        """The pooled ``(C, C)`` int64 matrix so far (a copy; zeros before any update)."""
        if self._cm is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        return self._cm.clone()

    def scores(self) -> dict[str, Any]:
        """:func:`scores_from_confusion` of the pooled matrix."""
        return scores_from_confusion(self.compute())

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._cm = None

    def __repr__(self) -> str:
        total = 0 if self._cm is None else int(self._cm.sum())
        return f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, pixels={total})"


def _nanmean(x: torch.Tensor) -> float:
    valid = ~torch.isnan(x)
    if not bool(valid.any()):
        return math.nan
    return float(x[valid].mean())


def scores_from_confusion(cm: Any) -> dict[str, Any]:
    """Every confusion-matrix score of semantic segmentation, from one pooled matrix.

    With ``TP_c = cm[c, c]``, ``FN_c = row_c - TP_c`` (target ``c`` predicted as
    something else), ``FP_c = col_c - TP_c``:

    * ``pixel_accuracy`` = Σ TP / Σ cm (float)
    * ``recall``  (per class) = TP / (TP + FN); NaN when the class has no target pixels
    * ``mean_accuracy`` = mean of ``recall`` over classes with target pixels (the FCN
      paper's "mean accuracy")
    * ``precision`` (per class) = TP / (TP + FP); NaN when the class is never predicted
    * ``iou`` (per class) = TP / (TP + FP + FN); ``dice`` (per class) = 2TP / (2TP + FP + FN),
      which is also the per-class F1 score; both NaN for a class absent from target **and**
      prediction. A class only in the prediction gets 0.
    * ``miou`` = mean of ``iou`` over non-NaN classes: equal to torchmetrics'
      ``MulticlassJaccardIndex(average="macro")`` on the same pooled data.
    * ``fwiou`` = Σ_c (target pixels of c / all pixels) · iou_c (frequency-weighted IoU, FCN paper)

    Args:
        cm: ``(C, C)`` integer counts, rows = target, columns = prediction (torch or numpy).

    Returns:
        dict with the keys above: scalars are Python floats (NaN for an empty matrix),
        per-class entries are ``(C,)`` float64 CPU tensors.

    Raises:
        ValueError: ``cm`` is not square 2-D or holds negative counts.

    References:
        Long et al., FCN, https://arxiv.org/abs/1411.4038 (section 5).
    """
    cm_t = _as_tensor(cm, "cm")
    if cm_t.ndim != 2 or cm_t.shape[0] != cm_t.shape[1]:
        raise ValueError(f"cm must be a square (C, C) matrix, got shape {tuple(cm_t.shape)}")
    cm_t = cm_t.detach().to("cpu", torch.float64)
    if bool((cm_t < 0).any()):
        raise ValueError("cm holds negative counts; expected a confusion matrix of pixel counts")
    tp = torch.diagonal(cm_t)
    support = cm_t.sum(dim=1)  # target pixels per class (TP + FN)
    predicted = cm_t.sum(dim=0)  # predicted pixels per class (TP + FP)
    total = support.sum()
    union = support + predicted - tp
    nan = torch.tensor(math.nan, dtype=torch.float64)

    recall = torch.where(support > 0, tp / support.clamp(min=1), nan)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), nan)
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    dice = torch.where(union > 0, 2 * tp / (support + predicted).clamp(min=1), nan)
    if float(total) > 0:
        pixel_accuracy = float(tp.sum() / total)
        freq = support / total
        fwiou = float((freq[support > 0] * iou[support > 0]).sum())
    else:
        pixel_accuracy = math.nan
        fwiou = math.nan
    return {
        "pixel_accuracy": pixel_accuracy,
        "mean_accuracy": _nanmean(recall),
        "iou": iou,
        "miou": _nanmean(iou),
        "fwiou": fwiou,
        "dice": dice,
        "precision": precision,
        "recall": recall,
    }
