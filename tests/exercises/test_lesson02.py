"""Meta-tests for the checks of lesson 02: each says "not attempted" on the learner's stub, fails on plausible
wrong answers and passes on the solution, stub and solution read from solutions/02_data_augmentation.ipynb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segcourse.exercises.lesson02 import bilinear_demo_mask, bilinear_ids, divide_demo_mask, normalised_mask_ids
from segcourse.exercises.registry import run_check

from .notebook_solutions import solution, verify_against_notebook


# ---- 2.1 RLE -------------------------------------------------------------------------------------
def rle_row_major(mask):
    return solution("2.1")(np.asarray(mask).T)


def rle_no_leading_zero(mask):
    counts = solution("2.1")(mask)
    return counts[1:] if counts and counts[0] == 0 else counts


def rle_foreground_runs_only(mask):
    return solution("2.1")(mask)[1::2]


# ---- 2.4 paired crop and flip ---------------------------------------------------------------------
def crop_flip_negative_stride(image, mask, size, rng):       # in sync, but returns the flipped views (the old solution)
    h, w = size
    top = rng.integers(0, image.shape[0] - h + 1)
    left = rng.integers(0, image.shape[1] - w + 1)
    image, mask = image[top:top + h, left:left + w], mask[top:top + h, left:left + w]
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return image, mask


def crop_flip_independent_draws(image, mask, size, rng):   # image and mask each get their own crop
    a, _ = solution("2.4")(image, mask, size, rng)
    _, b = solution("2.4")(image, mask, size, rng)
    return a, b


def crop_flip_image_only(image, mask, size, rng):           # flips the image, forgets the mask
    h, w = size
    top = rng.integers(0, image.shape[0] - h + 1)
    left = rng.integers(0, image.shape[1] - w + 1)
    image, mask = image[top:top + h, left:left + w], mask[top:top + h, left:left + w]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return image, mask


def crop_flip_never_flips(image, mask, size, rng):
    h, w = size
    top = rng.integers(0, image.shape[0] - h + 1)
    left = rng.integers(0, image.shape[1] - w + 1)
    return image[top:top + h, left:left + w], mask[top:top + h, left:left + w]


def crop_flip_resizes(image, mask, size, rng):               # "crop" by resizing the whole image
    import cv2

    h, w = size
    return (cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR),
            cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST))


def crop_flip_float_mask(image, mask, size, rng):
    image, mask = solution("2.4")(image, mask, size, rng)
    return image, mask.astype(np.float32)


# ---- 2.5 pairing -------------------------------------------------------------------------------
def pair_sorted_zip(image_files, mask_files):                # the source tutorials' bug
    return list(zip(sorted(image_files), sorted(mask_files)))


def pair_by_stem_silently_drops(image_files, mask_files):     # pairs by stem but hides the missing files
    masks = {Path(f).stem: f for f in mask_files}
    return [(f, masks[Path(f).stem]) for f in sorted(image_files) if Path(f).stem in masks]


def pair_by_stem_vague_error(image_files, mask_files):
    if len(image_files) != len(mask_files):
        raise ValueError("the folders differ")
    return solution("2.5")(image_files, mask_files)


WRONG = {
    "2.1": [rle_row_major, rle_no_leading_zero, rle_foreground_runs_only],
    "2.2": [{0, 1, 3}, {0, 3}, [0, 1], "0,1,2,3"],
    "2.3": [{0, 1, 2, 3, 255}, {0}, {0, 255}],
    "2.4": [crop_flip_independent_draws, crop_flip_image_only, crop_flip_never_flips, crop_flip_resizes,
            crop_flip_float_mask, crop_flip_negative_stride],
    "2.5": [pair_sorted_zip, pair_by_stem_silently_drops, pair_by_stem_vague_error],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])


def test_predict_answers_are_what_the_code_does():
    """The premises of 2.2 and 2.3, derived: bilinear invents 2 between 1 and 3; /255 leaves 0 and 1 (255 -> 1)."""
    mask = bilinear_demo_mask()
    assert sorted(np.unique(mask).tolist()) == [0, 1, 3]
    assert bilinear_ids(mask) == [0, 1, 2, 3]
    assert normalised_mask_ids(divide_demo_mask()) == [0, 1]


def test_sorted_zip_really_mispairs_when_a_mask_is_missing():
    pairs = pair_sorted_zip(["x1.png", "x2.png", "x3.png"], ["x1.png", "x3.png"])
    assert pairs == [("x1.png", "x1.png"), ("x2.png", "x3.png")]        # x2's image trained on x3's mask


def test_negative_stride_answer_fails_with_the_fix_in_its_hint():
    """The flipped view is in sync with its image but unusable: the verdict must say why and how to fix it."""
    result = run_check("2.4", crop_flip_negative_stride)
    assert "negative stride" in result.message and "np.ascontiguousarray" in result.message, result.message
    assert "Traceback" not in result.message
