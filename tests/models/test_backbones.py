"""Backbones: strides and channels as declared, dilation for output stride, receptive fields."""

from __future__ import annotations

import pytest
import torch

from segcourse.models import (
    BasicBlock,
    Encoder,
    conv_layers,
    count_parameters,
    effective_receptive_field,
    erf_radius,
    get_backbone,
    receptive_field,
    resnet18,
    resnet50,
    resnet_tiny,
    vgg_tiny,
)
from segcourse.models.backbones import dilation_for_output_stride


def _check_declared(encoder: Encoder, size=(96, 64)):
    feats = encoder(torch.randn(1, 3, *size))
    assert len(feats) == len(encoder.out_channels) == len(encoder.strides)
    for f, c, s in zip(feats, encoder.out_channels, encoder.strides):
        assert f.shape[1] == c
        assert f.shape[-2:] == (size[0] // s, size[1] // s)  # 96 and 64 are multiples of 32
    return feats


def test_vgg_tiny_declares_strides_and_channels():
    enc = vgg_tiny(8).eval()
    assert enc.strides == (2, 4, 8, 16, 32) and enc.out_channels == (8, 16, 32, 64, 64)
    _check_declared(enc)


def test_vgg_tiny_floors_odd_sizes():
    feats = vgg_tiny(4).eval()(torch.randn(1, 3, 97, 75))
    # max-pool floors: 97 -> 48 -> 24 -> 12 -> 6 -> 3 ; 75 -> 37 -> 18 -> 9 -> 4 -> 2
    assert [tuple(f.shape[-2:]) for f in feats] == [(48, 37), (24, 18), (12, 9), (6, 4), (3, 2)]


@pytest.mark.parametrize("output_stride,strides", [(32, (2, 4, 8, 16, 32)), (16, (2, 4, 8, 16, 16)), (8, (2, 4, 8, 8, 8))])
def test_resnet_tiny_output_stride(output_stride, strides):
    enc = resnet_tiny(4, output_stride=output_stride).eval()
    assert enc.strides == strides and enc.output_stride == output_stride
    _check_declared(enc)


def test_resnet_tiny_dilations_follow_torchvision_convention():
    # output stride 8: layer3 dilation 2 (first conv keeps 1), layer4 dilation 4 (first conv keeps 2)
    enc = resnet_tiny(4, blocks=(1, 1, 2, 2), output_stride=8)
    assert enc.layer3[0].conv1.dilation == (1, 1) and enc.layer3[0].conv2.dilation == (2, 2)
    assert enc.layer3[1].conv1.dilation == (2, 2)
    assert enc.layer4[0].conv1.dilation == (2, 2) and enc.layer4[1].conv2.dilation == (4, 4)
    assert enc.layer3[0].conv1.stride == (1, 1) and enc.layer2[0].conv1.stride == (2, 2)


def test_dilation_table_matches_torchvision_resnet50():
    assert dilation_for_output_stride(8) == (False, True, True)
    enc = resnet50(output_stride=16)
    # torchvision: layer4 dilated by 2, stride removed
    assert enc.layer4[0].conv2.stride == (1, 1) and enc.layer4[1].conv2.dilation == (2, 2)
    assert enc.strides == (2, 4, 8, 16, 16) and enc.out_channels == (64, 256, 512, 1024, 2048)


def test_torchvision_resnet_has_no_classifier_and_matches_feature_shapes():
    import torchvision

    enc = resnet18(output_stride=32).eval()
    ref = torchvision.models.resnet18(weights=None)
    assert count_parameters(enc) == count_parameters(ref) - count_parameters(ref.fc)
    _check_declared(enc)


def test_torchvision_basicblock_resnet_refuses_dilation():
    with pytest.raises(ValueError, match="BasicBlock"):
        resnet18(output_stride=16)


def test_basic_block_keeps_size_with_dilation():
    block = BasicBlock(4, 8, stride=1, dilation=4)
    assert block(torch.randn(1, 4, 11, 9)).shape == (1, 8, 11, 9)


def test_get_backbone_errors():
    with pytest.raises(ValueError, match="unknown backbone"):
        get_backbone("resnet9000")
    with pytest.raises(TypeError, match="backbone must be"):
        get_backbone(3)
    with pytest.raises(ValueError, match="output_stride"):
        resnet_tiny(4, output_stride=4)


# ---------------------------------------------------------------- receptive fields

@pytest.mark.parametrize("layers,expected", [
    ([(3, 1, 1)] * 3, (7, 1)),                          # 1 + 2 + 2 + 2
    ([(3, 1, 1), (3, 1, 2), (3, 1, 4)], (15, 1)),       # 1 + 2 + 4 + 8
    ([(3, 1, 2)] * 3, (13, 1)),                         # 1 + 4 + 4 + 4 (gridding: same rate thrice)
    ([(3, 1, 1), (2, 2, 1), (3, 1, 1)], (8, 2)),        # 1 + 2 + 1 + 2*2
    ([(7, 2, 1), (3, 2, 1)], (11, 4)),                  # ResNet stem + max-pool: 1 + 6 + 2*2
])
def test_receptive_field_recurrence(layers, expected):
    assert receptive_field(layers) == expected


def test_receptive_field_matches_gradient_support():
    # a linear stack of dilated convs: the gradient of the centre output is non-zero exactly on the RF
    layers = [(3, 1, 1), (3, 1, 2), (3, 1, 3)]
    convs = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, k, padding=d * (k // 2), dilation=d, bias=False)
                                  for k, _, d in layers])
    torch.nn.init.constant_(convs[0].weight, 1.0)
    torch.nn.init.constant_(convs[1].weight, 1.0)
    torch.nn.init.constant_(convs[2].weight, 1.0)
    x = torch.zeros(1, 1, 41, 41, requires_grad=True)
    convs(x)[0, 0, 20, 20].backward()
    support = (x.grad[0, 0] != 0)
    rows = support.any(1).nonzero()
    assert int(rows.max() - rows.min() + 1) == receptive_field(layers)[0] == 13


