"""count_parameters: weights only (no buffers), optionally only the trainable ones."""

from torch import nn

from segcourse.models import count_parameters


def test_counts_weights_and_biases_not_buffers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    # conv: 8 * 3 * 3 * 3 weights + 8 biases; BatchNorm: 8 scales + 8 shifts (running mean/var are buffers)
    assert count_parameters(model) == 8 * 3 * 3 * 3 + 8 + 8 + 8
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_trainable_only_leaves_out_frozen_parameters():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 16
    assert count_parameters(model) == 240
