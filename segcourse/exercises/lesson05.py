"""Checks for lesson 05 (DeepLab): receptive fields of dilated stacks, the gridding artefact,
and the image-pooling branch of ASPP done right.

Each check compares the learner's answer with the course's own implementation
(:mod:`segcourse.models.backbones`, :mod:`segcourse.models.deeplab`) on hidden cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.backbones import receptive_field
from .registry import CheckFailed, case, exercise, expect_tensor

# ------------------------------------------------------------------------------------------
# 5.1 -- receptive field of stacked (dilated, strided) convolutions
# ------------------------------------------------------------------------------------------

RF_CASES = [
    ("one 3x3 conv", [(3, 1, 1)]),
    ("three 3x3 convs", [(3, 1, 1)] * 3),
    ("dilations 1, 2, 4", [(3, 1, 1), (3, 1, 2), (3, 1, 4)]),
    ("dilation 2 three times", [(3, 1, 2)] * 3),
    ("ResNet stem: 7x7 stride 2, 3x3 max-pool stride 2", [(7, 2, 1), (3, 2, 1)]),
    ("strided then dilated", [(3, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)]),
    ("a 1x1 conv changes nothing", [(3, 1, 1), (1, 1, 1), (3, 1, 1)]),
]


@exercise("5.1", title="Receptive field of stacked dilated convolutions", level="warm-up", minutes=10,
          kind="implement",
          goal="Compute a receptive field by the recurrence r += (k - 1) * d * j, j *= s, and see that "
               "dilation grows it without losing resolution.",
          hint="Start with r = 1 and j = 1 (the jump: input pixels between neighbouring outputs). For each layer "
               "(k, s, d): a dilated kernel spans (k - 1) * d + 1 positions of its input, i.e. (k - 1) * d * j "
               "more input pixels; then j *= s.")
def check_receptive_field(candidate):
    for name, layers in RF_CASES:
        with case(name):
            got = candidate(list(layers))
            want = receptive_field(layers)[0]
            try:
                got_int = int(got[0] if isinstance(got, (tuple, list)) else got)
            except (TypeError, ValueError):
                raise CheckFailed(f"expected an int (the receptive field in pixels), got {got!r}") from None
            if got_int != want:
                raise CheckFailed(f"expected {want}, got {got_int}")


# ------------------------------------------------------------------------------------------
# 5.2 -- gridding: which input pixels does a dilated stack actually see?
# ------------------------------------------------------------------------------------------


def _touched(dilations) -> tuple[int, int]:
    """(receptive field, input pixels that actually influence the centre) of 1-D 3-tap convs."""
    offsets = {0}
    for d in dilations:
        offsets = {o + t * d for o in offsets for t in (-1, 0, 1)}
    return max(offsets) - min(offsets) + 1, len(offsets)


@exercise("5.2", title="Predict the gridding artefact", level="core", minutes=10, kind="predict",
          goal="See that stacking the same dilation rate leaves holes in the receptive field (gridding), "
               "while rates with no common factor, like 1, 2, 4, cover it densely.",
          hint="In 1-D a 3-tap conv with dilation d adds offsets -d, 0, +d. With d = 2 three times every offset "
               "stays even: from -6 to 6 that is 7 of the 13 positions. With 1, 2, 4 every offset from -7 to 7 "
               "is reachable.")
def check_gridding(prediction):
    if not isinstance(prediction, dict):
        raise CheckFailed("expected a dict with keys 'rf_222', 'seen_222', 'rf_124', 'seen_124', "
                          f"got {type(prediction).__name__}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    for rates, tag in (((2, 2, 2), "222"), ((1, 2, 4), "124")):
        rf, seen = _touched(rates)  # (2,2,2): 13 wide, 7 seen; (1,2,4): 15 wide, 15 seen
        for key, want in ((f"rf_{tag}", rf), (f"seen_{tag}", seen)):
            with case(f"{key}: 1-D, three 3-tap convolutions with dilations {rates}"):
                if key not in prediction:
                    raise CheckFailed(f"the dict is missing the key {key!r}")
                try:
                    got = int(prediction[key])
                except (TypeError, ValueError):
                    raise CheckFailed(f"expected an int, got {prediction[key]!r}") from None
                if got != want:
                    raise CheckFailed(f"expected {want}, got {got}")


# ------------------------------------------------------------------------------------------
# 5.3 -- ASPP's image-pooling branch, done right (break it and explain)
# ------------------------------------------------------------------------------------------


def _reference_pooling(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    pooled = conv(F.adaptive_avg_pool2d(x, 1))
    return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


@exercise("5.3", title="The image-pooling branch of ASPP", level="stretch", minutes=15, kind="break-it",
          goal="Fix the source article's ASPP bug: the pooled 1x1 map must be upsampled to the size of the "
               "feature map, read before pooling, or the concatenation with the other branches fails.",
          hint="Read size = x.shape[-2:] BEFORE pooling; pool with F.adaptive_avg_pool2d(x, 1), apply `conv`, "
               "then F.interpolate(..., size=size, mode='bilinear', align_corners=False). Upsampling to the "
               "pooled map's own size is a no-op.")
def check_image_pooling(candidate):
    g = torch.Generator().manual_seed(505)
    conv = nn.Conv2d(6, 4, 1)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    for size in [(1, 1), (6, 6), (7, 5), (13, 10)]:
        with case(f"feature map {size[0]} x {size[1]}"):
            x = torch.randn(2, 6, *size, generator=g)
            with torch.no_grad():
                got = candidate(x, conv)
                want = _reference_pooling(x, conv)
            expect_tensor(got)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} (N, out, h, w of the input), got "
                                  f"{tuple(got.shape)} -- it must concatenate with the other ASPP branches")
            if not torch.allclose(got, want, atol=1e-5):
                raise CheckFailed("the shape is right but the values are not: every position should hold "
                                  "conv(global average of x)")
