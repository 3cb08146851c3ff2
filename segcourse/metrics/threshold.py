"""Binary foreground scores and the choice of a threshold on a probability map.

* :func:`binary_scores` -- TP/FP/FN/TN, precision, recall, IoU, Dice and pixel accuracy of one binary mask;
* :func:`threshold_sweep` -- the same scores at every threshold, from one sort of the probabilities;
* :func:`best_threshold` -- the threshold that maximises Dice or IoU (choose it on validation data).

Lesson 07's threshold explorer (:func:`segcourse.widgets.metrics.threshold_explorer`) is a thin user
interface over these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._checks import as_binary_mask

__all__ = ["best_threshold", "binary_scores", "threshold_sweep"]


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def binary_scores(pred: Any, target: Any) -> dict[str, float]:
    """Foreground scores of a binary prediction.

    Args:
        pred, target: bool / 0-1 masks of the same shape (any shape; pooled over all pixels).

    Returns:
        ``tp, fp, fn, tn`` (ints) and ``precision = TP/(TP+FP)``, ``recall = TP/(TP+FN)``,
        ``iou = TP/(TP+FP+FN)``, ``dice = 2TP/(2TP+FP+FN)``, ``pixel_accuracy``; NaN where the
        denominator is 0 (e.g. precision when nothing is predicted).
    """
    p, t = as_binary_mask(pred, "pred", ndim=None), as_binary_mask(target, "target", ndim=None)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(p.size - tp - fp - fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "iou": _ratio(tp, tp + fp + fn), "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "pixel_accuracy": _ratio(tp + tn, p.size)}


def threshold_sweep(probs: Any, target: Any, thresholds: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """Precision, recall, IoU and Dice of ``probs >= t`` for every threshold ``t``.

    One sort of the probabilities answers every threshold (no loop over thresholds).

    Args:
        probs: float probabilities in [0, 1], any shape; target: bool / 0-1 mask of the same shape.
        thresholds: increasing values in [0, 1]; default 0, 0.01, ..., 1.

    Returns:
        dict of ``(T,)`` float64 arrays: ``threshold``, ``precision``, ``recall``, ``iou``, ``dice``
        (NaN precision where nothing is predicted).
    """
    p = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    t = as_binary_mask(target, "target", ndim=None)
    if p.shape != t.shape:
        raise ValueError(f"probs and target must have the same shape, got {p.shape} and {t.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"probs must be float probabilities, got dtype {p.dtype}")
    thr = np.linspace(0, 1, 101) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    pos = np.sort(p[t].ravel())
    neg = np.sort(p[~t].ravel())
    tp = (pos.size - np.searchsorted(pos, thr, side="left")).astype(np.float64)  # # positives with p >= thr
    fp = (neg.size - np.searchsorted(neg, thr, side="left")).astype(np.float64)
    fn = pos.size - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(pos.size > 0, tp / max(pos.size, 1), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return {"threshold": thr, "precision": precision, "recall": recall, "iou": iou, "dice": dice}


def best_threshold(probs: Any, target: Any, metric: str = "dice",
                   thresholds: Sequence[float] | None = None) -> tuple[float, float]:
    """The threshold that maximises ``metric`` (``"dice"``, ``"iou"``) on this data: ``(threshold, value)``.

    Choose it on a validation set, never on the test set you report.
    """
    if metric not in ("dice", "iou"):
        raise ValueError(f"metric must be 'dice' or 'iou', got {metric!r}")
    sweep = threshold_sweep(probs, target, thresholds)
    values = np.nan_to_num(sweep[metric], nan=-1.0)
    i = int(np.argmax(values))
    return float(sweep["threshold"][i]), float(sweep[metric][i])
