"""The click protocol and NoC on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segcourse.metrics.interactive import (
    first_click,
    mask_iou,
    next_click,
    number_of_clicks,
    ring_iou,
    simulate,
    summarise,
)


def _box(shape, r0, r1, c0, c1):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


def test_first_click_is_the_centre_of_the_object():
    # a 5 x 7 rectangle at rows 2..6, cols 3..9: row 4 is 3 px from the rows outside; cols 5, 6, 7 are
    # >= 3 px from the columns outside, so three pixels tie at distance 3 and the first, (4, 5), is taken
    assert first_click(_box((10, 12), 2, 7, 3, 10)) == (4, 5, True)


def test_the_image_border_counts_as_boundary():
    # a 9 x 5 mask on the left border: with the border as boundary the distance is min(r+1, 9-r, c+1, 5-c),
    # largest (3) at column 2 for rows 2..6; the first of them is (2, 2) -- not on the border column
    r, c, _ = first_click(_box((9, 9), 0, 9, 0, 5))
    assert (r, c) == (2, 2)


def test_first_click_refuses_an_empty_object():
    with pytest.raises(ValueError, match="empty"):
        first_click(np.zeros((4, 4), bool))


def test_next_click_is_positive_in_the_larger_miss_and_negative_in_the_larger_false_region():
    target = _box((12, 12), 0, 12, 0, 6)                    # left half
    missed_a_lot = _box((12, 12), 0, 12, 0, 1)              # only the first column: fn is 12 x 5
    _, c, positive = next_click(missed_a_lot, target)
    assert positive and 1 <= c <= 5
    took_too_much = _box((12, 12), 0, 12, 0, 12)            # everything: fp is the right half, 12 x 6
    _, c, positive = next_click(took_too_much, target)
    assert not positive and c >= 6
    assert next_click(target, target) is None


def test_mask_iou_and_number_of_clicks_by_hand():
    a, b = _box((4, 4), 0, 2, 0, 2), _box((4, 4), 0, 2, 0, 4)   # 4 of 8 pixels
    assert mask_iou(a, b) == 0.5 and mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert number_of_clicks([0.5, 0.86, 0.91], 0.85) == 2
    assert number_of_clicks([0.5, 0.86, 0.91], 0.90) == 3
    assert number_of_clicks([0.5] * 30, 0.90, max_clicks=20) == 20


def test_simulate_with_a_perfect_and_a_useless_predictor():
    target = _box((10, 10), 2, 8, 2, 8)
    ious, clicks = simulate(lambda clicks: target, target)
    assert ious.shape == (20,) and (ious == 1).all() and len(clicks) == 1    # nothing left to correct: no second click
    ious, clicks = simulate(lambda clicks: np.zeros((10, 10), bool), target, max_clicks=4)
    assert (ious == 0).all() and len(clicks) == 4 and all(p for _, _, p in clicks)


def test_simulate_with_a_predictor_that_grows_a_square_around_the_positive_clicks():
    target = _box((20, 20), 5, 15, 5, 15)

    def predict(clicks):
        out = np.zeros((20, 20), bool)
        for r, c, p in clicks:
            if p:
                out[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3] = True
        return out

    ious, _ = simulate(predict, target, max_clicks=6)
    assert ious[0] == pytest.approx(25 / 100)                 # a 5 x 5 square inside a 10 x 10 object
    assert np.all(np.diff(ious) >= 0) and ious[-1] > ious[0]   # each positive click covers new missed pixels


def test_summarise_means_and_size_groups():
    curves = np.array([[0.9] * 20, [0.5] * 4 + [0.86] * 16])
    out = summarise(curves, areas=[100, 400], size_edges=[200])
    assert out["iou@1"] == pytest.approx(0.7) and out["iou@5"] == pytest.approx(0.88)
    assert out["noc@85"] == pytest.approx((1 + 5) / 2) and out["noc@90"] == pytest.approx((1 + 20) / 2)
    assert out["by_size"]["< 200 px"]["noc@90"] == 1 and out["by_size"][">= 200 px"]["noc@90"] == 20
    with pytest.raises(ValueError, match="curves"):
        summarise(np.zeros((2, 3)))


def test_ring_iou_counts_the_ring_and_matches_the_taxicab_distance():
    target = np.zeros((20, 20), bool)
    target[5:15, 5:15] = True                                    # 100 pixels
    assert ring_iou(target, 0) == 1.0
    assert ring_iou(target, 1) == pytest.approx(100 / 140)       # + 4 sides of 10
    assert ring_iou(target, 2) == pytest.approx(100 / 184)       # + 4 sides of 20 + 4 corner pixels
    rng = np.random.default_rng(0)
    blob = np.zeros((32, 32), bool)
    blob[8:24, 8:24] = rng.random((16, 16)) < 0.7
    for p in (1, 2, 3):                                          # the same ring from the distance transform
        near = ndimage.distance_transform_cdt(~blob, metric="taxicab") <= p
        assert ring_iou(blob, p) == pytest.approx(blob.sum() / near.sum())


def test_ring_iou_rejects_an_empty_mask_and_a_bad_width():
    with pytest.raises(ValueError, match="empty"):
        ring_iou(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="pixels"):
        ring_iou(np.ones((4, 4), bool), -1)
