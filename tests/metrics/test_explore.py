"""The pure functions behind the lesson-07 explorers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve

from segcourse.metrics import panoptic_quality
from segcourse.metrics.confusion import confusion_matrix, scores_from_confusion
from segcourse.metrics.explore import (
    PERTURBATIONS,
    best_threshold,
    binary_scores,
    imbalance_scores,
    per_batch_mean_miou,
    per_case_dice,
    perturb_mask,
    perturb_panoptic,
    perturbation_scores,
    rq_double_fp,
    soft_prediction,
    threshold_sweep,
)


def _disk(size=32, r=8, cy=16, cx=16):
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def test_binary_scores_by_hand():
    # pred [1,1,0,0], target [1,0,1,0]: TP 1, FP 1, FN 1, TN 1
    s = binary_scores(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["iou"] == pytest.approx(1 / 3)
    assert s["dice"] == 0.5 and s["pixel_accuracy"] == 0.5
    assert math.isnan(binary_scores(np.zeros(3, bool), np.array([0, 1, 0]))["precision"])


def test_threshold_sweep_matches_direct_thresholding_and_torchmetrics():
    target = _disk()
    probs = soft_prediction(target, seed=1)
    thr = np.linspace(0, 1, 21)
    sweep = threshold_sweep(probs, target, thr)
    for i, t in enumerate(thr):
        s = binary_scores(probs >= t, target)
        for k in ("precision", "recall", "iou", "dice"):
            assert (math.isnan(s[k]) and math.isnan(sweep[k][i])) or sweep[k][i] == pytest.approx(s[k])
    p, r, _ = binary_precision_recall_curve(torch.from_numpy(probs).flatten(),
                                            torch.from_numpy(target).flatten().long(),
                                            thresholds=torch.from_numpy(thr[1:-1]))
    torch.testing.assert_close(torch.from_numpy(sweep["recall"][1:-1]), r[:-1].double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.from_numpy(sweep["precision"][1:-1]), p[:-1].double(), atol=1e-6, rtol=0)


def test_best_threshold_is_the_argmax():
    target = _disk()
    probs = soft_prediction(target, bias=-1.5, seed=2)
    t, v = best_threshold(probs, target, "dice")
    sweep = threshold_sweep(probs, target)
    assert v == pytest.approx(np.nanmax(sweep["dice"]))
    assert t < 0.5  # an under-confident map is best cut below 0.5
    with pytest.raises(ValueError, match="metric"):
        best_threshold(probs, target, "accuracy")


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


def test_per_case_dice_by_hand_and_policy():
    # image 0: class 1 pred [1,1,0,0] vs target [1,0,0,0] -> 2*1/(2+1) = 2/3; class 2 nowhere -> NaN
    # image 1: class 1 predicted, not present -> 0 (a false alarm); class 2 missed -> 0
    pred = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]])
    target = np.array([[[1, 0, 0, 0]], [[2, 0, 0, 0]]])
    d = per_case_dice(pred, target, num_classes=3)
    assert d.shape == (2, 3)
    assert d[0, 1] == pytest.approx(2 / 3) and math.isnan(d[0, 2])
    assert d[1, 1] == 0.0 and d[1, 2] == 0.0
    assert d[0, 0] == pytest.approx(2 * 2 / (2 + 3)) and d[1, 0] == pytest.approx(2 * 3 / (3 + 3))
    ignored = target.copy()
    ignored[0, 0, 1] = 255                      # the false-positive pixel becomes "don't care"
    assert per_case_dice(pred, ignored, 3, ignore_index=255)[0, 1] == 1.0
    with pytest.raises(ValueError, match="N, H, W"):
        per_case_dice(pred[0], target[0], 3)


def test_per_case_dice_matches_monai():
    from monai.metrics import compute_dice

    g = torch.Generator().manual_seed(3)
    target = torch.randint(0, 3, (5, 9, 11), generator=g)
    target[1][target[1] == 2] = 0                # class 2 absent from image 1's target ...
    pred = torch.randint(0, 3, (5, 9, 11), generator=g)
    pred[1][pred[1] == 2] = 1                    # ... and from its prediction: both empty
    pred[2][pred[2] == 1] = 0                    # class 1 missed in image 2
    target[3][target[3] == 1] = 0                # class 1 predicted but absent in image 3
    ours = per_case_dice(pred, target, 3)

    def one_hot(x):
        return torch.nn.functional.one_hot(x, 3).permute(0, 3, 1, 2).float()

    monai = compute_dice(one_hot(pred), one_hot(target), include_background=True, ignore_empty=False).numpy()
    both_empty = np.isnan(ours)
    assert both_empty[1, 2] and both_empty.sum() == 1
    np.testing.assert_allclose(ours[~both_empty], monai[~both_empty], atol=1e-6)
    assert monai[1, 2] == 1.0                   # MONAI scores "nothing to find, nothing found" as perfect
    assert ours[3, 1] == 0.0 and ours[2, 1] == 0.0
