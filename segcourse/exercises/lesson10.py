"""Checks for lesson 10 (inference and deployment): window positions that cover every edge,
Gaussian importance weights, and a flip test-time augmentation that undoes its flips.

Each check compares the learner's function with the course's implementation
(:mod:`segcourse.inference`, itself equal to MONAI's ``sliding_window_inference`` in the tests)
on hidden cases, and says which case failed and why.
"""

from __future__ import annotations

import torch

from .registry import CheckFailed, case, exercise, expect_callable, expect_tensor

# ------------------------------------------------------------------------------------------
# 10.1 -- window start positions that cover an image of any size
# ------------------------------------------------------------------------------------------

_START_CASES = [
    # (size, window, overlap): multiples of the stride, non-multiples, image = window, no overlap, high overlap
    (64, 32, 0.5),
    (100, 32, 0.25),
    (97, 32, 0.25),
    (32, 32, 0.25),
    (33, 32, 0.0),
    (128, 40, 0.0),
    (250, 64, 0.75),
    (300, 128, 0.5),
]


@exercise("10.1", title="Window positions that cover every edge", level="core", minutes=15, kind="implement",
          goal="Place sliding windows so that every pixel is covered, including the right and bottom edges of "
               "an image whose size is not a multiple of the stride (MONAI's dense_patch_slices).",
          hint="Draw it for size 10, window 4, stride 3: where must a window start to end on the last pixel, and "
               "which of the starts 0, 3, 6, 9 are still needed beside it? Then check size == window, and a size "
               "where the stride lands exactly on that last start (is it listed twice?).")
def check_window_starts(candidate):
    from ..inference import window_starts

    expect_callable(candidate, "my_window_starts")
    for size, window, overlap in _START_CASES:
        with case(f"size {size}, window {window}, overlap {overlap}"):
            got = candidate(size, window, overlap)
            try:
                got = [int(s) for s in got]
            except TypeError:
                raise CheckFailed(f"expected a list of ints, got {type(got).__name__}") from None
            want = window_starts(size, window, overlap)
            covered = set()
            for s in got:
                if s < 0 or s + window > size:
                    raise CheckFailed(f"a window starting at {s} reaches outside the image (0 .. {size - 1}); "
                                      "shift the last window back instead")
                covered.update(range(s, s + window))
            missing = sorted(set(range(size)) - covered)
            if missing:
                raise CheckFailed(f"pixels {missing[0]} .. {missing[-1]} are not covered by any window "
                                  f"({len(missing)} of {size}): the right/bottom edge is left out")
            if got != want:
                raise CheckFailed(f"every pixel is covered, but the windows are not MONAI's: got {len(got)} "
                                  f"starts beginning {got[:4]}, expected {len(want)} beginning {want[:4]} "
                                  "(stride int(window * (1 - overlap)), the last start moved back to size - window)")


# ------------------------------------------------------------------------------------------
# 10.2 -- Gaussian importance weights
# ------------------------------------------------------------------------------------------

_GAUSS_CASES = [((32, 32), 0.125), ((17, 40), 0.125), ((5, 5), 0.125), ((64, 48), 0.25), ((9, 30), 0.3)]


@exercise("10.2", title="Gaussian importance weights", level="core", minutes=15, kind="implement",
          goal="Write the blending weights that give a window's centre more say than its border, exactly as "
               "MONAI's compute_importance_map does (sigma_scale times the window side, floored at 1e-3).",
          hint="Where is the centre of pixels 0 .. n-1 (for n = 4 it falls between two pixels)? Is sigma in "
               "pixels or a fraction of the side? How do two 1-D curves make an (h, w) map, and which weights "
               "does the 1e-3 floor change? Is the peak of your map 1?")
def check_gaussian_weights(candidate):
    from ..inference import importance_map

    expect_callable(candidate, "gaussian_weights_by_hand")
    for (h, w), sigma_scale in _GAUSS_CASES:
        with case(f"window {h} x {w}, sigma_scale {sigma_scale}"):
            got = candidate(h, w, sigma_scale)
            expect_tensor(got, "the weights")
            want = importance_map((h, w), "gaussian", sigma_scale=sigma_scale)
            if tuple(got.shape) != (h, w):
                raise CheckFailed(f"expected shape ({h}, {w}), got {tuple(got.shape)}")
            got = got.float()
            if int(got.argmax()) != int(want.argmax()):
                raise CheckFailed("the largest weight is not at the window's centre: measure the distance from "
                                  "(n - 1) / 2, the centre of pixels 0 .. n-1")
            if got.min() < 1e-3 - 1e-9:
                raise CheckFailed(f"the smallest weight is {float(got.min()):.2e}: weights must be floored at "
                                  "1e-3, or pixels near a corner get (almost) no weight from any window")
            if not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
                err = float((got - want).abs().max())
                raise CheckFailed(f"largest difference from the expected weights: {err:.3g} (is sigma "
                                  "sigma_scale * the side, in pixels? are the weights left unnormalised, peak 1?)")


# ------------------------------------------------------------------------------------------
# 10.3 -- flip TTA that undoes its flips and averages probabilities
# ------------------------------------------------------------------------------------------


def _tta_predictors():
    g = torch.Generator().manual_seed(1003)
    conv = torch.nn.Conv2d(3, 3, kernel_size=(3, 5), padding=(1, 2))    # not symmetric: flips matter
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 2)
        conv.bias.copy_(torch.randn(3, generator=g))

    def ramp(x):                                                         # depends on the position
        n, _, h, w = x.shape
        cols = torch.linspace(-2, 2, w).expand(n, 1, h, w)
        rows = torch.linspace(-1, 3, h)[:, None].expand(n, 1, h, w)
        return torch.cat([cols, rows, x[:, :1] * 3], dim=1)

    return {"an asymmetric convolution": conv.eval(), "a position-dependent predictor": ramp}, g


@exercise("10.3", title="A flip TTA that undoes its flips", level="core", minutes=15, kind="implement",
          goal="Average a model's predictions over the four flips of an image, each mapped back to the image's "
               "frame, averaging probabilities (softmax) rather than votes or logits.",
          hint="Which operation undoes torch.flip(x, dims)? Is each view's prediction back in the input's frame "
               "before you average, and are you averaging probabilities (do the classes sum to 1 at a pixel)?")
def check_flip_tta(candidate):
    from ..inference import tta_predict

    expect_callable(candidate, "flip_tta")
    predictors, g = _tta_predictors()
    for name, predictor in predictors.items():
        for shape in ((1, 3, 8, 12), (2, 3, 7, 5)):
            with case(f"{name}, input {shape}"):
                x = torch.rand(shape, generator=g)
                with torch.no_grad():
                    got = candidate(predictor, x)
                    want = tta_predict(predictor, x, flips=("none", "h", "v", "hv"))
                expect_tensor(got, "the TTA output")
                if tuple(got.shape) != tuple(want.shape):
                    raise CheckFailed(f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
                got = got.float()
                if not torch.allclose(got.sum(1), torch.ones_like(got.sum(1)), atol=1e-4):
                    raise CheckFailed("the classes' values do not sum to 1 at every pixel: average softmax "
                                      "probabilities, not logits")
                if not torch.allclose(got, want, atol=1e-5):
                    raise CheckFailed(f"largest difference from the expected probabilities: "
                                      f"{float((got - want).abs().max()):.3g} (is every flip undone on the "
                                      "prediction, and are probabilities averaged rather than argmax votes?)")
