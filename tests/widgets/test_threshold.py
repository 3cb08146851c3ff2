"""Lesson 01's threshold slider: the pure functions behind it, and the widget reacting to its controls."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.widgets.threshold import ERROR_COLOURS, error_overlay, threshold_scores, threshold_slider


def _toy():
    image = np.array([[10, 10, 200, 200], [10, 120, 200, 10]], np.uint8)
    target = np.array([[0, 0, 1, 1], [0, 1, 1, 0]], bool)
    return image, target


@pytest.mark.parametrize("t, dice, fg", [
    (100, 1.0, 4 / 8),          # 120 and 200s: all four true pixels, nothing else
    (150, 2 * 3 / (2 * 3 + 0 + 1), 3 / 8),   # misses the 120 pixel: TP 3, FN 1
    (5, 2 * 4 / (2 * 4 + 4 + 0), 1.0),       # everything foreground: TP 4, FP 4
])
def test_threshold_scores(t, dice, fg):
    image, target = _toy()
    mask, s = threshold_scores(image, target, t)
    np.testing.assert_array_equal(mask, image > t)
    assert s["dice"] == pytest.approx(dice) and s["foreground"] == pytest.approx(fg)
    assert s["iou"] == pytest.approx(s["dice"] / (2 - s["dice"]))   # IoU = Dice / (2 - Dice)


def test_threshold_scores_empty_policy_and_errors():
    image = np.zeros((2, 2), np.uint8)
    _, s = threshold_scores(image, np.zeros((2, 2), bool), 10)
    assert s["dice"] == s["iou"] == s["precision"] == s["recall"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        threshold_scores(image, np.zeros((3, 2), bool), 10)


def test_error_overlay_colours():
    image, target = _toy()
    pred = image > 150
    out = error_overlay(image, pred, target, alpha=1.0)
    np.testing.assert_allclose(out[0, 2], ERROR_COLOURS["tp"], atol=1e-6)
    np.testing.assert_allclose(out[1, 1], ERROR_COLOURS["fn"], atol=1e-6)
    np.testing.assert_allclose(out[0, 0], [10 / 255] * 3, atol=1e-6)
    out = error_overlay(image, np.ones_like(pred), target, alpha=1.0)
    np.testing.assert_allclose(out[0, 0], ERROR_COLOURS["fp"], atol=1e-6)


def test_slider_updates_summary_and_picture():
    image, target = _toy()
    box = threshold_slider(image, target, initial=5)
    first_png = box.picture.value
    assert "0.667" in box.summary.value        # Dice at t = 5
    box.controls["threshold"].value = 100
    assert "1.000" in box.summary.value and box.picture.value != first_png
    box.controls["otsu"].click()
    assert box.controls["threshold"].value == int(box.controls["otsu"].description.split("(")[1].rstrip(")"))
