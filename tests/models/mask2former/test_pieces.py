"""Mask2Former's matcher and point-sampled losses against Hugging Face ``transformers`` (the reference
implementation of Mask2Former in PyTorch) and against brute force."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers.models.mask2former import modeling_mask2former as hf

from segcourse.models.mask2former import (
    attention_mask_from_logits,
    hungarian,
    mask_losses,
    masked_attention,
    matched_dice_loss,
    matching_cost,
    pairwise_dice,
    pairwise_sigmoid_ce,
    sample_points,
    sigmoid_ce_loss,
    uncertain_points,
)


def _logits_and_targets(seed, q=6, k=4, p=50):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(q, p, generator=g) * 3
    targets = (torch.rand(k, p, generator=g) < 0.4).float()
    return logits, targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_costs_equal_transformers(seed):
    logits, targets = _logits_and_targets(seed)
    torch.testing.assert_close(pairwise_sigmoid_ce(logits, targets), hf.pair_wise_sigmoid_cross_entropy_loss(logits, targets))
    torch.testing.assert_close(pairwise_dice(logits, targets), hf.pair_wise_dice_loss(logits, targets))


@pytest.mark.parametrize("num_masks", [1, 3, 7])
def test_matched_mask_losses_equal_transformers(num_masks):
    logits, targets = _logits_and_targets(num_masks, q=5, k=5)
    torch.testing.assert_close(sigmoid_ce_loss(logits, targets, num_masks), hf.sigmoid_cross_entropy_loss(logits, targets, num_masks))
    torch.testing.assert_close(matched_dice_loss(logits, targets, num_masks), hf.dice_loss(logits, targets, num_masks))


def test_sample_points_equals_transformers():
    g = torch.Generator().manual_seed(3)
    maps = torch.randn(4, 2, 9, 13, generator=g)
    points = torch.rand(4, 30, 2, generator=g)
    torch.testing.assert_close(sample_points(maps, points), hf.sample_point(maps, points, align_corners=False))


@pytest.mark.parametrize("num_points, importance", [(40, 0.75), (40, 1.0), (17, 0.5)])
def test_uncertain_points_equal_transformers_given_the_same_random_points(num_points, importance):
    logits = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(4))
    loss = hf.Mask2FormerLoss.__new__(hf.Mask2FormerLoss)          # only the two sampling methods are used
    torch.manual_seed(11)
    want = loss.sample_points_using_uncertainty(logits, loss.calculate_uncertainty, num_points, 3, importance)
    torch.manual_seed(11)
    got = uncertain_points(logits, num_points, 3, importance)
    torch.testing.assert_close(got, want)
    # the importance-sampled part really holds the most uncertain candidates: |logit| no larger than the rest's median
    k = int(importance * num_points)
    chosen = sample_points(logits, got[:, :k]).abs()
    assert chosen.mean() < logits.abs().mean()


def test_matching_cost_equals_transformers_matcher():
    g = torch.Generator().manual_seed(5)
    q, k, c = 7, 3, 4
    class_logits = torch.randn(1, q, c + 1, generator=g)
    mask_logits = torch.randn(1, q, 8, 8, generator=g) * 2
    masks = (torch.rand(1, k, 32, 32, generator=g) < 0.3).float()
    labels = torch.tensor([[0, 2, 2]])
    matcher = hf.Mask2FormerHungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=64)
    torch.manual_seed(7)
    want = matcher(mask_logits, class_logits, masks, labels)[0]
    torch.manual_seed(7)
    points = torch.rand(1, 64, 2)[0]
    cost = matching_cost(class_logits[0], mask_logits[0], labels[0], masks[0], points)
    got = hungarian(cost["total"])
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    # the pieces, recomputed with transformers' functions on the same points
    pred = hf.sample_point(mask_logits[0][:, None], points[None].repeat(q, 1, 1), align_corners=False).squeeze(1)
    tgt = hf.sample_point(masks[0][:, None], points[None].repeat(k, 1, 1), align_corners=False).squeeze(1)
    torch.testing.assert_close(cost["mask"], hf.pair_wise_sigmoid_cross_entropy_loss(pred, tgt))
    torch.testing.assert_close(cost["dice"], hf.pair_wise_dice_loss(pred, tgt))
    torch.testing.assert_close(cost["class"], -class_logits[0].softmax(-1)[:, labels[0]])


def _brute_force(cost):
    q, k = cost.shape
    best, best_pairs = float("inf"), None
    if q >= k:
        for perm in itertools.permutations(range(q), k):     # target j -> query perm[j]
            total = sum(float(cost[perm[j], j]) for j in range(k))
            if total < best:
                best, best_pairs = total, sorted((perm[j], j) for j in range(k))
    else:
        for perm in itertools.permutations(range(k), q):     # query i -> target perm[i]
            total = sum(float(cost[i, perm[i]]) for i in range(q))
            if total < best:
                best, best_pairs = total, [(i, perm[i]) for i in range(q)]
    return best, best_pairs


@pytest.mark.parametrize("q, k", [(4, 4), (6, 3), (7, 2), (5, 1), (3, 5)])
@pytest.mark.parametrize("seed", range(4))
def test_hungarian_equals_brute_force(q, k, seed):
    cost = torch.rand(q, k, generator=torch.Generator().manual_seed(seed))
    rows, cols = hungarian(cost)
    best, pairs = _brute_force(cost)
    assert len(rows) == min(q, k)
    assert sorted(zip(rows.tolist(), cols.tolist())) == pairs
    assert float(cost[rows, cols].sum()) == pytest.approx(best)


def test_hungarian_with_no_targets_and_nan_costs():
    rows, cols = hungarian(torch.zeros(5, 0))
    assert rows.shape == (0,) and cols.shape == (0,)
    cost = torch.tensor([[float("nan"), 1.0], [0.5, 2.0], [0.1, 0.2]])
    rows, cols = hungarian(cost)                # the NaN pair is never chosen while another is possible
    assert (0, 0) not in set(zip(rows.tolist(), cols.tolist()))


def test_mask_losses_on_points_equal_transformers_loss_masks():
    g = torch.Generator().manual_seed(8)
    pred = torch.randn(3, 16, 16, generator=g)
    tgt = (torch.rand(3, 64, 64, generator=g) < 0.5).float()
    torch.manual_seed(2)
    bce, dice = mask_losses(pred, tgt, 3.0, num_points=100)
    torch.manual_seed(2)
    loss = hf.Mask2FormerLoss.__new__(hf.Mask2FormerLoss)
    points = loss.sample_points_using_uncertainty(pred[:, None], loss.calculate_uncertainty, 100, 3, 0.75)
    labels = hf.sample_point(tgt[:, None], points, align_corners=False).squeeze(1)
    logits = hf.sample_point(pred[:, None], points, align_corners=False).squeeze(1)
    torch.testing.assert_close(bce, hf.sigmoid_cross_entropy_loss(logits, labels, 3.0))
    torch.testing.assert_close(dice, hf.dice_loss(logits, labels, 3.0))


# ---- masked attention ------------------------------------------------------------------------------
def test_masked_attention_attends_only_inside_the_mask_and_falls_back_when_empty():
    g = torch.Generator().manual_seed(9)
    logits = torch.full((1, 3, 4, 4), -5.0)
    logits[0, 0, :2, :2] = 5.0               # query 0: the top-left quarter
    logits[0, 1, 3, 3] = 5.0                 # query 1: one pixel
    # query 2: an empty mask
    blocked = attention_mask_from_logits(logits, (4, 4))
    q = torch.randn(1, 2, 3, 8, generator=g)
    k = torch.randn(1, 2, 16, 8, generator=g)
    v = torch.randn(1, 2, 16, 8, generator=g)
    out, w = masked_attention(q, k, v, blocked)
    assert torch.isfinite(out).all()
    inside = (logits[0, 0] > 0).flatten()
    assert torch.all(w[0, :, 0, ~inside] == 0) and torch.allclose(w[0, :, 0, inside].sum(-1), torch.ones(2))
    assert torch.allclose(w[0, :, 1, 15], torch.ones(2))
    assert torch.all(w[0, :, 2] > 0)          # the empty mask attends everywhere
    _, plain = masked_attention(q, k, v, None)
    torch.testing.assert_close(w[0, :, 2], plain[0, :, 2])
    # without the fallback the empty row is NaN (softmax over all -inf)
    _, w_nan = masked_attention(q, k, v, attention_mask_from_logits(logits, (4, 4), empty_fallback=False))
    assert torch.isnan(w_nan[0, :, 2]).all() and torch.isfinite(w_nan[0, :, :2]).all()


def test_attention_mask_resizes_to_the_level():
    logits = torch.full((2, 5, 16, 16), -4.0)
    logits[:, :, :8] = 4.0                     # top half foreground (sigmoid(0) = 0.5 would count as kept)
    blocked = attention_mask_from_logits(logits, (4, 4))
    assert blocked.shape == (2, 5, 16)
    assert blocked.view(2, 5, 4, 4)[:, :, :2].logical_not().all() and blocked.view(2, 5, 4, 4)[:, :, 2:].all()
