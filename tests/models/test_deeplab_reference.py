"""DeepLabV3+'s decoder and ASPP against segmentation_models_pytorch's ``DeepLabV3PlusDecoder``, and the
properties that define the parts no reference shares (Chen et al. 2018, https://arxiv.org/abs/1802.02611).

smp's decoder (0.6) and ours differ in four places, all deliberate on our side:

1. after ASPP smp applies one more depthwise-separable 3×3 convolution + BN + ReLU; we do not (the paper's
   decoder starts from the ASPP output);
2. smp upsamples the ASPP output by a fixed ``scale_factor`` with ``align_corners=True``; we upsample to the
   low-level map's exact size with ``align_corners=False`` (torchvision's convention, and odd input sizes work);
3. smp fuses with *one* depthwise-separable 3×3 convolution; we use two plain 3×3 convolutions (the paper's
   decoder: "a few 3×3 convolutions", two in its configuration; plain as torchvision's reimplementations);
4. smp's default atrous rates are (12, 24, 36) at output stride 16; ours are the paper's (6, 12, 18).

``test_decoder_equals_smps_where_the_architectures_match`` sets both to what they share -- smp's extra
layer and our second convolution to the identity, smp's upsampling to ``align_corners=False``, and smp's
separable convolution copied into our full one (a depthwise-separable convolution *is* a full convolution
with weight ``pointwise[o, i] * depthwise[i]``) -- and compares outputs. The ASPP is compared as it is.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPP as SmpASPP
from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder as SmpDecoder
from torch import nn

from segcourse.models import ASPP
from segcourse.models.deeplab import DeepLabV3PlusDecoder

RATES = (1, 2, 3)
CHANNELS = 16          # smp uses one width for ASPP and decoder
LOW, HIGH = 8, 64      # channels of the stride-4 and the stride-16 feature maps


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and non-trivial BatchNorm statistics, so that eval mode is a real test."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def _identity_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Make ``conv -> bn`` the identity in eval mode (``conv`` 3×3 with 'same' padding, in = out channels)."""
    with torch.no_grad():
        conv.weight.zero_()
        centre = conv.kernel_size[0] // 2
        channels = torch.arange(conv.out_channels)
        conv.weight[channels, channels % conv.weight.shape[1], centre, centre] = 1.0
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_((1.0 + bn.eps) ** 0.5)
        bn.bias.zero_()


def _features(seed: int = 1, size=(32, 24)):
    """smp's feature list (the image first): only [2] (stride 4) and [-1] (stride 16) are read."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    low = torch.randn(2, LOW, h, w, generator=g)
    high = torch.randn(2, HIGH, h // 4, w // 4, generator=g)
    unused = torch.zeros(2, 1, 1, 1)
    return [unused, unused, low, unused, unused, high]


def test_aspp_equals_smps_aspp_with_plain_convolutions():
    theirs = _randomise(SmpASPP(HIGH, CHANNELS, RATES, separable=False, dropout=0.5))
    ours = ASPP(HIGH, CHANNELS, RATES).eval()
    ours.load_state_dict(theirs.state_dict())            # same layout, same parameter names
    x = torch.randn(2, HIGH, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def _matched_pair():
    """smp's decoder and ours (with our ASPP), set to the architecture they share (see the module docstring)."""
    theirs = _randomise(SmpDecoder(encoder_channels=(3, 1, LOW, 1, 1, HIGH), encoder_depth=5, out_channels=CHANNELS,
                                   atrous_rates=RATES, output_stride=16, aspp_separable=False, aspp_dropout=0.5))
    aspp = ASPP(HIGH, CHANNELS, RATES).eval()
    decoder = _randomise(DeepLabV3PlusDecoder(CHANNELS, LOW, low_level_channels=48, channels=CHANNELS), seed=2)
    # 1. smp's extra separable conv + BN after ASPP -> identity (its ReLU then sees non-negative inputs)
    separable, bn = theirs.aspp[1], theirs.aspp[2]
    _identity_conv_bn(separable[0], bn)                   # depthwise: the centre tap of each channel
    with torch.no_grad():
        separable[1].weight.copy_(torch.eye(CHANNELS)[:, :, None, None])  # pointwise: the identity
    # 2. the upsampling convention: ours (align_corners=False); smp's own is align_corners=True
    own_upsampling = theirs.up
    theirs.up = nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False)
    # ASPP and the low-level projection: same layout, copied
    aspp.load_state_dict(theirs.aspp[0].state_dict())
    decoder.project.load_state_dict(theirs.block1.state_dict())
    # 3. smp's one separable fusion conv == our first full conv, weight pointwise[o, i] * depthwise[i]
    depthwise, pointwise = theirs.block2[0][0].weight, theirs.block2[0][1].weight  # (I, 1, 3, 3), (O, I, 1, 1)
    with torch.no_grad():
        decoder.fuse[0][0].weight.copy_(pointwise[:, :, 0, 0, None, None] * depthwise[None, :, 0])
    decoder.fuse[0][1].load_state_dict(theirs.block2[1].state_dict())
    # ... and our second conv -> identity
    _identity_conv_bn(decoder.fuse[1][0], decoder.fuse[1][1])
    return theirs, own_upsampling, aspp, decoder


