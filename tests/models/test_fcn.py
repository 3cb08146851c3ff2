"""FCN: bilinear kernel vs F.interpolate, skip fusion, odd sizes, torchvision structure equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcourse.models import FCN, BilinearUpsample, bilinear_kernel, count_parameters, fcn, vgg_tiny
from segcourse.models.fcn import FCNHead, TorchvisionFCNHead

# ---------------------------------------------------------------- bilinear kernel

def test_bilinear_kernel_k4_values():
    # k=4: f=2, centre=1.5 -> 1-D tent (1 - |i-1.5|/2) = [0.25, 0.75, 0.75, 0.25]
    w = bilinear_kernel(1, 1, 4)
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(w[0, 0], tent[:, None] * tent[None, :])


def test_bilinear_kernel_odd_k3_values():
    # k=3: f=2, centre=1 -> [0.5, 1, 0.5]
    w = bilinear_kernel(2, 2, 3)
    tent = torch.tensor([0.5, 1.0, 0.5])
    torch.testing.assert_close(w[1, 1], tent[:, None] * tent[None, :])


def test_bilinear_kernel_is_diagonal_over_channels():
    w = bilinear_kernel(3, 3, 8)
    assert w.shape == (3, 3, 8, 8)
    off_diagonal = w.clone()
    off_diagonal[torch.arange(3), torch.arange(3)] = 0
    assert off_diagonal.abs().sum() == 0
    assert torch.all(w[torch.arange(3), torch.arange(3)] > 0)


def test_bilinear_kernel_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="in_channels must equal"):
        bilinear_kernel(3, 4, 4)


@pytest.mark.parametrize("factor", [2, 4, 8, 16, 32])
def test_transposed_conv_with_bilinear_kernel_equals_interpolate_in_interior(factor):
    torch.manual_seed(factor)
    x = torch.randn(2, 3, 7, 5)
    conv = nn.ConvTranspose2d(3, 3, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(bilinear_kernel(3, 3, 2 * factor))
    got = conv(x)
    want = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert got.shape == want.shape == (2, 3, 7 * factor, 5 * factor)
    m = factor  # the border where interpolate clamps and the transposed conv fades out
    torch.testing.assert_close(got[..., m:-m, m:-m], want[..., m:-m, m:-m], atol=1e-5, rtol=1e-5)
    # ... and differs at the border (the transposed conv sees zeros beyond the edge)
    assert (got[..., :1, :] - want[..., :1, :]).abs().max() > 1e-2


@pytest.mark.parametrize("size", [(14, 10), (15, 11), (13, 9)])
def test_bilinear_upsample_returns_requested_size(size):
    up = BilinearUpsample(4, 2)
    x = torch.randn(1, 4, 7, 5)
    assert up(x, size).shape == (1, 4, *size)


def test_fixed_upsample_is_depthwise_and_equals_full_bilinear_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 3)
    fixed, learned = BilinearUpsample(4, 8, learnable=False), BilinearUpsample(4, 8, learnable=True)
    assert fixed.conv.weight.shape == (4, 1, 16, 16) and learned.conv.weight.shape == (4, 4, 16, 16)
    assert not fixed.conv.weight.requires_grad and learned.conv.weight.requires_grad
    torch.testing.assert_close(fixed(x, (40, 24)), learned(x, (40, 24)))


def test_bilinear_upsample_rejects_too_large_target():
    with pytest.raises(ValueError, match="too large"):
        BilinearUpsample(4, 2)(torch.randn(1, 4, 7, 5), (16, 10))


# ---------------------------------------------------------------- FCN

@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(97, 75), (32, 32), (64, 48), (33, 95)])
def test_fcn_output_shape_on_any_size(variant, size):
    model = fcn(4, variant, "vgg_tiny", width=4).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 4, *size)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_backward_reaches_encoder_and_skips(variant):
    model = fcn(3, variant, "vgg_tiny", width=4, dropout=0.0)
    # the paper zero-initialises score layers; give them values so every gradient path is live
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    logits = model(torch.randn(2, 3, 97, 75))
    F.cross_entropy(logits, torch.randint(0, 3, (2, 97, 75))).backward()
    first_conv = model.encoder.stages[0][0][0]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    for score in model.score_skips:
        assert score.weight.grad.abs().sum() > 0
    assert not model.upscore.conv.weight.requires_grad  # the paper's final upsampling is fixed


def test_fcn_variants_have_the_expected_skip_layers():
    # 16s: score_pool4 on pool4 (8w channels); 8s adds score_pool3 on pool3 (4w channels)
    w = 4
    m32, m16, m8 = (fcn(5, v, "vgg_tiny", width=w) for v in ("32s", "16s", "8s"))
    assert len(m32.score_skips) == 0 and len(m16.score_skips) == 1 and len(m8.score_skips) == 2
    assert m8.score_skips[0].in_channels == 8 * w and m8.score_skips[1].in_channels == 4 * w
    # upsampling factors: 32s -> 32; 16s -> 2 then 16; 8s -> 2, 2 then 8
    assert m32.upscore.factor == 32 and m16.upscore.factor == 16 and m8.upscore.factor == 8
    assert [u.factor for u in m8.up_skips] == [2, 2]
    # extra parameters of 8s over 32s: two 1x1 score layers (+bias) and two learned 2x transposed convs
    # (C*C*4*4), minus the difference between the fixed, depthwise final 32x and 8x upsamplings (C*64*64 vs C*16*16)
    c = 5
    extra = (8 * w * c + c) + (4 * w * c + c) + 2 * c * c * 16 - c * (64 * 64 - 16 * 16)
    assert count_parameters(m8) - count_parameters(m32) == extra


def test_fcn_skips_start_at_zero_so_8s_equals_32s_at_init():
    # score_pool4 / score_pool3 are zero-initialised: FCN-8s's first forward pass is FCN-32s's,
    # up to the difference between one 32x bilinear upsampling and 2x, 2x, 8x: both are piecewise linear
    # between nearly the same nodes, so away from the borders they agree to well under 1 % of the range.
    torch.manual_seed(0)
    m32 = fcn(3, "32s", "vgg_tiny", width=4).eval()
    m8 = fcn(3, "8s", "vgg_tiny", width=4).eval()
    m8.encoder.load_state_dict(m32.encoder.state_dict())
    m8.head.load_state_dict(m32.head.state_dict())
    with torch.no_grad():
        m32.head.score_fr.weight.normal_()
        m8.head.score_fr.weight.copy_(m32.head.score_fr.weight)
        x = torch.randn(1, 3, 256, 256)
        a, b = m32(x), m8(x)
    inner = (slice(None), slice(None), slice(64, -64), slice(64, -64))
    assert (a[inner] - b[inner]).abs().max() < 0.01 * a[inner].abs().max()
    # ...whereas a trained score_pool3 changes the output
    with torch.no_grad():
        m8.score_skips[1].weight.normal_()
        assert (m8(x)[inner] - a[inner]).abs().max() > 0.1 * a[inner].abs().max()


def test_fcn_rejects_small_input_and_bad_variant():
    model = fcn(2, "8s", "vgg_tiny", width=4)
    with pytest.raises(ValueError, match="H, W >= 32"):
        model(torch.randn(1, 3, 31, 64))
    with pytest.raises(ValueError, match="variant"):
        fcn(2, "4s")
    with pytest.raises(ValueError, match="head"):
        FCN(vgg_tiny(4), 2, head="vgg")


def test_fcn_paper_head_uses_requested_kernel():
    head = FCNHead(16, 3, channels=32, kernel_size=7)
    assert head.fc6[0].kernel_size == (7, 7)
    assert head(torch.randn(1, 16, 5, 4)).shape == (1, 3, 5, 4)
    assert head.score_fr.weight.abs().sum() == 0


# ---------------------------------------------------------------- torchvision structure

def test_fcn_resnet50_matches_torchvision_parameter_count_and_shape():
    from torchvision.models.segmentation import fcn_resnet50

    theirs = fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=False).eval()
    ours = fcn(21, "32s", "resnet50", head="torchvision", up="bilinear").eval()
    assert count_parameters(theirs) == 32_957_013
    assert count_parameters(ours) == count_parameters(theirs)
    # the head is the same module, layer for layer
    assert [type(m).__name__ for m in ours.head] == [type(m).__name__ for m in theirs.classifier]
    x = torch.randn(1, 3, 65, 47)
    with torch.no_grad():
        assert ours(x).shape == theirs(x)["out"].shape == (1, 21, 65, 47)


def test_fcn_resnet50_loads_torchvision_weights_and_agrees():
    # same structure, same numbers: copy torchvision's weights into ours, compare outputs
    from torchvision.models.segmentation import fcn_resnet50

    torch.manual_seed(0)
    theirs = fcn_resnet50(weights=None, weights_backbone=None, num_classes=5, aux_loss=False).eval()
    ours = fcn(5, "32s", "resnet50", head="torchvision", up="bilinear").eval()
    ours.encoder.load_state_dict(theirs.backbone.state_dict())
    ours.head.load_state_dict(theirs.classifier.state_dict())
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x)["out"], atol=1e-4, rtol=1e-4)


def test_torchvision_head_layout():
    head = TorchvisionFCNHead(64, 3)
    assert head[0].out_channels == 16 and head[0].kernel_size == (3, 3) and head[0].bias is None
    assert head[3].p == 0.1


def test_grow_fcn_computes_what_the_coarser_net_computes_until_trained():
    from segcourse.models.fcn import grow_fcn

    torch.manual_seed(0)
    fcn32 = fcn(4, "32s", "vgg_tiny", width=8, dropout=0.0).eval()
    for p in (p for p in fcn32.parameters() if p.requires_grad):  # "trained": score_fr non-zero; the last upsampling stays fixed
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.randn(1, 3, 256, 224)
    fcn16 = grow_fcn(fcn32, "16s").eval()
    fcn8 = grow_fcn(fcn16, "8s").eval()
    inner = (slice(None), slice(None), slice(64, -64), slice(64, -64))
    with torch.no_grad():
        reference = fcn32(x)[inner]
        assert reference.abs().max() > 0.1
        # the new skip scores are zero: what is left is one 32x bilinear against 2x then 16x (2x, 2x, 8x),
        # piecewise linear between nearly the same nodes (as test_fcn_skips_start_at_zero_so_8s_equals_32s_at_init)
        for grown in (fcn16, fcn8):
            spread = reference.max() - reference.min()
            assert (grown(x)[inner] - reference).abs().max() < 0.05 * spread
    assert [type(m) for m in fcn8.score_skips] == [nn.Conv2d, nn.Conv2d]
    assert torch.count_nonzero(fcn8.score_skips[1].weight) == 0          # score_pool3: new, zero
    torch.testing.assert_close(fcn8.score_skips[0].weight, fcn16.score_skips[0].weight)  # score_pool4 carried over
    # the copies are independent: training the grown net leaves the coarser one as it was
    before = [p.clone() for p in fcn32.parameters()]
    next(fcn16.encoder.parameters()).data.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, fcn32.parameters()))


def test_grow_fcn_refuses_a_skip_it_cannot_add():
    from segcourse.models.fcn import grow_fcn

    with pytest.raises(ValueError, match="FCN-32s grows into FCN-16s, not '8s'"):
        grow_fcn(fcn(4, "32s", "vgg_tiny", width=8), "8s")
    with pytest.raises(ValueError, match="FCN-8s grows into FCN-8s, not '16s'"):
        grow_fcn(fcn(4, "8s", "vgg_tiny", width=8), "16s")
