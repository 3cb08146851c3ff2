"""Panoptic quality (PQ = SQ × RQ) of Kirillov et al., written out segment by segment.

A panoptic map gives every pixel a ``(category_id, instance_id)`` pair; a *segment* is the set
of pixels sharing one pair (stuff classes have a single segment per image: their instance id
is ignored). In each image, a predicted and a ground-truth segment of the same category
**match** when their IoU > 0.5 — at most one match per segment is then possible, so no
assignment algorithm is needed. Per category, over the whole dataset:

    SQ = (sum of IoUs of matched pairs) / TP             segmentation quality
    RQ = TP / (TP + ½ FP + ½ FN)                          recognition quality (an F1 score)
    PQ = SQ × RQ = (sum of IoUs) / (TP + ½ FP + ½ FN)

(FP and FN each appear **once**, with weight ½: writing ``TP + ½FP + ½FP`` or counting FP in
both halves is a classic bug.)

Void pixels: a ground-truth pixel whose category is in neither ``things`` nor ``stuffs`` is
*ground-truth void*; with ``allow_unknown_preds_category=True`` a predicted pixel of such a
category (a pixel the model left unassigned) is *predicted void*. Two conventions exist, chosen
by ``void_handling``:

``"panopticapi"`` (default; COCO's ``pq_compute``, the numbers papers report):
    only ground-truth void leaves the union: IoU = inter / (union − the predicted segment's pixels
    on ground-truth void); an unmatched ground-truth segment is a false negative **whatever covers
    it**, predicted void included; an unmatched predicted segment more than half on ground-truth
    void is not a false positive (panopticapi also excuses overlap with a *crowd* region of the
    same class; these maps carry no crowd flag, so that part does not arise).
``"torchmetrics"`` (``torchmetrics.detection.PanopticQuality``):
    the same, plus predicted void is treated like ground-truth void: predicted-void pixels also
    leave the union, and a ground-truth segment more than half covered by predicted void is not a
    false negative.

Why it matters: under ``"torchmetrics"`` a model that *abstains* (leaves an object void) is not
penalised for it — a car left entirely void is no FN, and a car half void, half right gets IoU 1.0
— so a model that leaves its hard objects unassigned scores a higher RQ, SQ and PQ than one that
tries and misses. Under ``"panopticapi"`` abstaining costs what missing costs. The two agree
whenever the prediction has no void.

Averages (both conventions, as panopticapi and torchmetrics): a category enters the mean when
``TP + ½FP + ½FN > 0``; SQ of a category with TP = 0 is 0. Stuff instance ids are ignored (one
segment per stuff class); unknown *predicted* categories are rejected unless
``allow_unknown_preds_category``.

References:
    Kirillov, He, Girshick, Rother, Dollár, "Panoptic Segmentation", CVPR 2019,
    https://arxiv.org/abs/1801.00868
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = ["VOID_HANDLING", "panoptic_quality", "panoptic_segments", "match_segments"]

VOID_HANDLING = ("panopticapi", "torchmetrics")
"""The two void conventions of :func:`panoptic_quality` (see the module docstring); the first is the default."""


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"panoptic maps must be numpy arrays or torch tensors, got {type(x).__name__}")
    return x


def _parse(things: Collection[int], stuffs: Collection[int]) -> tuple[list[int], list[int]]:
    things_s, stuffs_s = {int(t) for t in things}, {int(s) for s in stuffs}
    if things_s & stuffs_s:
        raise ValueError(f"things and stuffs must be disjoint, both contain {sorted(things_s & stuffs_s)}")
    if not things_s | stuffs_s:
        raise ValueError("at least one of things and stuffs must be non-empty")
    return sorted(things_s), sorted(stuffs_s)


def _check_void_handling(void_handling: str) -> bool:
    """True for torchmetrics' convention, False for panopticapi's; anything else raises."""
    if void_handling not in VOID_HANDLING:
        raise ValueError(f"void_handling must be one of {VOID_HANDLING}, got {void_handling!r}")
    return void_handling == "torchmetrics"


def _prepare(pred: Any, target: Any, things: list[int], stuffs: list[int],
             allow_unknown_preds_category: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    p, t = _np(pred), _np(target)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape (..., H, W, 2), got {p.shape} and {t.shape}")
    if p.ndim < 3 or p.shape[-1] != 2:
        raise ValueError(f"panoptic maps must be (..., H, W, 2) with (category_id, instance_id) last, got {p.shape}")
    if np.issubdtype(p.dtype, np.floating) or np.issubdtype(t.dtype, np.floating):
        raise ValueError(f"panoptic maps must hold integers, got {p.dtype} and {t.dtype}")
    known = np.array(things + stuffs)
    void_cat = 1 + max([0, *things, *stuffs])
    batch = p.reshape(-1, *p.shape[-3:]) if p.ndim >= 4 else p[None]
    tbatch = t.reshape(-1, *t.shape[-3:]) if t.ndim >= 4 else t[None]
    out = []
    for arr, is_pred in ((batch, True), (tbatch, False)):
        arr = arr.reshape(arr.shape[0], -1, 2).astype(np.int64).copy()
        cat = arr[..., 0]
        is_known = np.isin(cat, known)
        if is_pred and not allow_unknown_preds_category and not is_known.all():
            raise ValueError(f"pred holds category ids {sorted(set(np.unique(cat[~is_known]).tolist()))} that are in "
                             f"neither things {things} nor stuffs {stuffs}")
        arr[..., 1][np.isin(cat, stuffs)] = 0  # one segment per stuff class
        arr[~is_known] = (void_cat, 0)
        out.append(arr)
    return out[0], out[1], void_cat


def panoptic_segments(pred_img: np.ndarray, target_img: np.ndarray, void_cat: int) -> dict[str, Any]:
    """Segments, areas and pairwise intersections of one image's flattened ``(P, 2)`` maps."""
    pk, p_inv, p_area = np.unique(pred_img, axis=0, return_inverse=True, return_counts=True)
    tk, t_inv, t_area = np.unique(target_img, axis=0, return_inverse=True, return_counts=True)
    p_inv, t_inv = p_inv.reshape(-1), t_inv.reshape(-1)
    inter = np.zeros((len(pk), len(tk)), np.int64)
    np.add.at(inter, (p_inv, t_inv), 1)
    return {"pred_keys": pk, "target_keys": tk, "pred_area": p_area, "target_area": t_area, "inter": inter,
            "pred_void": pk[:, 0] == void_cat, "target_void": tk[:, 0] == void_cat}


