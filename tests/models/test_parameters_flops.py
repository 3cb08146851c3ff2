"""count_flops against the convolution formula, and lattice_period on a known lattice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segcourse.models import count_flops, lattice_period, resnet_tiny


def test_count_flops_of_a_convolution_is_two_per_multiply_add():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    # 2 * k^2 * C_in * C_out * H * W, bias not counted by PyTorch's counter
    assert count_flops(conv, torch.zeros(2, 3, 10, 12)) == 2 * 9 * 3 * 8 * 10 * 12 * 2
    conv.train()
    count_flops(conv, torch.zeros(1, 3, 4, 4))
    assert conv.training  # mode restored


def test_output_stride_costs_more_in_the_last_stages():
    x = torch.zeros(1, 3, 64, 64)
    flops = {os: count_flops(resnet_tiny(width=8, output_stride=os), x) for os in (32, 16, 8)}
    assert flops[32] < flops[16] < flops[8]
    # layer4 (8w channels, the widest) runs on 4x the positions at output stride 16: the total grows,
    # but by less than 4x because the stem and early stages cost the same
    assert flops[16] < 4 * flops[32]


def test_lattice_period_finds_a_known_period():
    columns = torch.arange(96, dtype=torch.float32)
    field = (1 + torch.cos(2 * torch.pi * columns / 8)).expand(96, 96) ** 2     # spots every 8 px
    field = field * torch.exp(-((columns - 48) / 30) ** 2)                     # under a smooth envelope
    assert lattice_period(field) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="2-D"):
        lattice_period(torch.ones(96))
