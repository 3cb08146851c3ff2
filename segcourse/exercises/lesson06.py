"""Checks for lesson 06 (losses): soft Dice from its formula, how focal loss moves the balance between
easy and hard pixels, which losses have a gradient at all (the argmax bug), and the Lovász gradient by hand.

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
# 6.2 -- predict how many easy pixels weigh as much as one hard pixel, under CE and focal loss
# ------------------------------------------------------------------------------------------

#: The two pixels of exercise 6.2: an easy one and a hard one (probability of the true class), and gamma.
EASY_P, HARD_P, FOCAL_GAMMA = 0.9, 0.1, 2.0


def _pixels_per_hard_pixel(gamma: float) -> float:
    # -(1 - p)^gamma log p of the hard pixel over that of the easy one; gamma = 0 is cross-entropy.
    # CE: log 0.1 / log 0.9 = 21.85; focal, gamma = 2: (0.81 / 0.01) * 21.85 = 1770.
    def loss(p):
        return -((1 - p) ** gamma) * math.log(p)
    return loss(HARD_P) / loss(EASY_P)


@exercise("6.2", title="Predict how many easy pixels weigh as much as one hard pixel", level="warm-up",
          minutes=10, kind="predict",
          goal="See in numbers how focal loss moves the balance from the many easy pixels to the few hard ones: "
               "count the easy pixels (p_t = 0.9) whose losses add up to one hard pixel's (p_t = 0.1), under "
               "cross-entropy and under focal loss with gamma = 2.",
          hint="A pixel's loss is -log p_t under CE and -(1 - p_t)^gamma log p_t under focal loss; divide the hard "
               "pixel's loss by the easy pixel's, once per loss. Focal loss changes the answer by the ratio of the "
               "two focal factors.")
def check_focal_prediction(answer):
    if not isinstance(answer, dict):
        raise CheckFailed(f"expected a dict with keys 'ce' and 'focal', got {type(answer).__name__}")
    missing = {"ce", "focal"} - set(answer)
    if missing:
        raise CheckFailed(f"the dict is missing the key(s) {sorted(missing)}")
    if all(answer[k] is None for k in ("ce", "focal")):
        raise NotImplementedError("not attempted")
    want = {"ce": _pixels_per_hard_pixel(0.0), "focal": _pixels_per_hard_pixel(FOCAL_GAMMA)}
    for key, what in (("ce", "cross-entropy"), ("focal", f"focal loss (gamma = {FOCAL_GAMMA:g})")):
        try:
            got = float(answer[key])
        except (TypeError, ValueError):
            raise CheckFailed(f"'{key}': expected a number, got {answer[key]!r}") from None
        if not math.isclose(got, want[key], rel_tol=0.02):
            raise CheckFailed(f"'{key}': that is not the number of easy pixels whose {what} adds up to one hard "
                              f"pixel's (got {got:g})")


# ------------------------------------------------------------------------------------------
# 6.3 -- break it and explain: which losses have a gradient?
# ------------------------------------------------------------------------------------------

#: The losses of exercise 6.3 and whether the logits get a (non-zero) gradient from them.
GRADIENT_QUIZ = {
    "argmax_boundary": False,        # the source article's: boundaries of logits.argmax(1) -- no graph at all
    "soft_boundary": True,           # Kervadec et al.: softmax probabilities times signed distances
    "dice_on_thresholded": False,    # Dice of (probs > 0.5).float(): a comparison returns no graph
    "dice_on_rounded": False,        # Dice of probs.round(): a graph, but round's derivative is 0 everywhere
    "dice_on_steep_sigmoid": True,   # Dice of sigmoid(20 (probs - 0.5)): a soft threshold, small but non-zero
    "dice_on_probs": True,           # soft Dice
}


@exercise("6.3", title="Which losses can train a network", level="core", minutes=15, kind="break-it",
          goal="Recognise operations that cut the gradient (argmax, thresholds, rounding) and why a loss built "
               "on them cannot train anything.",
          hint="Run each loss on logits with requires_grad=True, call backward() if you can, and look at "
               "logits.grad (reset it to None between tries). argmax and > return no graph; round keeps one "
               "whose derivative is 0; a sigmoid, however steep, has a non-zero derivative.")
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
