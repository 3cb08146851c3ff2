"""Meta-tests of lesson 09's checks: "not attempted" on the learner's stub, "failed" on plausible
wrong answers, "passed" on the solution (as written in solutions/09_mask2former.ipynb)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segcourse.exercises.registry import learner_stub, verify_exercise


# ---- 9.1 ------------------------------------------------------------------------------------------
def semantic_solution(class_logits, mask_logits):
    class_probs = class_logits.softmax(-1)[:, :-1]
    mask_probs = mask_logits.sigmoid()
    return torch.einsum("qc,qhw->chw", class_probs, mask_probs)


def semantic_keeps_no_object(class_logits, mask_logits):       # C + 1 channels
    return torch.einsum("qc,qhw->chw", class_logits.softmax(-1), mask_logits.sigmoid())


def semantic_softmax_after_dropping(class_logits, mask_logits):  # renormalised without "no object"
    return torch.einsum("qc,qhw->chw", class_logits[:, :-1].softmax(-1), mask_logits.sigmoid())


def semantic_no_sigmoid(class_logits, mask_logits):
    return torch.einsum("qc,qhw->chw", class_logits.softmax(-1)[:, :-1], mask_logits)


def semantic_first_class_dropped(class_logits, mask_logits):   # "no object" taken to be class 0
    return torch.einsum("qc,qhw->chw", class_logits.softmax(-1)[:, 1:], mask_logits.sigmoid())


# ---- 9.3 ------------------------------------------------------------------------------------------
def cost_solution(class_logits, point_logits, labels, point_targets):
    cost_class = -class_logits.softmax(-1)[:, labels]
    p = point_logits.shape[1]
    bce = F.softplus(-point_logits) / p @ point_targets.T + F.softplus(point_logits) / p @ (1 - point_targets).T
    probs = point_logits.sigmoid()
    dice = 1 - (2 * probs @ point_targets.T + 1) / (probs.sum(-1)[:, None] + point_targets.sum(-1)[None, :] + 1)
    return 2 * cost_class + 5 * bce + 5 * dice


def cost_positive_class(class_logits, point_logits, labels, point_targets):     # rewards bad classes
    return cost_solution(class_logits, point_logits, labels, point_targets) + 4 * class_logits.softmax(-1)[:, labels]


def cost_bce_summed(class_logits, point_logits, labels, point_targets):         # sum over points, not mean
    p = point_logits.shape[1]
    bce = F.softplus(-point_logits) @ point_targets.T + F.softplus(point_logits) @ (1 - point_targets).T
    return cost_solution(class_logits, point_logits, labels, point_targets) + 5 * bce * (1 - 1 / p)


def cost_dice_on_logits(class_logits, point_logits, labels, point_targets):     # Dice without the sigmoid
    base = cost_solution(class_logits, point_logits, labels, point_targets)
    probs = point_logits.sigmoid()
    good = 1 - (2 * probs @ point_targets.T + 1) / (probs.sum(-1)[:, None] + point_targets.sum(-1)[None, :] + 1)
    x = point_logits
    bad = 1 - (2 * x @ point_targets.T + 1) / (x.sum(-1)[:, None] + point_targets.sum(-1)[None, :] + 1)
    return base - 5 * good + 5 * bad


def cost_transposed(class_logits, point_logits, labels, point_targets):         # (K, Q)
    return cost_solution(class_logits, point_logits, labels, point_targets).T


# ---- 9.2 ------------------------------------------------------------------------------------------
def mask_solution(mask_logits, size):
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    blocked = (resized.sigmoid() < 0.5).flatten(2)
    return blocked & ~blocked.all(-1, keepdim=True)


def mask_no_fallback(mask_logits, size):
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    return (resized.sigmoid() < 0.5).flatten(2)


def mask_inverted(mask_logits, size):                     # True = allowed
    return ~mask_solution(mask_logits, size)


def mask_logit_threshold(mask_logits, size):              # logits compared with 0.5 instead of probabilities
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    blocked = (resized < 0.5).flatten(2)
    return blocked & ~blocked.all(-1, keepdim=True)


def mask_nearest(mask_logits, size):                      # nearest resizing
    resized = F.interpolate(mask_logits, size=size, mode="nearest")
    blocked = (resized.sigmoid() < 0.5).flatten(2)
    return blocked & ~blocked.all(-1, keepdim=True)


def mask_float(mask_logits, size):
    return mask_solution(mask_logits, size).float()


CASES = {
    "9.1": dict(stub=learner_stub, wrong=[semantic_keeps_no_object, semantic_softmax_after_dropping,
                                          semantic_no_sigmoid, semantic_first_class_dropped],
                solution=semantic_solution),
    "9.3": dict(stub=learner_stub, wrong=[cost_positive_class, cost_bce_summed, cost_dice_on_logits, cost_transposed],
                solution=cost_solution),
    "9.2": dict(stub=learner_stub, wrong=[mask_no_fallback, mask_inverted, mask_logit_threshold, mask_nearest,
                                          mask_float],
                solution=mask_solution),
}


@pytest.mark.parametrize("exercise_id", sorted(CASES))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_exercise(exercise_id, **CASES[exercise_id])
