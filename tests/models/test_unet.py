"""Tests of segcourse.models.unet: shapes on odd sizes, backward, hand-derived parameter
counts, the pad-never-crop policy, errors, and a structural cross-check against
segmentation_models_pytorch's U-Net (test-only dependency)."""

from __future__ import annotations

import monai.transforms as monai_transforms  # pinned test dependencies: a broken install must fail, not skip
import pytest
import segmentation_models_pytorch as smp
import torch
from torch import nn

from segcourse.models import count_parameters
from segcourse.models.unet import DecoderBlock, DoubleConv, UNet, pad_to, pad_to_multiple, unet

# ---------------------------------------------------------------- shapes and backward

@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize("size", [(97, 75), (33, 47), (65, 129), (16, 16), (64, 64)])
def test_output_has_input_size_and_backward_runs(up, size):
    torch.manual_seed(0)
    model = unet(in_channels=3, num_classes=3, depth=4, base_channels=4, up=up)
    x = torch.randn(2, 3, *size)
    logits = model(x)
    assert logits.shape == (2, 3, *size)
    assert logits.dtype == torch.float32
    logits.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_every_depth_keeps_odd_sizes(depth):
    model = unet(in_channels=1, num_classes=1, depth=depth, base_channels=2, norm="none").eval()
    h, w = 2**depth + 1, 2**depth * 3 - 1  # odd on both sides, just above the minimum
    assert model(torch.randn(1, 1, h, w)).shape == (1, 1, h, w)


def test_encoder_feature_sizes_floor_at_each_pooling():
    model = unet(depth=4, base_channels=4)
    features = model.encoder(torch.randn(1, 3, 97, 75))
    # 97 -> 48 -> 24 -> 12 -> 6 and 75 -> 37 -> 18 -> 9 -> 4 (max-pool 2x2 rounds down)
    assert [tuple(f.shape[-2:]) for f in features] == [(97, 75), (48, 37), (24, 18), (12, 9), (6, 4)]
    assert [f.shape[1] for f in features] == [4, 8, 16, 32, 64]


def test_last_row_and_column_are_not_cropped_away():
    """With a cropping bug the last row of a 97-row image would never reach the output."""
    torch.manual_seed(0)
    model = unet(in_channels=1, num_classes=2, depth=3, base_channels=4).eval()
    x = torch.randn(1, 1, 97, 75, requires_grad=True)
    model(x)[0, 1, 96, 74].backward()
    assert x.grad[0, 0, 96, 74].abs() > 0  # the corner pixel influences its own prediction


# ---------------------------------------------------------------- pad_to

def test_pad_to_splits_the_difference_and_pads_with_zeros():
    x = torch.ones(1, 1, 2, 2)
    y = pad_to(x, (3, 5))
    # dh = 1 -> 0 on top, 1 at the bottom; dw = 3 -> 1 on the left, 2 on the right
    assert y.shape == (1, 1, 3, 5)
    expected = torch.zeros(3, 5)
    expected[0:2, 1:3] = 1
    torch.testing.assert_close(y[0, 0], expected)


@pytest.mark.parametrize("size, multiple", [((97, 75), 16), ((5, 3), 4), ((64, 64), 16), ((1, 31), 8)])
def test_pad_to_multiple_equals_monai_divisible_pad_and_crops_back(size, multiple):
    x = torch.randn(2, 3, *size)
    padded, (rows, cols) = pad_to_multiple(x, multiple)
    want = torch.stack([torch.as_tensor(monai_transforms.DivisiblePad(k=multiple, method="symmetric")(image))
                        for image in x])  # MONAI pads channel-first images (C, H, W)
    torch.testing.assert_close(padded, want)
    assert all(n % multiple == 0 for n in padded.shape[-2:])
    torch.testing.assert_close(padded[..., rows, cols], x)


def test_pad_to_multiple_lets_a_decoder_without_alignment_run_on_odd_sizes():
    # a decoder that concatenates without aligning crashes on 97 x 75; on the padded input it runs,
    # and the cropped logits have the input's size
    model = unet(depth=3, base_channels=2).eval()

    def naive(x):
        features = model.encoder(x)
        y = features[-1]
        for block, skip in zip(model.decoder.blocks, reversed(features[:-1])):
            y = block.conv(torch.cat([skip, block.up(y)], dim=1))
        return model.head(y)

    x = torch.randn(1, 3, 37, 29)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        naive(x)
    padded, (rows, cols) = pad_to_multiple(x, 2**model.depth)
    assert naive(padded)[..., rows, cols].shape == (1, 2, 37, 29)
    with pytest.raises(ValueError, match="multiple must be a positive int"):
        pad_to_multiple(x, 0)


