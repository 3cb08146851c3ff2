"""Instance matching: hand-derived cases, pycocotools' IoU, brute-force optimal matching, the empty policy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from segcourse.metrics.instances import instance_f1, instance_iou_matrix, match_instances


def test_merged_blob_matches_nothing():
    # gt: objects 1 (2 px) and 2 (2 px); pred: one blob of 5 px -> IoU 2/5 with each, below 0.5
    gt = np.array([[1, 1, 0, 2, 2]])
    pred = np.array([[1, 1, 1, 1, 1]])
    m = match_instances(pred, gt)
    assert (m.tp, m.fp, m.fn) == (0, 1, 2)
    assert m.precision == 0 and m.recall == 0 and m.f1 == 0


def test_split_and_ids_do_not_matter():
    # gt 7 covers 4 px; pred 3 covers 3 of them (IoU 3/4), pred 9 covers 1 gt px + 1 bg px (IoU 1/5)
    gt = np.array([[7, 7, 7, 7, 0]])
    pred = np.array([[3, 3, 3, 9, 9]])
    m = match_instances(pred, gt)
    assert m.pairs == [(3, 7, 0.75)] and m.unmatched_pred == [9] and m.unmatched_gt == []
    # P = 1/2, R = 1/1, F1 = 2*1/(2*1 + 1 + 0) = 2/3
    r = instance_f1(pred, gt)
    assert r["precision"] == 0.5 and r["recall"] == 1.0 and r["f1"] == pytest.approx(2 / 3)
    assert r["tp"] == 1 and r["fp"] == 1 and r["fn"] == 0
    # renumbering both maps changes nothing but the ids
    m2 = match_instances(np.where(pred > 0, 100 - pred, 0), np.where(gt > 0, 1, 0))
    assert (m2.tp, m2.fp, m2.fn) == (1, 1, 0)


def test_threshold_is_inclusive():
    # IoU exactly 0.5: gt 2 px, pred covers them plus 2 bg px -> 2/4
    gt = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 1, 1, 1]])
    assert match_instances(pred, gt, 0.5).tp == 1
    assert match_instances(pred, gt, 0.51).tp == 0


def test_empty_policy():
    empty = np.zeros((3, 3), np.int64)
    one = empty.copy()
    one[1, 1] = 1
    assert instance_f1(empty, empty)["f1"] == 1.0
    r = instance_f1(one, empty)
    assert (r["precision"], r["recall"], r["f1"], r["fp"]) == (0.0, 0.0, 0.0, 1)
    r = instance_f1(empty, one)
    assert (r["precision"], r["recall"], r["f1"], r["fn"]) == (0.0, 0.0, 0.0, 1)


def test_iou_matrix_matches_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for _ in range(5):
        gt = rng.integers(0, 5, (20, 24))
        pred = rng.integers(0, 4, (20, 24)) * (rng.random((20, 24)) < 0.8)
        iou, pred_ids, gt_ids = instance_iou_matrix(pred, gt)
        enc = lambda labels, ids: [mask_utils.encode(np.asfortranarray((labels == i).astype(np.uint8))) for i in ids]
        want = mask_utils.iou(enc(pred, pred_ids), enc(gt, gt_ids), [0] * len(gt_ids))
        np.testing.assert_allclose(iou, want, atol=1e-12)


def _brute_force_tp(iou: np.ndarray, threshold: float) -> tuple[int, float]:
    """Largest number of one-to-one pairs with IoU >= threshold, then the largest total IoU (tiny inputs only)."""
    best = (0, 0.0)
    P, G = iou.shape
    for k in range(min(P, G), 0, -1):
        for rows in itertools.permutations(range(P), k):
            for cols in itertools.combinations(range(G), k):
                vals = [iou[r, c] for r, c in zip(rows, cols)]
                if all(v >= threshold for v in vals):
                    best = max(best, (k, sum(vals)))
        if best[0]:
            break
    return best


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5])
def test_matching_is_optimal_against_brute_force(threshold):
    # with overlapping candidates (low thresholds) the assignment must still be one-to-one and the best possible
    rng = np.random.default_rng(int(threshold * 10))
    for _ in range(15):
        gt = rng.integers(0, 4, (6, 6))
        pred = rng.integers(0, 4, (6, 6))
        m = match_instances(pred, gt, threshold)
        iou, _, _ = instance_iou_matrix(pred, gt)
        tp, total = _brute_force_tp(iou, threshold)
        # the most pairs, then the largest total IoU (StarDist's convention)
        assert m.tp == tp
        assert sum(p[2] for p in m.pairs) == pytest.approx(total)
        assert len({p[0] for p in m.pairs}) == m.tp == len({p[1] for p in m.pairs})


def test_torch_input_and_errors():
    gt = torch.tensor([[1, 1, 0]])
    assert match_instances(gt.clone(), gt).f1 == 1.0
    with pytest.raises(TypeError, match="integer instance ids"):
        match_instances(np.ones((2, 2), bool), np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match="same shape"):
        match_instances(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="iou_threshold"):
        match_instances(np.zeros((2, 2), int), np.zeros((2, 2), int), 0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        match_instances(np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int))
    with pytest.raises(ValueError, match="negative"):
        match_instances(-np.ones((2, 2), int), np.zeros((2, 2), int))
