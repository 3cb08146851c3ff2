"""Meta-tests for the checks of lessons 00 and 01: each says "not attempted" on the learner's stub, fails on
plausible wrong answers and passes on the solution, stub and solution read from the solution notebooks."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse import classical

from .notebook_solutions import solution, verify_against_notebook


# ---- 0.1 foreground fraction -------------------------------------------------------------------
def fraction_counts_ignored_as_foreground(mask):
    return float((mask > 0).mean())


def fraction_ignored_in_denominator(mask):
    return float((mask == 1).mean())


# ---- 1.1 Otsu ----------------------------------------------------------------------------------
def otsu_mean(image):          # the "obvious" threshold: the mean grey level
    return float(image.mean())


def otsu_unweighted(image):    # forgets the class weights: maximises (m0 - m1)^2 only
    hist = np.bincount(image.ravel(), minlength=256).astype(float)
    scores = []
    for t in range(255):
        w0, w1 = hist[: t + 1].sum(), hist[t + 1:].sum()
        if w0 == 0 or w1 == 0:
            scores.append(-1)
            continue
        m0 = (hist[: t + 1] * np.arange(t + 1)).sum() / w0
        m1 = (hist[t + 1:] * np.arange(t + 1, 256)).sum() / w1
        scores.append((m0 - m1) ** 2)
    return int(np.argmax(scores))


# ---- 1.3 uneven illumination -------------------------------------------------------------------
def uneven_global_otsu(image):
    return classical.global_threshold(image, classical.otsu_threshold(image))


def uneven_small_block(image):   # block smaller than a nucleus: hollow nuclei
    return classical.adaptive_threshold(image, block_size=15, offset=-5)


def uneven_uint8(image):         # right idea, wrong type
    return solution("1.3")(image).astype(np.uint8)


# ---- 1.4 connected components ------------------------------------------------------------------
def components_8_connected(mask):
    return classical.connected_components(mask, connectivity=2)


def components_off_by_one(mask):
    labels, n = solution("1.4")(mask)
    return labels, n + 1


def components_labels_only(mask):
    return solution("1.4")(mask)[0]


WRONG = {
    "0.1": [fraction_counts_ignored_as_foreground, fraction_ignored_in_denominator],
    "1.1": [otsu_mean, otsu_unweighted, lambda image: 128],
    "1.2": ["up", "same", "fewer", 3],
    "1.3": [uneven_global_otsu, uneven_small_block, uneven_uint8],
    "1.4": [components_8_connected, components_off_by_one, components_labels_only],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])


def test_the_notebook_solutions_equal_the_package():
    """The solutions lesson 01 teaches agree with segcourse.classical."""
    from segcourse.exercises.lesson01 import _component_cases, _uint8_cases

    for _, image in _uint8_cases():
        assert solution("1.1")(image) == classical.otsu_threshold(image)
    for _, mask in _component_cases():
        labels, n = solution("1.4")(mask)
        want, want_n = classical.connected_components(mask)
        assert n == want_n and np.array_equal(labels, want)   # same raster-order numbering


def test_global_threshold_really_breaks_under_the_gradient():
    """Exercise 1.3's premise: Otsu is clearly below the target, the solution clearly above it."""
    from segcourse.exercises.lesson01 import UNEVEN_DICE_TARGET, _dice, _uneven_cases, uneven_baseline_dice

    otsu = np.mean([_dice(uneven_global_otsu(im), m) for _, im, m in _uneven_cases()])
    assert uneven_baseline_dice() == pytest.approx(otsu)      # the number lesson 01 prints before the exercise
    local = np.mean([_dice(solution("1.3")(im), m) for _, im, m in _uneven_cases()])
    assert otsu < UNEVEN_DICE_TARGET - 0.05 < UNEVEN_DICE_TARGET + 0.03 < local
