"""Checks for lesson 03 (FCN): the bilinear kernel of a transposed convolution, the output size
of a transposed convolution, where the checkerboard artefact comes from, a transposed convolution
written by hand (checked against ``nn.ConvTranspose2d``), and FCN-16s built from its parts.

Each check compares the learner's answer with the course's own implementation
(:mod:`segcourse.models.fcn`) or with PyTorch itself on hidden cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.fcn import bilinear_kernel
from .registry import CheckFailed, case, exercise, expect_callable, expect_close, expect_tensor

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
# 3.3 -- the checkerboard artefact, at stride 3
# ------------------------------------------------------------------------------------------

#: key -> kernel size of the all-ones ConvTranspose2d(kernel, stride=3, padding=1) the learner predicts.
CHECKERBOARD_KERNELS = {"k5": 5, "k6": 6, "k7": 7}
CHECKERBOARD_STRIDE = 3


def _interior_values(kernel_size: int, stride: int = CHECKERBOARD_STRIDE) -> list[float]:
    """Distinct values away from the border of an all-ones transposed convolution on an all-ones 10 x 10 image."""
    conv = nn.ConvTranspose2d(1, 1, kernel_size, stride=stride, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    with torch.no_grad():
        out = conv(torch.ones(1, 1, 10, 10))[0, 0]
    margin = kernel_size + stride
    return sorted({round(float(v), 4) for v in out[margin:-margin, margin:-margin].flatten()})


@exercise("3.3", title="Where the checkerboard comes from", level="stretch", minutes=15, kind="break-it",
          goal="Explain the checkerboard artefact: when the kernel size is not a multiple of the stride, "
               "neighbouring output pixels receive different numbers of kernel taps.",
          hint="Work in 1-D first: with stride s and kernel k, output pixel p is reached by the inputs i with "
               "0 <= p - s*i <= k - 1, i.e. by floor(k/s) or ceil(k/s) taps depending on p mod s. With all-ones "
               "weights and input the value is the number of taps; in 2-D multiply the counts of the two "
               "directions.")
def check_checkerboard(prediction):
    keys = ", ".join(f"{k!r}: [...]" for k in CHECKERBOARD_KERNELS)
    if not isinstance(prediction, dict):
        raise CheckFailed(f"expected a dict {{{keys}}}, got {type(prediction).__name__}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    for key, k in CHECKERBOARD_KERNELS.items():
        with case(f"{key}: all-ones ConvTranspose2d(kernel {k}, stride {CHECKERBOARD_STRIDE}, padding 1) "
                  f"on an all-ones image"):
            if key not in prediction:
                raise CheckFailed(f"the dict is missing the key {key!r}")
            try:
                got = sorted({round(float(v), 4) for v in prediction[key]})
            except (TypeError, ValueError):
                raise CheckFailed(f"expected a list of numbers, got {prediction[key]!r}") from None
            want = _interior_values(k)
            if got != want:
                raise CheckFailed(f"{len(want)} distinct interior value(s) expected; your list {got} is not it")


# ------------------------------------------------------------------------------------------
# 3.4 -- a transposed convolution by hand (scatter-add)
# ------------------------------------------------------------------------------------------

#: (name, input shape (N, C_in, H, W), C_out, kernel, stride, padding) of the hidden cases.
TRANSPOSED_CONV_CASES = [
    ("1 channel, stride 1, no padding", (1, 1, 3, 4), 1, 3, 1, 0),
    ("FCN's 2x step: kernel 4, stride 2, padding 1", (2, 3, 5, 4), 3, 4, 2, 1),
    ("channels change: 3 -> 2, kernel 3, stride 2", (1, 3, 4, 6), 2, 3, 2, 0),
    ("kernel 8, stride 4, padding 2", (1, 2, 3, 5), 2, 8, 4, 2),
    ("kernel smaller than stride: kernel 2, stride 3", (2, 2, 3, 3), 1, 2, 3, 0),
]


@exercise("3.4", title="A transposed convolution by hand", level="core", minutes=20, kind="implement",
          goal="Write a transposed convolution as what it is -- every input pixel adds a scaled copy of the "
               "kernel into the output, copies placed `stride` pixels apart -- and match nn.ConvTranspose2d.",
          hint="Allocate out = zeros(N, C_out, (H - 1) * s + k, (W - 1) * s + k); for every input position (i, j) "
               "add torch.einsum('nc,cokl->nokl', x[:, :, i, j], weight) into out[:, :, i*s : i*s + k, j*s : j*s + k]; "
               "then crop `padding` pixels from every side. weight is (C_in, C_out, k, k), not (C_out, C_in, k, k), "
               "and the kernel is not flipped.")
def check_transposed_conv(candidate):
    expect_callable(candidate, "transposed_conv2d(x, weight, stride, padding)")
    g = torch.Generator().manual_seed(304)
    for name, shape, c_out, k, s, p in TRANSPOSED_CONV_CASES:
        with case(name):
            x = torch.randn(*shape, generator=g)
            layer = nn.ConvTranspose2d(shape[1], c_out, k, stride=s, padding=p, bias=False)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
                want = layer(x)
                got = candidate(x.clone(), layer.weight.detach().clone(), s, p)
            expect_tensor(got)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} (out = (in - 1) * stride - 2 * padding + "
                                  f"kernel), got {tuple(got.shape)}")
            expect_close(got.detach().double(), want.double(), "output", atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------
# 3.5 -- build FCN-16s from its parts
# ------------------------------------------------------------------------------------------


def _fcn16s_parts(seed: int = 0):
    from ..models.backbones import vgg_tiny
    from ..models.fcn import FCNHead

    torch.manual_seed(seed)
    encoder = vgg_tiny(width=4)
    head = FCNHead(encoder.out_channels[-1], 3, channels=16, dropout=0.0)
    nn.init.normal_(head.score_fr.weight, std=0.5)      # non-zero scores, so that the upsamplings matter
    return encoder, head


def _reference_fcn16s(encoder, head, score_pool4, x):
    """FCN-16s with the package's upsampling (bilinear transposed convolutions asked for the exact size)."""
    from ..models.fcn import BilinearUpsample

    c = score_pool4.out_channels
    up2, up16 = BilinearUpsample(c, 2), BilinearUpsample(c, 16, learnable=False)
    features = encoder(x)
    score = head(features[-1])                                   # stride 32
    skip = score_pool4(features[-2])                             # stride 16
    return up16(up2(score, skip.shape[-2:]) + skip, x.shape[-2:])


