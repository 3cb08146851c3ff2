"""An independent re-implementation of COCO panopticapi's PQ, for tests only.

Follows ``pq_compute_single_core`` and ``PQStat.pq_average`` of
https://github.com/cocodataset/panopticapi (``panopticapi/evaluation.py``), written here from its
published algorithm, not copied, and kept in its shape: an image is an integer *id map* (the PNG
after ``rgb2id``; id 0 = VOID, a pixel that belongs to no segment) plus a list of segment infos
``{"id", "category_id", "iscrowd"}`` (the JSON). Per image:

1. intersections of every (ground-truth id, predicted id) pair, void included;
2. a non-crowd ground-truth and a predicted segment of the same category match when
   IoU > 0.5, with union = |pred| + |gt| − inter − |pred ∩ ground-truth VOID|
   (only void *in the ground truth* leaves the union);
3. every unmatched non-crowd ground-truth segment is a FN (whatever covers it, predicted void too);
4. an unmatched predicted segment is a FP unless more than half of it lies on ground-truth VOID
   plus the crowd region of its category.

Per category over all images: PQ = ΣIoU / (TP + ½FP + ½FN), SQ = ΣIoU / TP (0 when TP = 0),
RQ = TP / (TP + ½FP + ½FN); a category with TP + FP + FN = 0 does not enter the means (when none
counts, panopticapi divides by zero; NaN here, as ``panoptic_quality``).

``from_maps`` turns the course's ``(H, W, 2)`` (category, instance) maps into that form: pixels of a
category in neither things nor stuffs become id 0 (VOID) and stuff instance ids are ignored.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

VOID = 0


def from_maps(pan: np.ndarray, things, stuffs) -> tuple[np.ndarray, list[dict]]:
    """``(H, W, 2)`` (category, instance) map -> (id map ``(H, W)`` int64, segments_info list)."""
    cat, inst = pan[..., 0].astype(np.int64), pan[..., 1].astype(np.int64)
    ids = np.zeros(cat.shape, np.int64)
    infos = []
    keys: dict[tuple[int, int], int] = {}
    for y, x in np.ndindex(cat.shape):
        c = int(cat[y, x])
        if c in stuffs:
            key = (c, 0)
        elif c in things:
            key = (c, int(inst[y, x]))
        else:
            continue  # void
        if key not in keys:
            keys[key] = len(keys) + 1
            infos.append({"id": keys[key], "category_id": c, "iscrowd": 0})
        ids[y, x] = keys[key]
    return ids, infos


def pq_image(gt_ids, gt_infos, pred_ids, pred_infos, stat) -> None:
    """Add one image's per-category ``iou``, ``tp``, ``fp``, ``fn`` into ``stat`` (a dict of dicts)."""
    gt_segs = {s["id"]: dict(s) for s in gt_infos}
    pred_segs = {s["id"]: dict(s) for s in pred_infos}
    for segs, ids in ((gt_segs, gt_ids), (pred_segs, pred_ids)):
        for sid in segs:
            segs[sid]["area"] = int((ids == sid).sum())
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for g, p in zip(gt_ids.ravel().tolist(), pred_ids.ravel().tolist()):
        pairs[(g, p)] += 1
    gt_hit, pred_hit = set(), set()
    for (g, p), inter in pairs.items():
        if g not in gt_segs or p not in pred_segs or gt_segs[g]["iscrowd"]:
            continue
        if gt_segs[g]["category_id"] != pred_segs[p]["category_id"]:
            continue
        union = pred_segs[p]["area"] + gt_segs[g]["area"] - inter - pairs.get((VOID, p), 0)
        if inter / union > 0.5:
            c = gt_segs[g]["category_id"]
            stat[c]["tp"] += 1
            stat[c]["iou"] += inter / union
            gt_hit.add(g)
            pred_hit.add(p)
    crowd_of = {}
    for g, info in gt_segs.items():
        if g in gt_hit:
            continue
        if info["iscrowd"]:
            crowd_of[info["category_id"]] = g
            continue
        stat[info["category_id"]]["fn"] += 1
    for p, info in pred_segs.items():
        if p in pred_hit:
            continue
        ignored = pairs.get((VOID, p), 0)
        if info["category_id"] in crowd_of:
            ignored += pairs.get((crowd_of[info["category_id"]], p), 0)
        if ignored / info["area"] > 0.5:
            continue
        stat[info["category_id"]]["fp"] += 1


def new_stat():
    return defaultdict(lambda: {"iou": 0.0, "tp": 0, "fp": 0, "fn": 0})


def pq_average(stat, categories: dict[int, bool], isthing=None) -> tuple[dict, dict]:
    """(``{"pq", "sq", "rq", "n"}``, per-class ``{c: {"pq", "sq", "rq"}}``); ``categories``: id -> isthing."""
    pq = sq = rq = 0.0
    n = 0
    per_class = {}
    for c, thing in categories.items():
        if isthing is not None and thing != isthing:
            continue
        s = stat[c]
        if s["tp"] + s["fp"] + s["fn"] == 0:
            per_class[c] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
            continue
        n += 1
        d = s["tp"] + 0.5 * s["fp"] + 0.5 * s["fn"]
        per_class[c] = {"pq": s["iou"] / d, "sq": s["iou"] / s["tp"] if s["tp"] else 0.0, "rq": s["tp"] / d}
        pq, sq, rq = pq + per_class[c]["pq"], sq + per_class[c]["sq"], rq + per_class[c]["rq"]
    return ({"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n} if n
            else {"pq": float("nan"), "sq": float("nan"), "rq": float("nan"), "n": 0}), per_class


def pq_compute(preds, targets, things, stuffs) -> tuple[dict, dict]:
    """panopticapi's results for a batch of ``(H, W, 2)`` maps: (``{"All", "Things", "Stuff"}``, stat)."""
    stat = new_stat()
    for p, t in zip(preds, targets):
        pq_image(*from_maps(t, things, stuffs), *from_maps(p, things, stuffs), stat)
    categories = {c: c in things for c in sorted(things) + sorted(stuffs)}
    results = {name: pq_average(stat, categories, isthing)[0]
               for name, isthing in (("All", None), ("Things", True), ("Stuff", False))}
    results["per_class"] = pq_average(stat, categories)[1]
    return results, stat
