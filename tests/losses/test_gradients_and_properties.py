"""gradcheck in float64 for every hand-written loss, and the properties every loss must have:
perfect prediction -> (near) zero loss, better prediction -> lower loss, ignored pixels change nothing."""

from __future__ import annotations

import pytest
import torch

import segcourse.losses as L
from segcourse.constants import IGNORE_INDEX

from .conftest import make_binary, make_multiclass

MULTICLASS = {
    "cross_entropy": lambda x, t: L.cross_entropy(x, t, weight=torch.tensor([0.5, 1.0, 2.0], dtype=x.dtype)),
    "ohem": lambda x, t: L.ohem_cross_entropy(x, t, keep_ratio=0.3),
    "dice": lambda x, t: L.dice_loss(x, t),
    "dice_monai": lambda x, t: L.dice_loss(x, t, smooth=1e-5, reduce_batch=False, absent="smooth"),
    "tversky": lambda x, t: L.tversky_loss(x, t, alpha=0.3, beta=0.7),
    "focal": lambda x, t: L.focal_loss(x, t, gamma=2.0, alpha=(0.2, 0.5, 0.3)),
    "lovasz_softmax": lambda x, t: L.lovasz_softmax_loss(x, t),
    "ce_dice": lambda x, t: L.ce_dice_loss(x, t),
    "boundary": lambda x, t: L.boundary_loss(x, t),
}
BINARY = {
    "bce": lambda x, t: L.binary_cross_entropy(x, t, pos_weight=3.0),
    "binary_dice": lambda x, t: L.binary_dice_loss(x, t),
    "binary_tversky": lambda x, t: L.binary_tversky_loss(x, t, alpha=0.7, beta=0.3),
    "binary_focal": lambda x, t: L.binary_focal_loss(x, t, gamma=2.0, alpha=0.25),
    "lovasz_hinge": lambda x, t: L.lovasz_hinge_loss(x, t, per_image=True),
}
# Losses that reach exactly zero on a perfect prediction (boundary loss reaches its negative minimum instead,
# the Lovász hinge needs margins >= 1, which the +-20 logits give).
ZERO_AT_PERFECT = [k for k in MULTICLASS if k != "boundary"]


@pytest.mark.parametrize("name", list(MULTICLASS))
def test_gradcheck_multiclass(name):
    logits, target = make_multiclass(11, n=2, c=3, h=3, w=4, ignore_fraction=0.15, dtype=torch.float64)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: MULTICLASS[name](x, target), (logits,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", list(BINARY))
def test_gradcheck_binary(name):
    logits, target = make_binary(12, n=2, h=3, w=4, ignore_fraction=0.15, dtype=torch.float64)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: BINARY[name](x, target), (logits,), eps=1e-6, atol=1e-5)


def _perfect_logits(target, num_classes, margin=20.0):
    onehot = torch.nn.functional.one_hot(target.clamp_max(num_classes - 1), num_classes).movedim(-1, 1).double()
    return onehot * 2 * margin - margin


@pytest.mark.parametrize("name", ZERO_AT_PERFECT)
def test_perfect_prediction_gives_near_zero_loss(name):
    _, target = make_multiclass(3, ignore_fraction=0.1)
    assert MULTICLASS[name](_perfect_logits(target, 3), target).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", list(BINARY))
def test_perfect_binary_prediction_gives_near_zero_loss(name):
    _, target = make_binary(3, ignore_fraction=0.1)
    logits = (target.clamp_max(1).double() * 40 - 20)[:, None]
    assert BINARY[name](logits, target).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", list(MULTICLASS))
