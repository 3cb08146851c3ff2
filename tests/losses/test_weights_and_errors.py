"""Class weights from a dataset, the module wrappers, and the error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import segcourse.losses as L
from segcourse.constants import IGNORE_INDEX
from segcourse.data.stats import class_statistics

from .conftest import make_binary, make_multiclass


def _masks():
    # Image 0: 12 px of class 0, 4 px of class 1. Image 1: 14 px of class 0, 2 of class 2 (one ignored px: 15+... see below)
    a = np.zeros((4, 4), np.uint8)
    a[0] = 1                               # class 1: 4 px
    b = np.zeros((4, 4), np.uint8)
    b[3, :2] = 2                           # class 2: 2 px
    b[3, 3] = IGNORE_INDEX                 # not counted
    return np.stack([a, b])


def test_class_counts_by_hand():
    stats = class_statistics(_masks(), 3)
    np.testing.assert_array_equal(stats.pixels, [12 + 13, 4, 2])            # 16 - 4 ; 16 - 2 - 1 ignored
    np.testing.assert_array_equal(stats.image_pixels, [16 + 15, 16, 15])    # labelled pixels of the images containing c
    np.testing.assert_array_equal(stats.images, [2, 1, 1])
    assert stats.ignored == 1


def test_inverse_frequency_weights_by_hand():
    # n = 31 labelled pixels, C = 3: w_c = 31 / (3 n_c)
    w = L.inverse_frequency_weights(_masks(), 3)
    torch.testing.assert_close(w, torch.tensor([31 / 75, 31 / 12, 31 / 6]))


def test_median_frequency_weights_by_hand():
    # freq = [25/31, 4/16, 2/15]; median = 0.25 -> w = 0.25 / freq
    w = L.median_frequency_weights(_masks(), 3)
    torch.testing.assert_close(w, torch.tensor([0.25 * 31 / 25, 1.0, 0.25 * 15 / 2]))


def test_balanced_dataset_gives_unit_weights_and_absent_class_zero():
    masks = np.array([[[0, 1], [1, 0]]])
    # classes 0 and 1 occur, 2 px each: w = 4 / (2 * 2) = 1; class 2 never occurs: 0
    torch.testing.assert_close(L.inverse_frequency_weights(masks, 3), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(L.median_frequency_weights(masks, 3), torch.tensor([1.0, 1.0, 0.0]))


def test_weights_from_dataset_and_loader_equal_weights_from_array():
    masks = torch.from_numpy(_masks()).long()
    dataset = [(torch.zeros(3, 4, 4), m) for m in masks]
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    expected = L.inverse_frequency_weights(masks, 3)
    torch.testing.assert_close(L.inverse_frequency_weights(dataset, 3), expected)
    torch.testing.assert_close(L.inverse_frequency_weights(loader, 3), expected)
    torch.testing.assert_close(L.median_frequency_weights(loader, 3), L.median_frequency_weights(masks, 3))


def test_class_counts_errors():
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        L.inverse_frequency_weights(np.array([[0, 7]]), 3)
    with pytest.raises(ValueError, match="no masks"):
        L.median_frequency_weights([], 3)
    with pytest.raises(TypeError, match="integer"):
        L.inverse_frequency_weights(np.zeros((2, 2), np.float32), 3)
    with pytest.raises(TypeError, match="DataLoader"):
        L.inverse_frequency_weights(3.0, 3)


def test_modules_equal_functions_and_move_weights():
    logits, target = make_multiclass(0, ignore_fraction=0.1)
    w = [0.5, 1.0, 2.0]
    torch.testing.assert_close(L.CrossEntropyLoss(weight=w)(logits, target), L.cross_entropy(logits, target, weight=w))
    torch.testing.assert_close(L.DiceLoss(smooth=1.0)(logits, target), L.dice_loss(logits, target, smooth=1.0))
    torch.testing.assert_close(L.FocalLoss(gamma=1.0)(logits, target), L.focal_loss(logits, target, gamma=1.0))
    module = L.CrossEntropyLoss(weight=w).double()
    assert module.weight.dtype == torch.float64 and "weight" in dict(module.named_buffers())
    b_logits, b_target = make_binary(0)
    torch.testing.assert_close(L.BinaryFocalLoss(alpha=0.25)(b_logits, b_target),
                               L.binary_focal_loss(b_logits, b_target, alpha=0.25))
    dist = L.signed_distance_maps(target, 3)
    torch.testing.assert_close(L.BoundaryLoss()(logits, target, dist_maps=dist), L.boundary_loss(logits, target))


@pytest.mark.parametrize("cls, fn", [
    (L.CrossEntropyLoss, L.cross_entropy), (L.BinaryCrossEntropyLoss, L.binary_cross_entropy),
    (L.OHEMCrossEntropyLoss, L.ohem_cross_entropy), (L.DiceLoss, L.dice_loss), (L.BinaryDiceLoss, L.binary_dice_loss),
    (L.TverskyLoss, L.tversky_loss), (L.BinaryTverskyLoss, L.binary_tversky_loss), (L.CEDiceLoss, L.ce_dice_loss),
    (L.FocalLoss, L.focal_loss), (L.BinaryFocalLoss, L.binary_focal_loss),
    (L.LovaszSoftmaxLoss, L.lovasz_softmax_loss), (L.LovaszHingeLoss, L.lovasz_hinge_loss),
    (L.BoundaryLoss, L.boundary_loss),
])
def test_module_signature_is_the_functions(cls, fn):
    """Each module is written out by hand: its keyword arguments and defaults must stay those of its function."""
    import inspect

    want = {k: p.default for k, p in list(inspect.signature(fn).parameters.items())[2:] if k != "dist_maps"}
    got = {k: p.default for k, p in list(inspect.signature(cls.__init__).parameters.items())[1:]}
    assert got == want
    assert cls.__doc__ and fn.__name__ in cls.__doc__


def test_module_repr_shows_its_options():
    assert repr(L.CrossEntropyLoss(weight=[1, 2])) == (
        "CrossEntropyLoss(weight=[1.0, 2.0], ignore_index=255, label_smoothing=0.0, reduction='mean')")


def test_module_rejects_unknown_argument():
    with pytest.raises(TypeError, match="gama"):
        L.FocalLoss(gama=2.0)
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("dise")
    assert isinstance(L.get_loss("lovasz"), L.LovaszSoftmaxLoss)


@pytest.mark.parametrize("fn", [L.cross_entropy, L.dice_loss, L.tversky_loss, L.focal_loss, L.lovasz_softmax_loss,
                                L.ohem_cross_entropy, L.ce_dice_loss, L.boundary_loss])
def test_multiclass_errors_name_what_was_expected(fn):
    logits, target = make_multiclass(0)
    with pytest.raises(TypeError, match="int64"):
        fn(logits, target.float())
    with pytest.raises(ValueError, match=r"squeeze\(1\)"):
        fn(logits, target[:, None])
    with pytest.raises(ValueError, match="label 3"):
        bad = target.clone()
        bad[0, 0, 0] = 3
        fn(logits, bad)
    with pytest.raises(TypeError, match="float"):
        fn(logits.long(), target)
    with pytest.raises(TypeError, match="tensors"):
        fn(logits.numpy(), target)


@pytest.mark.parametrize("fn", [L.binary_dice_loss, L.binary_tversky_loss, L.binary_focal_loss, L.lovasz_hinge_loss,
                                L.binary_cross_entropy])
def test_binary_errors(fn):
    logits, target = make_binary(0)
    with pytest.raises(ValueError, match="one channel"):
        fn(torch.randn(2, 2, 6, 7), target)
    with pytest.raises(ValueError, match="or the ignore_index"):
        fn(logits, target * 2)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        fn(logits, target[:, :3])


def test_option_errors():
    logits, target = make_multiclass(0)
    with pytest.raises(ValueError, match="absent"):
        L.dice_loss(logits, target, absent="skip")
    with pytest.raises(ValueError, match="smooth > 0"):
        L.dice_loss(logits, target, absent="smooth")
    with pytest.raises(ValueError, match="gamma"):
        L.focal_loss(logits, target, gamma=-1)
    with pytest.raises(ValueError, match="one weight per class"):
        L.focal_loss(logits, target, alpha=[0.5, 0.5])
    with pytest.raises(ValueError, match="keep_ratio"):
        L.ohem_cross_entropy(logits, target, keep_ratio=0)
    with pytest.raises(ValueError, match="one value per class"):
        L.cross_entropy(logits, target, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="reduction"):
        L.focal_loss(logits, target, reduction="avg")
    with pytest.raises(ValueError, match="classes"):
        L.lovasz_softmax_loss(logits, target, classes="some")
