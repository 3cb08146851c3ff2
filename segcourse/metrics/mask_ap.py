"""COCO-style instance mask average precision (AP), written out in plain numpy.

For every class and every IoU threshold t in 0.50:0.05:0.95, the detections of all images
are sorted by score; going down the list, a detection is a true positive when it overlaps a
not-yet-matched ground-truth instance of its class in the same image with mask IoU >= t
(the best such instance is taken), else a false positive. Precision is made monotone
(the "interpolated" envelope) and read at the 101 recall points 0, 0.01, ..., 1; AP is
their mean. ``map`` averages over thresholds and classes.

This follows ``pycocotools.cocoeval.COCOeval(iouType="segm")`` step for step (area range
"all", at most 100 detections per image, no crowd annotations), so the numbers are equal:

* detections on an image with no ground truth of their class are false positives (a re-implementation
  that skips images without ground truth flatters the detector; pycocotools is the reference);
* a class with ground truth but no detections has AP 0; a class with no ground truth anywhere
  is left out of the means (pycocotools marks it -1; we return NaN for it);
* ties in score keep input order (stable sort), per image and then across images in image order.

Deliberate difference: when there is no ground truth at all, pycocotools reports -1; we return
NaN (a number that cannot be mistaken for a score).

References:
    * Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014,
      https://arxiv.org/abs/1405.0312
    * He et al., "Mask R-CNN", ICCV 2017, https://arxiv.org/abs/1703.06870
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["mask_ap", "mask_iou_matrix"]

#: COCO's IoU thresholds 0.50, 0.55, ..., 0.95 (same linspace as pycocotools, same float values).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: COCO's recall points 0, 0.01, ..., 1.
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETECTIONS = 100


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def mask_iou_matrix(masks_a: Any, masks_b: Any) -> np.ndarray:
    """Pairwise IoU of two stacks of binary masks.

    Args:
        masks_a: ``(N, H, W)`` bool; masks_b: ``(M, H, W)`` bool.

    Returns:
        ``(N, M)`` float64; 0 where the union is empty.
    """
    a = _np(masks_a).astype(bool).reshape(len(masks_a), -1)
    b = _np(masks_b).astype(bool).reshape(len(masks_b), -1)
    if a.shape[1:] != b.shape[1:] and len(a) and len(b):
        raise ValueError(f"masks must have the same (H, W), got {_np(masks_a).shape} and {_np(masks_b).shape}")
    inter = a.astype(np.float64) @ b.T.astype(np.float64)
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _check_entry(entry: Any, i: int, what: str, keys: Sequence[str],
                 mask_threshold: float | None = None) -> dict[str, np.ndarray]:
    if not isinstance(entry, dict):
        raise TypeError(f"{what}[{i}] must be a dict with keys {list(keys)}, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise ValueError(f"{what}[{i}] is missing key(s) {missing}; expected {list(keys)} (torchvision's format)")
    out = {k: _np(entry[k]) for k in keys}
    masks = out["masks"]
    if masks.ndim == 4 and masks.shape[1] == 1:  # torchvision Mask R-CNN gives (N, 1, H, W)
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise ValueError(f"{what}[{i}]['masks'] must be (N, H, W) bool, got shape {masks.shape}")
    if np.issubdtype(masks.dtype, np.floating) and len(masks):  # an empty (0, H, W) stack may have any dtype
        if what == "target":
            raise ValueError(f"{what}[{i}]['masks'] must be binary (bool or uint8 0/1), got {masks.dtype}; "
                             "ground truth is never soft")
        if mask_threshold is None:
            raise ValueError(f"{what}[{i}]['masks'] must be bool (threshold soft masks first, e.g. > 0.5, "
                             f"or pass mask_threshold=0.5), got {masks.dtype}")
        masks = masks > mask_threshold
    out["masks"] = masks.astype(bool)
    n = len(masks)
    for k in keys:
        if k != "masks" and out[k].shape != (n,):
            raise ValueError(f"{what}[{i}]['{k}'] must have shape ({n},) to match {n} masks, got {out[k].shape}")
    if np.issubdtype(out["labels"].dtype, np.floating):
        raise ValueError(f"{what}[{i}]['labels'] must be integer class ids, got {out['labels'].dtype}")
    return out


def mask_ap(pred: Sequence[dict], target: Sequence[dict], *,
            mask_threshold: float | None = None) -> dict[str, Any]:
    """COCO mask AP of instance predictions over a dataset.

    Args:
        pred: the predictions, one dict per image: ``"masks"`` (N, H, W) bool (or (N, 1, H, W)),
            ``"scores"`` (N,) float, ``"labels"`` (N,) int — torchvision's Mask R-CNN output
            format. Soft (floating) masks, such as Mask R-CNN's ``(N, 1, H, W)`` probabilities, are
            refused unless ``mask_threshold`` is given.
        target: the ground truth, one dict per image: ``"masks"`` (M, H, W) bool or uint8 (0/1), ``"labels"`` (M,) int --
            torchvision's target format. An empty ``(0, H, W)`` stack may have any dtype.
        mask_threshold: binarise floating prediction masks as ``mask > mask_threshold``; ``0.5`` is
            the threshold torchvision's reference scripts use for Mask R-CNN's probabilities. ``None``
            (the default) refuses soft masks with a message, so a threshold is always a stated choice.

    Returns:
        dict with ``map`` (mean over IoU 0.50:0.05:0.95 and classes), ``map_50``, ``map_75``
        (floats; NaN when there is no ground truth at all) and ``map_per_class``
        (``{label: AP}`` for every label seen in targets or predictions; NaN for labels with no
        ground truth).

    Raises:
        ValueError / TypeError: different numbers of images, missing keys, mismatched sizes,
        soft masks.

    References:
        Equals ``pycocotools`` ``COCOeval(iouType="segm")`` stats[0], [1], [2] and the per-class
        mean of its ``precision`` array (checked in the tests). https://arxiv.org/abs/1405.0312
    """
    if len(pred) != len(target):
        raise ValueError(f"pred and target must have one entry per image, got {len(pred)} and {len(target)}")
    preds = [_check_entry(p, i, "pred", ("masks", "scores", "labels"), mask_threshold) for i, p in enumerate(pred)]
    gts = [_check_entry(t, i, "target", ("masks", "labels")) for i, t in enumerate(target)]
    for i, (p, g) in enumerate(zip(preds, gts)):
        if len(p["masks"]) and len(g["masks"]) and p["masks"].shape[1:] != g["masks"].shape[1:]:
            raise ValueError(f"image {i}: prediction masks {p['masks'].shape[1:]} and target masks "
                             f"{g['masks'].shape[1:]} differ in size")
    labels = sorted({int(x) for e in preds + gts for x in e["labels"]})
    T, R = len(IOU_THRESHOLDS), len(RECALL_POINTS)
    precision = -np.ones((T, R, len(labels)))

    for k, label in enumerate(labels):
        scores_all, matched_all = [], []  # per image, in image order
        num_gt = 0
        for p, g in zip(preds, gts):
            gt_masks = g["masks"][g["labels"] == label]
            sel = np.nonzero(p["labels"] == label)[0]
            order = sel[np.argsort(-p["scores"][sel], kind="mergesort")][:MAX_DETECTIONS]
            num_gt += len(gt_masks)
            if len(order) == 0:
                continue
            ious = mask_iou_matrix(p["masks"][order], gt_masks) if len(gt_masks) else np.zeros((len(order), 0))
            matched = np.zeros((T, len(order)), bool)
            for ti, thr in enumerate(IOU_THRESHOLDS):
                gt_taken = np.zeros(len(gt_masks), bool)
                for di in range(len(order)):
                    best, best_iou = -1, min(thr, 1 - 1e-10)
                    for gi in range(len(gt_masks)):
                        if gt_taken[gi] or ious[di, gi] < best_iou:
                            continue
                        best, best_iou = gi, ious[di, gi]
                    if best >= 0:
                        gt_taken[best] = True
                        matched[ti, di] = True
            scores_all.append(p["scores"][order])
            matched_all.append(matched)
        if num_gt == 0:
            continue  # AP undefined for this class (pycocotools: -1)
        if not scores_all:
            precision[:, :, k] = 0.0
            continue
        scores = np.concatenate(scores_all)
        matched = np.concatenate(matched_all, axis=1)
        order = np.argsort(-scores, kind="mergesort")
        tp = np.cumsum(matched[:, order], axis=1, dtype=np.float64)
        fp = np.cumsum(~matched[:, order], axis=1, dtype=np.float64)
        for ti in range(T):
            recall = tp[ti] / num_gt
            prec = tp[ti] / (tp[ti] + fp[ti] + np.spacing(1))
            prec = np.maximum.accumulate(prec[::-1])[::-1]  # monotone envelope
            idx = np.searchsorted(recall, RECALL_POINTS, side="left")
            q = np.zeros(R)
            ok = idx < len(prec)
            q[ok] = prec[idx[ok]]
            precision[ti, :, k] = q

    def mean_valid(x: np.ndarray) -> float:
        valid = x[x > -1]
        return float(valid.mean()) if valid.size else math.nan

    return {
        "map": mean_valid(precision),
        "map_50": mean_valid(precision[0]),
        "map_75": mean_valid(precision[5]),
        "map_per_class": {label: mean_valid(precision[:, :, k]) for k, label in enumerate(labels)},
    }
