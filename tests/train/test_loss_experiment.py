"""Lesson 06's experiment helpers: the candidate losses, fixed-step paired training, building scores."""

from __future__ import annotations

import copy

import pytest
import torch

from segcourse.losses import CrossEntropyLoss, boundary_loss, ce_dice_loss
from segcourse.models.unet import unet
from segcourse.train.loss_experiment import (
    BOUNDARY_WEIGHT,
    building_scores,
    ce_dice_boundary,
    gradient_share,
    loss_candidates,
    margin_gradient,
    train_steps,
)


def _data(n=12, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    y = (x[:, 0] > 0.7).long()                                    # a learnable "building" class
    return x, y


def test_loss_candidates_all_and_subset():
    weights = torch.tensor([0.5, 5.0])
    every = loss_candidates(weights)
    assert list(every)[:2] == ["CE", "weighted CE"]
    assert len(every) == 9
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    target = torch.randint(0, 2, (2, 8, 8))
    for name, fn in every.items():
        value = fn(logits, target)
        assert value.shape == (), f"{name} returned shape {tuple(value.shape)}, expected a scalar"
        assert value.requires_grad, f"{name} has no gradient"
    subset = loss_candidates(weights, ["Dice", "CE"])
    assert list(subset) == ["Dice", "CE"]
    torch.testing.assert_close(every["weighted CE"](logits, target),
                               torch.nn.functional.cross_entropy(logits, target, weight=weights))


def test_loss_candidates_unknown_name():
    with pytest.raises(ValueError, match="unknown loss name"):
        loss_candidates(torch.ones(2), ["CE", "Hinge"])


def test_ce_dice_boundary_is_the_sum():
    logits = torch.randn(2, 2, 8, 8)
    target = torch.randint(0, 2, (2, 8, 8))
    torch.testing.assert_close(ce_dice_boundary(logits, target),
                               ce_dice_loss(logits, target) + BOUNDARY_WEIGHT * boundary_loss(logits, target))


def test_train_steps_runs_exactly_steps_and_repeats():
    x, y = _data()
    calls = []

    def counting_ce(logits, target):
        calls.append(target.clone())
        return CrossEntropyLoss()(logits, target)

    torch.manual_seed(0)
    model = unet(depth=2, base_channels=4)
    twin = copy.deepcopy(model)
    history = train_steps(model, x, y, counting_ce, steps=5, batch_size=4, seed=3)
    assert history.stop_reason == "epochs"
    assert len(calls) == 5, f"expected 5 optimizer steps, the loss was called {len(calls)} times"
    first_order = calls[:]
    calls.clear()
    train_steps(twin, x, y, counting_ce, steps=5, batch_size=4, seed=3)
    for a, b in zip(first_order, calls):
        assert torch.equal(a, b), "the same seed must give the same batch order"
    for (name, p), q in zip(model.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(p, q, msg=lambda m, name=name: f"{name} differs between two identical runs: {m}")


def test_train_steps_order_depends_on_seed_not_on_loss():
    x, y = _data()
    seen = {}
    for key, seed, scale in (("a", 1, 1.0), ("b", 1, 3.0), ("c", 2, 1.0)):
        batches = []

        def loss(logits, target, batches=batches, scale=scale):
            batches.append(target.clone())
            return scale * CrossEntropyLoss()(logits, target)

        train_steps(unet(depth=2, base_channels=4), x, y, loss, steps=3, batch_size=4, seed=seed)
        seen[key] = torch.stack(batches)
    assert torch.equal(seen["a"], seen["b"])
    assert not torch.equal(seen["a"], seen["c"])


def test_train_steps_errors():
    x, y = _data()
    model = unet(depth=2, base_channels=4)
    with pytest.raises(ValueError, match="steps and batch_size"):
        train_steps(model, x, y, CrossEntropyLoss(), steps=0, seed=0)
    with pytest.raises(ValueError, match="same length"):
        train_steps(model, x, y[:-1], CrossEntropyLoss(), steps=1, seed=0)


def test_building_scores_by_hand():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1                                           # 16 building pixels
    pred = torch.zeros_like(target)
    pred[0, 2:6, 2:8] = 1                                             # 24 predicted, 16 right
    s = building_scores(pred, target)
    assert s["IoU"] == pytest.approx(16 / 24)
    assert s["precision"] == pytest.approx(16 / 24)
    assert s["recall"] == pytest.approx(1.0)
    assert 0 < s["boundary IoU"] < 1
    perfect = building_scores(target, target)
    assert perfect == {"IoU": 1.0, "precision": 1.0, "recall": 1.0, "boundary IoU": 1.0}


def test_building_scores_shape_mismatch():
    with pytest.raises(ValueError, match="same"):
        building_scores(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))


def test_gradient_share_follows_pixel_counts_and_weights():
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[0, :2, :5] = 1                                             # 10 of 128 pixels
    assert gradient_share(CrossEntropyLoss(), target) == pytest.approx(10 / 128)
    w = torch.tensor([1.0, 4.0])
    assert gradient_share(CrossEntropyLoss(weight=w), target) == pytest.approx(40 / (118 + 40))


def test_margin_gradient_matches_the_formula_for_ce():
    g = torch.Generator().manual_seed(0)
    margin = torch.randn(2, 5, 6, generator=g)
    target = torch.randint(0, 2, (2, 5, 6), generator=g)
    got = margin_gradient(CrossEntropyLoss(), margin, target)
    p = margin.sigmoid()                                              # p(class 1) for logits (-s/2, s/2)
    expected = (p - target.float()) / target.numel()                  # d/ds of the mean of -log p_t
    torch.testing.assert_close(got, expected)
