"""panoptic_quality against panopticapi's pq_compute (re-implemented in panopticapi_reference.py, the
default convention) and against torchmetrics' PanopticQuality (``void_handling="torchmetrics"``).

Named cases (each checked against the reference as well as by its hand-computed counts): void in the
ground truth; a car left entirely void by the prediction; a car half void, half right; a prediction
mostly on ground-truth void; things and stuff together, crowd-free; several images pooled; and
random maps with void on both sides."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from segcourse.constants import IGNORE_INDEX
from segcourse.metrics import panoptic_quality
from segcourse.metrics.panoptic import VOID_HANDLING, match_segments

from . import panopticapi_reference as ref

THINGS, STUFFS = {1, 2}, {5, 6}
VOID = IGNORE_INDEX  # a category in neither set


def _reference(pred, target, allow_unknown=False):
    kw = dict(things=THINGS, stuffs=STUFFS, return_sq_and_rq=True, allow_unknown_preds_category=allow_unknown)
    pq = PanopticQuality(**kw, return_per_class=True)
    per_class = pq(torch.as_tensor(pred), torch.as_tensor(target))  # (1, K, 3) or (K, 3)
    pq_avg = PanopticQuality(**kw)
    overall = pq_avg(torch.as_tensor(pred), torch.as_tensor(target))
    return per_class.reshape(-1, 3).double(), overall.double(), pq


def _random_panoptic(seed, batch=3, size=20, pred_void=False):
    """Random stuff background + a few rectangular things; prediction = jittered target + noise.

    ``pred_void``: the prediction also leaves random pixels and a random rectangle void (category VOID),
    so the void conventions differ."""
    rng = np.random.default_rng(seed)
    target = np.zeros((batch, size, size, 2), np.int64)
    pred = np.zeros_like(target)
    for b in range(batch):
        target[b, ..., 0] = np.where(np.arange(size)[:, None] < rng.integers(4, 16), 5, 6)
        for inst in range(1, int(rng.integers(1, 5))):
            y, x = rng.integers(0, size - 4, 2)
            hh, ww = rng.integers(2, 8, 2)
            target[b, y:y + hh, x:x + ww] = (int(rng.integers(1, 3)), inst)  # touching/overlapping things
        pred[b] = np.roll(target[b], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        if rng.random() < 0.5:                                                # a spurious predicted thing
            y, x = rng.integers(0, size - 3, 2)
            pred[b, y:y + 3, x:x + 3] = (1, 9)
        target[b][rng.random((size, size)) < 0.05] = (VOID, 0)                 # void pixels
        if rng.random() < 0.5:
            target[b, :3, :3] = (VOID, 0)
        if pred_void:
            pred[b][rng.random((size, size)) < 0.1] = (VOID, 0)
            y, x = rng.integers(0, size - 6, 2)
            pred[b, y:y + int(rng.integers(2, 7)), x:x + int(rng.integers(2, 7))] = (VOID, 0)
    return pred, target


def _assert_equals_panopticapi(pred, target, things=THINGS, stuffs=STUFFS):
    """panoptic_quality (default) against the panopticapi re-implementation: counts, ΣIoU, every average."""
    got = panoptic_quality(pred, target, things, stuffs, allow_unknown_preds_category=True)
    want, stat = ref.pq_compute(pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *target.shape[-3:]),
                                set(things), set(stuffs))
    for c in sorted(things) + sorted(stuffs):
        pc = got["per_class"][c]
        assert (pc["tp"], pc["fp"], pc["fn"]) == (stat[c]["tp"], stat[c]["fp"], stat[c]["fn"]), c
        for k in ("pq", "sq", "rq"):
            assert pc[k] == pytest.approx(want["per_class"][c][k]), (c, k)
    for name, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        for k in ("pq", "sq", "rq"):
            assert got[k + suffix] == pytest.approx(want[name][k], nan_ok=True), (name, k)
    return got


@pytest.mark.parametrize("seed", range(12))
def test_matches_panopticapi_reference_on_random_maps_with_void_on_both_sides(seed):
    pred, target = _random_panoptic(seed, pred_void=True)
    got = _assert_equals_panopticapi(pred, target)
    assert not math.isnan(got["pq"])


@pytest.mark.parametrize("seed", range(6))
def test_torchmetrics_option_matches_torchmetrics_with_void_predictions(seed):
    pred, target = _random_panoptic(seed, pred_void=True)
    per_class_ref, overall_ref, _ = _reference(pred, target, allow_unknown=True)
    got = panoptic_quality(pred, target, THINGS, STUFFS, allow_unknown_preds_category=True,
                           void_handling="torchmetrics")
    cats = sorted(THINGS) + sorted(STUFFS)
    ours = torch.tensor([[got["per_class"][c][k] for k in ("pq", "sq", "rq")] for c in cats], dtype=torch.float64)
    torch.testing.assert_close(ours, per_class_ref)
    torch.testing.assert_close(torch.tensor([got["pq"], got["sq"], got["rq"]], dtype=torch.float64), overall_ref)


def _street_like():
    """One image: road (stuff 5) below, sky (stuff 6) above, car A (thing 1, 4x5) and car B (thing 1, 4x4)."""
    target = np.zeros((10, 16, 2), np.int64)
    target[..., 0] = 6
    target[5:, :, 0] = 5
    target[3:7, 1:6] = (1, 1)
    target[3:7, 9:13] = (1, 2)
    return target


def test_named_car_left_entirely_void_is_a_false_negative():
    target = _street_like()
    pred = target.copy()
    pred[3:7, 9:13] = (VOID, 0)                 # car B left unassigned
    got = _assert_equals_panopticapi(pred, target)
    assert (got["per_class"][1]["tp"], got["per_class"][1]["fn"]) == (1, 1)
    tm = panoptic_quality(pred, target, THINGS, STUFFS, allow_unknown_preds_category=True,
                          void_handling="torchmetrics")
    assert (tm["per_class"][1]["tp"], tm["per_class"][1]["fn"]) == (1, 0)   # abstaining forgiven
    assert tm["per_class"][1]["rq"] == 1.0 > got["per_class"][1]["rq"] == pytest.approx(1 / 1.5)


def test_named_half_void_car_is_not_a_perfect_match():
    target = _street_like()
    pred = target.copy()
    pred[3:7, 11:13] = (VOID, 0)                # right half of car B void, left half right
    pairs = match_segments(pred, target, THINGS, STUFFS, allow_unknown_preds_category=True)
    b = next(p for p in pairs if p["category"] == 1 and p["target_instance"] == 2)
    assert b["iou"] == pytest.approx(8 / 16) and not b["matched"]       # 8 / (8 + 16 − 8)
    got = _assert_equals_panopticapi(pred, target)
    assert (got["per_class"][1]["tp"], got["per_class"][1]["fp"], got["per_class"][1]["fn"]) == (1, 1, 1)
    tm_pairs = match_segments(pred, target, THINGS, STUFFS, allow_unknown_preds_category=True,
                              void_handling="torchmetrics")
    b_tm = next(p for p in tm_pairs if p["category"] == 1 and p["target_instance"] == 2)
    assert b_tm["iou"] == 1.0 and b_tm["matched"]                          # 8 / (8 + 16 − 8 − 8)


def test_named_void_in_truth_leaves_the_union_and_excuses_a_prediction_on_it():
    target = _street_like()
    target[3:7, 4:6] = (VOID, 0)                # right 2 columns of car A are void in the truth (A: 12 px)
    target[0:2, 13:16] = (VOID, 0)              # a void patch in the sky
    pred = _street_like()                       # predicts car A whole (20 px, 8 on truth void)
    pred[0:2, 13:16] = (2, 7)                   # a thing of class 2 sitting entirely on truth void
    pairs = match_segments(pred, target, THINGS, STUFFS)
    a = next(p for p in pairs if p["category"] == 1 and p["target_instance"] == 1)
    assert a["iou"] == 1.0                      # 12 / (20 + 12 − 12 − 8)
    got = _assert_equals_panopticapi(pred, target)
    assert got["per_class"][2]["fp"] == 0       # more than half on truth void: not a FP
    pred[0:3, 13:16] = (2, 7)                   # now 6 of 9 px on void (> half): still not a FP
    assert _assert_equals_panopticapi(pred, target)["per_class"][2]["fp"] == 0
    pred[0:5, 13:16] = (2, 7)                   # 6 of 15 on void (< half): a FP
    assert _assert_equals_panopticapi(pred, target)["per_class"][2]["fp"] == 1


def test_named_things_and_stuff_crowd_free_with_both_conventions_equal_without_predicted_void():
    target = _street_like()
    pred = target.copy()
    pred[3:5, 1:4] = (6, 0)                     # car A shrunk to 8 of its 20 px (IoU 0.4): FN + FP
    pred[5:7, 1:4] = (5, 0)
    pred[8:10, 14:16] = (2, 3)                  # a spurious class-2 thing on the road
    got = _assert_equals_panopticapi(pred, target)
    assert got["per_class"][5]["tp"] == got["per_class"][6]["tp"] == 1
    assert (got["per_class"][1]["tp"], got["per_class"][1]["fp"], got["per_class"][1]["fn"]) == (1, 1, 1)
    assert got["per_class"][2]["fp"] == 1 and not math.isnan(got["pq_stuff"])
    tm = panoptic_quality(pred, target, THINGS, STUFFS, void_handling="torchmetrics")
    assert {k: tm[k] for k in ("pq", "sq", "rq")} == {k: got[k] for k in ("pq", "sq", "rq")}


def test_named_several_images_pool_counts_per_category_before_averaging():
    target = np.stack([_street_like(), _street_like()])
    pred = target.copy()
    pred[0, 3:7, 9:13] = (VOID, 0)              # image 0: car B void (FN)
    pred[1, 3:5, 1], pred[1, 5:7, 1] = (6, 0), (5, 0)
    pred[1, 3:7, 2:7] = (1, 1)                  # image 1: car A one column right (IoU 16/24: TP)
    got = _assert_equals_panopticapi(pred, target)
    c1 = got["per_class"][1]
    assert (c1["tp"], c1["fp"], c1["fn"]) == (3, 0, 1)
    assert c1["pq"] == pytest.approx((1 + 1 + 16 / 24) / (3 + 0.5))   # pooled, not the mean of per-image PQs


def test_void_handling_is_checked():
    t = _street_like()
    with pytest.raises(ValueError, match="void_handling"):
        panoptic_quality(t, t, THINGS, STUFFS, void_handling="coco")
    assert VOID_HANDLING[0] == "panopticapi"


@pytest.mark.parametrize("seed", range(8))
def test_matches_torchmetrics(seed):
    pred, target = _random_panoptic(seed)
    per_class_ref, overall_ref, _ = _reference(pred, target)
    got = panoptic_quality(pred, target, THINGS, STUFFS, void_handling="torchmetrics")
    assert got == panoptic_quality(pred, target, THINGS, STUFFS)   # no predicted void: conventions agree
    cats = sorted(THINGS) + sorted(STUFFS)  # torchmetrics orders things then stuffs
    ours = torch.tensor([[got["per_class"][c][k] for k in ("pq", "sq", "rq")] for c in cats], dtype=torch.float64)
    torch.testing.assert_close(ours, per_class_ref)
    torch.testing.assert_close(torch.tensor([got["pq"], got["sq"], got["rq"]], dtype=torch.float64), overall_ref)
    # things/stuff split: the same mean over the categories of each group that count (TP + FP/2 + FN/2 > 0)
    for name, group in (("things", THINGS), ("stuff", STUFFS)):
        rows = [cats.index(c) for c in sorted(group)
                if got["per_class"][c]["tp"] + got["per_class"][c]["fp"] + got["per_class"][c]["fn"] > 0]
        want = per_class_ref[rows, 0].mean().item() if rows else math.nan
        assert got[f"pq_{name}"] == pytest.approx(want, nan_ok=True)


def test_hand_case_rq_counts_fp_and_fn_once():
    # target: thing 1 (instance 1) in the left half, stuff 5 elsewhere.
    # pred: thing 1 shifted by one column (IoU = 12/20 = 0.6 > 0.5: TP), plus a spurious thing (FP)
    # and no prediction of a second target thing (FN).
    target = np.zeros((6, 8, 2), np.int64)
    target[..., 0] = 5
    target[1:5, 1:4] = (1, 1)          # 12 pixels
    target[0:2, 6:8] = (2, 1)          # 4 pixels, missed -> FN for class 2
    pred = np.zeros_like(target)
    pred[..., 0] = 5
    pred[1:5, 2:5] = (1, 1)            # overlap 8, union 16 -> IoU 0.5 is NOT a match (needs > 0.5)
    got = panoptic_quality(pred, target, {1, 2}, {5})
    c1 = got["per_class"][1]
    assert (c1["tp"], c1["fp"], c1["fn"]) == (0, 1, 1) and c1["pq"] == 0.0
    pred[1:5, 1:4] = (1, 1)            # exact: IoU 1
    pred[1:5, 4] = (5, 0)
    pred[4:6, 5:8] = (1, 2)            # spurious thing (6 pixels)
    got = panoptic_quality(pred, target, {1, 2}, {5})
    c1 = got["per_class"][1]
    # class 1: TP 1, FP 1 -> RQ = 1 / (1 + 0.5) = 2/3, SQ = 1
    assert (c1["tp"], c1["fp"], c1["fn"]) == (1, 1, 0)
    assert c1["rq"] == pytest.approx(2 / 3) and c1["sq"] == 1.0
    assert got["per_class"][2]["rq"] == 0.0 and got["per_class"][2]["fn"] == 1
    per_class_ref = PanopticQuality(things={1, 2}, stuffs={5}, return_sq_and_rq=True, return_per_class=True)(
        torch.from_numpy(pred)[None], torch.from_numpy(target)[None]).reshape(-1, 3)
    assert per_class_ref[0, 2].item() == pytest.approx(2 / 3)


def test_perfect_prediction_and_match_listing():
    pred, target = _random_panoptic(3, batch=1)
    target = pred.copy()
    got = panoptic_quality(pred, target, THINGS, STUFFS)
    assert got["pq"] == 1.0 and got["sq"] == 1.0 and got["rq"] == 1.0
    pairs = match_segments(pred[0], target[0], THINGS, STUFFS)
    assert pairs and all(p["matched"] and p["iou"] == 1.0 for p in pairs)


def test_bad_input():
    a = np.zeros((4, 4, 2), np.int64)
    with pytest.raises(ValueError, match="same shape"):
        panoptic_quality(a, np.zeros((4, 5, 2), np.int64), THINGS, STUFFS)
    with pytest.raises(ValueError, match=r"\(category_id, instance_id\)"):
        panoptic_quality(np.zeros((4, 4, 3), np.int64), np.zeros((4, 4, 3), np.int64), THINGS, STUFFS)
    with pytest.raises(ValueError, match="neither things"):
        panoptic_quality(a, a, THINGS, STUFFS)  # category 0 is unknown in pred
    with pytest.raises(ValueError, match="disjoint"):
        panoptic_quality(a, a, {1}, {1})
