"""Checks for lesson 06 (losses): soft Dice from its formula, the focal factor of easy and hard
pixels, which losses have a gradient at all (the argmax bug), and the Lovász gradient by hand.

Each check compares the learner's answer with the course's own losses (:mod:`segcourse.losses`,
themselves tested against segmentation_models_pytorch and MONAI) on hidden cases.
"""

from __future__ import annotations

import math

import torch

from ..losses import lovasz_grad
from .registry import CheckFailed, case, exercise, expect_close, expect_tensor

# ------------------------------------------------------------------------------------------
# 6.1 -- soft Dice loss from its formula
# ------------------------------------------------------------------------------------------


def _reference_soft_dice(probs: torch.Tensor, target: torch.Tensor, smooth: float) -> torch.Tensor:
    # 1 - (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth), pooled over the whole batch
    g = target.to(probs.dtype)
    return 1 - (2 * (probs * g).sum() + smooth) / (probs.sum() + g.sum() + smooth)


def _dice_cases():
    gen = torch.Generator().manual_seed(606)
    probs = torch.rand(2, 7, 9, generator=gen, dtype=torch.float64)
    target = (torch.rand(2, 7, 9, generator=gen) < 0.2).long()
    yield "random probabilities, 20 % foreground", probs, target, 1.0
    yield "the same without smoothing", probs, target, 0.0
    perfect = target.to(torch.float64)
    yield "perfect prediction", perfect, target, 1.0
    yield "empty target, nothing predicted", torch.zeros(1, 4, 4, dtype=torch.float64), torch.zeros(1, 4, 4, dtype=torch.long), 1.0
    half = torch.full((1, 1, 4), 0.5, dtype=torch.float64)
    yield "hand case: p = 0.5 everywhere, truth [1, 1, 0, 0]", half, torch.tensor([[[1, 1, 0, 0]]]), 0.0


@exercise("6.1", title="Soft Dice loss from its formula", level="warm-up", minutes=10, kind="implement",
          goal="Write the soft Dice loss on probabilities, see why it needs no threshold and how smoothing "
               "handles an empty mask.",
          hint="Multiply probabilities and the 0/1 target and sum everything (the whole batch): "
               "loss = 1 - (2*sum(p*g) + smooth) / (sum(p) + sum(g) + smooth). Do not threshold p: the "
               "loss must stay differentiable.")
def check_soft_dice(candidate):
    for name, probs, target, smooth in _dice_cases():
        with case(name):
            x = probs.clone().requires_grad_(True)
            got = candidate(x, target, smooth=smooth)
            expect_tensor(got, " (a scalar loss)")
            if got.numel() != 1:
                raise CheckFailed(f"expected a scalar, got a tensor of shape {tuple(got.shape)}")
            want = _reference_soft_dice(probs, target, smooth)
            if not (smooth == 0 and target.sum() == 0):
                expect_close(float(got.detach()), float(want), "loss", atol=1e-6)
            if not got.requires_grad:
                raise CheckFailed("the loss has no gradient (requires_grad is False): did you threshold or "
                                  "round the probabilities, or call .item()/.numpy()?")
            got.reshape(()).backward()
            ref = probs.clone().requires_grad_(True)
            _reference_soft_dice(ref, target, smooth).backward()
            expect_close(x.grad, ref.grad, "gradient with respect to the probabilities", atol=1e-6)


# ------------------------------------------------------------------------------------------
# 6.2 -- predict how gamma changes the focal loss of an easy and a hard pixel
# ------------------------------------------------------------------------------------------


@exercise("6.2", title="Predict the focal factor of an easy and a hard pixel", level="warm-up", minutes=5,
          kind="predict",
          goal="See that focal loss keeps hard pixels almost as they were under cross-entropy and silences "
               "easy ones, by computing the factor (1 - p_t)^gamma.",
          hint="The focal loss is (1 - p_t)^gamma times the cross-entropy of the same pixel. With gamma = 2 "
               "and p_t = 0.9 that is 0.1 squared.")
