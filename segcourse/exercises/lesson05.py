"""Checks for lesson 05 (DeepLab): a receptive field followed by hand through a stated layer list,
the gridding artefact of repeated or badly chosen rates, and an atrous convolution written by hand
(checked against PyTorch's ``dilation=``).

Each check compares the learner's answer with the course's own implementation
(:func:`segcourse.models.backbones.receptive_field`) or with PyTorch itself on hidden cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.backbones import receptive_field
from .registry import CheckFailed, case, exercise, expect_callable, expect_close, expect_tensor

# ------------------------------------------------------------------------------------------
# 5.1 -- receptive field and jump, followed by hand through a stated layer list
# ------------------------------------------------------------------------------------------

#: The layers of exercise 5.1, input side first: (name, kernel, stride, dilation). A ResNet stem and
#: two dilated stages, as DeepLab builds them at output stride 8.
RF_LAYERS = [
    ("7x7 conv, stride 2", 7, 2, 1),
    ("3x3 max-pool, stride 2", 3, 2, 1),
    ("3x3 conv", 3, 1, 1),
    ("3x3 conv, stride 2", 3, 2, 1),
    ("3x3 conv, dilation 2", 3, 1, 2),
    ("3x3 conv, dilation 4", 3, 1, 4),
]


def rf_table() -> list[tuple[int, int]]:
    """(receptive field, jump) after each layer of :data:`RF_LAYERS`, by the package's recurrence."""
    return [receptive_field([(k, s, d) for _, k, s, d in RF_LAYERS[: i + 1]]) for i in range(len(RF_LAYERS))]


@exercise("5.1", title="A receptive field followed by hand", level="warm-up", minutes=10, kind="predict",
          goal="Follow the recurrence r += (k - 1) * d * j, j *= s through a real layer list -- strides, a pool "
               "and dilations -- and see where the receptive field grows fastest.",
          hint="Start with r = 1, j = 1. For each layer first add (k - 1) * d * j to r (the current jump, before "
               "this layer's stride), then multiply j by the stride. A max-pool counts like a convolution; "
               "dilation multiplies the step, not the kernel size.")
def check_rf_table(prediction):
    def blank(item):
        return item is None or (isinstance(item, (list, tuple)) and all(v is None for v in item))

    if blank(prediction) or (isinstance(prediction, (list, tuple)) and all(blank(p) for p in prediction)):
        raise NotImplementedError("not attempted")
    if not isinstance(prediction, (list, tuple)):
        raise CheckFailed(f"expected a list of (receptive field, jump) pairs, one per layer, got "
                          f"{type(prediction).__name__}")
    if len(prediction) != len(RF_LAYERS):
        raise CheckFailed(f"expected {len(RF_LAYERS)} pairs (one after each layer), got {len(prediction)}")
    for i, ((name, *_), got, want) in enumerate(zip(RF_LAYERS, prediction, rf_table()), start=1):
        with case(f"after layer {i} ({name})"):
            try:
                pair = tuple(int(v) for v in got)
            except (TypeError, ValueError):
                raise CheckFailed(f"expected a pair (receptive field, jump) of ints, got {got!r}") from None
            if len(pair) != 2:
                raise CheckFailed(f"expected a pair (receptive field, jump), got {got!r}")
            if pair[1] != want[1]:
                raise CheckFailed(f"the jump is off (got {pair[1]}): only strides change it")
            if pair[0] != want[0]:
                raise CheckFailed(f"the receptive field is off (got {pair[0]}); the jump is right")


# ------------------------------------------------------------------------------------------
# 5.2 -- gridding: which input pixels does a dilated stack actually see?
# ------------------------------------------------------------------------------------------

#: key suffix -> dilations of three stacked 1-D 3-tap convolutions.
GRIDDING_STACKS = {"333": (3, 3, 3), "125": (1, 2, 5), "248": (2, 4, 8)}