@exercise("3.5", title="Build FCN-16s from its parts", level="stretch", minutes=25, kind="implement",
          goal="Assemble FCN-16s: pool5 scores upsampled x2 by a learned, bilinear-initialised transposed "
               "convolution, added to zero-initialised 1x1 scores of pool4, upsampled x16 to the input by a fixed "
               "bilinear transposed convolution -- and see it train.",
          hint="score_pool4 = nn.Conv2d(encoder.out_channels[-2], C, 1) with weight and bias zeroed; "
               "upscore2 = nn.ConvTranspose2d(C, C, 4, stride=2, padding=1, bias=False) with weight "
               "bilinear_kernel(C, C, 4); upscore16 = nn.ConvTranspose2d(C, C, 32, stride=16, padding=8, bias=False) "
               "with weight bilinear_kernel(C, C, 32) and requires_grad_(False). In forward ask each for the size "
               "of the map it is added to: upscore2(score, output_size=skip.shape[-2:]) and "
               "upscore16(fused, output_size=x.shape[-2:]).")
def check_fcn16s(candidate):
    expect_callable(candidate, "build_fcn16s(encoder, head, num_classes)")
    with case("building it"):
        encoder, head = _fcn16s_parts()
        model = candidate(encoder, head, 3)
        if not isinstance(model, nn.Module):
            raise CheckFailed(f"build_fcn16s must return an nn.Module, got {type(model).__name__}")
        for attr in ("score_pool4", "upscore2", "upscore16"):
            if not isinstance(getattr(model, attr, None), nn.Module):
                raise CheckFailed(f"the model needs a layer `{attr}` (an nn.Module attribute)")
        if not isinstance(model.score_pool4, nn.Conv2d) or model.score_pool4.kernel_size != (1, 1):
            raise CheckFailed("score_pool4 must be a 1x1 nn.Conv2d from pool4's channels to the classes")
        if any(float(p.detach().abs().max()) != 0.0 for p in model.score_pool4.parameters()):
            raise CheckFailed("score_pool4 must start at zero (weight and bias), so that FCN-16s starts as a "
                              "plain upsampling of the pool5 scores")
        if not any(p.requires_grad for p in model.upscore2.parameters()):
            raise CheckFailed("upscore2 (the x2 step) must be learnable")
        if any(p.requires_grad for p in model.upscore16.parameters()):
            raise CheckFailed("upscore16 (the last x16 step) stays fixed at bilinear: requires_grad_(False)")
    model.eval()
    for size in [(64, 64), (97, 75)]:
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(size[0]))
        with case(f"at initialisation, input {size[0]} x {size[1]}"):
            with torch.no_grad():
                got = model(x)
                want = _reference_fcn16s(encoder, head, model.score_pool4, x)
            expect_tensor(got)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected logits of shape {tuple(want.shape)}, got {tuple(got.shape)}")
            expect_close(got, want, "logits (score_pool4 still zero: only the two bilinear upsamplings act)",
                         atol=1e-4, rtol=1e-4)
        with case(f"with non-zero pool4 scores, input {size[0]} x {size[1]}"):
            with torch.no_grad():
                saved = [p.clone() for p in model.score_pool4.parameters()]
                for p in model.score_pool4.parameters():
                    p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(7)))
                try:
                    got = model(x)
                    want = _reference_fcn16s(encoder, head, model.score_pool4, x)
                finally:
                    for p, s in zip(model.score_pool4.parameters(), saved):
                        p.copy_(s)
            expect_close(got, want, "logits (the pool4 scores must be added after the x2 upsampling, at stride 16)",
                         atol=1e-4, rtol=1e-4)
    with case("training a few steps on a tiny batch"):
        model.train()
        g = torch.Generator().manual_seed(5)
        x = torch.randn(4, 3, 64, 64, generator=g)
        target = torch.zeros(4, 64, 64, dtype=torch.int64)
        target[:, 16:48, 8:40] = 1
        target[:, 40:, 44:] = 2
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        before = model.upscore16.weight.detach().clone() if hasattr(model.upscore16, "weight") else None
        losses = []
        for _ in range(15):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), target)
            loss.backward()
            if not losses:
                grad = model.score_pool4.weight.grad
                if grad is None or float(grad.abs().max()) == 0.0:
                    raise CheckFailed("no gradient reaches score_pool4: is its output part of the logits?")
            optimizer.step()
            losses.append(float(loss.detach()))
        if not losses[-1] < 0.8 * losses[0]:
            raise CheckFailed(f"the loss did not fall while training (from {losses[0]:.3f} to {losses[-1]:.3f})")
        if before is not None and not torch.equal(before, model.upscore16.weight.detach()):
            raise CheckFailed("upscore16 changed during training: it must stay fixed")
