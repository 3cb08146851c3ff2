"""Checks for lesson 03 (FCN): the bilinear kernel of a transposed convolution, the output size
of a transposed convolution, and where the checkerboard artefact comes from.

Each check compares the learner's answer with the course's own implementation
(:mod:`segcourse.models.fcn`) or with PyTorch itself on hidden cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.fcn import bilinear_kernel
from .registry import CheckFailed, case, exercise, expect_tensor

# ------------------------------------------------------------------------------------------
# 3.1 -- the bilinear kernel
# ------------------------------------------------------------------------------------------


@exercise("3.1", title="The bilinear kernel of a transposed convolution", level="warm-up", minutes=10,
          kind="implement",
          goal="See that bilinear interpolation is a fixed convolution kernel (a 'tent'), so a transposed "
               "convolution can start as bilinear upsampling and then learn.",
          hint="factor = (k + 1) // 2; centre = factor - 1 for odd k, factor - 0.5 for even k; the 1-D tent is "
               "1 - |i - centre| / factor for i in range(k); the 2-D kernel is the outer product, placed at "
               "weight[c, c] for every channel c (other channel pairs stay 0).")
def check_bilinear_kernel(candidate):
    for c, k in [(1, 4), (3, 4), (2, 3), (4, 16), (1, 64), (2, 5)]:
        with case(f"in_channels=out_channels={c}, kernel_size={k}"):
            got = candidate(c, c, k)
            want = bilinear_kernel(c, c, k)
            expect_tensor(got)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} (in, out, k, k) -- the layout of "
                                  f"ConvTranspose2d.weight -- got {tuple(got.shape)}")
            got = got.detach().float()
            if c > 1:
                off = got.clone()
                off[torch.arange(c), torch.arange(c)] = 0
                if off.abs().max() > 1e-6:
                    raise CheckFailed("channel c must only feed channel c: weight[i, j] must be all zeros for i != j")
            if not torch.allclose(got, want, atol=1e-5):
                i = int((got - want).abs().flatten().argmax())
                raise CheckFailed(f"values differ, e.g. at flat index {i}: expected {want.flatten()[i]:.4f}, got "
                                  f"{got.flatten()[i]:.4f}; first row of the 2-D kernel should be "
                                  f"{[round(v, 4) for v in want[0, 0, 0].tolist()]}")
    with case("upsampling x4 equals F.interpolate in the interior"):
        x = torch.randn(1, 2, 6, 5, generator=torch.Generator().manual_seed(3))
        conv = nn.ConvTranspose2d(2, 2, 8, stride=4, padding=2, bias=False)
        with torch.no_grad():
            conv.weight.copy_(candidate(2, 2, 8))
            diff = (conv(x) - F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False))[..., 4:-4, 4:-4]
        if diff.abs().max() > 1e-4:
            raise CheckFailed(f"the transposed convolution does not reproduce bilinear interpolation "
                              f"(largest interior difference {diff.abs().max():.3g})")


# ------------------------------------------------------------------------------------------
# 3.2 -- predict the output size of transposed convolutions
# ------------------------------------------------------------------------------------------

#: (name, in size, kernel, stride, padding) of the cases the learner predicts.
TRANSPOSED_CASES = {
    "a": ((7, 5), 4, 2, 1),     # FCN's 2x upsampling: (7-1)*2 - 2 + 4 = 14, (5-1)*2 - 2 + 4 = 10
    "b": ((3, 2), 16, 8, 4),    # FCN-8s' last layer: (3-1)*8 - 8 + 16 = 24, (2-1)*8 - 8 + 16 = 16
    "c": ((5, 5), 3, 2, 0),     # odd kernel, no padding: (5-1)*2 + 3 = 11
    "d": ((4, 6), 64, 32, 0),   # FCN-32s without padding: (4-1)*32 + 64 = 160, (6-1)*32 + 64 = 224
}


def _transposed_size(size, k, s, p):
    return tuple((n - 1) * s - 2 * p + k for n in size)


@exercise("3.2", title="Predict the output size of a transposed convolution", level="core", minutes=10,
          kind="predict",
          goal="Know the size formula out = (in - 1) * stride - 2 * padding + kernel, and why FCN uses "
               "kernel = 2 * stride with padding = stride / 2 to get exactly stride * in.",
          hint="A transposed convolution places a k x k copy of the kernel every `stride` pixels: the last copy "
               "starts at (in - 1) * stride and is k wide; padding then removes p pixels on each side.")
def check_transposed_sizes(prediction):
    if not isinstance(prediction, dict):
        raise CheckFailed(f"expected a dict {{'a': (H, W), 'b': ..., 'c': ..., 'd': ...}}, got {type(prediction).__name__}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    missing = set(TRANSPOSED_CASES) - set(prediction)
    if missing:
        raise CheckFailed(f"the dict is missing the key(s) {sorted(missing)}")
    for name, (size, k, s, p) in TRANSPOSED_CASES.items():
        with case(f"{name}: input {size}, kernel {k}, stride {s}, padding {p}"):
            try:
                got = tuple(int(v) for v in prediction[name])
            except (TypeError, ValueError):
                raise CheckFailed(f"expected a pair (H, W) of ints, got {prediction[name]!r}") from None
            want = _transposed_size(size, k, s, p)
            if got != want:
                raise CheckFailed(f"expected {want}, got {got}")


# ------------------------------------------------------------------------------------------
# 3.3 -- the checkerboard artefact (break it and explain)
# ------------------------------------------------------------------------------------------


def _interior_values(kernel_size: int) -> list[float]:
    conv = nn.ConvTranspose2d(1, 1, kernel_size, stride=2, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    with torch.no_grad():
        out = conv(torch.ones(1, 1, 8, 8))[0, 0, 3:-3, 3:-3]
    return sorted({round(float(v), 4) for v in out.flatten()})


@exercise("3.3", title="Where the checkerboard comes from", level="stretch", minutes=15, kind="break-it",
          goal="Explain the checkerboard artefact: when the kernel size is not a multiple of the stride, "
               "neighbouring output pixels receive different numbers of kernel taps.",
          hint="In 1-D, stride 2 and kernel 3: an even output pixel is reached by one tap of one input, an odd "
               "one by two taps of two inputs. In 2-D multiply the counts of the two directions. With kernel 4 "
               "every output pixel gets two taps per direction.")
def check_checkerboard(prediction):
    if not isinstance(prediction, dict):
        raise CheckFailed(f"expected a dict {{'k3': [...], 'k4': [...]}}, got {type(prediction).__name__}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    for key, k in (("k3", 3), ("k4", 4)):
        with case(f"{key}: all-ones ConvTranspose2d(kernel {k}, stride 2, padding 1) on an all-ones image"):
            if key not in prediction:
                raise CheckFailed(f"the dict is missing the key {key!r}")
            try:
                got = sorted({round(float(v), 4) for v in prediction[key]})
            except (TypeError, ValueError):
                raise CheckFailed(f"expected a list of numbers, got {prediction[key]!r}") from None
            want = _interior_values(k)
            if got != want:
                raise CheckFailed(f"expected the distinct interior values {want}, got {got}")