def _touched(dilations) -> tuple[int, int]:
    """(receptive field, input pixels that actually influence the centre) of 1-D 3-tap convs."""
    offsets = {0}
    for d in dilations:
        offsets = {o + t * d for o in offsets for t in (-1, 0, 1)}
    return max(offsets) - min(offsets) + 1, len(offsets)


@exercise("5.2", title="Predict the gridding artefact", level="core", minutes=10, kind="predict",
          goal="See, by counting offsets, that a repeated rate leaves holes in the receptive field (gridding), "
               "that rates sharing a common factor do too however fast they grow, and that rates like 1, 2, 5 "
               "cover it densely.",
          hint="In 1-D a 3-tap conv with dilation d adds the offsets -d, 0, +d to every offset reached so far. "
               "The receptive field is max - min + 1 of the reachable offsets; the pixels seen are how many "
               "distinct offsets there are. If every rate is a multiple of some g > 1, every offset is too.")
def check_gridding(prediction):
    keys = [f"{what}_{tag}" for tag in GRIDDING_STACKS for what in ("rf", "seen")]
    if not isinstance(prediction, dict):
        raise CheckFailed(f"expected a dict with keys {', '.join(map(repr, keys))}, got {type(prediction).__name__}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    for tag, rates in GRIDDING_STACKS.items():
        rf, seen = _touched(rates)
        for key, want in ((f"rf_{tag}", rf), (f"seen_{tag}", seen)):
            with case(f"{key}: 1-D, three 3-tap convolutions with dilations {rates}"):
                if key not in prediction:
                    raise CheckFailed(f"the dict is missing the key {key!r}")
                try:
                    got = int(prediction[key])
                except (TypeError, ValueError):
                    raise CheckFailed(f"expected an int, got {prediction[key]!r}") from None
                if got != want:
                    raise CheckFailed(f"{got} is not it")


# ------------------------------------------------------------------------------------------
# 5.3 -- an atrous convolution by hand
# ------------------------------------------------------------------------------------------

#: (name, input shape (N, C_in, H, W), C_out, kernel, dilation) of the hidden cases.
ATROUS_CASES = [
    ("dilation 1 is an ordinary convolution", (1, 1, 6, 6), 1, 3, 1),
    ("dilation 2", (2, 3, 9, 7), 2, 3, 2),
    ("dilation 3, more channels", (1, 4, 10, 12), 5, 3, 3),
    ("a 5x5 kernel with dilation 2", (1, 2, 11, 9), 3, 5, 2),
    ("dilation larger than the map (DeepLab's rates on a tiny map)", (1, 2, 4, 4), 2, 3, 6),
]


@exercise("5.3", title="An atrous convolution by hand", level="stretch", minutes=20, kind="implement",
          goal="Write a dilated ('same'-padded) convolution as a sum over kernel taps of shifted copies of the "
               "input, and see why a rate larger than the map turns a 3x3 kernel into a 1x1 one.",
          hint="Pad x by p = dilation * (k // 2) zeros on every side. Tap (a, b) of the kernel reads the input "
               "shifted by (a * dilation, b * dilation): out += einsum('oc,nchw->nohw', weight[:, :, a, b], "
               "xp[:, :, a*d : a*d + H, b*d : b*d + W]). weight is (C_out, C_in, k, k), as in nn.Conv2d.")
def check_atrous_conv(candidate):
    expect_callable(candidate, "atrous_conv2d(x, weight, dilation)")
    g = torch.Generator().manual_seed(503)
    for name, shape, c_out, k, d in ATROUS_CASES:
        with case(name):
            x = torch.randn(*shape, generator=g)
            weight = torch.randn(c_out, shape[1], k, k, generator=g)
            with torch.no_grad():
                got = candidate(x.clone(), weight.clone(), d)
            want = F.conv2d(x, weight, padding=d * (k // 2), dilation=d)
            expect_tensor(got)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} ('same' padding keeps H and W), got "
                                  f"{tuple(got.shape)}")
            expect_close(got.detach().double(), want.double(), "output", atol=1e-4, rtol=1e-4)
