"""Test-time augmentation: each view undone, probabilities (not votes) averaged."""

from __future__ import annotations

import pytest
import torch

from segcourse.inference import tta_predict


def test_identity_views_give_the_softmax():
    net = torch.nn.Conv2d(3, 3, 3, padding=1).eval()
    x = torch.rand(2, 3, 17, 23)
    torch.testing.assert_close(tta_predict(net, x, flips=("none",)), net(x).detach().softmax(1))


def test_flips_are_undone():
    # a predictor that depends on the position (the column index) gives back the same map for every flip
    # only if each flip is undone
    def predictor(batch):
        return batch[:, :2] * 5

    x = torch.zeros(1, 2, 6, 7)
    x[:, 0, :, :3] = 1.0                                      # left part class 0
    probs = tta_predict(predictor, x, flips=("none", "h", "v", "hv"))
    torch.testing.assert_close(probs, predictor(x).softmax(1))


def test_averages_probabilities_not_votes():
    # view 1: class 1 with p = 0.55; view 2 (flipped): class 0 with p = 0.99. Mean p(class 1) = 0.28 -> class 0;
    # a vote would tie. Probabilities are the mean of the two softmaxes.
    calls = []

    def predictor(batch):
        calls.append(1)
        logit = torch.log(torch.tensor(0.55 / 0.45)) if len(calls) == 1 else torch.log(torch.tensor(0.01 / 0.99))
        out = torch.zeros(batch.shape[0], 2, *batch.shape[-2:])
        out[:, 1] = logit
        return out

    probs = tta_predict(predictor, torch.zeros(1, 3, 4, 4), flips=("none", "h"))
    torch.testing.assert_close(probs[0, 1], torch.full((4, 4), (0.55 + 0.01) / 2))


def test_one_channel_output_uses_sigmoid_and_scales_are_resized_back():
    sizes = []

    def predictor(batch):
        sizes.append(tuple(batch.shape[-2:]))
        return torch.zeros(batch.shape[0], 1, *batch.shape[-2:])

    probs = tta_predict(predictor, torch.zeros(1, 3, 20, 30), flips=("none",), scales=(0.5, 1.0, 1.5))
    assert sizes == [(10, 15), (20, 30), (30, 45)]
    torch.testing.assert_close(probs, torch.full((1, 1, 20, 30), 0.5))


def test_rejects_bad_views():
    with pytest.raises(ValueError, match="unknown flip"):
        tta_predict(lambda b: b, torch.zeros(1, 1, 4, 4), flips=("diagonal",))
    with pytest.raises(ValueError, match="scales"):
        tta_predict(lambda b: b, torch.zeros(1, 1, 4, 4), scales=(0,))
