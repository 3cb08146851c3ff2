"""DeepLabV3/V3+: ASPP done right, odd sizes, backward, torchvision structure and numerical equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcourse.models import (
    ASPP,
    ASPPPooling,
    DeepLabV3,
    DeepLabV3Plus,
    count_parameters,
    deeplabv3,
    deeplabv3plus,
    resnet_tiny,
)
from segcourse.models.deeplab import default_atrous_rates

TINY = dict(width=4, aspp_channels=8, atrous_rates=(1, 2, 3))


@pytest.mark.parametrize("builder", [deeplabv3, deeplabv3plus])
@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("size", [(97, 75), (32, 32), (33, 64)])
def test_output_shape_on_any_size(builder, output_stride, size):
    extra = {"decoder_channels": 8} if builder is deeplabv3plus else {}
    model = builder(3, "resnet_tiny", output_stride=output_stride, **TINY, **extra).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 3, *size)


@pytest.mark.parametrize("builder", [deeplabv3, deeplabv3plus])
def test_backward_reaches_the_first_layer(builder):
    model = builder(3, "resnet_tiny", **TINY)
    logits = model(torch.randn(2, 3, 97, 75))
    F.cross_entropy(logits, torch.randint(0, 3, (2, 97, 75))).backward()
    stem = model.encoder.stem[0][0].weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0


def test_encoder_feature_size_follows_output_stride():
    for os_, side in ((8, 12), (16, 6)):
        feats = resnet_tiny(4, output_stride=os_)(torch.randn(1, 3, 96, 96))
        assert feats[-1].shape[-2:] == (side, side)  # 96 / 8 = 12, 96 / 16 = 6


def test_default_rates_double_when_output_stride_halves():
    assert default_atrous_rates(16) == (6, 12, 18)
    assert default_atrous_rates(8) == (12, 24, 36)
    assert deeplabv3(2, "resnet_tiny", output_stride=8, width=4).aspp.atrous_rates == (12, 24, 36)
    with pytest.raises(ValueError, match="output_stride"):
        default_atrous_rates(4)


# ---------------------------------------------------------------- ASPP

@pytest.mark.parametrize("size", [(1, 1), (6, 6), (7, 5)])
def test_aspp_pooling_branch_is_upsampled_to_the_feature_map(size):
    pool = ASPPPooling(8, 4).eval()
    x = torch.randn(2, 8, *size)
    y = pool(x)
    assert y.shape == (2, 4, *size)
    # the image-level branch is constant over space: every position holds the pooled value
    assert torch.allclose(y, y[..., :1, :1].expand_as(y))


def test_aspp_concatenates_five_branches():
    aspp = ASPP(16, 8, atrous_rates=(2, 4, 6)).eval()
    assert len(aspp.convs) == 5 and aspp.project[0].in_channels == 5 * 8
    assert [b[0].dilation for b in aspp.convs[1:4]] == [(2, 2), (4, 4), (6, 6)]
    assert aspp(torch.randn(2, 16, 7, 5)).shape == (2, 8, 7, 5)


def test_aspp_pooling_bug_breaks_concatenation():
    # The source article's version upsamples the pooled map to its OWN size (1x1): a no-op.
    class BuggyPooling(ASPPPooling):
        def forward(self, x):
            pooled = nn.Sequential.forward(self, x)
            return F.interpolate(pooled, size=pooled.shape[-2:], mode="bilinear", align_corners=False)

    aspp = ASPP(16, 8).eval()
    aspp.convs[-1] = BuggyPooling(16, 8).eval()
    assert aspp(torch.randn(1, 16, 1, 1)).shape == (1, 8, 1, 1)   # hides the bug at 1x1 ...
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        aspp(torch.randn(1, 16, 6, 6))                             # ... but not on a real feature map


def test_aspp_matches_torchvision_numerically():
    from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP

    torch.manual_seed(0)
    theirs = TorchvisionASPP(16, [2, 4, 6], out_channels=8).eval()
    ours = ASPP(16, 8, (2, 4, 6)).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 16, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


# ---------------------------------------------------------------- V3+ decoder

def test_deeplabv3plus_decoder_uses_48_channel_projection_of_stride4_features():
    model = deeplabv3plus(4, "resnet_tiny", width=8, aspp_channels=16, decoder_channels=16)
    assert model.encoder.strides[model.low_level_index] == 4
    proj = model.decoder.project[0]
    assert proj.kernel_size == (1, 1) and proj.out_channels == 48 and proj.in_channels == 8
    assert model.decoder.fuse[0][0].in_channels == 16 + 48


def test_deeplabv3plus_resnet50_low_level_is_layer1():
    model = deeplabv3plus(21, "resnet50", output_stride=16)
    assert model.decoder.project[0].in_channels == 256  # ResNet-50 layer1
    assert model.encoder.output_stride == 16


# ---------------------------------------------------------------- torchvision structure

def test_deeplabv3_resnet50_matches_torchvision_parameter_count_and_shape():
    from torchvision.models.segmentation import deeplabv3_resnet50

    theirs = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=False).eval()
    ours = deeplabv3(21, "resnet50", output_stride=8).eval()
    assert count_parameters(theirs) == 39_638_869
    assert count_parameters(ours) == count_parameters(theirs)
    x = torch.randn(2, 3, 65, 47)
    with torch.no_grad():
        assert ours(x).shape == theirs(x)["out"].shape == (2, 21, 65, 47)


def test_deeplabv3_resnet50_agrees_with_torchvision_given_the_same_weights():
    from torchvision.models.segmentation import deeplabv3_resnet50

    torch.manual_seed(0)
    theirs = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=3, aux_loss=False).eval()
    ours = deeplabv3(3, "resnet50", output_stride=8).eval()
    ours.encoder.load_state_dict(theirs.backbone.state_dict())
    head = theirs.classifier  # DeepLabHead: ASPP, conv, bn, relu, conv
    ours.aspp.load_state_dict(head[0].state_dict())
    ours.head.load_state_dict(nn.Sequential(head[1], head[2], head[3]).state_dict())
    ours.classifier.load_state_dict(head[4].state_dict())
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x)["out"], atol=1e-4, rtol=1e-4)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="H, W >= 32"):
        deeplabv3(2, "resnet_tiny", width=4)(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match="ResNet-like"):
        deeplabv3(2, "vgg_tiny")
    with pytest.raises(ValueError, match="output_stride"):
        deeplabv3(2, "resnet_tiny", output_stride=4)
    with pytest.raises(ValueError, match="num_classes"):
        DeepLabV3(resnet_tiny(4), 0)
    encoder = resnet_tiny(4)
    encoder.strides = (2, 8, 8, 16, 16)  # pretend there is no stride-4 map
    with pytest.raises(ValueError, match="stride-4"):
        DeepLabV3Plus(encoder, 2)
