"""The lesson-07 explorers build, render, and update their numbers when a control moves."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.metrics.explore import binary_scores, soft_prediction
from segcourse.widgets.metrics import imbalance_explorer, panoptic_explorer, perturbation_explorer, threshold_explorer


def _disk(size=40, r=10):
    yy, xx = np.mgrid[:size, :size]
    return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r * r


def test_threshold_explorer_updates():
    target = _disk()
    probs = soft_prediction(target, seed=0)
    box = threshold_explorer(probs, target)
    before, before_png = box.summary.value, box.picture.value
    want = binary_scores(probs >= 0.5, target)
    assert f"{want['iou']:.3f}" in before
    box.controls["threshold"].value = 0.9
    assert box.summary.value != before
    assert f"{binary_scores(probs >= 0.9, target)['iou']:.3f}" in box.summary.value
    assert box.picture.value[:4] == b"\x89PNG" and box.picture.value != before_png  # the figure, redrawn


def test_perturbation_explorer_updates():
    target = _disk()
    box = perturbation_explorer(target, image=np.zeros((40, 40, 3), np.uint8))
    shifted = box.summary.value
    box.controls["kind"].value = "none"
    assert "HD95" in box.summary.value and box.summary.value != shifted
    assert "<b>1.000</b>" in box.summary.value


def test_imbalance_explorer_updates():
    box = imbalance_explorer(size=64)
    before = box.summary.value
    box.controls["log10_fraction"].value = -2.0
    assert box.summary.value != before and "pixel accuracy" in before


def test_panoptic_explorer_updates():
    target = np.zeros((24, 24, 2), np.int64)
    target[3:10, 3:10] = (1, 1)
    target[14:20, 12:22] = (1, 2)
    box = panoptic_explorer(target, things=[1], stuffs=[0])
    assert "✓ match" in box.summary.value and "✗" not in box.summary.value.split("PQ things")[1]
    box.controls["shift"].value = 6
    assert "✗" in box.summary.value


@pytest.mark.parametrize("make", [lambda: threshold_explorer(np.zeros((4, 4)), np.zeros((4, 3), bool))])
def test_bad_input_is_reported(make):
    with pytest.raises(ValueError, match="same shape"):
        make()
