"""Checks for lesson 09 (Mask2Former): semantic inference from query outputs, the matching cost and the
masked-attention mask with its empty-mask fallback, each by hand.

Each check compares the learner's function with :mod:`segcourse.models.mask2former` (whose pieces the tests
prove equal to Hugging Face ``transformers``' Mask2Former) on cases the notebook does not show: other
numbers of queries and classes, a query that is confident "no object", targets smaller than the queries,
an empty mask, masks at a coarser resolution than the level.
"""

from __future__ import annotations

import torch

from .registry import CheckFailed, case, exercise, expect_callable, expect_close, expect_equal, expect_tensor

# ------------------------------------------------------------------------------------------
# 9.1 -- semantic inference
# ------------------------------------------------------------------------------------------


def _semantic_cases():
    g = torch.Generator().manual_seed(901)
    yield "8 queries, 5 classes, 6 x 7 masks", torch.randn(8, 6, generator=g) * 2, torch.randn(8, 6, 7, generator=g) * 3
    yield "one query", torch.randn(1, 4, generator=g), torch.randn(1, 5, 5, generator=g)
    cls = torch.randn(4, 3, generator=g)
    cls[0] = torch.tensor([-5.0, -5.0, 12.0])   # query 0 is sure it is "no object"
    msk = torch.randn(4, 4, 4, generator=g)
    msk[0] = 20.0                               # ... and its mask covers everything
    yield "a confident 'no object' query with a full mask", cls, msk


@exercise("9.1", title="Semantic inference from query outputs", level="warm-up", minutes=10, kind="implement",
          goal="Turn Q (class distribution, mask) pairs into per-class pixel scores, as Mask2Former's semantic_inference.",
          hint="Softmax the class logits over the last dim and drop the last column (no object), sigmoid the mask "
               "logits, then torch.einsum('qc,qhw->chw', class_probs, mask_probs).")
def check_semantic(candidate):
    from ..models.mask2former import semantic_inference

    expect_callable(candidate, "my_semantic_inference(class_logits, mask_logits)")
    for name, cls, msk in _semantic_cases():
        with case(name):
            got = candidate(cls.clone(), msk.clone())
            expect_tensor(got, " (C, H, W)")
            want = semantic_inference(cls, msk)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} (C, H, W) with C = classes without 'no object', "
                                  f"got {tuple(got.shape)}")
            expect_close(got, want, "class scores", atol=1e-5)


# ------------------------------------------------------------------------------------------
# 9.3 -- the matching cost
# ------------------------------------------------------------------------------------------


def _cost_cases():
    g = torch.Generator().manual_seed(902)
    for name, q, k, c, p in (("10 queries, 4 targets, 6 classes, 50 points", 10, 4, 6, 50),
                             ("3 queries, 3 targets", 3, 3, 2, 20), ("5 queries, 1 target", 5, 1, 3, 30)):
        cls = torch.randn(q, c + 1, generator=g) * 2
        pred = torch.randn(q, p, generator=g) * 3
        target = (torch.rand(k, p, generator=g) < 0.4).float()
        labels = torch.randint(0, c, (k,), generator=g)
        yield name, cls, pred, labels, target


def reference_cost(class_logits, point_logits, labels, point_targets, w_class=2.0, w_mask=5.0, w_dice=5.0):
    """The matcher's cost on already-sampled points (``segcourse.models.mask2former.matcher``'s formula)."""
    from ..models.mask2former import pairwise_dice, pairwise_sigmoid_ce

    return (w_class * -class_logits.softmax(-1)[:, labels] + w_mask * pairwise_sigmoid_ce(point_logits, point_targets)
            + w_dice * pairwise_dice(point_logits, point_targets))


@exercise("9.3", title="The matching cost of one image", level="core", minutes=20, kind="implement",
          goal="Write the (Q, K) cost that Hungarian matching minimises: class probability, mask BCE and mask Dice on points.",
          hint="cost_class = -softmax(class_logits)[:, labels]. BCE of logit x against target t is "
               "t*softplus(-x) + (1-t)*softplus(x): average it over points with two matrix products against "
               "targets.T and (1 - targets).T. Dice: p = sigmoid(x); 1 - (2 p @ t.T + 1) / (p.sum + t.sum + 1) "
               "broadcast to (Q, K). Weights 2, 5, 5.")
def check_cost(candidate):
    from ..models.mask2former import hungarian

    expect_callable(candidate, "my_matching_cost(class_logits, point_logits, labels, point_targets)")
    for name, cls, pred, labels, target in _cost_cases():
        with case(name):
            got = candidate(cls.clone(), pred.clone(), labels.clone(), target.clone())
            expect_tensor(got, " (Q, K)")
            want = reference_cost(cls, pred, labels, target)
            expect_close(got, want, "cost matrix", atol=1e-5)
            expect_equal(hungarian(got)[1], hungarian(want)[1], "assignment (target of each matched query)")


# ------------------------------------------------------------------------------------------
# 9.2 -- the masked-attention mask
# ------------------------------------------------------------------------------------------


def _mask_cases():
    g = torch.Generator().manual_seed(903)
    yield "random logits, same size", torch.randn(2, 5, 8, 8, generator=g) * 3, (8, 8)
    yield "masks at stride 2 of the level's resolution", torch.randn(1, 4, 16, 16, generator=g) * 3, (4, 4)
    empty = torch.randn(1, 3, 6, 6, generator=g) * 3
    empty[0, 1] = -10.0                          # query 1 predicts nothing
    yield "a query with an empty mask", empty, (6, 6)
    full_and_empty = torch.full((1, 2, 4, 4), -6.0)
    full_and_empty[0, 0] = 6.0
    yield "one full and one empty mask", full_and_empty, (4, 4)


@exercise("9.2", title="The attention mask with its empty fallback", level="core", minutes=15, kind="implement",
          goal="Build masked attention's (B, Q, H*W) blocked-key mask from mask logits, letting queries with an empty mask attend everywhere.",
          hint="Resize with F.interpolate(mode='bilinear', align_corners=False) to the level's size, block where "
               "sigmoid < 0.5, flatten the last two dims, then unblock the rows where every key is blocked "
               "(blocked.all(-1, keepdim=True)).")
def check_attention_mask(candidate):
    from ..models.mask2former import attention_mask_from_logits

    expect_callable(candidate, "my_attention_mask(mask_logits, size)")
    for name, logits, size in _mask_cases():
        with case(name):
            got = candidate(logits.clone(), size)
            expect_tensor(got, " (B, Q, H*W) bool")
            want = attention_mask_from_logits(logits, size)
            if got.dtype != torch.bool:
                raise CheckFailed(f"expected a bool mask (True = blocked), got dtype {got.dtype}")
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} (B, Q, H*W), got {tuple(got.shape)}")
            if got.all(-1).any():
                raise CheckFailed("a query has every key blocked: its attention row would be NaN (0 / 0)")
            expect_equal(got, want, "blocked keys (True = the query may not look there)")
