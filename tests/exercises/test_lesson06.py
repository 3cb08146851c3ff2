"""Meta-tests of lesson 06's checks: "not attempted" on the learner's stub, "failed" on plausible wrong answers,
"passed" on the solution (stub and solution read from solutions/06_losses.ipynb)."""

from __future__ import annotations

import math

import pytest
import torch

import segcourse.losses as L
from segcourse.exercises.registry import run_check

from .notebook_solutions import solution, verify_against_notebook

# ---------------------------------------------------------------- 6.1

def _dice_of_thresholded(p, t, smooth=1.0):
    return solution("6.1")((p > 0.5).to(p.dtype), t, smooth)


def _dice_as_a_float(p, t, smooth=1.0):
    return float(solution("6.1")(p, t, smooth).detach())


WRONG_6_1 = [
    lambda p, t, smooth=1.0: 1 - ((p * t).sum() + smooth) / (p.sum() + t.sum() + smooth),        # forgot the 2
    _dice_of_thresholded,                                                                          # thresholded
    lambda p, t, smooth=1.0: 1 - (2 * (p * t).sum() + smooth) / ((p * p).sum() + t.sum() + smooth),  # squared denominator (V-Net form)
    lambda p, t, smooth=1.0: (1 - (2 * (p * t).sum((1, 2)) + smooth) / (p.sum((1, 2)) + t.sum((1, 2)) + smooth)).mean(),  # per image
    _dice_as_a_float,                                                                              # a float
]


def test_6_1_solution_agrees_with_the_package():
    logits = torch.randn(2, 1, 5, 6, dtype=torch.float64)
    target = (torch.rand(2, 5, 6) < 0.3).long()
    torch.testing.assert_close(solution("6.1")(logits.sigmoid()[:, 0], target, smooth=0.8),
                               L.binary_dice_loss(logits, target, smooth=0.8))


# ---------------------------------------------------------------- 6.2

# CE: log(0.1) / log(0.9) = 21.85 easy pixels per hard one; focal (gamma 2): times 0.81 / 0.01 = 1770
CE_RATIO, FOCAL_RATIO = math.log(0.1) / math.log(0.9), 0.81 * math.log(0.1) / (0.01 * math.log(0.9))
WRONG_6_2 = [
    {"ce": CE_RATIO, "focal": 81.0},                      # only the ratio of the focal factors
    {"ce": CE_RATIO, "focal": CE_RATIO * 9},              # gamma = 1
    {"ce": 9.0, "focal": 81.0},                           # (1 - p) instead of -log p
    {"ce": FOCAL_RATIO, "focal": CE_RATIO},               # swapped
    {"ce": 1 / CE_RATIO, "focal": 1 / FOCAL_RATIO},       # easy over hard
    {"ce": 21.85},                                        # a key missing
    {"ce": "22?", "focal": 1770},
    21.85,
]


def test_6_2_rounded_answers_pass():
    assert run_check("6.2", {"ce": 22, "focal": 1770}).passed


def test_6_2_answer_agrees_with_the_losses():
    def pixel_loss(loss, p_t):   # one pixel of class 1 predicted with probability p_t
        logits = torch.tensor([0.0, float(torch.logit(torch.tensor(p_t, dtype=torch.float64)))],
                              dtype=torch.float64).reshape(1, 2, 1, 1)
        return float(loss(logits, torch.ones(1, 1, 1, dtype=torch.long)))

    for key, loss in (("ce", L.cross_entropy), ("focal", lambda z, t: L.focal_loss(z, t, gamma=2.0))):
        assert pixel_loss(loss, 0.1) / pixel_loss(loss, 0.9) == pytest.approx(solution("6.2")[key])


# ---------------------------------------------------------------- 6.3

_ALL_RIGHT_6_3 = dict(argmax_boundary=False, soft_boundary=True, dice_on_thresholded=False, dice_on_rounded=False,
                      dice_on_steep_sigmoid=True, dice_on_probs=True)   # derived in test_6_3_answers_are_what_autograd_says
WRONG_6_3 = [
    {**_ALL_RIGHT_6_3, "argmax_boundary": True},        # the source article's belief
    {**_ALL_RIGHT_6_3, "dice_on_thresholded": True},
    {**_ALL_RIGHT_6_3, "dice_on_rounded": True},        # backward() runs, so "it has a gradient"
    {**_ALL_RIGHT_6_3, "dice_on_steep_sigmoid": False}, # "a threshold is a threshold"
    {k: True for k in _ALL_RIGHT_6_3},
    {"argmax_boundary": False},
    {**_ALL_RIGHT_6_3, "soft_boundary": "yes"},
]


def dice_of(probs, target):   # as in the exercise's scratch cell
    target = target.to(probs.dtype)
    return 1 - 2 * (probs * target).sum() / (probs.sum() + target.sum()).clamp_min(1e-7)


def test_6_3_answers_are_what_autograd_says():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    logits = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert not logits.argmax(1).float().requires_grad                                   # argmax: no graph
    probs = logits.softmax(1)[:, 1]
    assert not (probs > 0.5).float().requires_grad                                      # comparison: no graph

    def gradient_is_nonzero(make_loss):
        logits.grad = None
        make_loss().backward()
        return bool(logits.grad.abs().sum() > 0)

    p = lambda: logits.softmax(1)[:, 1]
    answer = solution("6.3")
    assert answer == _ALL_RIGHT_6_3
    assert not answer["argmax_boundary"] and not answer["dice_on_thresholded"]           # the two without a graph
    assert gradient_is_nonzero(lambda: L.boundary_loss(logits, target)) == answer["soft_boundary"]
    assert gradient_is_nonzero(lambda: dice_of(p().round(), target)) == answer["dice_on_rounded"]
    assert gradient_is_nonzero(lambda: dice_of(torch.sigmoid(20 * (p() - 0.5)), target)) == \
        answer["dice_on_steep_sigmoid"]
    assert gradient_is_nonzero(lambda: dice_of(p(), target)) == answer["dice_on_probs"]


# ---------------------------------------------------------------- 6.4

def _no_difference(g):  # returns the cumulative Jaccard losses, not their increments
    gts = g.sum()
    return 1.0 - (gts - g.cumsum(0)) / (gts + (1 - g).cumsum(0))


def _union_without_gts(g):
    gts = g.sum()
    j = 1.0 - (gts - g.cumsum(0)) / (1 - g).cumsum(0).clamp_min(1)
    return torch.cat([j[:1], j[1:] - j[:-1]])


def test_6_4_hand_case():
    # truth [1, 0, 1, 0] sorted by error. J after k errors: 1 error (fg) -> 1 - 1/2 = 1/2;
    # + a bg error -> 1 - 1/3 = 2/3; + fg -> 1 - 0/3 = 1; + bg -> 1. Increments: 1/2, 1/6, 1/3, 0.
    torch.testing.assert_close(solution("6.4")(torch.tensor([1.0, 0.0, 1.0, 0.0])),
                               torch.tensor([0.5, 1 / 6, 1 / 3, 0.0]))


# ---------------------------------------------------------------- the meta-test

WRONG = {
    "6.1": WRONG_6_1,
    "6.2": WRONG_6_2,
    "6.3": WRONG_6_3,
    "6.4": [_no_difference, _union_without_gts, lambda g: g.tolist()],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])
