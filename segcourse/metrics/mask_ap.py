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

__all__ = ["COCO_AREA_RANGES", "box_iou_matrix", "mask_ap", "mask_iou_matrix"]

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
        if k == "boxes":
            if out[k].shape != (n, 4):
                raise ValueError(f"{what}[{i}]['boxes'] must have shape ({n}, 4) (xyxy) to match {n} masks, "
                                 f"got {out[k].shape}")
        elif k != "masks" and out[k].shape != (n,):
            raise ValueError(f"{what}[{i}]['{k}'] must have shape ({n},) to match {n} masks, got {out[k].shape}")
    if np.issubdtype(out["labels"].dtype, np.floating):
        raise ValueError(f"{what}[{i}]['labels'] must be integer class ids, got {out['labels'].dtype}")
    return out


def box_iou_matrix(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Pairwise IoU of two stacks of ``xyxy`` boxes with continuous edges (area ``(x2 - x1) * (y2 - y1)``).

    The convention of the course's targets (:mod:`segcourse.data.instances`: pixel ``i`` covers
    ``[i, i + 1)``) and of COCO: the box is COCO's ``bbox`` ``[x1, y1, x2 - x1, y2 - y1]`` (for a mask,
    pycocotools' ``toBbox``), and the IoU is pycocotools' ``iou`` of those ``xywh`` boxes.

    Args:
        boxes_a: ``(N, 4)``; boxes_b: ``(M, 4)``.

    Returns:
        ``(N, M)`` float64.
    """
    a = _np(boxes_a).astype(np.float64).reshape(-1, 4)
    b = _np(boxes_b).astype(np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


#: COCO's object-size ranges (pixels of area): small < 32^2 <= medium < 96^2 <= large.
COCO_AREA_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


def mask_ap(pred: Sequence[dict], target: Sequence[dict], *,
            mask_threshold: float | None = None, iou_type: str = "segm",
            area_ranges: dict[str, tuple[float, float]] | None = None, per_threshold: bool = False) -> dict[str, Any]:
    """COCO mask AP (or box AP) of instance predictions over a dataset.

    Args:
        pred: the predictions, one dict per image: ``"masks"`` (N, H, W) bool (or (N, 1, H, W)),
            ``"scores"`` (N,) float, ``"labels"`` (N,) int — torchvision's Mask R-CNN output
            format. Soft (floating) masks, such as Mask R-CNN's ``(N, 1, H, W)`` probabilities, are
            refused unless ``mask_threshold`` is given. With ``iou_type="bbox"`` also ``"boxes"`` (N, 4).
        target: the ground truth, one dict per image: ``"masks"`` (M, H, W) bool or uint8 (0/1), ``"labels"`` (M,) int --
            torchvision's target format (with ``"boxes"`` (M, 4) for ``iou_type="bbox"``). An empty
            ``(0, H, W)`` stack may have any dtype.
        mask_threshold: binarise floating prediction masks as ``mask > mask_threshold``; ``0.5`` is
            the threshold torchvision's reference scripts use for Mask R-CNN's probabilities. ``None``
            (the default) refuses soft masks with a message, so a threshold is always a stated choice.
        iou_type: ``"segm"`` (mask IoU) or ``"bbox"``: IoU of ``xyxy`` boxes with continuous edges (the
            course's targets; COCO's ``bbox``), see :func:`box_iou_matrix`.
        area_ranges: extra ``{name: (low, high)}`` object-size ranges in pixels of area (both ends
            included, as pycocotools); each adds ``map_<name>``. A ground-truth object outside the range
            (area = its mask's pixels) is ignored, a detection matched to it too, an unmatched detection
            outside the range (area = its mask's pixels, or ``w * h`` of its box for ``"bbox"``) is ignored:
            pycocotools' ``areaRng`` rule. :data:`COCO_AREA_RANGES` holds COCO's small/medium/large.
        per_threshold: also return ``map_per_iou``, ``{0.5: AP, 0.55: AP, ..., 0.95: AP}`` (each averaged
            over classes): where along the IoU axis a model loses its AP.

    Returns:
        dict with ``map`` (mean over IoU 0.50:0.05:0.95 and classes), ``map_50``, ``map_75``
        (floats; NaN when there is no ground truth at all), ``map_per_iou`` if ``per_threshold``,
        ``map_<name>`` for each area range, and
        ``map_per_class`` (``{label: AP}`` for every label seen in targets or predictions; NaN for
        labels with no ground truth).

    Ties in score are walked in image order (a stable sort), then the precision is made monotone:
    when many detections share one score (a method without scores), the AP depends on the order of
    the images -- give such a method a score, or report its precision and recall instead.

    Raises:
        ValueError / TypeError: different numbers of images, missing keys, mismatched sizes,
        soft masks, an unknown ``iou_type``.

    References:
        Equals ``pycocotools`` ``COCOeval(iouType="segm")`` (or ``"bbox"``) stats[0], [1], [2], its
        ``areaRng`` results and the per-class / per-threshold means of its ``precision`` array (checked
        in the tests). https://arxiv.org/abs/1405.0312
    """
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    if len(pred) != len(target):
        raise ValueError(f"pred and target must have one entry per image, got {len(pred)} and {len(target)}")
    extra = ("boxes",) if iou_type == "bbox" else ()
    preds = [_check_entry(p, i, "pred", ("masks", "scores", "labels") + extra, mask_threshold) for i, p in enumerate(pred)]
    gts = [_check_entry(t, i, "target", ("masks", "labels") + extra) for i, t in enumerate(target)]
    for i, (p, g) in enumerate(zip(preds, gts)):
        if len(p["masks"]) and len(g["masks"]) and p["masks"].shape[1:] != g["masks"].shape[1:]:
            raise ValueError(f"image {i}: prediction masks {p['masks'].shape[1:]} and target masks "
                             f"{g['masks'].shape[1:]} differ in size")
    labels = sorted({int(x) for e in preds + gts for x in e["labels"]})
    ranges = {"all": (0.0, 1e10), **(area_ranges or {})}
    precision = {name: _precision(preds, gts, labels, rng, iou_type) for name, rng in ranges.items()}

    def mean_valid(x: np.ndarray) -> float:
        valid = x[x > -1]
        return float(valid.mean()) if valid.size else math.nan

    p_all = precision["all"]
    out = {
        "map": mean_valid(p_all),
        "map_50": mean_valid(p_all[0]),
        "map_75": mean_valid(p_all[5]),
        "map_per_class": {label: mean_valid(p_all[:, :, k]) for k, label in enumerate(labels)},
    }
    if per_threshold:
        out["map_per_iou"] = {round(float(t), 2): mean_valid(p_all[ti]) for ti, t in enumerate(IOU_THRESHOLDS)}
    for name in area_ranges or {}:
        out[f"map_{name}"] = mean_valid(precision[name])
    return out


def _precision(preds: list[dict], gts: list[dict], labels: list[int], area_range: tuple[float, float],
               iou_type: str) -> np.ndarray:
    """pycocotools' ``evaluateImg`` + ``accumulate`` for one area range: ``(T, R, K)`` precision, -1 where undefined."""
    T, R = len(IOU_THRESHOLDS), len(RECALL_POINTS)
    lo, hi = area_range
    precision = -np.ones((T, R, len(labels)))
    for k, label in enumerate(labels):
        scores_all, matched_all, ignored_all = [], [], []  # per image, in image order
        num_gt = 0
        for p, g in zip(preds, gts):
            gsel = np.nonzero(g["labels"] == label)[0]
            gt_area = g["masks"][gsel].sum(axis=(1, 2)).astype(np.float64)
            gt_ignore = (gt_area < lo) | (gt_area > hi)
            gsel = gsel[np.argsort(gt_ignore, kind="mergesort")]          # not-ignored first, as pycocotools
            gt_ignore = np.sort(gt_ignore, kind="mergesort")
            sel = np.nonzero(p["labels"] == label)[0]
            order = sel[np.argsort(-p["scores"][sel], kind="mergesort")][:MAX_DETECTIONS]
            num_gt += int((~gt_ignore).sum())
            if len(order) == 0:
                continue
            if iou_type == "bbox":
                b = p["boxes"][order].astype(np.float64)
                dt_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
                ious = box_iou_matrix(b, g["boxes"][gsel])
            else:
                dt_area = p["masks"][order].sum(axis=(1, 2)).astype(np.float64)
                ious = mask_iou_matrix(p["masks"][order], g["masks"][gsel]) if len(gsel) else np.zeros((len(order), 0))
            matched = np.zeros((T, len(order)), bool)
            ignored = np.zeros((T, len(order)), bool)
            for ti, thr in enumerate(IOU_THRESHOLDS):
                gt_taken = np.zeros(len(gsel), bool)
                for di in range(len(order)):
                    best, best_iou = -1, min(thr, 1 - 1e-10)
                    for gi in range(len(gsel)):
                        if gt_taken[gi]:
                            continue
                        if best > -1 and not gt_ignore[best] and gt_ignore[gi]:
                            break  # a match with a counted object beats any ignored one
                        if ious[di, gi] < best_iou:
                            continue
                        best, best_iou = gi, ious[di, gi]
                    if best >= 0:
                        gt_taken[best] = True
                        matched[ti, di] = True
                        ignored[ti, di] = gt_ignore[best]
                    else:
                        ignored[ti, di] = dt_area[di] < lo or dt_area[di] > hi
            scores_all.append(p["scores"][order])
            matched_all.append(matched)
            ignored_all.append(ignored)
        if num_gt == 0:
            continue  # AP undefined for this class (pycocotools: -1)
        if not scores_all:
            precision[:, :, k] = 0.0
            continue
        scores = np.concatenate(scores_all)
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate(matched_all, axis=1)[:, order]
        ignored = np.concatenate(ignored_all, axis=1)[:, order]
        tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
        fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
        for ti in range(T):
            recall = tp[ti] / num_gt
            prec = tp[ti] / (tp[ti] + fp[ti] + np.spacing(1))
            prec = np.maximum.accumulate(prec[::-1])[::-1]  # monotone envelope
            idx = np.searchsorted(recall, RECALL_POINTS, side="left")
            q = np.zeros(R)
            ok = idx < len(prec)
            q[ok] = prec[idx[ok]]
            precision[ti, :, k] = q
    return precision