def test_pad_to_is_identity_when_sizes_match_and_never_crops():
    x = torch.randn(2, 3, 4, 5)
    assert pad_to(x, (4, 5)) is x
    with pytest.raises(ValueError, match="never crops"):
        pad_to(x, (3, 5))


# ---------------------------------------------------------------- parameter counts

def _double_conv(a: int, b: int, norm: bool) -> int:
    # two 3x3 convs (a->b, b->b); with a norm: no conv bias, 2 affine params per channel per norm
    return 9 * a * b + 9 * b * b + (4 * b if norm else 2 * b)


def _formula(in_channels, num_classes, depth, base, up, norm) -> int:
    """The count written in UNet's docstring."""
    c = [base * 2**i for i in range(depth + 1)]
    total = _double_conv(in_channels, c[0], norm)
    for i in range(1, depth + 1):
        total += _double_conv(c[i - 1], c[i], norm)  # encoder stage i
        a = c[i]
        upsampler = 4 * a * (a // 2) + a // 2 if up == "transpose" else a * (a // 2) + a // 2
        total += upsampler + _double_conv(a // 2 + c[i - 1], c[i - 1], norm)  # decoder block
    return total + c[0] * num_classes + num_classes  # 1x1 head


@pytest.mark.parametrize("up, norm, expected", [
    # in=1, classes=2, depth=1, base=2: c = (2, 4)
    # encoder: DoubleConv(1,2) = 18+36+8 = 62, DoubleConv(2,4) = 72+144+16 = 232
    # up (transpose 4->2, k=2): 4*4*2 + 2 = 34; DoubleConv(2+2, 2) = 72+36+8 = 116; head 2*2+2 = 6
    ("transpose", "batch", 62 + 232 + 34 + 116 + 6),   # 450
    # bilinear: the 1x1 conv 4->2 has 4*2 + 2 = 10 parameters instead of 34
    ("bilinear", "batch", 62 + 232 + 10 + 116 + 6),    # 426
    # no norm: each conv gets a bias of b instead of 2b affine params per norm:
    # DoubleConv(1,2) = 18+36+4 = 58, DoubleConv(2,4) = 72+144+8 = 224, DoubleConv(4,2) = 72+36+4 = 112
    ("transpose", "none", 58 + 224 + 34 + 112 + 6),    # 434
])
def test_tiny_parameter_count_matches_hand_count(up, norm, expected):
    model = unet(in_channels=1, num_classes=2, depth=1, base_channels=2, up=up, norm=norm)
    assert count_parameters(model) == expected


@pytest.mark.parametrize("config", [
    dict(in_channels=3, num_classes=2, depth=4, base=32, up="transpose", norm=True),
    dict(in_channels=3, num_classes=4, depth=3, base=16, up="bilinear", norm=True),
    dict(in_channels=1, num_classes=1, depth=5, base=8, up="transpose", norm=False),
])
def test_parameter_count_matches_formula(config):
    model = unet(in_channels=config["in_channels"], num_classes=config["num_classes"], depth=config["depth"],
                 base_channels=config["base"], up=config["up"], norm="batch" if config["norm"] else "none")
    assert count_parameters(model) == _formula(config["in_channels"], config["num_classes"], config["depth"],
                                     config["base"], config["up"], config["norm"])


def test_instance_norm_has_the_same_count_as_batch_norm():
    kwargs = dict(in_channels=3, num_classes=2, depth=2, base_channels=4)
    assert count_parameters(unet(**kwargs, norm="instance")) == count_parameters(unet(**kwargs, norm="batch"))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(up="nearest"), ValueError, "up must be one of"),
    (dict(norm="layer"), ValueError, "norm must be one of"),
    (dict(depth=0), ValueError, "depth must be a positive int"),
    (dict(depth=2.0), TypeError, "depth must be an int"),
    (dict(base_channels=True), TypeError, "base_channels must be an int"),
    (dict(num_classes=0), ValueError, "num_classes must be a positive int"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        unet(**kwargs)


def test_blocks_validate_their_arguments_too():
    with pytest.raises(ValueError, match="up must be one of"):
        DecoderBlock(8, 4, 4, up="nearest")
    with pytest.raises(ValueError, match="must be even"):
        DecoderBlock(7, 4, 4)
    with pytest.raises(ValueError, match="norm must be one of"):
        DoubleConv(3, 4, norm="group")


def test_bad_inputs_raise_clear_errors():
    model = unet(in_channels=3, depth=3, base_channels=2)
    with pytest.raises(ValueError, match="in_channels=3 but the input has 1"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="unsqueeze"):
        model(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match=">= 2\\*\\*depth = 8"):
        model(torch.zeros(1, 3, 7, 32))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0]])