def test_better_prediction_gives_lower_loss(name):
    logits, target = make_multiclass(4, ignore_fraction=0.1, dtype=torch.float64)
    perfect = _perfect_logits(target, 3, margin=3.0)
    # moving the logits towards the truth step by step lowers the loss every time
    values = [MULTICLASS[name]((1 - s) * logits + s * perfect, target).item() for s in (0.0, 0.35, 0.7, 1.0)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


@pytest.mark.parametrize("name", list(BINARY))
def test_better_binary_prediction_gives_lower_loss(name):
    logits, target = make_binary(4, ignore_fraction=0.1, dtype=torch.float64)
    perfect = (target.clamp_max(1).double() * 6 - 3)[:, None]
    values = [BINARY[name]((1 - s) * logits + s * perfect, target).item() for s in (0.0, 0.35, 0.7, 1.0)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


@pytest.mark.parametrize("name", list(MULTICLASS))
def test_ignored_pixels_change_nothing_multiclass(name):
    logits, target = make_multiclass(5, ignore_fraction=0.3)
    ignored = target == IGNORE_INDEX
    other = torch.where(ignored[:, None], torch.randn_like(logits) * 10, logits)
    if name == "boundary":  # the distance maps see ignored pixels as "not the class": fix them once
        dist = L.signed_distance_maps(target, 3)
        fn = lambda x, t: L.boundary_loss(x, t, dist_maps=dist)
    else:
        fn = MULTICLASS[name]
    torch.testing.assert_close(fn(logits, target), fn(other, target))
    # and their logits get no gradient
    x = logits.clone().requires_grad_(True)
    fn(x, target).backward()
    assert x.grad[ignored[:, None].expand_as(x)].abs().max() == 0


@pytest.mark.parametrize("name", list(BINARY))
def test_ignored_pixels_change_nothing_binary(name):
    logits, target = make_binary(5, ignore_fraction=0.3)
    ignored = (target == IGNORE_INDEX)[:, None]
    other = torch.where(ignored, torch.randn_like(logits) * 10, logits)
    torch.testing.assert_close(BINARY[name](logits, target), BINARY[name](other, target))


def _assert_zero_with_zero_gradient(loss, logits, target):
    x = logits.clone().requires_grad_(True)
    value = loss(x, target)
    assert value.ndim == 0 and torch.isfinite(value), value
    assert float(value.detach()) == 0.0, value
    value.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().max() == 0


# The ignore policy (segcourse.losses' module docstring): a batch whose every pixel is ignored gives 0 with a
# zero gradient, for every loss -- not PyTorch's NaN (0/0) for cross-entropy.
@pytest.mark.parametrize("name", list(MULTICLASS))
def test_all_ignored_gives_zero_with_zero_gradient_multiclass(name):
    logits, target = make_multiclass(6)
    target[:] = IGNORE_INDEX
    _assert_zero_with_zero_gradient(MULTICLASS[name], logits, target)


@pytest.mark.parametrize("name", list(BINARY))
def test_all_ignored_gives_zero_with_zero_gradient_binary(name):
    logits, target = make_binary(6)
    target[:] = IGNORE_INDEX
    _assert_zero_with_zero_gradient(BINARY[name], logits, target)


@pytest.mark.parametrize("name", list(L.MULTICLASS_LOSSES))
def test_all_ignored_gives_zero_with_zero_gradient_every_registered_loss(name):
    logits, target = make_multiclass(7)
    target[:] = IGNORE_INDEX
    _assert_zero_with_zero_gradient(L.get_loss(name), logits, target)


def test_cross_entropy_with_no_weighted_pixel_is_zero_and_equals_torch_otherwise():
    logits, target = make_multiclass(8, ignore_fraction=0.2)
    only_zero = torch.where(target == IGNORE_INDEX, target, torch.zeros_like(target))
    weight = torch.tensor([0.0, 1.0, 2.0])  # every kept pixel is class 0, of weight 0: nothing to average
    _assert_zero_with_zero_gradient(lambda x, t: L.cross_entropy(x, t, weight=weight), logits, only_zero)
    all_ignored = torch.full_like(target, IGNORE_INDEX)
    for reduction in ("sum", "none"):  # no 0/0 here: PyTorch's own 0
        assert float(L.cross_entropy(logits, all_ignored, reduction=reduction).sum()) == 0.0
    torch.testing.assert_close(L.cross_entropy(logits, target, weight=weight),
                               torch.nn.functional.cross_entropy(logits, target, weight=weight,
                                                                 ignore_index=IGNORE_INDEX))


def test_hand_checkable_dice_case():
    # smp's classic: prediction [1, 1, 1, 1] vs truth [1, 1, 0, 0] -> Dice = 2*2 / (4 + 2) = 2/3
    logits = torch.tensor([[[[20.0, 20.0, 20.0, 20.0]]]])
    target = torch.tensor([[[1, 1, 0, 0]]])
    assert L.binary_dice_loss(logits, target).item() == pytest.approx(1 - 2 / 3, abs=1e-6)


def test_focal_easy_pixel_down_weighting():
    # p_t = 0.9 -> CE = -log 0.9; with gamma = 2 the focal loss is (0.1)^2 of it
    logit = torch.log(torch.tensor(0.9 / 0.1))
    logits = torch.tensor([0.0, float(logit)]).reshape(1, 2, 1, 1)
    target = torch.ones(1, 1, 1, dtype=torch.long)
    ce = L.cross_entropy(logits, target)
    assert L.focal_loss(logits, target, gamma=2.0).item() == pytest.approx(0.01 * ce.item(), rel=1e-5)