def check_focal_prediction(answer):
    if not isinstance(answer, dict):
        raise CheckFailed(f"expected a dict with keys 'easy' and 'hard', got {type(answer).__name__}")
    missing = {"easy", "hard"} - set(answer)
    if missing:
        raise CheckFailed(f"the dict is missing the key(s) {sorted(missing)}")
    if all(v is None for v in answer.values()):
        raise NotImplementedError("not attempted")
    want = {"easy": (1 - 0.9) ** 2, "hard": (1 - 0.1) ** 2}  # 0.01 and 0.81
    for key, p in (("easy", 0.9), ("hard", 0.1)):
        try:
            got = float(answer[key])
        except (TypeError, ValueError):
            raise CheckFailed(f"'{key}': expected a number, got {answer[key]!r}") from None
        if not math.isclose(got, want[key], abs_tol=1e-3):
            raise CheckFailed(f"'{key}' (p_t = {p}): expected the fraction of its cross-entropy that the focal loss "
                              f"keeps, got {got:g}")


# ------------------------------------------------------------------------------------------
# 6.3 -- break it and explain: which losses have a gradient?
# ------------------------------------------------------------------------------------------

#: The losses of exercise 6.3 and whether the logits get a (non-zero) gradient from them.
GRADIENT_QUIZ = {
    "argmax_boundary": False,    # the source article's: boundaries of logits.argmax(1)
    "soft_boundary": True,       # Kervadec et al.: softmax probabilities times signed distances
    "dice_on_thresholded": False,  # Dice of (probs > 0.5).float(): the threshold is flat almost everywhere
    "dice_on_probs": True,       # soft Dice
}


@exercise("6.3", title="Which losses can train a network", level="core", minutes=10, kind="break-it",
          goal="Recognise operations that cut the gradient (argmax, thresholds, rounding) and why a loss built "
               "on them cannot train anything.",
          hint="Run each loss on logits with requires_grad=True, call backward() if you can, and look at "
               "logits.grad. argmax returns integers; a step function has derivative 0 almost everywhere.")
def check_gradient_quiz(answer):
    if not isinstance(answer, dict):
        raise CheckFailed(f"expected a dict of True/False answers with keys {sorted(GRADIENT_QUIZ)}, "
                          f"got {type(answer).__name__}")
    missing = set(GRADIENT_QUIZ) - set(answer)
    if missing:
        raise CheckFailed(f"the dict is missing the key(s) {sorted(missing)}")
    if all(answer[k] is None for k in GRADIENT_QUIZ):
        raise NotImplementedError("not attempted")
    for key, want in GRADIENT_QUIZ.items():
        if not isinstance(answer[key], bool):
            raise CheckFailed(f"'{key}': expected True or False, got {answer[key]!r}")
        if answer[key] != want:
            raise CheckFailed(f"'{key}': that is not what backward() shows -- run it and look at logits.grad")


# ------------------------------------------------------------------------------------------
# 6.4 -- the Lovász extension's gradient by hand
# ------------------------------------------------------------------------------------------


def _lovasz_cases():
    yield "hand case [1, 0, 1, 0]", torch.tensor([1.0, 0.0, 1.0, 0.0])
    yield "a single foreground pixel", torch.tensor([1.0])
    yield "all background", torch.zeros(5)
    yield "all foreground", torch.ones(4)
    gen = torch.Generator().manual_seed(64)
    yield "60 random pixels", (torch.rand(60, generator=gen) < 0.3).float()


@exercise("6.4", title="The Lovasz gradient of the Jaccard loss", level="stretch", minutes=20, kind="implement",
          goal="Understand how the Lovász-Softmax loss turns IoU into weights on sorted errors: the i-th weight "
               "is how much the Jaccard loss grows when the i-th worst pixel becomes an error.",
          hint="With g sorted by decreasing error: intersection_i = sum(g) - cumsum(g)_i, union_i = sum(g) + "
               "cumsum(1 - g)_i, J_i = 1 - intersection_i / union_i; return J_1, J_2 - J_1, J_3 - J_2, ...")
def check_lovasz_grad(candidate):
    for name, gt_sorted in _lovasz_cases():
        with case(name):
            got = candidate(gt_sorted.clone())
            expect_tensor(got)
            expect_close(got, lovasz_grad(gt_sorted), "weights")
