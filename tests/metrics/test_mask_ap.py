"""mask_ap against pycocotools' COCOeval(iouType="segm") on the same data."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segcourse.metrics import mask_ap


def _coco_reference(preds, targets):
    """Run pycocotools on torchvision-format lists; returns (stats[:3], per-class AP)."""
    h, w = targets[0]["masks"].shape[1:]
    labels = sorted({int(x) for e in preds + targets for x in e["labels"]})
    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i, "height": h, "width": w})
        for m, lab in zip(t["masks"], t["labels"]):
            rle = mask_utils.encode(np.asfortranarray(np.asarray(m, np.uint8)))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab), "segmentation": rle,
                         "area": float(mask_utils.area(rle)), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
        for m, s, lab in zip(p["masks"], p["scores"], p["labels"]):
            rle = mask_utils.encode(np.asfortranarray(np.asarray(m, np.uint8)))
            dets.append({"image_id": i, "category_id": int(lab), "segmentation": rle, "score": float(s)})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in labels]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) area "all", maxDets 100
    per_class = {}
    for k, c in enumerate(ev.params.catIds):
        v = prec[:, :, k]
        per_class[c] = float(v[v > -1].mean()) if (v > -1).any() else math.nan
    return ev.stats[:3], per_class


def _random_dataset(seed, n_images=4, size=24):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    preds, targets = [], []
    for i in range(n_images):
        n_gt = int(rng.integers(0, 4)) if i else 0                  # image 0 has no ground truth
        gt_masks, gt_labels = [], []
        for _ in range(n_gt):
            cy, cx, r = rng.uniform(3, size - 3, 2).tolist() + [rng.uniform(2, 6)]
            gt_masks.append((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
            gt_labels.append(int(rng.integers(1, 4)))
        p_masks, p_labels = [], []
        for m, lab in zip(gt_masks, gt_labels):
            if rng.random() < 0.8:                                 # a detection near each object
                p_masks.append(np.roll(m, tuple(rng.integers(-2, 3, 2)), axis=(0, 1)))
                p_labels.append(lab if rng.random() < 0.85 else int(rng.integers(1, 4)))
        for _ in range(int(rng.integers(0, 3))):                    # false positives, also on image 0
            cy, cx, r = rng.uniform(3, size - 3, 2).tolist() + [rng.uniform(2, 5)]
            p_masks.append((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
            p_labels.append(int(rng.integers(1, 4)))
        scores = np.round(rng.random(len(p_masks)), 1)              # rounded: ties in score happen
        stack = lambda ms: np.stack(ms) if ms else np.zeros((0, size, size), bool)
        preds.append({"masks": torch.from_numpy(stack(p_masks)), "scores": torch.tensor(scores, dtype=torch.float32),
                      "labels": torch.tensor(p_labels, dtype=torch.int64)})
        targets.append({"masks": torch.from_numpy(stack(gt_masks)),
                        "labels": torch.tensor(gt_labels, dtype=torch.int64)})
    return preds, targets


@pytest.mark.parametrize("seed", range(8))
def test_matches_pycocotools(seed):
    preds, targets = _random_dataset(seed)
    # every fixed draw has detections and ground truth (pycocotools cannot load an empty result list)
    assert any(len(p["labels"]) for p in preds) and any(len(t["labels"]) for t in targets)
    stats, per_class = _coco_reference(preds, targets)
    got = mask_ap(preds, targets)
    for key, want in zip(("map", "map_50", "map_75"), stats):
        want = math.nan if want == -1 else want
        assert (math.isnan(got[key]) and math.isnan(want)) or got[key] == pytest.approx(want, abs=1e-12), key
    for c, want in per_class.items():
        assert (math.isnan(want) and math.isnan(got["map_per_class"][c])) or got["map_per_class"][c] == \
            pytest.approx(want, abs=1e-12)


def test_false_positive_on_image_without_ground_truth_counts():
    square = np.zeros((1, 10, 10), bool)
    square[0, 2:6, 2:6] = True
    empty = {"masks": np.zeros((0, 10, 10), bool), "labels": np.zeros(0, np.int64)}
    targets = [{"masks": square, "labels": np.array([1])}, empty]
    perfect = {"masks": square, "scores": np.array([0.5]), "labels": np.array([1])}
    fp = {"masks": square, "scores": np.array([0.9]), "labels": np.array([1])}  # higher score, wrong image
    # Without the FP: AP = 1. With it ranked first: precision 1/2 at recall 1 -> AP = 0.5 at every threshold.
    assert mask_ap([perfect, {**empty, "scores": np.zeros(0)}], targets)["map"] == pytest.approx(1.0)
    got = mask_ap([perfect, fp], targets)
    want_stats, _ = _coco_reference([perfect, fp], targets)
    assert got["map"] == pytest.approx(0.5, abs=1e-6) and got["map"] == pytest.approx(want_stats[0], abs=1e-12)


def test_no_detections_at_all_gives_zero():
    square = np.zeros((2, 10, 10), bool)
    square[0, 1:4, 1:4] = square[1, 5:9, 5:9] = True
    targets = [{"masks": square, "labels": np.array([1, 2])}]
    none = [{"masks": np.zeros((0, 10, 10), bool), "scores": np.zeros(0), "labels": np.zeros(0, np.int64)}]
    got = mask_ap(none, targets)
    assert got["map"] == 0.0 and got["map_per_class"] == {1: 0.0, 2: 0.0}


def test_no_ground_truth_at_all_is_nan():
    square = np.zeros((1, 10, 10), bool)
    square[0, 1:4, 1:4] = True
    got = mask_ap([{"masks": square, "scores": np.array([0.3]), "labels": np.array([1])}],
                  [{"masks": np.zeros((0, 10, 10), bool), "labels": np.zeros(0, np.int64)}])
    assert math.isnan(got["map"]) and math.isnan(got["map_per_class"][1])


def test_bad_input():
    t = [{"masks": np.zeros((1, 4, 4), bool), "labels": np.array([1])}]
    with pytest.raises(ValueError, match="one entry per image"):
        mask_ap([], t)
    with pytest.raises(ValueError, match="missing key"):
        mask_ap([{"masks": np.zeros((1, 4, 4), bool), "labels": np.array([1])}], t)
    with pytest.raises(ValueError, match="threshold soft masks"):
        mask_ap([{"masks": np.zeros((1, 4, 4)), "scores": np.array([1.0]), "labels": np.array([1])}], t)
    with pytest.raises(ValueError, match="shape"):
        mask_ap([{"masks": np.zeros((1, 4, 4), bool), "scores": np.array([1.0, 2.0]), "labels": np.array([1])}], t)


def test_touching_instances_and_single_pixel_objects_match_pycocotools():
    # two touching squares (share an edge) and a single-pixel object; the detector merges nothing but
    # shifts the right square onto the left one's border and finds the single pixel exactly.
    gt = np.zeros((3, 12, 12), bool)
    gt[0, 2:6, 2:6] = True
    gt[1, 2:6, 6:10] = True                         # touches instance 0
    gt[2, 9, 1] = True                              # one pixel
    det = np.zeros((4, 12, 12), bool)
    det[0, 2:6, 2:6] = True
    det[1, 2:6, 5:9] = True                         # overlaps both neighbours: IoU 12/20 with its own
    det[2, 9, 1] = True
    det[3, 2:6, 2:10] = True                        # one box over both touching objects
    preds = [{"masks": det, "scores": np.array([0.9, 0.8, 0.7, 0.95]), "labels": np.array([1, 1, 2, 1])}]
    targets = [{"masks": gt, "labels": np.array([1, 1, 2])}]
    stats, per_class = _coco_reference(preds, targets)
    got = mask_ap(preds, targets)
    assert [got["map"], got["map_50"], got["map_75"]] == pytest.approx(list(stats), abs=1e-12)
    assert got["map_per_class"] == pytest.approx(per_class, abs=1e-12)
