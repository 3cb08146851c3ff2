"""The demonstration scenarios of lesson 07: fake predictions and the deliberately wrong formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcourse.metrics import panoptic_quality
from segcourse.metrics.confusion import confusion_matrix, scores_from_confusion
from segcourse.teaching.demos import (
    PERTURBATIONS,
    imbalance_scores,
    per_batch_mean_miou,
    perturb_mask,
    perturb_panoptic,
    perturbation_scores,
    rq_double_fp,
    soft_prediction,
)


def _disk(size=32, r=8, cy=16, cx=16):
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def test_soft_prediction_is_deterministic_probability_map():
    target = _disk()
    a, b = soft_prediction(target, seed=3), soft_prediction(target, seed=3)
    assert np.array_equal(a, b) and a.min() > 0 and a.max() < 1


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_perturbations(kind):
    two = _disk(40, 8, 12, 12) | _disk(40, 3, 30, 30)
    out = perturb_mask(two, kind, 2)
    assert out.dtype == bool and out.shape == two.shape
    if kind == "none":
        assert np.array_equal(out, two)
    elif kind == "shift":
        assert np.array_equal(out[:, 2:], two[:, :-2]) and not out[:, :2].any()
    elif kind == "dilate":
        assert (out >= two).all() and out.sum() > two.sum()
    elif kind == "erode":
        assert (out <= two).all() and out.sum() < two.sum()
    else:  # delete the 2 smallest objects = both
        assert not out.any()
    assert np.array_equal(perturb_mask(two, kind, 0), two)


def test_perturbation_scores_respond_differently():
    target = _disk(48, 12, 24, 24) | _disk(48, 2, 4, 44)
    small_object_lost = perturbation_scores(perturb_mask(target, "delete", 1), target)
    shifted = perturbation_scores(perturb_mask(target, "shift", 2), target)
    # deleting a 12-pixel object barely moves IoU but makes HD95 jump to the far distance
    assert small_object_lost["iou"] > 0.95 and small_object_lost["hd95"] > 10
    # a 2-pixel shift: region scores stay high, boundary IoU drops much more
    assert shifted["iou"] - shifted["boundary_iou"] > 0.2 and shifted["hd95"] == pytest.approx(2.0)
    assert perturbation_scores(target, target) == {"iou": 1.0, "miou": 1.0, "dice": 1.0, "boundary_iou": 1.0,
                                                   "hd95": 0.0}


def test_imbalance_scores():
    s = imbalance_scores(0.01, size=100, error_pixels=1)
    # 10x10 square in 100x100: all-background is 99 % accurate, mIoU = (0.99 + 0) / 2, Dice 0
    assert s["all background"]["pixel_accuracy"] == pytest.approx(0.99)
    assert s["all background"]["miou"] == pytest.approx(0.495) and s["all background"]["dice"] == 0.0
    # grown to 12x12: FP = 44; Dice = 200 / (200 + 44) ; pixel accuracy = 1 - 44/10000
    assert s["boundary error"]["dice"] == pytest.approx(200 / 244)
    assert s["boundary error"]["pixel_accuracy"] == pytest.approx(1 - 44 / 10000)
    assert s["perfect"]["miou"] == 1.0
    with pytest.raises(ValueError, match="fraction"):
        imbalance_scores(0.0)


def test_per_batch_mean_differs_from_pooled():
    # batch 1: a rare class perfectly found in one pixel; batch 2: the rare class absent from both.
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    pred = torch.zeros_like(target)
    target[0, 0, 0] = pred[0, 0, 0] = 1
    target[1, 1, :] = 1  # batch 2: 4 pixels of class 1, all missed
    pooled = scores_from_confusion(confusion_matrix(pred, target, 2))["miou"]
    # pooled: class 0 IoU = 27/31, class 1 IoU = 1/5 -> 0.5355; per batch: (1 + (12/16 + 0)/2) / 2 = 0.6875
    assert pooled == pytest.approx((27 / 31 + 1 / 5) / 2)
    assert per_batch_mean_miou(pred, target, 2, batch_size=1) == pytest.approx((1 + 0.375) / 2)


def test_rq_double_fp():
    assert rq_double_fp(2, 2, 0) == pytest.approx(2 / 4)  # right: 2 / 3
    assert rq_double_fp(0, 0, 0) == 0.0


def test_perturb_panoptic():
    target = np.zeros((20, 20, 2), np.int64)
    target[..., 0] = 0
    target[2:8, 2:8] = (5, 1)
    target[12:14, 12:14] = (5, 2)
    things, stuffs = [5], [0]
    assert np.array_equal(perturb_panoptic(target, things), target)
    dropped = perturb_panoptic(target, things, drop=1)
    assert panoptic_quality(dropped, target, things, stuffs)["per_class"][5]["fn"] == 1
    spur = perturb_panoptic(target, things, spurious=1, seed=0)
    assert panoptic_quality(spur, target, things, stuffs)["per_class"][5]["fp"] >= 1
    shifted = perturb_panoptic(target, things, shift=3)
    pc = panoptic_quality(shifted, target, things, stuffs)["per_class"][5]
    # 6x6 shifted by 3 -> IoU 18/54 < 0.5 and 2x2 shifted by 3 -> 0: no matches
    assert pc["tp"] == 0 and pc["fp"] == 2 and pc["fn"] == 2
