"""FCN's hand-written pieces against references: vgg_tiny vs torchvision's VGG builder, the
bilinear-initialised transposed convolution vs ``F.interpolate``, and the defining property of
FCN-16s/8s skip fusion (Long, Shelhamer & Darrell 2015, https://arxiv.org/abs/1411.4038).

No library ships FCN-8s on a VGG with our layout (torchvision's ``fcn_resnet50`` has no skips and no
transposed convolutions; ``tests/models/test_fcn.py`` compares our build of *that* with torchvision), so
the fusion is tested by what defines it: the class scores of each pool are *added* (the output is
linear in them), each path alone is a bilinear upsampling of its scores, and a score at a pool's pixel
lands on the centre of the input block that pixel summarises -- what the paper's ``crop`` layers achieve.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from segcourse.models import BilinearUpsample, count_parameters, vgg_tiny
from segcourse.models.backbones import Encoder
from segcourse.models.fcn import FCN

# ---------------------------------------------------------------- vgg_tiny vs torchvision's make_layers


def _cfg(width, convs_per_stage):
    """torchvision's VGG configuration list for vgg_tiny's layout (channels, 'M' = max-pool)."""
    cfg = []
    for channels, n in zip((width, 2 * width, 4 * width, 8 * width, 8 * width), convs_per_stage):
        cfg += [channels] * n + ["M"]
    return cfg


def _pool_outputs(features: nn.Sequential, x):
    """Run torchvision's flat ``features`` and keep the output of every max-pool (pool1..pool5)."""
    out = []
    for layer in features:
        x = layer(x)
        if isinstance(layer, nn.MaxPool2d):
            out.append(x)
    return out


def _copy_in_order(src: nn.Module, dst: nn.Module, skip_bias_of_conv: bool = False):
    """Copy ``src``'s parameters and buffers into ``dst`` in registration order (the layouts match)."""
    theirs = [(k, v) for k, v in src.state_dict().items()]
    if skip_bias_of_conv:  # torchvision's Conv2d before a BatchNorm has a bias, ours has none
        convs = {f"{name}.bias" for name, m in src.named_modules() if isinstance(m, nn.Conv2d)}
        theirs = [(k, v) for k, v in theirs if k not in convs]
    ours = list(dst.state_dict().keys())
    assert len(ours) == len(theirs)
    state = {}
    for key, (their_key, value) in zip(ours, theirs):
        assert dst.state_dict()[key].shape == value.shape, (key, their_key)
        state[key] = value
    dst.load_state_dict(state)


