"""Meta-tests of lesson 12's checks: "not attempted" on the learner's stub, "failed" on plausible wrong answers,
"passed" on the solution (stub and solution read from solutions/12_promptable.ipynb)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from .notebook_solutions import solution, verify_against_notebook


# ---- 12.1 -----------------------------------------------------------------------------------------
def fourier_no_shift(coords, gaussian_matrix):              # coordinates left in [0, 1]
    proj = 2 * math.pi * (coords @ gaussian_matrix)
    return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def fourier_no_two_pi(coords, gaussian_matrix):
    proj = (2 * coords - 1) @ gaussian_matrix
    return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def fourier_cos_first(coords, gaussian_matrix):
    proj = 2 * math.pi * ((2 * coords - 1) @ gaussian_matrix)
    return torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1)


def fourier_interleaved(coords, gaussian_matrix):
    proj = 2 * math.pi * ((2 * coords - 1) @ gaussian_matrix)
    return torch.stack([torch.sin(proj), torch.cos(proj)], dim=-1).flatten(-2)


# ---- 12.2 -----------------------------------------------------------------------------------------
def _dist(region, pad=True):
    if not pad:
        return ndimage.distance_transform_edt(region)
    return ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def click_no_padding(pred, target):                           # the image border is not boundary
    fn, fp = _dist(target & ~pred, pad=False), _dist(pred & ~target, pad=False)
    if fn.max() == 0 and fp.max() == 0:
        return None
    positive = fn.max() > fp.max()
    d = fn if positive else fp
    r, c = np.unravel_index(np.argmax(d), d.shape)
    return int(r), int(c), bool(positive)


def click_by_area(pred, target):                               # the larger region by pixel count
    fn_region, fp_region = target & ~pred, pred & ~target
    if not fn_region.any() and not fp_region.any():
        return None
    positive = fn_region.sum() > fp_region.sum()
    d = _dist(fn_region if positive else fp_region)
    r, c = np.unravel_index(np.argmax(d), d.shape)
    return int(r), int(c), bool(positive)


def click_sign_swapped(pred, target):
    got = solution("12.2")(pred, target)
    return None if got is None else (got[0], got[1], not got[2])


def click_xy(pred, target):                                    # (x, y) instead of (row, col)
    got = solution("12.2")(pred, target)
    return None if got is None else (got[1], got[0], got[2])


def click_always(pred, target):                                # never None
    got = solution("12.2")(pred, target)
    return (0, 0, True) if got is None else got


WRONG = {
    "12.1": [fourier_no_shift, fourier_no_two_pi, fourier_cos_first, fourier_interleaved],
    "12.2": [click_no_padding, click_by_area, click_sign_swapped, click_xy, click_always],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])