def test_builder_and_class_agree():
    torch.manual_seed(0)
    a = unet(in_channels=1, num_classes=3, depth=2, base_channels=4, up="bilinear", norm="none")
    torch.manual_seed(0)
    b = UNet(in_channels=1, num_classes=3, depth=2, base_channels=4, up="bilinear", norm="none")
    x = torch.randn(1, 1, 21, 19)
    torch.testing.assert_close(a(x), b(x))
    assert "up='bilinear'" in repr(a)


# ---------------------------------------------------------------- it learns

def test_overfits_one_tiny_batch():
    """A better prediction has lower loss: 40 Adam steps drive the loss of one batch down."""
    torch.manual_seed(0)
    x = torch.randn(2, 1, 24, 24)
    target = (x[:, 0] > 0.5).long()  # a per-pixel rule the network can learn exactly
    model = unet(in_channels=1, num_classes=2, depth=2, base_channels=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- cross-check with segmentation_models_pytorch


def test_decoder_block_matches_smp_structure():
    """Our DecoderBlock's conv part is smp's UnetDecoderBlock (conv-BN-ReLU x2 on [upsampled, skip])."""
    from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoderBlock

    ours = DecoderBlock(in_channels=32, skip_channels=16, out_channels=16)
    theirs = UnetDecoderBlock(in_channels=16, skip_channels=16, out_channels=16)  # smp upsamples without a conv
    assert count_parameters(ours.conv) == count_parameters(theirs)
    assert count_parameters(ours.conv) == count_parameters(DoubleConv(32, 16))
    # Same output shape on an odd skip: smp interpolates to the skip's size, we pad to it.
    x, skip = torch.randn(2, 32, 12, 9), torch.randn(2, 16, 25, 19)
    got = ours(x, skip)
    want = theirs(torch.randn(2, 16, 12, 9), 25, 19, skip)
    assert got.shape == want.shape == (2, 16, 25, 19)


@pytest.mark.parametrize("size", [(64, 64), (96, 160), (32, 48)])
def test_same_shapes_as_smp_unet_on_divisible_sizes(size):
    depth = 4
    ours = unet(in_channels=3, num_classes=2, depth=depth, base_channels=8).eval()
    theirs = smp.Unet(encoder_name="resnet18", encoder_weights=None, encoder_depth=depth,
                      decoder_channels=(64, 32, 16, 8), classes=2).eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert ours(x).shape == theirs(x).shape == (1, 2, *size)
        # encoder pyramids: one map per stride 1, 2, 4, ..., 2**depth, at the same spatial sizes
        ours_sizes = [tuple(f.shape[-2:]) for f in ours.encoder(x)]
        theirs_sizes = [tuple(f.shape[-2:]) for f in theirs.encoder(x)]
    assert ours_sizes == theirs_sizes == [(size[0] // 2**i, size[1] // 2**i) for i in range(depth + 1)]


@pytest.mark.parametrize("size", [(97, 75), (33, 47)])
def test_same_output_shape_as_smp_unet_on_odd_sizes(size):
    """Both align each upsampled map to its skip, so both return logits at the input size.

    They align differently: smp's ResNet stem rounds sizes *up* at each stride-2 conv and its
    decoder interpolates to the skip's size; our max-pool rounds *down* and our decoder pads.
    """
    x = torch.randn(1, 3, *size)
    theirs = smp.Unet(encoder_name="resnet18", encoder_weights=None, encoder_depth=4,
                      decoder_channels=(64, 32, 16, 8), classes=2).eval()
    ours = unet(depth=4, base_channels=8).eval()
    with torch.no_grad():
        assert ours(x).shape == theirs(x).shape == (1, 2, *size)
        ceil_sizes = [tuple(f.shape[-2:]) for f in theirs.encoder(x)]
        floor_sizes = [tuple(f.shape[-2:]) for f in ours.encoder(x)]
    h, w = size
    assert ceil_sizes == [(-(-h // 2**i), -(-w // 2**i)) for i in range(5)]
    assert floor_sizes == [(h // 2**i, w // 2**i) for i in range(5)]
