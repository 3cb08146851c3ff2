"""Post-processing of binary masks (lesson 01's morphology, mirrored borders), on small masks whose answer is
counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import morphology

from segcourse.classical import close_mask, fill_holes, open_mask, remove_small
from segcourse.inference import postprocess


def _square(mask, y, x, side):
    mask[y:y + side, x:x + side] = True
    return mask


def test_remove_small_keeps_the_components_of_at_least_min_size():
    mask = np.zeros((20, 20), bool)
    _square(mask, 1, 1, 5)           # 25 pixels
    _square(mask, 10, 10, 2)         # 4 pixels
    mask[18, 1] = True               # 1 pixel
    out = remove_small(mask, 4)
    assert out.sum() == 29 and not out[18, 1]
    assert remove_small(mask, 26).sum() == 0
    assert remove_small(mask, 0).sum() == 30


def test_diagonal_pixels_are_one_component():
    mask = np.eye(4, dtype=bool)     # 8-connected: one component of 4 pixels
    assert remove_small(mask, 4).sum() == 4


def test_fill_holes_fills_enclosed_background_only():
    mask = _square(np.zeros((12, 12), bool), 2, 2, 7)
    mask[4:6, 4:6] = False           # a 4-pixel hole
    mask[7, 5] = False               # a 1-pixel hole
    mask[0, 0] = False               # background touching the border stays
    filled = fill_holes(mask)
    assert filled.sum() == 49 and np.array_equal(filled, ndimage.binary_fill_holes(mask))
    only_small = fill_holes(mask, max_size=1)
    assert only_small.sum() == 49 - 4 and only_small[7, 5]


@pytest.mark.parametrize("radius", [1, 2])
def test_opening_and_closing_match_scikit_image(radius):
    rng = np.random.default_rng(radius)
    mask = ndimage.binary_dilation(rng.random((32, 32)) > 0.9)
    np.testing.assert_array_equal(open_mask(mask, radius, border="reflect"), morphology.opening(mask, morphology.disk(radius)))
    np.testing.assert_array_equal(close_mask(mask, radius, border="reflect"), morphology.closing(mask, morphology.disk(radius)))


def test_opening_removes_a_speck_and_closing_closes_a_gap():
    mask = _square(np.zeros((16, 16), bool), 2, 2, 8)
    mask[14, 14] = True
    for border in ("background", "edge", "reflect"):
        assert not open_mask(mask, 1, border=border)[14, 14] and open_mask(mask, 1, border=border)[5, 5]
        gap = mask.copy()
        gap[2:10, 6] = False             # a one-pixel-wide cut through the square
        assert close_mask(gap, 1, border=border)[5, 6]


def test_the_border_conventions_differ_only_at_the_border():
    mask = np.zeros((8, 8), bool)
    mask[:, :2] = True                   # a 2-pixel band touching the left border
    assert not open_mask(mask, 1).any()                            # outside is background: too thin, removed
    assert open_mask(mask, 1, border="reflect")[:, 0].all()        # mirrored: the band continues
    assert open_mask(mask, 1, border="edge")[:, 0].all()
    with pytest.raises(ValueError, match="border"):
        open_mask(mask, 1, border="wrap")


def test_postprocess_accepts_torch_and_0_1_masks_and_refuses_probabilities():
    import torch

    mask = _square(np.zeros((8, 8), bool), 2, 2, 4)
    assert np.array_equal(postprocess(torch.from_numpy(mask.astype(np.uint8)), min_size=2), mask)
    assert np.array_equal(postprocess(mask.astype(np.float32), min_size=2), mask)
    with pytest.raises(ValueError, match="threshold it"):
        postprocess(mask * 0.7)


def test_postprocess_pipeline_and_input_checks():
    mask = _square(np.zeros((16, 16), bool), 2, 2, 8)
    mask[5, 5] = False
    mask[14, 14] = True
    out = postprocess(mask, min_size=2, hole_size=None)
    assert out.sum() == 64
    assert np.array_equal(postprocess(mask), mask)   # no step asked for: unchanged
    with pytest.raises(ValueError, match="binary"):
        postprocess(np.full((4, 4), 2))
    with pytest.raises(ValueError, match="2-D"):
        postprocess(np.zeros((1, 4, 4), bool))
    with pytest.raises(ValueError, match="min_size"):
        remove_small(mask, -1)
    with pytest.raises(ValueError, match="open_radius"):
        postprocess(mask, open_radius=-1)
