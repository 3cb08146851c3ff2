"""Instance matching: which predicted object is which true object, and the F1 that follows.

A predicted instance and a ground-truth instance *match* when their IoU is at least
``iou_threshold``; each object is used at most once. Among one-to-one assignments the
matcher takes one with the most matched pairs and, among those, the largest total IoU
(the Hungarian algorithm on StarDist's cost ``-[IoU >= t] - IoU / (2 n)``).
Then ``TP`` = matched pairs, ``FP`` = unmatched predictions, ``FN`` = unmatched true
objects, and precision, recall and F1 follow. At ``iou_threshold >= 0.5`` the assignment
is unique anyway (an object can overlap only one other object by more than half of
their union), so the result is the same as greedy matching.

This is the convention of the cell-segmentation benchmarks (StarDist's ``matching``,
Cellpose's ``average_precision``: IoU ``>=`` threshold, one-to-one), the numbers lesson 01
uses to show that Otsu + connected components merges touching nuclei and a
watershed separates them.

Empty policy: with no true and no predicted objects precision = recall = F1 = 1
(nothing to find, nothing found); otherwise a ratio with a zero denominator is 0.

References:
    * U. Schmidt et al., "Cell Detection with Star-convex Polygons", MICCAI 2018 (StarDist).
      https://arxiv.org/abs/1806.03535
    * C. Stringer et al., "Cellpose: a generalist algorithm for cellular segmentation",
      Nature Methods 2021. https://doi.org/10.1038/s41592-020-01018-x
    * H. W. Kuhn, "The Hungarian method for the assignment problem", 1955.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["InstanceMatch", "instance_f1", "instance_iou_matrix", "match_instances"]


def _check_labels(labels, name: str) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor of shape (H, W), got {type(labels).__name__}")
    if labels.ndim != 2:
        raise ValueError(f"{name} must be an instance label map of shape (H, W), got shape {labels.shape}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must hold integer instance ids (0 = background), got dtype {labels.dtype}; "
                        f"label a boolean mask first (e.g. segcourse.classical.connected_components)")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} has negative ids (min {labels.min()}); ids must be 0 (background) or positive")
    return labels


def instance_iou_matrix(pred, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (predicted, true) instance pair.

    Args:
        pred: ``(H, W)`` integer instance ids, 0 = background.
        target: ``(H, W)`` integer instance ids, 0 = background.

    Returns:
        ``(iou, pred_ids, gt_ids)``: ``iou`` is ``(P, G)`` float64 where row ``i`` is
        ``pred_ids[i]`` and column ``j`` is ``gt_ids[j]`` (the ids present, ascending).

    Raises:
        ValueError / TypeError: shapes differ, non-integer or negative ids.
    """
    pred = _check_labels(pred, "pred")
    gt = _check_labels(target, "target")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {gt.shape}")
    pred_ids = np.unique(pred[pred > 0])
    gt_ids = np.unique(gt[gt > 0])
    # compact ids 0..P and 0..G (0 = background) so the contingency table stays small
    p = np.searchsorted(np.concatenate([[0], pred_ids]), pred.ravel())
    g = np.searchsorted(np.concatenate([[0], gt_ids]), gt.ravel())
    P, G = len(pred_ids) + 1, len(gt_ids) + 1
    table = np.bincount(p * G + g, minlength=P * G).reshape(P, G).astype(np.float64)  # (P+1, G+1) pixel counts
    pred_area = table.sum(axis=1)[1:, None]
    gt_area = table.sum(axis=0)[None, 1:]
    inter = table[1:, 1:]
    union = pred_area + gt_area - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou, pred_ids, gt_ids


