"""Per-case Dice: every class in every image scored on its own, with an explicit policy for empty cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..constants import IGNORE_INDEX

__all__ = ["per_case_dice"]


def per_case_dice(pred: Any, target: Any, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """Dice of every class in every image (case), with an explicit policy for empty cases.

    Medical segmentation usually reports the mean and spread of per-case Dice (Maier-Hein et al.,
    "Metrics reloaded", https://arxiv.org/abs/2206.01653): each case weighs the same, however many
    pixels it has. That is a different question from the pooled score of one dataset-wide confusion
    matrix, not an error; averaging per *batch* is the error (a batch is an accident of the loader).

    Policy: ``2|P ∩ T| / (|P| + |T|)``; **NaN** when class ``c`` is in neither the prediction nor the
    target of image ``n`` (nothing to score: leave it out with ``np.nanmean``); **0** when it is in
    exactly one of them (a missed class, or a false alarm on a case without it).

    Args:
        pred, target: ``(N, H, W)`` integer class ids (numpy or torch), the same shape.
        num_classes: C.
        ignore_index: target value whose pixels are left out (with whatever was predicted there).

    Returns:
        ``(N, C)`` float64 numpy array.

    References:
        Equals MONAI's ``compute_dice(one_hot(pred), one_hot(target), include_background=True,
        ignore_empty=False)`` except where both are empty (MONAI: 1; here NaN, as with
        ``ignore_empty=True``). MONAI's ``ignore_empty=True`` also gives NaN when only the *target*
        is empty, which hides false alarms; this policy scores them 0 (checked in the tests).
    """
    p = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    t = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"pred and target must both be (N, H, W), got {p.shape} and {t.shape}")
    keep = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    out = np.full((p.shape[0], num_classes), np.nan)
    for c in range(num_classes):
        pc, tc = (p == c) & keep, (t == c) & keep
        inter = (pc & tc).sum(axis=(1, 2))
        total = pc.sum(axis=(1, 2)) + tc.sum(axis=(1, 2))
        out[:, c] = np.where(total > 0, 2 * inter / np.maximum(total, 1), np.nan)
    return out
