"""Meta-tests of lesson 06's checks: "not attempted" on the stub, "failed" on plausible wrong answers,
"passed" on the solution (as written in solutions/06_losses.ipynb)."""

from __future__ import annotations

import pytest
import torch

import segcourse.losses as L
from segcourse.exercises.registry import learner_stub, run_check, verify_exercise


# ---------------------------------------------------------------- 6.1

def soft_dice_loss(probs, target, smooth=1.0):
    target = target.to(probs.dtype)
    intersection = (probs * target).sum()
    return 1 - (2 * intersection + smooth) / (probs.sum() + target.sum() + smooth)


def test_6_1_soft_dice():
    verify_exercise(
        "6.1",
        stub=learner_stub,
        wrong=[
            lambda p, t, smooth=1.0: 1 - ((p * t).sum() + smooth) / (p.sum() + t.sum() + smooth),        # forgot the 2
            lambda p, t, smooth=1.0: soft_dice_loss((p > 0.5).to(p.dtype), t, smooth),                    # thresholded
            lambda p, t, smooth=1.0: 1 - (2 * (p * t).sum() + smooth) / ((p * p).sum() + t.sum() + smooth),  # squared denominator (V-Net form)
            lambda p, t, smooth=1.0: (1 - (2 * (p * t).sum((1, 2)) + smooth) / (p.sum((1, 2)) + t.sum((1, 2)) + smooth)).mean(),  # per image
            lambda p, t, smooth=1.0: float(soft_dice_loss(p, t, smooth).detach()),                               # a float
        ],
        solution=soft_dice_loss,
    )


def test_6_1_solution_agrees_with_the_package():
    logits = torch.randn(2, 1, 5, 6, dtype=torch.float64)
    target = (torch.rand(2, 5, 6) < 0.3).long()
    torch.testing.assert_close(soft_dice_loss(logits.sigmoid()[:, 0], target, smooth=0.8),
                               L.binary_dice_loss(logits, target, smooth=0.8))


# ---------------------------------------------------------------- 6.2

def test_6_2_focal_prediction():
    verify_exercise(
        "6.2",
        stub={"easy": None, "hard": None},
        wrong=[
            {"easy": 0.1, "hard": 0.9},     # forgot the square
            {"easy": 0.81, "hard": 0.01},   # swapped easy and hard
            {"easy": 0.01},                 # a key missing
            {"easy": "0.01?", "hard": 0.81},
            0.01,
        ],
        solution={"easy": 0.01, "hard": 0.81},
    )


def test_6_2_answer_agrees_with_focal_loss():
    for p_t, factor in ((0.9, 0.01), (0.1, 0.81)):
        logits = torch.tensor([0.0, float(torch.logit(torch.tensor(p_t, dtype=torch.float64)))],
                              dtype=torch.float64).reshape(1, 2, 1, 1)
        target = torch.ones(1, 1, 1, dtype=torch.long)
        ratio = L.focal_loss(logits, target, gamma=2.0) / L.cross_entropy(logits, target)
        assert ratio.item() == pytest.approx(factor)


# ---------------------------------------------------------------- 6.3

SOLUTION_6_3 = {"argmax_boundary": False, "soft_boundary": True, "dice_on_thresholded": False, "dice_on_probs": True}


def test_6_3_gradient_quiz():
    verify_exercise(
        "6.3",
        stub={k: None for k in SOLUTION_6_3},
        wrong=[
            {**SOLUTION_6_3, "argmax_boundary": True},        # the source article's belief
            {**SOLUTION_6_3, "dice_on_thresholded": True},
            {k: True for k in SOLUTION_6_3},
            {"argmax_boundary": False},
            {**SOLUTION_6_3, "soft_boundary": "yes"},
        ],
        solution=SOLUTION_6_3,
    )


def test_6_3_answers_are_what_autograd_says():
    logits = torch.randn(1, 2, 8, 8, requires_grad=True)
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    assert not logits.argmax(1).float().requires_grad                                   # argmax: no graph
    probs = logits.softmax(1)[:, 1]
    thresholded = (probs > 0.5).float()
    assert not thresholded.requires_grad                                                # comparison: no graph
    L.boundary_loss(logits, target).backward()
    assert logits.grad.abs().sum() > 0
    logits.grad = None
    soft_dice_loss(probs, target).backward()
    assert logits.grad.abs().sum() > 0


# ---------------------------------------------------------------- 6.4

def lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def test_6_4_lovasz_grad():
    def no_difference(g):  # returns the cumulative Jaccard losses, not their increments
        gts = g.sum()
        return 1.0 - (gts - g.cumsum(0)) / (gts + (1 - g).cumsum(0))

    def union_without_gts(g):
        gts = g.sum()
        j = 1.0 - (gts - g.cumsum(0)) / (1 - g).cumsum(0).clamp_min(1)
        return torch.cat([j[:1], j[1:] - j[:-1]])

    verify_exercise("6.4", stub=learner_stub, wrong=[no_difference, union_without_gts, lambda g: g.tolist()],
                    solution=lovasz_grad)


def test_6_4_hand_case():
    # truth [1, 0, 1, 0] sorted by error. J after k errors: 1 error (fg) -> 1 - 1/2 = 1/2;
    # + a bg error -> 1 - 1/3 = 2/3; + fg -> 1 - 0/3 = 1; + bg -> 1. Increments: 1/2, 1/6, 1/3, 0.
    torch.testing.assert_close(lovasz_grad(torch.tensor([1.0, 0.0, 1.0, 0.0])),
                               torch.tensor([0.5, 1 / 6, 1 / 3, 0.0]))
    assert run_check("6.4", lovasz_grad).passed
