"""The loss explorer: its numbers against closed forms, and the widget reacting to its sliders."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.widgets.losses import LOSSES, loss_and_gradient, loss_explorer, loss_table

P = np.array([0.05, 0.2, 0.5, 0.8, 0.9, 0.99])


def test_cross_entropy_closed_form():
    # CE = -log p; with p = sigmoid(s), dCE/ds = -(1 - p)
    loss, grad = loss_and_gradient(P, "ce")
    np.testing.assert_allclose(loss, -np.log(P), rtol=1e-10)
    np.testing.assert_allclose(grad, 1 - P, rtol=1e-10)


def test_focal_with_gamma_zero_is_cross_entropy():
    for a, b in zip(loss_and_gradient(P, "focal", gamma=0.0), loss_and_gradient(P, "ce")):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_focal_closed_form(gamma):
    # FL = -(1-p)^g log p;  dFL/dp = g (1-p)^(g-1) log p - (1-p)^g / p;  dp/ds = p (1 - p)
    loss, grad = loss_and_gradient(P, "focal", gamma=gamma)
    np.testing.assert_allclose(loss, -(1 - P) ** gamma * np.log(P), rtol=1e-10)
    dfl_dp = gamma * (1 - P) ** (gamma - 1) * np.log(P) - (1 - P) ** gamma / P
    np.testing.assert_allclose(grad, np.abs(dfl_dp * P * (1 - P)), rtol=1e-8)


@pytest.mark.parametrize("n", [1, 4, 50])
def test_dice_closed_form_and_size(n):
    # n pixels all at p: Dice = 2np / (np + n) = 2p / (1 + p), loss (1-p)/(1+p) for any n;
    # d loss / d p_i = -2 / (n (1+p)^2) for each pixel, times dp/ds = p (1 - p)
    loss, grad = loss_and_gradient(P, "dice", object_pixels=n)
    np.testing.assert_allclose(loss, (1 - P) / (1 + P), rtol=1e-7)
    np.testing.assert_allclose(grad, 2 * P * (1 - P) / ((1 + P) ** 2 * n), rtol=1e-6)


def test_easy_pixel_is_silenced_by_focal():
    # p_t = 0.9, gamma = 2: the focal loss is (0.1)^2 = 1 % of the cross-entropy
    row = loss_table([0.9], gamma=2.0)[0]
    assert row["focal"] / row["ce"] == pytest.approx(0.01, rel=1e-9)
    assert row["focal_grad"] < 0.05 * row["ce_grad"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        loss_and_gradient([0.0, 0.5])
    with pytest.raises(ValueError, match="loss must be one of"):
        loss_and_gradient(0.5, "hinge")
    with pytest.raises(ValueError, match="gamma"):
        loss_and_gradient(0.5, "focal", gamma=-1)
    with pytest.raises(ValueError, match="object_pixels"):
        loss_and_gradient(0.5, "dice", object_pixels=0)


def test_explorer_builds_and_reacts_to_its_sliders():
    box = loss_explorer(gamma=2.0)
    assert set(box.controls) == {"gamma", "object_pixels", "p_mark"}
    assert box.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    before = box.summary.value
    assert "0.9" in before and "focal / CE = 0.0100" in before
    box.controls["gamma"].value = 0.0       # focal becomes CE
    assert box.summary.value != before and "focal / CE = 1.0000" in box.summary.value
    picture = box.picture.value
    box.controls["object_pixels"].value = 100
    assert box.picture.value != picture
    assert set(LOSSES) == {"ce", "focal", "dice"}