@dataclass
class InstanceMatch:
    """The result of :func:`match_instances`.

    Attributes:
        pairs: ``[(pred_id, gt_id, iou), ...]`` matched pairs, sorted by ``gt_id``.
        unmatched_pred: predicted ids with no match (false positives).
        unmatched_gt: true ids with no match (false negatives).
        iou_threshold: the threshold used.
    """

    pairs: list[tuple[int, int, float]]
    unmatched_pred: list[int]
    unmatched_gt: list[int]
    iou_threshold: float
    num_pred: int = field(default=0)
    num_gt: int = field(default=0)

    @property
    def tp(self) -> int:
        return len(self.pairs)

    @property
    def fp(self) -> int:
        return len(self.unmatched_pred)

    @property
    def fn(self) -> int:
        return len(self.unmatched_gt)

    @property
    def precision(self) -> float:
        if self.num_pred == 0:
            return 1.0 if self.num_gt == 0 else 0.0
        return self.tp / self.num_pred

    @property
    def recall(self) -> float:
        if self.num_gt == 0:
            return 1.0 if self.num_pred == 0 else 0.0
        return self.tp / self.num_gt

    @property
    def f1(self) -> float:
        """``2 TP / (2 TP + FP + FN)`` (1 when both maps are empty)."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 1.0 if denominator == 0 else 2 * self.tp / denominator

    @property
    def mean_matched_iou(self) -> float:
        """Mean IoU of the matched pairs (0 when none): how well the found objects are outlined."""
        return float(np.mean([p[2] for p in self.pairs])) if self.pairs else 0.0


def match_instances(pred, target, iou_threshold: float = 0.5) -> InstanceMatch:
    """Match predicted to true instances one-to-one at ``IoU >= iou_threshold``.

    Args:
        pred: ``(H, W)`` integer instance ids (numpy or torch), 0 = background.
        target: ``(H, W)`` integer instance ids, 0 = background.
        iou_threshold: in ``(0, 1]``; 0.5 is the usual choice.

    Returns:
        An :class:`InstanceMatch` (pairs, unmatched ids, ``tp``/``fp``/``fn``, ``precision``,
        ``recall``, ``f1``).

    Raises:
        ValueError: the threshold is outside ``(0, 1]``, shapes differ, or ids are negative.
        TypeError: non-integer label maps (e.g. a boolean mask).

    Example:
        >>> gt = np.array([[1, 1, 0, 2, 2]])
        >>> pred = np.array([[1, 1, 1, 1, 1]])        # one blob covering both objects
        >>> m = match_instances(pred, gt)
        >>> m.tp, m.fp, m.fn                           # IoU 2/5 with each: no match
        (0, 1, 2)
    """
    from scipy.optimize import linear_sum_assignment

    if not (0 < float(iou_threshold) <= 1):
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    iou, pred_ids, gt_ids = instance_iou_matrix(pred, target)
    pairs = []
    if iou.size:
        eligible = iou >= iou_threshold
        # most pairs first; IoU / (2 n) < 1/2 in total only breaks ties between equally many pairs
        n = min(iou.shape)
        rows, cols = linear_sum_assignment(-eligible.astype(np.float64) - iou / (2 * n))
        pairs = [(int(pred_ids[r]), int(gt_ids[c]), float(iou[r, c])) for r, c in zip(rows, cols) if eligible[r, c]]
    pairs.sort(key=lambda t: t[1])
    matched_p = {p for p, _, _ in pairs}
    matched_g = {g for _, g, _ in pairs}
    return InstanceMatch(
        pairs=pairs,
        unmatched_pred=[int(i) for i in pred_ids if int(i) not in matched_p],
        unmatched_gt=[int(i) for i in gt_ids if int(i) not in matched_g],
        iou_threshold=float(iou_threshold),
        num_pred=len(pred_ids),
        num_gt=len(gt_ids),
    )


def instance_f1(pred, target, iou_threshold: float = 0.5) -> dict:
    """Precision, recall and F1 of instance detection at ``IoU >= iou_threshold``.

    Args: as :func:`match_instances`.

    Returns:
        ``{"precision", "recall", "f1", "tp", "fp", "fn", "pairs"}`` where ``pairs`` is the list of
        matched ``(pred_id, gt_id, iou)``; floats are Python floats.
    """
    m = match_instances(pred, target, iou_threshold)
    return {"precision": m.precision, "recall": m.recall, "f1": m.f1, "tp": m.tp, "fp": m.fp, "fn": m.fn,
            "pairs": m.pairs}
