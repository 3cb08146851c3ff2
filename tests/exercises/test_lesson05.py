"""Meta-tests of lesson 05's checks: "not attempted" on the learner's stub, failed on plausible wrong
answers, passed on the solution (stub and solution read from solutions/05_deeplab.ipynb)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segcourse.exercises.registry import run_check

from .notebook_solutions import solution, verify_against_notebook

# ---------------------------------------------------------------- 5.1

# r += (k - 1) * d * j, then j *= s:
#   7x7 s2: r = 1 + 6 = 7, j = 2;  3x3 pool s2: 7 + 2*2 = 11, j = 4;  3x3: 11 + 2*4 = 19;
#   3x3 s2: 19 + 2*4 = 27, j = 8;  3x3 d2: 27 + 2*2*8 = 59;  3x3 d4: 59 + 2*4*8 = 123


def _table(update_jump_first=False, use_dilation=True):
    r, j, rows = 1, 1, []
    for k, s, d in [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)]:
        d = d if use_dilation else 1
        if update_jump_first:
            j *= s
            r += (k - 1) * d * j
        else:
            r += (k - 1) * d * j
            j *= s
        rows.append((r, j))
    return rows


WRONG_5_1 = [
    _table(update_jump_first=True),                        # uses the jump after the layer's own stride
    _table(use_dilation=False),                            # ignores dilation: 27, 27 + 16, 27 + 32
    [(7, 2), (9, 4), (11, 4), (13, 8), (17, 8), (25, 8)],  # forgets the jump: r += (k - 1) * d
    [(7, 2), (11, 4), (19, 4), (27, 8), (59, 8)],          # a layer missing
    [123, 8],                                              # only the last pair, not a table
]


def test_5_1_none_anywhere_is_not_attempted():
    assert run_check("5.1", None).status == "not attempted"
    assert run_check("5.1", [None] * 6).status == "not attempted"


def test_5_1_solution_agrees_with_the_package():
    from segcourse.exercises.lesson05 import rf_table

    assert rf_table() == solution("5.1") == _table() == [(7, 2), (11, 4), (19, 4), (27, 8), (59, 8), (123, 8)]


# ---------------------------------------------------------------- 5.2

# (3,3,3): offsets are multiples of 3 in [-9, 9] -> RF 19, 7 pixels seen;
# (1,2,5): a + 2b covers -3..3, plus 5c covers every offset in [-8, 8] -> 17 and 17;
# (2,4,8): every offset is even, 2 * (-7..7) -> RF 29, 15 pixels seen
WRONG_5_2 = [
    {"rf_333": 19, "seen_333": 19, "rf_125": 17, "seen_125": 17, "rf_248": 29, "seen_248": 15},  # no gridding for a repeated rate
    {"rf_333": 19, "seen_333": 7, "rf_125": 17, "seen_125": 17, "rf_248": 29, "seen_248": 29},   # exponential rates cannot grid
    {"rf_333": 19, "seen_333": 7, "rf_125": 17, "seen_125": 12, "rf_248": 29, "seen_248": 15},   # thinks 1, 2, 5 leaves holes
    {"rf_333": 7, "seen_333": 7, "rf_125": 7, "seen_125": 7, "rf_248": 7, "seen_248": 7},        # dilation ignored
    {"rf_333": 19, "seen_333": 7},                                                                # keys missing
]


def test_5_2_answer_agrees_with_gradient_support():
    answer = solution("5.2")
    for rates in ((3, 3, 3), (1, 2, 5), (2, 4, 8)):
        seen = answer["seen_" + "".join(map(str, rates))]
        convs = torch.nn.Sequential(*[torch.nn.Conv1d(1, 1, 3, padding=d, dilation=d, bias=False) for d in rates])
        for c in convs:
            torch.nn.init.ones_(c.weight)
        x = torch.zeros(1, 1, 61, requires_grad=True)
        convs(x)[0, 0, 30].backward()
        assert int((x.grad != 0).sum()) == seen


# ---------------------------------------------------------------- 5.3

def _dilates_the_input(x, weight, dilation):  # spreads the input instead of the kernel
    k = weight.shape[-1]
    return F.conv2d(x, weight, padding=k // 2)


def _wrong_padding(x, weight, dilation):  # pads by k // 2 only: the output shrinks
    return F.conv2d(x, weight, padding=weight.shape[-1] // 2, dilation=dilation)


def _step_is_dilation_minus_one(x, weight, dilation):
    return solution("5.3")(x, weight, max(1, dilation - 1))


def _kernel_transposed(x, weight, dilation):
    return solution("5.3")(x, weight.transpose(-1, -2), dilation)


# ---------------------------------------------------------------- the meta-test

WRONG = {
    "5.1": WRONG_5_1,
    "5.2": WRONG_5_2,
    "5.3": [_dilates_the_input, _wrong_padding, _step_is_dilation_minus_one, _kernel_transposed],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])
