"""U-Net *values*, not only shapes: a one-level U-Net with hand-set weights against a hand computation
(pooling, up-convolution, padding to the skip, concatenation order, head), and the translation
equivariance that defines a fully convolutional encoder-decoder with ``depth`` poolings: shifting the
image by a multiple of ``2**depth`` shifts the logits, other shifts do not (the pooling grid moves).

No reference library builds our U-Net (smp's has a ResNet encoder and interpolates instead of padding:
``tests/models/test_unet.py`` compares its structure), hence the hand computation.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segcourse.models.unet import unet

# x (5 x 4: odd height, so the up-sampled map is one row short of the skip and gets padded)
X = torch.tensor([[1., -2., 3., 0.],
                  [4., 5., -6., 2.],
                  [0., 1., 2., 3.],
                  [-1., 7., 1., 1.],
                  [2., 2., -3., 4.]])
# skip = relu(x) (the stem's two identity convolutions):      2x2 max-pool of its first 4 rows (floor):
#   [[1, 0, 3, 0], [4, 5, 0, 2], [0, 1, 2, 3], [0, 7, 1, 1],   [[max(1,0,4,5), max(3,0,0,2)],   = [[5, 3],
#    [2, 2, 0, 4]]                                              [max(0,1,0,7), max(2,3,1,1)]]     [7, 3]]
# up-sampled x2 to 4 x 4, then zero-padded to the skip's 5 x 4 (dh = 1: 0 rows on top, 1 at the bottom).
# The decoder's first conv takes cat([skip, up]) with centre weights (1, 10): out = skip + 10 * up; head 2 * out - 1.
UP = {
    # up-convolution (ConvTranspose2d 2x2 stride 2) with weight 1: each pooled pixel copied to its 2 x 2 block
    "transpose": torch.tensor([[5., 5., 3., 3.],
                               [5., 5., 3., 3.],
                               [7., 7., 3., 3.],
                               [7., 7., 3., 3.]]),
    # bilinear x2 (align_corners=False): output o samples (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped),
    # weights (1, 0), (3/4, 1/4), (1/4, 3/4), (0, 1) along each axis; rows [5, 3] -> [5, 4.5, 3.5, 3], [7, 3] -> [7, 6, 4, 3]
    "bilinear": torch.tensor([[5., 4.5, 3.5, 3.],
                              [5.5, 4.875, 3.625, 3.],
                              [6.5, 5.625, 3.875, 3.],
                              [7., 6., 4., 3.]]),
}
EXPECTED = {   # 2 * (skip + 10 * up) - 1, written out
    "transpose": torch.tensor([[101., 99., 65., 59.],
                               [107., 109., 59., 63.],
                               [139., 141., 63., 65.],
                               [139., 153., 61., 61.],
                               [3., 3., -1., 7.]]),
    "bilinear": torch.tensor([[101., 89., 75., 59.],
                              [117., 106.5, 71.5, 63.],
                              [129., 113.5, 80.5, 65.],
                              [139., 133., 81., 61.],
                              [3., 3., -1., 7.]]),
}


def _identity(conv, out_channel=0, in_channel=0):
    conv.weight[out_channel, in_channel, 1, 1] = 1.0


def _hand_set_unet(up):
    """depth 1, base 1, no norm: stem 1 channel, bottleneck 2 channels (the second one silent), all biases 0."""
    model = unet(in_channels=1, num_classes=1, depth=1, base_channels=1, up=up, norm="none").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        stem, bottleneck = model.encoder.stem, model.encoder.stages[0][1]
        block = model.decoder.blocks[0]
        _identity(stem[0])
        _identity(stem[3])
        _identity(bottleneck[0])             # channel 0 = the pooled map, channel 1 = 0
        _identity(bottleneck[3])
        if up == "transpose":
            block.up.weight[0, 0] = 1.0      # (in 2, out 1, 2, 2): channel 0 copied to each 2 x 2 block
        else:
            block.up[1].weight[0, 0] = 1.0   # bilinear x2, then the 1x1 conv keeps channel 0
        block.conv[0].weight[0, 0, 1, 1] = 1.0    # the skip ...
        block.conv[0].weight[0, 1, 1, 1] = 10.0   # ... and the up-sampled map, concatenated in that order
        _identity(block.conv[3])
        model.head.weight.fill_(2.0)
        model.head.bias.fill_(-1.0)
    return model


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_hand_set_unet_equals_the_hand_computation(up):
    expected = 2 * (torch.relu(X) + 10 * torch.cat([UP[up], torch.zeros(1, 4)])) - 1
    torch.testing.assert_close(expected, EXPECTED[up])          # the written-out numbers are the formula's
    with torch.no_grad():
        got = _hand_set_unet(up)(X[None, None])
    torch.testing.assert_close(got[0, 0], EXPECTED[up])


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_hand_set_unet_tells_the_skip_from_the_upsampled_map(up):
    # swapping the concatenation (up first), or padding the missing row on top, would give other numbers
    model = _hand_set_unet(up)
    with torch.no_grad():
        w = model.decoder.blocks[0].conv[0].weight
        w[0, 0, 1, 1], w[0, 1, 1, 1] = 10.0, 1.0
        swapped = model(X[None, None])[0, 0]
    assert (swapped - EXPECTED[up]).abs().max() > 1
    top_padded = 2 * (torch.relu(X) + 10 * torch.cat([torch.zeros(1, 4), UP[up]])) - 1
    assert (top_padded - EXPECTED[up]).abs().max() > 1


@pytest.mark.parametrize("shift, equivariant", [((4, 8), True), ((8, -4), True), ((1, 0), False), ((2, 2), False)])
def test_unet_is_equivariant_to_shifts_by_multiples_of_two_to_the_depth(shift, equivariant):
    # depth 2: the pooling grid repeats every 4 pixels. Away from the border (the receptive field, 44 pixels
    # by the recurrence r += (k - 1) * jump, plus the shift, rolled in from the other side), shifting the
    # input by a multiple of 4 shifts the logits by the same amount (measured: exactly); a shift by 1 or 2
    # changes them (measured: by about 70% of their range).
    torch.manual_seed(0)
    model = unet(in_channels=1, num_classes=2, depth=2, base_channels=4).eval()
    with torch.no_grad():  # He initialisation keeps the deep path's signal (PyTorch's default divides the variance by ~3 a layer)
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    x = torch.randn(1, 1, 96, 96)
    with torch.no_grad():
        shifted_then_run = model(torch.roll(x, shift, dims=(2, 3)))
        run_then_shifted = torch.roll(model(x), shift, dims=(2, 3))
    inner = (..., slice(32, 64), slice(32, 64))
    diff = (shifted_then_run[inner] - run_then_shifted[inner]).abs().max()
    scale = run_then_shifted[inner].abs().max()
    if equivariant:
        assert diff <= 1e-5 * scale
    else:
        assert diff > 1e-2 * scale
