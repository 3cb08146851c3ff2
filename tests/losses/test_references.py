"""Each hand-written loss equals its reference implementation (smp, MONAI, torchvision, PyTorch) to 1e-5,
values and gradients, under the settings its docstring states."""

from __future__ import annotations

import monai.losses as monai_losses  # pinned test dependencies: a broken install must fail, not skip
import pytest
import segmentation_models_pytorch.losses as smp_losses
import torch
import torch.nn.functional as F

import segcourse.losses as L
from segcourse.constants import IGNORE_INDEX

from .conftest import make_binary, make_multiclass

SEEDS = [0, 1, 2]
TOL = dict(atol=1e-5, rtol=1e-5)


def assert_same_value_and_grad(ours_fn, ref_fn, logits, target):
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = ours_fn(a, target)
    ref = ref_fn(b, target)
    torch.testing.assert_close(ours, ref.to(ours.dtype).reshape(ours.shape), **TOL)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL)


# ------------------------------------------------------------------ Dice


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ignore", [0.0, 0.2])
def test_dice_equals_smp_multiclass(seed, ignore):
    logits, target = make_multiclass(seed, c=4, ignore_fraction=ignore)
    target[target == 3] = 0  # class 3 absent: smp gives it loss 0 but keeps it in the mean
    ref = smp_losses.DiceLoss("multiclass", ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(lambda x, t: L.dice_loss(x, t), ref, logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_dice_equals_smp_with_smoothing_convention(seed):
    # smp's smooth s appears as (TP + s) / ((2TP + FP + FN) / 2 + s) = (2TP + 2s) / (2TP + FP + FN + 2s)
    logits, target = make_multiclass(seed)
    ref = smp_losses.DiceLoss("multiclass", smooth=0.7)
    assert_same_value_and_grad(lambda x, t: L.dice_loss(x, t, smooth=1.4), ref, logits, target)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("include_background", [True, False])
def test_dice_equals_monai_multiclass(seed, include_background):
    logits, target = make_multiclass(seed, c=4)
    target[0][target[0] == 2] = 0  # class 2 absent from image 0: MONAI scores it with smoothing
    ref = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=1e-5, smooth_dr=1e-5,
                                include_background=include_background)
    assert_same_value_and_grad(
        lambda x, t: L.dice_loss(x, t, smooth=1e-5, reduce_batch=False, absent="smooth",
                                 include_background=include_background),
        lambda x, t: ref(x, t[:, None]), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_dice_equals_monai_batch_and_ignore(seed):
    logits, target = make_multiclass(seed, ignore_fraction=0.25)
    ref = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=True,
                                ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(
        lambda x, t: L.dice_loss(x, t, smooth=1e-5, reduce_batch=True, absent="smooth"),
        lambda x, t: ref(x, t[:, None]), logits, target)


def test_smp_and_monai_dice_disagree_on_absent_class():
    # Class 2 is absent from the target but predicted: smp scores it 0, MONAI ~1.
    logits, target = make_multiclass(3)
    target[target == 2] = 0
    smp_value = smp_losses.DiceLoss("multiclass")(logits, target)
    monai_value = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, batch=True)(logits, target[:, None])
    assert float(monai_value) - float(smp_value) > 0.2
    torch.testing.assert_close(L.dice_loss(logits, target), smp_value, **TOL)
    torch.testing.assert_close(L.dice_loss(logits, target, smooth=1e-5, absent="smooth"), monai_value, **TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ignore", [0.0, 0.2])
def test_binary_dice_equals_smp(seed, ignore):
    logits, target = make_binary(seed, ignore_fraction=ignore)
    ref = smp_losses.DiceLoss("binary", ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(lambda x, t: L.binary_dice_loss(x, t), ref, logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_dice_equals_monai(seed):
    logits, target = make_binary(seed)
    ref = monai_losses.DiceLoss(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5)
    assert_same_value_and_grad(
        lambda x, t: L.binary_dice_loss(x, t, smooth=1e-5, reduce_batch=False, absent="smooth"),
        lambda x, t: ref(x, t[:, None].float()), logits, target)


# ------------------------------------------------------------------ Tversky


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (0.8, 0.2)])
def test_tversky_equals_smp(seed, alpha, beta):
    logits, target = make_multiclass(seed, ignore_fraction=0.1)
    ref = smp_losses.TverskyLoss("multiclass", alpha=alpha, beta=beta, ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(lambda x, t: L.tversky_loss(x, t, alpha=alpha, beta=beta), ref, logits, target)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha,beta", [(0.3, 0.7), (0.7, 0.3)])
def test_tversky_equals_monai(seed, alpha, beta):
    logits, target = make_multiclass(seed)
    ref = monai_losses.TverskyLoss(softmax=True, to_onehot_y=True, alpha=alpha, beta=beta, smooth_nr=1e-5, smooth_dr=1e-5)
    assert_same_value_and_grad(
        lambda x, t: L.tversky_loss(x, t, alpha=alpha, beta=beta, smooth=1e-5, reduce_batch=False, absent="smooth"),
        lambda x, t: ref(x, t[:, None]), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_tversky_equals_smp(seed):
    logits, target = make_binary(seed)
    ref = smp_losses.TverskyLoss("binary", alpha=0.3, beta=0.7)
    assert_same_value_and_grad(lambda x, t: L.binary_tversky_loss(x, t, alpha=0.3, beta=0.7), ref, logits, target)


# ------------------------------------------------------------------ Focal


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25, (0.2, 0.5, 0.3)])
def test_focal_equals_monai_softmax(seed, gamma, alpha):
    logits, target = make_multiclass(seed)
    ref = monai_losses.FocalLoss(use_softmax=True, to_onehot_y=True, gamma=gamma, alpha=alpha, reduction="none")
    assert_same_value_and_grad(
        lambda x, t: L.focal_loss(x, t, gamma=gamma, alpha=alpha, reduction="none").sum(),
        lambda x, t: ref(x, t[:, None]).sum(), logits, target)
    # MONAI's "mean" also averages over the C one-hot channels: ours / C.
    monai_mean = monai_losses.FocalLoss(use_softmax=True, to_onehot_y=True, gamma=gamma, alpha=alpha)(logits, target[:, None])
    torch.testing.assert_close(L.focal_loss(logits, target, gamma=gamma, alpha=alpha) / logits.shape[1], monai_mean, **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_focal_equals_smp_functional_softmax(seed):
    from segmentation_models_pytorch.losses._functional import softmax_focal_loss_with_logits

    logits, target = make_multiclass(seed)
    assert_same_value_and_grad(lambda x, t: L.focal_loss(x, t, gamma=2.0),
                               lambda x, t: softmax_focal_loss_with_logits(x, t, gamma=2.0), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_focal_gamma_zero_is_cross_entropy(seed):
    logits, target = make_multiclass(seed, ignore_fraction=0.2)
    assert_same_value_and_grad(lambda x, t: L.focal_loss(x, t, gamma=0.0),
                               lambda x, t: F.cross_entropy(x, t, ignore_index=IGNORE_INDEX), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_smp_multiclass_focal_is_mean_of_per_class_sigmoid_focal(seed):
    # smp's FocalLoss("multiclass") is one-vs-rest sigmoid focal, not softmax focal.
    logits, target = make_multiclass(seed, ignore_fraction=0.2)
    smp_value = smp_losses.FocalLoss("multiclass", gamma=2.0, ignore_index=IGNORE_INDEX)(logits, target)
    per_class = [L.binary_focal_loss(logits[:, c:c + 1], torch.where(target == IGNORE_INDEX, target, (target == c).long()))
                 for c in range(logits.shape[1])]
    torch.testing.assert_close(torch.stack(per_class).mean(), smp_value, **TOL)
    assert abs(float(smp_value) - float(L.focal_loss(logits, target))) > 1e-2


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (1.0, None), (0.0, 0.6)])
def test_binary_focal_equals_torchvision_smp_monai(seed, gamma, alpha):
    from torchvision.ops import sigmoid_focal_loss

    logits, target = make_binary(seed)
    tv_alpha = -1 if alpha is None else alpha
    assert_same_value_and_grad(
        lambda x, t: L.binary_focal_loss(x, t, gamma=gamma, alpha=alpha),
        lambda x, t: sigmoid_focal_loss(x, t[:, None].float(), alpha=tv_alpha, gamma=gamma, reduction="mean"), logits, target)
    assert_same_value_and_grad(
        lambda x, t: L.binary_focal_loss(x, t, gamma=gamma, alpha=alpha),
        smp_losses.FocalLoss("binary", gamma=gamma, alpha=alpha), logits, target.float())
    ref = monai_losses.FocalLoss(gamma=gamma, alpha=alpha)
    assert_same_value_and_grad(
        lambda x, t: L.binary_focal_loss(x, t, gamma=gamma, alpha=alpha),
        lambda x, t: ref(x, t[:, None].float()), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_focal_ignore_equals_smp(seed):
    logits, target = make_binary(seed, ignore_fraction=0.3)
    ref = smp_losses.FocalLoss("binary", gamma=2.0, alpha=0.25, ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(lambda x, t: L.binary_focal_loss(x, t, gamma=2.0, alpha=0.25), ref, logits, target)


# ------------------------------------------------------------------ Lovász


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [0.0, 0.2])
def test_lovasz_softmax_equals_smp(seed, per_image, ignore):
    logits, target = make_multiclass(seed, c=4, ignore_fraction=ignore)
    target[target == 3] = 1  # an absent class is skipped ("present")
    ref = smp_losses.LovaszLoss("multiclass", per_image=per_image, ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(lambda x, t: L.lovasz_softmax_loss(x, t, per_image=per_image), ref, logits, target)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [0.0, 0.2])
def test_lovasz_hinge_equals_smp(seed, per_image, ignore):
    logits, target = make_binary(seed, ignore_fraction=ignore)
    ref = smp_losses.LovaszLoss("binary", per_image=per_image, ignore_index=IGNORE_INDEX)
    assert_same_value_and_grad(lambda x, t: L.lovasz_hinge_loss(x, t, per_image=per_image),
                               lambda x, t: ref(x[:, 0], t), logits, target)


# ------------------------------------------------------------------ CE family


@pytest.mark.parametrize("seed", SEEDS)
def test_ce_dice_equals_monai_dicece(seed):
    logits, target = make_multiclass(seed)
    ref = monai_losses.DiceCELoss(softmax=True, to_onehot_y=True)
    assert_same_value_and_grad(lambda x, t: L.ce_dice_loss(x, t), lambda x, t: ref(x, t[:, None]), logits, target)
    ref = monai_losses.DiceCELoss(softmax=True, to_onehot_y=True, lambda_ce=0.3, lambda_dice=1.7)
    assert_same_value_and_grad(lambda x, t: L.ce_dice_loss(x, t, ce_weight=0.3, dice_weight=1.7),
                               lambda x, t: ref(x, t[:, None]), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_cross_entropy_equals_torch(seed):
    logits, target = make_multiclass(seed, ignore_fraction=0.2)
    w = torch.tensor([0.2, 1.0, 3.0])
    assert_same_value_and_grad(lambda x, t: L.cross_entropy(x, t, weight=w),
                               torch.nn.CrossEntropyLoss(weight=w, ignore_index=IGNORE_INDEX), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_cross_entropy_equals_torch_on_valid_pixels(seed):
    logits, target = make_binary(seed, ignore_fraction=0.3)
    valid = target != IGNORE_INDEX
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.5]))
    assert_same_value_and_grad(lambda x, t: L.binary_cross_entropy(x, t, pos_weight=2.5),
                               lambda x, t: ref(x[:, 0][valid], t[valid].float()), logits, target)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("keep_ratio,min_kept", [(0.25, 0), (0.1, 20), (0.5, 3)])
def test_ohem_equals_sorted_mean_of_hardest(seed, keep_ratio, min_kept):
    import math

    logits, target = make_multiclass(seed, ignore_fraction=0.2)
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    valid_losses = per_pixel[target != IGNORE_INDEX].tolist()
    k = min(len(valid_losses), max(min_kept, math.ceil(keep_ratio * len(valid_losses))))
    expected = sum(sorted(valid_losses, reverse=True)[:k]) / k
    got = L.ohem_cross_entropy(logits, target, keep_ratio=keep_ratio, min_kept=min_kept)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_ohem_keep_all_is_cross_entropy():
    logits, target = make_multiclass(5, ignore_fraction=0.2)
    assert_same_value_and_grad(lambda x, t: L.ohem_cross_entropy(x, t, keep_ratio=1.0),
                               lambda x, t: F.cross_entropy(x, t, ignore_index=IGNORE_INDEX), logits, target)
