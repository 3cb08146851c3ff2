"""Meta-tests for the checks of lessons 00 and 01: each fails on the stub and on plausible wrong answers, passes on the solution."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from segcourse import classical
from segcourse.constants import IGNORE_INDEX
from segcourse.exercises.registry import learner_stub, verify_exercise


# ---- 0.1 foreground fraction -------------------------------------------------------------------
def fraction_solution(mask):
    valid = mask != IGNORE_INDEX
    return float((mask[valid] == 1).mean()) if valid.any() else 0.0


def fraction_counts_ignored_as_foreground(mask):
    return float((mask > 0).mean())


def fraction_ignored_in_denominator(mask):
    return float((mask == 1).mean())


# ---- 1.1 Otsu ----------------------------------------------------------------------------------
def otsu_solution(image):
    hist = np.bincount(image.ravel(), minlength=256).astype(float)
    best_t, best = 0, -1.0
    for t in range(256):
        w0, w1 = hist[: t + 1].sum(), hist[t + 1:].sum()
        if w0 == 0 or w1 == 0:
            continue
        m0 = (hist[: t + 1] * np.arange(t + 1)).sum() / w0
        m1 = (hist[t + 1:] * np.arange(t + 1, 256)).sum() / w1
        between = w0 * w1 * (m0 - m1) ** 2
        if between > best:
            best_t, best = t, between
    return best_t


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
def uneven_solution(image):
    return classical.adaptive_threshold(image, block_size=101, offset=-10)


def uneven_global_otsu(image):
    return classical.global_threshold(image, classical.otsu_threshold(image))


def uneven_small_block(image):   # block smaller than a nucleus: hollow nuclei
    return classical.adaptive_threshold(image, block_size=15, offset=-5)


def uneven_uint8(image):         # right idea, wrong type
    return uneven_solution(image).astype(np.uint8)


# ---- 1.4 connected components ------------------------------------------------------------------
def components_solution(mask):
    labels = np.zeros(mask.shape, np.int32)
    n = 0
    h, w = mask.shape
    for r0 in range(h):
        for c0 in range(w):
            if mask[r0, c0] and not labels[r0, c0]:
                n += 1
                labels[r0, c0] = n
                queue = deque([(r0, c0)])
                while queue:
                    r, c = queue.popleft()
                    for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                        if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not labels[rr, cc]:
                            labels[rr, cc] = n
                            queue.append((rr, cc))
    return labels, n


def components_8_connected(mask):
    return classical.connected_components(mask, connectivity=2)


def components_off_by_one(mask):
    labels, n = components_solution(mask)
    return labels, n + 1


def components_labels_only(mask):
    return components_solution(mask)[0]


CASES = {
    "0.1": dict(stub=learner_stub, wrong=[fraction_counts_ignored_as_foreground, fraction_ignored_in_denominator],
                solution=fraction_solution),
    "1.1": dict(stub=learner_stub, wrong=[otsu_mean, otsu_unweighted, lambda image: 128], solution=otsu_solution),
    "1.2": dict(stub=None, wrong=["up", "same", "fewer", 3], solution="down"),
    "1.3": dict(stub=learner_stub, wrong=[uneven_global_otsu, uneven_small_block, uneven_uint8], solution=uneven_solution),
    "1.4": dict(stub=learner_stub, wrong=[components_8_connected, components_off_by_one, components_labels_only],
                solution=components_solution),
}


@pytest.mark.parametrize("exercise_id", sorted(CASES))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_exercise(exercise_id, **CASES[exercise_id])


def test_hand_written_solutions_equal_the_package():
    """The solutions above are the reference the lesson teaches; they must agree with segcourse.classical."""
    from segcourse.exercises.lesson01 import _component_cases, _uint8_cases

    for _, image in _uint8_cases():
        assert otsu_solution(image) == classical.otsu_threshold(image)
    for _, mask in _component_cases():
        labels, n = components_solution(mask)
        want, want_n = classical.connected_components(mask)
        assert n == want_n and np.array_equal(labels, want)   # same raster-order numbering


def test_global_threshold_really_breaks_under_the_gradient():
    """Exercise 1.3's premise: Otsu is clearly below the target, the solution clearly above it."""
    from segcourse.exercises.lesson01 import UNEVEN_DICE_TARGET, _dice, _uneven_cases, uneven_baseline_dice

    otsu = np.mean([_dice(uneven_global_otsu(im), m) for _, im, m in _uneven_cases()])
    assert uneven_baseline_dice() == pytest.approx(otsu)      # the number lesson 01 prints before the exercise
    local = np.mean([_dice(uneven_solution(im), m) for _, im, m in _uneven_cases()])
    assert otsu < UNEVEN_DICE_TARGET - 0.05 < UNEVEN_DICE_TARGET + 0.03 < local
