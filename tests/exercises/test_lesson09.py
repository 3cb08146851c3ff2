"""Meta-tests of lesson 09's checks: "not attempted" on the learner's stub, "failed" on plausible
wrong answers, "passed" on the solution (stub and solution read from solutions/09_mask2former.ipynb)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .notebook_solutions import solution, verify_against_notebook


# ---- 9.1 ------------------------------------------------------------------------------------------
def semantic_keeps_no_object(class_logits, mask_logits):       # C + 1 channels
    return torch.einsum("qc,qhw->chw", class_logits.softmax(-1), mask_logits.sigmoid())


def semantic_softmax_after_dropping(class_logits, mask_logits):  # renormalised without "no object"
    return torch.einsum("qc,qhw->chw", class_logits[:, :-1].softmax(-1), mask_logits.sigmoid())


def semantic_no_sigmoid(class_logits, mask_logits):
    return torch.einsum("qc,qhw->chw", class_logits.softmax(-1)[:, :-1], mask_logits)


def semantic_first_class_dropped(class_logits, mask_logits):   # "no object" taken to be class 0
    return torch.einsum("qc,qhw->chw", class_logits.softmax(-1)[:, 1:], mask_logits.sigmoid())


# ---- 9.3 ------------------------------------------------------------------------------------------
def cost_positive_class(class_logits, point_logits, labels, point_targets):     # rewards bad classes
    return solution("9.3")(class_logits, point_logits, labels, point_targets) + 4 * class_logits.softmax(-1)[:, labels]


def cost_bce_summed(class_logits, point_logits, labels, point_targets):         # sum over points, not mean
    p = point_logits.shape[1]
    bce = F.softplus(-point_logits) @ point_targets.T + F.softplus(point_logits) @ (1 - point_targets).T
    return solution("9.3")(class_logits, point_logits, labels, point_targets) + 5 * bce * (1 - 1 / p)


def cost_dice_on_logits(class_logits, point_logits, labels, point_targets):     # Dice without the sigmoid
    base = solution("9.3")(class_logits, point_logits, labels, point_targets)
    probs = point_logits.sigmoid()
    good = 1 - (2 * probs @ point_targets.T + 1) / (probs.sum(-1)[:, None] + point_targets.sum(-1)[None, :] + 1)
    x = point_logits
    bad = 1 - (2 * x @ point_targets.T + 1) / (x.sum(-1)[:, None] + point_targets.sum(-1)[None, :] + 1)
    return base - 5 * good + 5 * bad


def cost_transposed(class_logits, point_logits, labels, point_targets):         # (K, Q)
    return solution("9.3")(class_logits, point_logits, labels, point_targets).T


# ---- 9.2 ------------------------------------------------------------------------------------------
def mask_no_fallback(mask_logits, size):
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    return (resized.sigmoid() < 0.5).flatten(2)


def mask_inverted(mask_logits, size):                     # True = allowed
    return ~solution("9.2")(mask_logits, size)


def mask_logit_threshold(mask_logits, size):              # logits compared with 0.5 instead of probabilities
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    blocked = (resized < 0.5).flatten(2)
    return blocked & ~blocked.all(-1, keepdim=True)


def mask_nearest(mask_logits, size):                      # nearest resizing
    resized = F.interpolate(mask_logits, size=size, mode="nearest")
    blocked = (resized.sigmoid() < 0.5).flatten(2)
    return blocked & ~blocked.all(-1, keepdim=True)


def mask_float(mask_logits, size):
    return solution("9.2")(mask_logits, size).float()


WRONG = {
    "9.1": [semantic_keeps_no_object, semantic_softmax_after_dropping, semantic_no_sigmoid, semantic_first_class_dropped],
    "9.2": [mask_no_fallback, mask_inverted, mask_logit_threshold, mask_nearest, mask_float],
    "9.3": [cost_positive_class, cost_bce_summed, cost_dice_on_logits, cost_transposed],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])
