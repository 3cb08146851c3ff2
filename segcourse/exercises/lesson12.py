"""Checks for lesson 12 (promptable segmentation): SAM's random-Fourier positional encoding and the
simulated user's next click, each by hand.

Each check compares the learner's function with the package (:class:`segcourse.models.promptable.PositionEmbeddingRandom`,
proved equal to ``segment_anything``'s in the tests, and :func:`segcourse.metrics.interactive.next_click`) on cases
the notebook does not show: other numbers of frequencies, points on the image's corners, a prediction with
both kinds of error, an error region touching the image border, a perfect prediction.
"""

from __future__ import annotations

import numpy as np
import torch

from .registry import CheckFailed, case, exercise, expect_callable, expect_close, expect_tensor

# ------------------------------------------------------------------------------------------
# 12.1 -- random Fourier features
# ------------------------------------------------------------------------------------------


def _fourier_cases():
    g = torch.Generator().manual_seed(1201)
    yield "20 points, 8 frequencies", torch.rand(20, 2, generator=g), torch.randn(2, 8, generator=g)
    yield "the four corners and the centre, 3 frequencies", \
        torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]]), torch.randn(2, 3, generator=g)
    yield "a batch of points (2, 5, 2), 16 frequencies scaled by 4", torch.rand(2, 5, 2, generator=g), 4 * torch.randn(2, 16, generator=g)


@exercise("12.1", title="Random Fourier features of a position", level="warm-up", minutes=10, kind="implement",
          goal="Encode (x, y) in [0, 1] as SAM's prompt encoder does: sin and cos of 2 pi times the position, "
               "moved to [-1, 1], projected on random Gaussian frequencies.",
          hint="coords = 2 * coords - 1; proj = 2 * math.pi * (coords @ gaussian_matrix); "
               "return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1) -- sines first.")
def check_fourier(candidate):
    from ..models.promptable import PositionEmbeddingRandom

    expect_callable(candidate, "my_fourier_features(coords, gaussian_matrix)")
    for name, coords, matrix in _fourier_cases():
        with case(name):
            got = candidate(coords.clone(), matrix.clone())
            expect_tensor(got, " (..., 2F)")
            pe = PositionEmbeddingRandom(matrix.shape[1])
            pe.positional_encoding_gaussian_matrix.copy_(matrix)
            want = pe._pe_encoding(coords)
            if tuple(got.shape) != tuple(want.shape):
                raise CheckFailed(f"expected shape {tuple(want.shape)} (the points' shape with the last dim 2F), got {tuple(got.shape)}")
            expect_close(got, want, "features", atol=1e-5)


# ------------------------------------------------------------------------------------------
# 12.2 -- the next simulated click
# ------------------------------------------------------------------------------------------


def _click_cases():
    target = np.zeros((12, 12), bool)
    target[2:10, 2:10] = True
    pred = np.zeros((12, 12), bool)
    pred[2:10, 2:4] = True
    yield "most of the object missed", pred, target
    pred = target.copy()
    pred[:, 11] = True                          # a 1-px false strip of 12 pixels ...
    pred[3:6, 3:6] = False                      # ... and a 3 x 3 miss of 9 pixels, 2 px deep: the miss wins
    yield "a long thin false strip and a compact miss", pred, target
    border = np.zeros((10, 10), bool)
    border[:, :5] = True
    yield "the object on the left border, nothing predicted", np.zeros((10, 10), bool), border
    yield "a perfect prediction", target.copy(), target


@exercise("12.2", title="The simulated user's next click", level="core", minutes=20, kind="implement",
          goal="Place the next click of the standard interactive protocol: at the centre of the larger error region, "
               "positive in the missed pixels, negative in the false ones, the image border counting as boundary.",
          hint="fn = target & ~pred, fp = pred & ~target. For each, pad by one False pixel, "
               "scipy.ndimage.distance_transform_edt, crop back. Positive when fn's maximum is larger than fp's. "
               "The click is np.unravel_index(np.argmax(dist), dist.shape) of the chosen map; None when both maxima are 0.")
def check_next_click(candidate):
    from ..metrics.interactive import next_click

    expect_callable(candidate, "my_next_click(pred, target)")
    for name, pred, target in _click_cases():
        with case(name):
            got = candidate(pred.copy(), target.copy())
            want = next_click(pred, target)
            if want is None:
                if got is not None:
                    raise CheckFailed(f"the prediction equals the target: expected None (no click), got {got!r}")
                continue
            if got is None or len(got) != 3:
                raise CheckFailed(f"expected a (row, col, positive) triple, got {got!r}")
            if bool(got[2]) != want[2]:
                raise CheckFailed(f"expected a {'positive' if want[2] else 'negative'} click (the larger error is "
                                  f"{'missed object' if want[2] else 'false foreground'}), got positive={got[2]!r}")
            if (int(got[0]), int(got[1])) != want[:2]:
                raise CheckFailed(f"expected the click at (row, col) = {want[:2]}, the error pixel farthest from the "
                                  f"error's boundary (first in row-major order on ties), got {(got[0], got[1])}")
