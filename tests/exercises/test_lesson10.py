"""Meta-tests of lesson 10's checks: each says "not attempted" on the learner's stub, fails on
plausible wrong answers and passes on the solution (stub and solution read from solutions/10_deployment.ipynb)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .notebook_solutions import solution, verify_against_notebook

# ---------------------------------------------------------------- 10.1


def _article_loop(size, window, overlap):          # the source article: stops short of the edge
    stride = max(int(window * (1 - overlap)), 1)
    return list(range(0, size - window, stride))


def _inclusive_range(size, window, overlap):       # covers the edge only when size - window is a multiple
    stride = max(int(window * (1 - overlap)), 1)
    return list(range(0, size - window + 1, stride))


def _unclamped(size, window, overlap):             # last window runs past the edge
    stride = max(int(window * (1 - overlap)), 1)
    return list(range(0, size, stride))


def _even_spread(size, window, overlap):           # covers everything, but not MONAI's positions
    import math

    n = max(1, math.ceil((size - window) / max(int(window * (1 - overlap)), 1)) + 1)
    return sorted({round(i * (size - window) / max(n - 1, 1)) for i in range(n)})


# ---------------------------------------------------------------- 10.2


def _no_floor(h, w, sigma_scale=0.125):
    axes = [torch.exp(-(torch.arange(n) - (n - 1) / 2) ** 2 / (2 * (sigma_scale * n) ** 2)) for n in (h, w)]
    return axes[0][:, None] * axes[1][None, :]


def _sigma_not_scaled(h, w, sigma_scale=0.125):
    axes = [torch.exp(-(torch.arange(n) - (n - 1) / 2) ** 2 / (2 * sigma_scale ** 2 * 64)) for n in (h, w)]
    return (axes[0][:, None] * axes[1][None, :]).clamp(min=1e-3)


def _off_centre(h, w, sigma_scale=0.125):
    axes = [torch.exp(-(torch.arange(n) - n / 2) ** 2 / (2 * (sigma_scale * n) ** 2)) for n in (h, w)]
    return (axes[0][:, None] * axes[1][None, :]).clamp(min=1e-3)


def _normalised(h, w, sigma_scale=0.125):
    weights = solution("10.2")(h, w, sigma_scale)
    return weights / weights.sum()


# ---------------------------------------------------------------- 10.3


def _flips_not_undone(predictor, images):
    return sum(predictor(images.flip(d) if d else images).softmax(1) for d in [(), (3,), (2,), (2, 3)]) / 4


def _votes(predictor, images):
    total = 0
    for dims in [(), (3,), (2,), (2, 3)]:
        logits = predictor(images.flip(dims) if dims else images)
        logits = logits.flip(dims) if dims else logits
        total = total + F.one_hot(logits.argmax(1), logits.shape[1]).permute(0, 3, 1, 2).float()
    return total / 4


def _mean_logits(predictor, images):
    total = 0
    for dims in [(), (3,), (2,), (2, 3)]:
        logits = predictor(images.flip(dims) if dims else images)
        total = total + (logits.flip(dims) if dims else logits)
    return (total / 4).softmax(1)


def _horizontal_only(predictor, images):
    return (predictor(images).softmax(1) + predictor(images.flip(3)).softmax(1).flip(3)) / 2


WRONG = {
    "10.1": [_article_loop, _inclusive_range, _unclamped, _even_spread],
    "10.2": [_no_floor, _sigma_not_scaled, _off_centre, _normalised],
    "10.3": [_flips_not_undone, _votes, _mean_logits, _horizontal_only],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])
