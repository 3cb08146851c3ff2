"""object_recall (per-object recall by size) and mean_boundary_iou, against values derived by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segcourse.metrics import boundary_iou, mean_boundary_iou, object_recall


def _scene():
    masks = np.zeros((1, 10, 10), np.int64)
    inst = np.zeros_like(masks)
    masks[0, 0:2, 0:2], inst[0, 0:2, 0:2] = 1, 1          # small object (4 px) of class 1
    masks[0, 4:10, 4:10], inst[0, 4:10, 4:10] = 2, 2      # large object (36 px) of class 2
    return masks, inst


def test_object_recall_by_hand():
    masks, inst = _scene()
    pred = np.zeros_like(masks)
    pred[0, 0, 0:2] = 1                     # half of the small object, right class: 2 / 4
    pred[0, 4:10, 4:7] = 2                  # half of the large object, right class: 18 / 36
    pred[0, 4:10, 7:10] = 1                 # the other half found but misnamed
    r = object_recall(pred, masks, inst, split_px=10)
    assert (r.n_small, r.n_large) == (1, 1)
    assert r.small == pytest.approx(0.5) and r.small_agnostic == pytest.approx(0.5)
    assert r.large == pytest.approx(0.5) and r.large_agnostic == pytest.approx(1.0)


def test_object_recall_empty_group_is_nan_and_bad_input_is_refused():
    masks, inst = _scene()
    r = object_recall(masks, masks, inst, split_px=1)   # nothing is smaller than 1 px
    assert r.n_small == 0 and math.isnan(r.small) and r.large == 1.0
    with pytest.raises(ValueError, match=r"must all be \(N, H, W\)"):
        object_recall(masks[0], masks[0], inst[0], split_px=10)
    with pytest.raises(ValueError, match="split_px must be a positive"):
        object_recall(masks, masks, inst, split_px=0)


def test_mean_boundary_iou_is_the_mean_over_images_and_present_classes():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, size=(3, 32, 32))
    target = rng.integers(0, 3, size=(3, 32, 32))
    target[1] = 0          # image 1: no class in truth...
    pred[1] = 0
    pred[1, 5:9, 5:9] = 2  # ...and only class 2 predicted: it counts (Boundary IoU 0), class 1 does not
    expected = [boundary_iou(p == c, t == c) for p, t in zip(pred, target) for c in (1, 2)
                if (p == c).any() or (t == c).any()]
    assert len(expected) == 5
    assert mean_boundary_iou(pred, target, 3) == pytest.approx(float(np.mean(expected)))
    assert math.isnan(mean_boundary_iou(np.zeros((1, 8, 8), int), np.zeros((1, 8, 8), int), 3))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        mean_boundary_iou(pred[0], target[0], 3)
