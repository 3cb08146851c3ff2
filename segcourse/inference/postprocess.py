"""Post-processing of a network's binary masks: small components, holes, opening and closing.

A network's mask often has specks (a few false-positive pixels), pin holes inside objects and
ragged borders. Each step fixes one of these and can hurt when its size is wrong (removing
components smaller than the smallest real object deletes that object), so the lesson measures what
each does to IoU and Boundary IoU instead of assuming.

The steps are lesson 01's morphology (:mod:`segcourse.classical`: :func:`~segcourse.classical.open_mask`,
:func:`~segcourse.classical.close_mask`, :func:`~segcourse.classical.remove_small`,
:func:`~segcourse.classical.fill_holes`); :func:`postprocess` runs them in a fixed order with the
image mirrored at its border (``border="reflect"``, ``skimage.morphology``'s convention).
Components use 8-connectivity for objects and 4-connectivity for the background, the usual
digital-topology pair.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_binary_mask, check_int
from ..classical import close_mask, fill_holes, open_mask, remove_small

__all__ = ["postprocess"]


def postprocess(mask, *, min_size: int = 0, hole_size: int | None = 0, open_radius: int = 0,
                close_radius: int = 0) -> np.ndarray:
    """The steps in a fixed order: opening, closing, small components, holes.

    Args:
        mask: ``(H, W)`` bool or 0/1 (numpy or torch).
        min_size: drop 8-connected components smaller than this (0: keep all).
        hole_size: fill holes of at most this size (0: none, ``None``: all).
        open_radius, close_radius: disk radii (0: skip); the image is mirrored at its border.

    Returns:
        A new ``(H, W)`` bool array.
    """
    out = as_binary_mask(mask)
    for value, name in ((min_size, "min_size"), (open_radius, "open_radius"), (close_radius, "close_radius")):
        check_int(value, name, minimum=0)
    if hole_size is not None:
        check_int(hole_size, "hole_size", minimum=0)
    if open_radius:
        out = open_mask(out, open_radius, border="reflect")
    if close_radius:
        out = close_mask(out, close_radius, border="reflect")
    if min_size:
        out = remove_small(out, min_size)
    if hole_size is None or hole_size:
        out = fill_holes(out, hole_size)
    return out.copy() if out is mask else out
