"""The lesson-07 explorers build, render, and update their numbers when a control moves."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.metrics.threshold import binary_scores
from segcourse.teaching.demos import soft_prediction
from segcourse.widgets._explorer import DESCRIPTION_WIDTH
from segcourse.widgets.metrics import (
    imbalance_explorer,
    panoptic_colours,
    panoptic_explorer,
    perturbation_explorer,
    threshold_explorer,
)


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


def _two_cars():
    pan = np.zeros((12, 12, 2), np.int64)          # stuff 0 everywhere
    pan[:6, 6:] = (2, 0)                           # stuff 2 in one corner
    pan[1:4, 1:4] = (1, 7)                         # two things of class 1, ids 7 and 9
    pan[7:10, 1:4] = (1, 9)
    return pan


def test_panoptic_colours_shade_every_instance():
    palette = [(10, 20, 30), (0, 0, 142), (200, 100, 0)]
    pan = _two_cars()
    rgb = panoptic_colours(pan, things=[1], palette=palette)
    assert rgb.shape == (12, 12, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0, 0], np.array(palette[0]) / 255)     # stuff: its class colour
    np.testing.assert_allclose(rgb[0, 11], np.array(palette[2]) / 255)
    assert not np.allclose(rgb[2, 2], rgb[8, 2])                          # two cars, two shades
    assert len({tuple(rgb[y, x]) for y in range(1, 4) for x in range(1, 4)}) == 1   # one shade per instance
    # A prediction drawn against the truth keeps each surviving id's shade; a new id gets another one.
    pred = pan.copy()
    pred[7:10, 1:4] = (0, 0)                       # car 9 missed
    pred[7:9, 8:10] = (1, 12)                      # a spurious car
    shades = panoptic_colours(pred, [1], palette, reference=pan)
    np.testing.assert_allclose(shades[2, 2], rgb[2, 2])
    assert not np.allclose(shades[7, 8], rgb[2, 2]) and not np.allclose(shades[7, 8], rgb[8, 2])
    with pytest.raises(ValueError, match="H, W, 2"):
        panoptic_colours(pan[..., 0], [1])


def test_explorer_layout_gives_descriptions_room_and_keeps_the_aspect_ratio():
    box = panoptic_explorer(_two_cars(), things=[1], stuffs=[0, 2], class_names=["road", "car", "sky"])
    for name, control in box.controls.items():
        assert control.style.description_width == DESCRIPTION_WIDTH, name
    row = box.children[1]
    assert row.layout.align_items == "flex-start"      # a tall table beside the figure does not stretch it
    assert box.picture.layout.height == "auto" and box.picture.layout.object_fit == "contain"
