"""Boundary IoU against the authors' reference code; surface distances against MONAI."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

from segcourse.metrics import average_surface_distance, boundary_iou, hausdorff_distance, surface_dice


def _reference_boundary(mask, dilation_ratio):
    """mask_to_boundary of github.com/bowenc0221/boundary-iou-api (boundary_iou/utils/boundary_utils.py)."""
    h, w = mask.shape
    dilation = max(1, int(round(dilation_ratio * np.sqrt(h ** 2 + w ** 2))))  # noqa: RUF046 - as written there
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)[1:h + 1, 1:w + 1]
    return mask - eroded


def _reference_boundary_iou(gt, dt, dilation_ratio):
    g = _reference_boundary(gt.astype(np.uint8), dilation_ratio)
    d = _reference_boundary(dt.astype(np.uint8), dilation_ratio)
    return ((g * d) > 0).sum() / ((g + d) > 0).sum()


def _blobs(seed, shape=(40, 48), n=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    m = np.zeros(shape, bool)
    for _ in range(n):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(2, 12)
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    return m


def _pairs():
    for seed in range(6):
        yield _blobs(seed), _blobs(seed + 100)
        target = _blobs(seed)
        yield np.roll(target, (1, 2), axis=(0, 1)), target      # a slightly shifted prediction
    one = np.zeros((20, 20), bool)
    one[7, 9] = True                                            # single-pixel object
    yield one, one.copy()
    yield np.ones((15, 17), bool), _blobs(3, (15, 17))         # touches every border
    two = one.copy()
    two[15, 3] = True
    yield two, one


@pytest.mark.parametrize("ratio", [0.02, 0.1])
def test_boundary_iou_matches_reference_code(ratio):
    for pred, target in _pairs():
        want = _reference_boundary_iou(target, pred, ratio)
        assert boundary_iou(pred, target, ratio) == pytest.approx(want)


def test_boundary_iou_edge_cases():
    empty = np.zeros((10, 10), bool)
    full = np.zeros((10, 10), bool)
    full[2:8, 2:8] = True
    assert math.isnan(boundary_iou(empty, empty))
    assert boundary_iou(full, empty) == 0.0
    assert boundary_iou(torch.from_numpy(full), torch.from_numpy(full)) == 1.0
    # shifting a square by one column keeps part of its band and loses part
    shifted = np.roll(full, 1, axis=1)
    assert 0 < boundary_iou(shifted, full) < 1


def _monai(fn, pred, target, **kw):
    p = torch.from_numpy(np.asarray(pred, bool))[None, None].float()
    t = torch.from_numpy(np.asarray(target, bool))[None, None].float()
    with _quiet():
        return float(fn(p, t, include_background=True, **kw)[0, 0])


class _quiet:
    """MONAI's own warnings around its calls, and only those: an empty class ("may result in nan/inf distance",
    the edge cases compared on purpose) and its internal call of an argument it deprecated itself (MONAI's)."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.filterwarnings("ignore", r"the (ground truth|prediction) of class \d+ is all 0", UserWarning)
        warnings.filterwarnings("ignore", r".*Argument `always_return_as_numpy` has been deprecated", FutureWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _same(a, b):
    if math.isnan(b):
        return math.isnan(a)
    if math.isinf(b):
        return a == b
    return a == pytest.approx(b, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("spacing", [None, (0.5, 2.0)])
def test_surface_metrics_match_monai(spacing):
    for pred, target in _pairs():
        for perc in (None, 95, 50):
            assert _same(hausdorff_distance(pred, target, percentile=perc, spacing=spacing),
                         _monai(compute_hausdorff_distance, pred, target, percentile=perc, spacing=spacing))
        for sym in (False, True):
            assert _same(average_surface_distance(pred, target, symmetric=sym, spacing=spacing),
                         _monai(compute_average_surface_distance, pred, target, symmetric=sym, spacing=spacing))
        for tol in (0.0, 1.0, 2.5):
            assert _same(surface_dice(pred, target, tol, spacing=spacing),
                         _monai(compute_surface_dice, pred, target, class_thresholds=[tol], spacing=spacing))


@pytest.mark.parametrize("pred_empty,target_empty", [(True, True), (True, False), (False, True)])
def test_empty_masks_match_monai(pred_empty, target_empty):
    blob = _blobs(1)
    empty = np.zeros_like(blob)
    pred = empty if pred_empty else blob
    target = empty if target_empty else blob
    assert _same(hausdorff_distance(pred, target), _monai(compute_hausdorff_distance, pred, target))
    monai_hd95 = _monai(compute_hausdorff_distance, pred, target, percentile=95)
    if pred_empty and target_empty:
        assert _same(hausdorff_distance(pred, target, 95), monai_hd95)
    else:  # deliberate difference: MONAI's torch.quantile over all-inf distances gives NaN; the distance is inf
        assert hausdorff_distance(pred, target, 95) == math.inf and math.isnan(monai_hd95)
    for sym in (False, True):
        assert _same(average_surface_distance(pred, target, symmetric=sym),
                     _monai(compute_average_surface_distance, pred, target, symmetric=sym))
    assert _same(surface_dice(pred, target, 1.0), _monai(compute_surface_dice, pred, target, class_thresholds=[1.0]))


def test_identical_masks_are_perfect_and_shift_distance_is_exact():
    m = _blobs(5)
    assert hausdorff_distance(m, m) == 0 and surface_dice(m, m, 0.0) == 1.0
    square = np.zeros((30, 30), bool)
    square[10:20, 10:20] = True
    moved = np.roll(square, 3, axis=1)  # every surface point moves by at most 3 pixels
    assert hausdorff_distance(moved, square) == pytest.approx(3.0)


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        hausdorff_distance(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="binary mask"):
        boundary_iou(np.full((3, 3), 0.5), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="values 0/1"):
        surface_dice(np.full((3, 3), 2), np.zeros((3, 3), int), 1.0)
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(np.ones((3, 3), bool), np.ones((3, 3), bool), percentile=120)
    with pytest.raises(ValueError, match="tolerance"):
        surface_dice(np.ones((3, 3), bool), np.ones((3, 3), bool), -1)
