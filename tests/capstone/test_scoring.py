"""Scoring a model on a split (segcourse.capstone.scoring): pooled per-class scores and per-image boundary metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from segcourse.capstone.scoring import score


class FromChannel0(nn.Module):
    """Predicts class 1 where the image's first channel is above 0.5 (so a test can choose the prediction)."""

    def forward(self, x):
        fg = x[:, :1] - 0.5
        return torch.cat([-fg, fg], dim=1)


def _case():
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[0, 4:10, 4:10] = 1
    target[1, 2:6, 8:14] = 1
    return target


def test_a_perfect_prediction_scores_one_and_zero_distance():
    target = _case()
    images = target[:, None].float().expand(-1, 3, -1, -1).contiguous()
    s = score(FromChannel0(), images, target)
    assert s["images"] == 2 and s["miou"] == pytest.approx(1.0) and s["fg_dice"] == pytest.approx(1.0)
    assert s["iou_per_class"] == pytest.approx([1.0, 1.0]) and s["dice_per_class"] == pytest.approx([1.0, 1.0])
    assert s["boundary_iou"] == pytest.approx(1.0) and s["hd95"] == pytest.approx(0.0)


def test_pooled_scores_and_a_missed_object_counted_at_the_diagonal():
    target = _case()
    pred = target.clone()
    pred[1] = 0                                              # image 1: the object is missed entirely
    images = pred[:, None].float().expand(-1, 3, -1, -1).contiguous()
    s = score(FromChannel0(), images, target)
    # pooled nucleus IoU: TP 36, FN 24 -> 36 / 60; Dice 2 * 36 / (72 + 24) = 0.75
    assert s["iou_per_class"][1] == pytest.approx(36 / 60) and s["fg_dice"] == pytest.approx(0.75)
    assert s["hd95"] == pytest.approx((0.0 + math.hypot(16, 16)) / 2)    # 0 px on image 0, the diagonal on image 1
    assert s["boundary_iou"] == pytest.approx(0.5)                       # 1 on image 0, 0 on image 1


def test_mismatched_images_and_target_are_refused():
    with pytest.raises(ValueError, match="same number of images"):
        score(FromChannel0(), torch.zeros(3, 3, 16, 16), _case())


def test_error_breakdown_counts_errors_and_finds_them_on_the_outline():
    import numpy as np
    from skimage.segmentation import find_boundaries

    from segcourse.capstone.scoring import error_breakdown

    truth = np.zeros((2, 20, 20), bool)
    truth[0, 5:12, 5:12] = True
    truth[1, 3:9, 10:16] = True
    pred = truth.copy()
    pred[0, 4, 5:12] = True                  # one row too many, just outside the outline: 7 FP
    pred[1, 3:9, 10] = False                 # one column lost, on the outline: 6 FN
    pred[1, 15, 2] = True                    # a speck far from any nucleus: 1 FP
    got = error_breakdown(pred, truth, width=1)
    assert got["fp"] == 8 and got["fn"] == 6
    assert got["near_outline"] == 13 / 14                       # all but the speck
    # the outline is skimage's inner boundary (4-connectivity); the band grows it by one pixel
    outline = np.stack([find_boundaries(t, connectivity=1, mode="inner") for t in truth])
    assert math.isclose(error_breakdown(pred, truth, width=0)["band_share"] * truth.size, outline.sum())
    on_outline = (pred ^ truth) & outline
    assert on_outline.sum() == 6                                # the lost column; the extra row lies just outside
    inter = (pred & truth).sum(axis=(1, 2))
    want = 2 * inter / (pred.sum(axis=(1, 2)) + truth.sum(axis=(1, 2)))
    assert got["dice_per_image"] == pytest.approx(want.tolist())
    assert math.isnan(error_breakdown(truth, truth)["near_outline"])
    with pytest.raises(ValueError, match="same shape"):
        error_breakdown(pred[0], truth)
