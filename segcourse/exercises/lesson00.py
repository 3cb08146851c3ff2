"""Checks for lesson 00, start here: a warm-up that shows how exercises and checks work."""

from __future__ import annotations

import numpy as np

from ..constants import IGNORE_INDEX
from .registry import CheckFailed, case, exercise


def _cases():
    rng = np.random.default_rng(0)
    plain = np.array([[0, 0, 1, 1]], np.uint8)                          # 2 of 4 labelled pixels: 0.5
    ignored = np.array([[1, 1, IGNORE_INDEX, IGNORE_INDEX, 0, 0, 0, 0]], np.uint8)   # 2 of 6 labelled: 1/3
    big = rng.choice(np.array([0, 1, IGNORE_INDEX], np.uint8), size=(20, 30), p=[0.6, 0.3, 0.1])
    yield "no ignored pixels", plain, 0.5
    yield "two ignored pixels", ignored, 1 / 3
    yield "random 20x30 mask", big, float((big == 1).sum() / (big != IGNORE_INDEX).sum())
    yield "everything ignored", np.full((2, 2), IGNORE_INDEX, np.uint8), 0.0


@exercise("0.1", title="Foreground fraction, ignoring unlabelled pixels", level="warm-up", minutes=5,
          kind="implement",
          goal="Practise the exercise workflow (write, run the check, read the verdict) and meet the ignore index.",
          hint="First select the labelled pixels with a boolean array (mask != IGNORE_INDEX), then take the mean "
               "of (pixel == 1) over those pixels only. When no pixel is labelled, return 0.0.")
def check_foreground_fraction(candidate):
    for name, mask, want in _cases():
        with case(name):
            got = candidate(mask.copy())
            try:
                got = float(got)
            except (TypeError, ValueError):
                raise CheckFailed(f"expected a number between 0 and 1, got {type(got).__name__}") from None
            if not np.isfinite(got) or abs(got - want) > 1e-9:
                raise CheckFailed(f"expected {want:.4f}, got {got:.4f}")
