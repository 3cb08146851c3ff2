"""Binary scores and the threshold sweep, against direct thresholding and torchmetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve

from segcourse.metrics.threshold import best_threshold, binary_scores, threshold_sweep
from segcourse.teaching.demos import soft_prediction


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