def test_conv_layers_of_vgg_tiny():
    layers = conv_layers(vgg_tiny(4))
    assert layers[:2] == [(3, 1, 1), (2, 2, 1)]
    # 8 convs (1, 1, 2, 2, 2 per stage) and 5 pools. r: 1 +2 (conv, j=1) = 3, +1 (pool) = 4, j=2;
    # +2*2 = 8, +1*2 = 10, j=4; +2*4*2 = 26, +4 = 30, j=8; +2*8*2 = 62, +8 = 70, j=16; +2*16*2 = 134, +16 = 150, j=32
    assert len(layers) == 13
    assert receptive_field(layers) == (150, 32)


def test_effective_receptive_field_grows_with_dilation_and_is_normalised():
    torch.manual_seed(0)
    small = effective_receptive_field(resnet_tiny(4, output_stride=32), 64, output=-1, samples=1)
    assert small.shape == (64, 64) and abs(float(small.sum()) - 1) < 1e-5
    plain = torch.nn.Sequential(*[torch.nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(4)])
    dilated = torch.nn.Sequential(*[torch.nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=d, dilation=d)
                                    for i, d in enumerate((1, 2, 4, 8))])
    # theoretical RFs 9 and 31: the 90 % radius of the ERF stays within them and grows with dilation
    r_plain = erf_radius(effective_receptive_field(plain, 65, samples=2))
    r_dilated = erf_radius(effective_receptive_field(dilated, 65, samples=2))
    assert r_plain <= 4 and r_plain < r_dilated <= 15


def test_erf_radius_of_a_point_and_a_square():
    erf = torch.zeros(9, 9)
    erf[4, 4] = 1
    assert erf_radius(erf) == 0
    erf[2:7, 2:7] = 1  # 5x5 uniform square: 90 % needs radius 2
    assert erf_radius(erf) == 2