def test_decoder_equals_smps_where_the_architectures_match():
    theirs, own_upsampling, aspp, decoder = _matched_pair()
    features = _features()
    with torch.no_grad():
        want = theirs(features)                           # (2, 16, 32, 24)
        got = decoder(aspp(features[-1]), features[2])
    assert got.shape == want.shape == (2, CHANNELS, 32, 24)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert got.abs().max() > 0.1  # not a trivial zero; the equality also fixes the concatenation order
    # with smp's own align_corners=True upsampling the outputs differ: that convention is the one difference left
    theirs.up = own_upsampling
    with torch.no_grad():
        assert (theirs(features) - got).abs().max() > 1e-2


def test_low_level_features_act_locally_through_one_1x1_and_two_3x3_convolutions():
    # the decoder refines boundaries at stride 4: a change in one low-level pixel reaches the output
    # within 2 pixels (two 3x3 convolutions after the 1x1 projection), and nowhere else
    torch.manual_seed(0)
    decoder = _randomise(DeepLabV3PlusDecoder(CHANNELS, LOW, channels=CHANNELS))
    aspp_out = torch.rand(1, CHANNELS, 5, 4)
    low = torch.randn(1, LOW, 20, 16)
    changed = low.clone()
    i, j = 9, 7
    changed[0, :, i, j] += 5.0
    with torch.no_grad():
        diff = (decoder(aspp_out, changed) - decoder(aspp_out, low)).abs().amax(1)[0]  # (20, 16)
    assert diff[i, j] > 0
    near = torch.zeros_like(diff, dtype=torch.bool)
    near[i - 2:i + 3, j - 2:j + 3] = True
    assert diff[~near].max() == 0


def test_decoder_output_has_the_low_level_size_whatever_the_aspp_size():
    # ours upsamples to the low-level map's size (an odd input gives 25 x 19 vs 7 x 5 at stride 16, not
    # a factor of 4); smp's fixed scale_factor=4 gives 28 x 20 there, so smp requires sizes divisible by 16
    decoder = DeepLabV3PlusDecoder(CHANNELS, LOW, channels=CHANNELS).eval()
    with torch.no_grad():
        assert decoder(torch.randn(1, CHANNELS, 7, 5), torch.randn(1, LOW, 25, 19)).shape == (1, CHANNELS, 25, 19)


@pytest.mark.parametrize("pooling", [True, False])
def test_aspp_sees_the_whole_map_only_through_its_image_pooling_branch(pooling):
    # ASPP's defining property: the dilated branches see at most max(rate) pixels away; the image-level
    # (pooling) branch makes every output depend on every input. Without it (its 1x1 conv zeroed, so the
    # branch is constant), a change at one corner stays within max(rate) of it.
    torch.manual_seed(0)
    aspp = _randomise(ASPP(HIGH, CHANNELS, RATES))
    if not pooling:
        with torch.no_grad():
            aspp.convs[-1][1].weight.zero_()
    x = torch.randn(1, HIGH, 12, 10)
    changed = x.clone()
    changed[0, :, 0, 0] += 5.0
    with torch.no_grad():
        diff = (aspp(changed) - aspp(x)).abs().amax(1)[0]    # (12, 10)
    r = max(RATES)
    assert diff[: r + 1, : r + 1].max() > 0
    far = diff.clone()
    far[: r + 1, : r + 1] = 0
    assert (far.max() > 0) == pooling


def test_smp_decoder_upsamples_with_align_corners_true():
    # the convention difference named above, checked on smp itself (if smp changes it, the docstring must too)
    decoder = SmpDecoder(encoder_channels=(3, 1, LOW, 1, 1, HIGH), encoder_depth=5, out_channels=CHANNELS,
                         atrous_rates=RATES, output_stride=16, aspp_separable=False, aspp_dropout=0.5)
    assert decoder.up.align_corners is True and decoder.up.scale_factor == 4
    x = torch.randn(1, 2, 4, 3)
    assert (decoder.up(x) - F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)).abs().max() > 1e-2
