"""panoptic_quality against torchmetrics' PanopticQuality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from segcourse.constants import IGNORE_INDEX
from segcourse.metrics import panoptic_quality
from segcourse.metrics.panoptic import match_segments

THINGS, STUFFS = {1, 2}, {5, 6}
VOID = IGNORE_INDEX  # a category in neither set


def _reference(pred, target):
    pq = PanopticQuality(things=THINGS, stuffs=STUFFS, return_sq_and_rq=True, return_per_class=True)
    per_class = pq(torch.as_tensor(pred), torch.as_tensor(target))  # (1, K, 3) or (K, 3)
    pq_avg = PanopticQuality(things=THINGS, stuffs=STUFFS, return_sq_and_rq=True)
    overall = pq_avg(torch.as_tensor(pred), torch.as_tensor(target))
    return per_class.reshape(-1, 3).double(), overall.double(), pq


def _random_panoptic(seed, batch=3, size=20):
    """Random stuff background + a few rectangular things; prediction = jittered target + noise."""
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
    return pred, target


@pytest.mark.parametrize("seed", range(8))
def test_matches_torchmetrics(seed):
    pred, target = _random_panoptic(seed)
    per_class_ref, overall_ref, _ = _reference(pred, target)
    got = panoptic_quality(pred, target, THINGS, STUFFS)
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