def _randomise_batch_norm(module: nn.Module, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("width, convs", [(4, (1, 1, 2, 2, 2)), (3, (2, 2, 3, 3, 3))])
def test_vgg_tiny_without_batch_norm_is_torchvisions_vgg_layout(width, convs):
    torch.manual_seed(0)
    theirs = make_layers(_cfg(width, convs), batch_norm=False).eval()
    ours = vgg_tiny(width, convs, batch_norm=False).eval()
    assert [type(m) for m in theirs] == [type(m) for stage in ours.stages for m in stage]
    _copy_in_order(theirs, ours)
    x = torch.randn(2, 3, 67, 45)  # odd sizes: both max-pools floor (67 -> 33 -> 16 -> 8 -> 4 -> 2)
    with torch.no_grad():
        want, got = _pool_outputs(theirs, x), ours(x)
    assert len(got) == 5
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_vgg_tiny_at_vgg16_size_has_vgg16s_feature_parameters():
    # width 64 and (2, 2, 3, 3, 3) convolutions per stage is VGG-16's configuration "D"
    assert _cfg(64, (2, 2, 3, 3, 3)) == cfgs["D"]
    theirs = make_layers(cfgs["D"], batch_norm=False)
    ours = vgg_tiny(64, (2, 2, 3, 3, 3), batch_norm=False)
    assert count_parameters(ours) == count_parameters(theirs) == 14_714_688


def test_vgg_tiny_with_batch_norm_equals_torchvisions_vgg_bn_given_the_same_weights():
    # torchvision's vgg*_bn keeps a bias in the convolution before each BatchNorm; ours drops it. In eval
    # mode the two agree when that bias is 0 (copied as such); in train mode they agree for *any* bias,
    # because BatchNorm subtracts the batch mean -- why the bias is redundant.
    torch.manual_seed(0)
    convs = (1, 1, 2, 2, 2)
    theirs = make_layers(_cfg(4, convs), batch_norm=True)
    ours = vgg_tiny(4, convs, batch_norm=True)
    _randomise_batch_norm(theirs)
    _copy_in_order(theirs, ours, skip_bias_of_conv=True)
    x = torch.randn(3, 3, 64, 48)
    with torch.no_grad():
        conv_biases = [m.bias for m in theirs if isinstance(m, nn.Conv2d)]
        for b in conv_biases:
            b.normal_()                                     # any bias: train mode does not see it
        for a, b in zip(ours.train()(x), _pool_outputs(theirs.train(), x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        _randomise_batch_norm(theirs)
        _copy_in_order(theirs, ours, skip_bias_of_conv=True)
        for b in conv_biases:
            b.zero_()                                       # eval mode: the bias is ours, 0
        for a, b in zip(ours.eval()(x), _pool_outputs(theirs.eval(), x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- transposed convolution == bilinear interpolation


@pytest.mark.parametrize("learnable", [True, False])
@pytest.mark.parametrize("factor", [2, 3, 4, 5, 8, 16, 32])
def test_bilinear_upsample_equals_interpolate_except_a_border_of_factor_halves(factor, learnable):
    # BilinearUpsample's transposed convolution (kernel 2f - f % 2, stride f, padding f // 2, the FCN
    # reference's get_kernel_size) follows F.interpolate's align_corners=False convention: output pixel o
    # samples the input at (o + 0.5) / f - 0.5. The two differ exactly on the f // 2 outer pixels, where
    # that coordinate is outside the input: interpolate clamps to the edge value, the convolution fades.
    torch.manual_seed(factor)
    x = torch.randn(2, 3, 7, 5)
    size = (7 * factor, 5 * factor)
    got = BilinearUpsample(3, factor, learnable=learnable)(x, size)  # the default: the transposed convolution
    want = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert got.shape == want.shape == (2, 3, *size)
    b = factor // 2
    inner = (..., slice(b, size[0] - b), slice(b, size[1] - b))
    torch.testing.assert_close(got[inner], want[inner], atol=1e-5, rtol=1e-5)
    for row in (*range(b), *range(size[0] - b, size[0])):  # every border row differs
        assert (got[..., row, b:-b] - want[..., row, b:-b]).abs().max() > 1e-3, row
    # the other convention does not match, even in the interior
    corners = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)
    assert (got[inner] - corners[inner]).abs().max() > 1e-2


def test_bilinear_upsample_to_a_larger_size_extends_at_the_bottom_right_only():
    # an odd skip map (2h + 1) gets one more row at the bottom; the first 2h rows are the natural output,
    # so the coarse scores stay aligned with the top-left corner, as max-pooling (which floors) aligns them
    torch.manual_seed(0)
    up = BilinearUpsample(2, 2)
    x = torch.randn(1, 2, 6, 4)
    natural, larger = up(x, (12, 8)), up(x, (13, 9))
    torch.testing.assert_close(larger[..., :12, :8], natural)


# ---------------------------------------------------------------- FCN-16s / 8s fusion: the defining property


class FixedFeatures(Encoder):
    """An encoder that returns given pool1..pool5 maps (one channel each), whatever the image."""

    def __init__(self, features):
        super().__init__()
        self.features = features
        self.out_channels = tuple(f.shape[1] for f in features)
        self.strides = (2, 4, 8, 16, 32)

    def forward(self, x):
        return self.features


def _pools(size, seed=0, keep=("pool3", "pool4", "pool5")):
    """Random one-channel maps of pool1..pool5 for an input of ``size`` (max-pool sizes: floor at each pool)."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    maps = []
    for i, name in enumerate(("pool1", "pool2", "pool3", "pool4", "pool5")):
        h, w = h // 2, w // 2
        m = torch.randn(1, 1, h, w, generator=g)
        maps.append(m if name in keep else torch.zeros_like(m))
    return maps


def _pass_through_fcn(features, variant):
    """FCN with one class whose score layers copy their pool (weight 1, bias 0): the fusion seen directly."""
    head = nn.Conv2d(1, 1, 1)
    model = FCN(FixedFeatures(features), num_classes=1, variant=variant, head=head).eval()
    with torch.no_grad():
        for score in [head, *model.score_skips]:
            score.weight.fill_(1.0)
            score.bias.zero_()
    return model


@pytest.mark.parametrize("variant", ["16s", "8s"])
@pytest.mark.parametrize("size", [(256, 192), (263, 201)])
def test_fcn_fusion_adds_the_scores_of_each_pool(variant, size):
    # the output is linear in the class scores: FCN(pool3 + pool4 + pool5) = sum of FCN(each alone)
    names = ("pool5", "pool4", "pool3")[: 1 + ("32s", "16s", "8s").index(variant)]
    image = torch.zeros(1, 3, *size)
    with torch.no_grad():
        together = _pass_through_fcn(_pools(size, keep=names), variant)(image)
        alone = [_pass_through_fcn(_pools(size, keep=(name,)), variant)(image) for name in names]
    assert together.shape == (1, 1, *size)
    torch.testing.assert_close(together, sum(alone), atol=1e-5, rtol=1e-5)
    assert all(a.abs().max() > 0.1 for a in alone)  # every pool contributes


@pytest.mark.parametrize("variant, pool, stride", [("32s", "pool5", 32), ("16s", "pool4", 16), ("8s", "pool3", 8)])
def test_the_finest_path_is_a_bilinear_upsampling_of_its_scores(variant, pool, stride):
    # FCN-Ns's finest scores reach the output through one fixed bilinear upsampling by N: away from the
    # border (stride // 2 pixels) they equal F.interpolate(scores, scale_factor=N, align_corners=False)
    size = (256, 192)
    features = _pools(size, keep=(pool,))
    with torch.no_grad():
        got = _pass_through_fcn(features, variant)(torch.zeros(1, 3, *size))
    scores = features[("pool1", "pool2", "pool3", "pool4", "pool5").index(pool)]
    want = F.interpolate(scores, scale_factor=stride, mode="bilinear", align_corners=False)
    b = stride // 2
    torch.testing.assert_close(got[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-5, rtol=1e-5)


def _centroid(response):
    """(row, col) centre of mass of a non-negative (1, 1, H, W) response."""
    r = response[0, 0].clamp_min(0)
    rows = torch.arange(r.shape[0], dtype=r.dtype)
    cols = torch.arange(r.shape[1], dtype=r.dtype)
    total = r.sum()
    return float((r.sum(1) * rows).sum() / total), float((r.sum(0) * cols).sum() / total)


@pytest.mark.parametrize("size", [(256, 192), (263, 201)])  # the second one odd: every pool floors
@pytest.mark.parametrize("pool, stride", [("pool5", 32), ("pool4", 16), ("pool3", 8)])
def test_a_score_lands_on_the_centre_of_the_block_its_pixel_summarises(size, pool, stride):
    # Pool pixel (i, j) at stride s summarises input rows s*i .. s*i + s - 1: its score must come out centred
    # on s*i + (s - 1) / 2, whichever way it travels (pool5 through 2x, 2x, 8x in FCN-8s). A fusion that
    # added misaligned maps (off by the paper's crop offset, or upsampled with align_corners=True) would not.
    index = ("pool1", "pool2", "pool3", "pool4", "pool5").index(pool)
    features = _pools(size, keep=())
    i, j = 2, 3  # far enough from the top-left for the whole response to fit (pool5: 56 pixels each side)
    features[index][0, 0, i, j] = 1.0                       # one class score, at one pool pixel
    with torch.no_grad():
        response = _pass_through_fcn(features, "8s")(torch.zeros(1, 3, *size))
    assert response.min() >= -1e-6                          # bilinear kernels are non-negative
    row, col = _centroid(response)
    assert row == pytest.approx(stride * i + (stride - 1) / 2, abs=1e-3)
    assert col == pytest.approx(stride * j + (stride - 1) / 2, abs=1e-3)
    # the check can fail: align_corners=True puts the same score elsewhere
    shifted = F.interpolate(features[index], size=size, mode="bilinear", align_corners=True)
    assert abs(_centroid(shifted)[0] - (stride * i + (stride - 1) / 2)) > 1
