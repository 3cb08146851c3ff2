"""Boundary loss: distance maps against brute force, the paper's formula, gradients, and the argmax bug."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import segcourse.losses as L
from segcourse.constants import IGNORE_INDEX

from .conftest import make_multiclass


def brute_force_signed_distance(mask: np.ndarray) -> np.ndarray:
    """Outside: distance to the nearest object pixel; inside: -(distance to nearest background pixel - 1)."""
    pos = [p for p in itertools.product(*map(range, mask.shape)) if mask[p]]
    neg = [p for p in itertools.product(*map(range, mask.shape)) if not mask[p]]
    out = np.zeros(mask.shape)
    if not pos:
        return out
    for p in itertools.product(*map(range, mask.shape)):
        others = neg if mask[p] else pos
        d = min(np.hypot(p[0] - q[0], p[1] - q[1]) for q in others) if others else 0.0
        out[p] = -(d - 1.0) if mask[p] else d
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_signed_distance_map_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((9, 8), dtype=bool)
    mask[rng.integers(0, 4):rng.integers(5, 9), rng.integers(0, 3):rng.integers(4, 8)] = True
    mask[rng.integers(0, 9), rng.integers(0, 8)] = True  # a stray pixel
    np.testing.assert_allclose(L.signed_distance_map(mask), brute_force_signed_distance(mask), atol=1e-12)


def test_signed_distance_map_tiny_case():
    # A 1x5 strip with object pixels 1..3: outside pixels are 1 away; inside, the middle one is
    # 2 away from the background, so -(2 - 1) = -1; the object's end pixels sit on the boundary: 0.
    mask = np.array([[0, 1, 1, 1, 0]], dtype=bool)
    np.testing.assert_allclose(L.signed_distance_map(mask), [[1.0, 0.0, -1.0, 0.0, 1.0]])


def test_signed_distance_map_empty_is_zero():
    assert not L.signed_distance_map(np.zeros((4, 4), bool)).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_boundary_loss_equals_paper_formula(seed):
    logits, target = make_multiclass(seed, c=3, h=8, w=9)
    dist = torch.stack([torch.stack([torch.from_numpy(brute_force_signed_distance(t.numpy() == k)).float()
                                     for k in range(3)]) for t in target])
    probs = logits.softmax(1)
    idc = [1, 2]
    expected = torch.einsum("bkwh,bkwh->bkwh", probs[:, idc], dist[:, idc]).mean()  # the reference SurfaceLoss
    torch.testing.assert_close(L.boundary_loss(logits, target), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(L.boundary_loss(logits, target, dist_maps=dist), expected, atol=1e-5, rtol=1e-5)


def test_boundary_loss_ignored_pixels_change_nothing():
    logits, target = make_multiclass(4, c=2, h=10, w=10)
    dist = L.signed_distance_maps(target, 2)
    ignored = target.clone()
    ignored[:, :2] = IGNORE_INDEX
    other = logits.clone()
    other[:, :, :2] = torch.randn_like(other[:, :, :2]) * 5
    a = L.boundary_loss(logits, ignored, dist_maps=dist)
    b = L.boundary_loss(other, ignored, dist_maps=dist)
    torch.testing.assert_close(a, b)


def test_boundary_loss_minimum_at_perfect_prediction():
    target = torch.zeros(1, 12, 12, dtype=torch.long)
    target[0, 3:8, 4:10] = 1
    dist = L.signed_distance_maps(target, 2)
    perfect = torch.stack([(target == 0).float(), (target == 1).float()], 1) * 40 - 20
    best = L.boundary_loss(perfect, target, dist_maps=dist)
    # its value is the mean of phi over the object (negative), divided over all pixels
    expected = dist[0, 1][target[0] == 1].sum() / target.numel()
    torch.testing.assert_close(best, expected, atol=1e-5, rtol=1e-5)
    grown = target.clone()
    grown[0, 2:9, 3:11] = 1
    shrunk = torch.zeros_like(target)
    shrunk[0, 5:6, 6:8] = 1  # two rings in: pixels with phi = 0 and phi = -1 are lost
    for other in (grown, shrunk):
        logits = torch.stack([(other == 0).float(), (other == 1).float()], 1) * 40 - 20
        assert L.boundary_loss(logits, target, dist_maps=dist) > best
    # with the reference's "-(d - 1)" convention the object's own boundary ring has phi = 0, so
    # dropping exactly that ring leaves the loss unchanged (the regional loss must take care of it)
    ring = torch.zeros_like(target)
    ring[0, 4:7, 5:9] = 1
    logits = torch.stack([(ring == 0).float(), (ring == 1).float()], 1) * 40 - 20
    torch.testing.assert_close(L.boundary_loss(logits, target, dist_maps=dist), best, atol=1e-5, rtol=1e-5)


def test_argmax_boundary_loss_has_no_gradient():
    # The source article's version: boundaries of argmax(logits) compared with the target's.
    logits = torch.randn(1, 2, 8, 8, requires_grad=True)
    pred = logits.argmax(1).float()
    assert not pred.requires_grad  # argmax cuts the graph: nothing to back-propagate
    # ... whereas ours has a gradient that is non-zero
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    L.boundary_loss(logits, target).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_boundary_loss_rejects_bad_classes():
    logits, target = make_multiclass(0)
    with pytest.raises(ValueError, match="classes"):
        L.boundary_loss(logits, target, classes=[5])
    with pytest.raises(ValueError, match="dist_maps"):
        L.boundary_loss(logits, target, dist_maps=torch.zeros(1, 3, 6, 7))