def match_segments(pred: Any, target: Any, things: Collection[int], stuffs: Collection[int], *,
                   void_handling: str = "panopticapi",
                   allow_unknown_preds_category: bool = False) -> list[dict[str, Any]]:
    """Every same-category (pred, target) segment pair that overlaps, with its IoU and match verdict.

    Args:
        pred, target: ``(H, W, 2)`` panoptic maps of one image.
        things, stuffs: category ids.
        void_handling, allow_unknown_preds_category: as :func:`panoptic_quality`.

    Returns:
        list of dicts ``{"category", "pred_instance", "target_instance", "iou", "matched"}``,
        ``matched`` = IoU > 0.5 (void-corrected IoU, see the module docstring).
    """
    tm = _check_void_handling(void_handling)
    things_l, stuffs_l = _parse(things, stuffs)
    p, t, void_cat = _prepare(pred, target, things_l, stuffs_l, allow_unknown_preds_category)
    s = panoptic_segments(p[0], t[0], void_cat)
    return [dict(category=int(s["pred_keys"][i, 0]), pred_instance=int(s["pred_keys"][i, 1]),
                 target_instance=int(s["target_keys"][j, 1]), iou=iou, matched=iou > 0.5)
            for i, j, iou in _pair_ious(s, tm)]


def _pair_ious(s: dict[str, Any], torchmetrics_void: bool) -> list[tuple[int, int, float]]:
    """(pred row, target column, IoU) of every overlapping same-category pair of non-void segments.

    The union drops the predicted segment's pixels on ground-truth void (both conventions) and, with
    ``torchmetrics_void``, also the target segment's pixels on predicted void.
    """
    pk, tk, inter = s["pred_keys"], s["target_keys"], s["inter"]
    void_cols = np.nonzero(s["target_void"])[0]
    void_rows = np.nonzero(s["pred_void"])[0]
    out = []
    for i, j in zip(*np.nonzero(inter)):
        if s["target_void"][j] or s["pred_void"][i] or pk[i, 0] != tk[j, 0]:
            continue
        pred_void = inter[i, void_cols].sum() if len(void_cols) else 0
        void_target = inter[void_rows, j].sum() if torchmetrics_void and len(void_rows) else 0
        union = s["pred_area"][i] - pred_void + s["target_area"][j] - void_target - inter[i, j]
        out.append((int(i), int(j), float(inter[i, j] / union)))
    return out


def panoptic_quality(pred: Any, target: Any, things: Collection[int], stuffs: Collection[int], *,
                     allow_unknown_preds_category: bool = False,
                     void_handling: str = "panopticapi") -> dict[str, Any]:
    """Panoptic quality over a batch of images (pooled per category, as the paper and panopticapi).

    Args:
        pred: ``(H, W, 2)`` or ``(B, H, W, 2)`` (any leading dims) integer map of
            (category_id, instance_id); every category must be in ``things`` or ``stuffs``.
        target: same shape; categories in neither set are void (e.g. 255).
        things: category ids of countable objects; stuffs: of amorphous regions.
        allow_unknown_preds_category: treat predicted categories in neither set as void predictions
            (e.g. the pixels a Mask2Former leaves unassigned) instead of raising, as torchmetrics' option
            of the same name (panopticapi's void prediction: pixels of id 0 in the PNG).
        void_handling: ``"panopticapi"`` (default: COCO's ``pq_compute``; predicted void costs like a
            miss) or ``"torchmetrics"`` (predicted void also leaves the union and excuses a false
            negative, which rewards abstaining). They differ only when the prediction holds void;
            see the module docstring.

    Returns:
        dict: ``pq``, ``sq``, ``rq`` (mean over categories with ``TP + ½FP + ½FN > 0``),
        ``pq_things``, ``sq_things``, ``rq_things``, ``pq_stuff``, ``sq_stuff``, ``rq_stuff``
        (NaN when no such category counts), and ``per_class``:
        ``{category: {"pq", "sq", "rq", "tp", "fp", "fn"}}`` for every category in things and stuffs.

    Raises:
        ValueError: shape mismatch, not (..., 2), float maps, overlapping things/stuffs,
            unknown predicted category, unknown ``void_handling``.

    References:
        https://arxiv.org/abs/1801.00868; ``"panopticapi"`` equals ``pq_compute`` of
        https://github.com/cocodataset/panopticapi (``panopticapi/evaluation.py``, crowd-free);
        ``"torchmetrics"`` equals ``torchmetrics.detection.PanopticQuality``
        (``return_sq_and_rq=True``, ``return_per_class=True``).
    """
    tm = _check_void_handling(void_handling)
    things_l, stuffs_l = _parse(things, stuffs)
    p, t, void_cat = _prepare(pred, target, things_l, stuffs_l, allow_unknown_preds_category)
    cats = things_l + stuffs_l
    idx = {c: k for k, c in enumerate(cats)}
    iou_sum = np.zeros(len(cats))
    tp = np.zeros(len(cats), np.int64)
    fp = np.zeros(len(cats), np.int64)
    fn = np.zeros(len(cats), np.int64)
    for pi, ti in zip(p, t):
        s = panoptic_segments(pi, ti, void_cat)
        pred_matched = np.zeros(len(s["pred_keys"]), bool)
        target_matched = np.zeros(len(s["target_keys"]), bool)
        for i, j, iou in _pair_ious(s, tm):
            if iou > 0.5:
                pred_matched[i] = target_matched[j] = True
                k = idx[int(s["target_keys"][j, 0])]
                iou_sum[k] += iou
                tp[k] += 1
        void_cols = np.nonzero(s["target_void"])[0]
        void_rows = np.nonzero(s["pred_void"])[0]
        for j in np.nonzero(~target_matched & ~s["target_void"])[0]:
            covered = s["inter"][void_rows, j].sum() if tm and len(void_rows) else 0
            if covered / s["target_area"][j] <= 0.5:
                fn[idx[int(s["target_keys"][j, 0])]] += 1
        for i in np.nonzero(~pred_matched & ~s["pred_void"])[0]:
            in_void = s["inter"][i, void_cols].sum() if len(void_cols) else 0
            if in_void / s["pred_area"][i] <= 0.5:
                fp[idx[int(s["pred_keys"][i, 0])]] += 1
    sq = np.where(tp > 0, iou_sum / np.maximum(tp, 1), 0.0)
    denom = tp + 0.5 * fp + 0.5 * fn
    rq = np.where(denom > 0, tp / np.where(denom > 0, denom, 1), 0.0)
    pq = sq * rq
    counted = denom > 0

    def avg(x: np.ndarray, subset: list[int]) -> float:
        sel = np.array([counted[idx[c]] for c in subset], bool) if subset else np.zeros(0, bool)
        vals = x[[idx[c] for c in subset]][sel] if subset else np.zeros(0)
        return float(vals.mean()) if vals.size else math.nan

    result: dict[str, Any] = {}
    for name, subset in (("", cats), ("_things", things_l), ("_stuff", stuffs_l)):
        result["pq" + name] = avg(pq, subset)
        result["sq" + name] = avg(sq, subset)
        result["rq" + name] = avg(rq, subset)
    result["per_class"] = {c: {"pq": float(pq[k]), "sq": float(sq[k]), "rq": float(rq[k]), "tp": int(tp[k]),
                               "fp": int(fp[k]), "fn": int(fn[k])} for c, k in idx.items()}
    return result
