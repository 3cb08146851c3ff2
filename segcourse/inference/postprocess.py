"""Post-processing of binary masks: small components, holes, opening and closing.

A network's mask often has specks (a few false-positive pixels), pin holes inside objects and
ragged borders. Each step below fixes one of these and can hurt when its size is wrong (removing
components smaller than the smallest real object deletes that object), so the lesson measures what
each does to IoU and Boundary IoU instead of assuming.

All functions take a binary mask ``(H, W)`` (bool or 0/1, numpy or torch) and return a new bool
numpy array; components use 8-connectivity for objects (``scipy.ndimage.label`` with a full 3 x 3
structure) and 4-connectivity for the background, the usual digital-topology pair.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import morphology

_EIGHT = np.ones((3, 3), dtype=bool)


def _binary(mask) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if mask.dtype != bool:
        values = np.unique(mask)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"mask must be binary (bool or 0/1), got values {values[:6].tolist()}")
        mask = mask.astype(bool)
    return mask


def _size(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    return int(value)


def remove_small_components(mask, min_size: int) -> np.ndarray:
    """Drop the 8-connected foreground components with fewer than ``min_size`` pixels."""
    mask, min_size = _binary(mask), _size(min_size, "min_size")
    labels, count = ndimage.label(mask, structure=_EIGHT)
    if count == 0 or min_size <= 1:
        return mask.copy()
    areas = np.bincount(labels.ravel())
    keep = areas >= min_size
    keep[0] = False
    return keep[labels]


def fill_holes(mask, max_size: int | None = None) -> np.ndarray:
    """Fill background regions enclosed by foreground (4-connected, not touching the border).

    Args:
        max_size: fill only holes of at most this many pixels (``None``: every hole, like
            ``scipy.ndimage.binary_fill_holes``).
    """
    mask = _binary(mask)
    if max_size is None:
        return ndimage.binary_fill_holes(mask)
    max_size = _size(max_size, "max_size")
    labels, count = ndimage.label(~mask)
    if count == 0:
        return mask.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    areas = np.bincount(labels.ravel())
    fill = areas <= max_size
    fill[0] = False
    fill[border] = False
    return mask | fill[labels]


def open_mask(mask, radius: int) -> np.ndarray:
    """Morphological opening with a disk of ``radius``: removes specks and thin spurs."""
    mask, radius = _binary(mask), _size(radius, "radius")
    if radius == 0:
        return mask.copy()
    return morphology.opening(mask, morphology.disk(radius)).astype(bool)


def close_mask(mask, radius: int) -> np.ndarray:
    """Morphological closing with a disk of ``radius``: closes small gaps and notches."""
    mask, radius = _binary(mask), _size(radius, "radius")
    if radius == 0:
        return mask.copy()
    return morphology.closing(mask, morphology.disk(radius)).astype(bool)


def postprocess(mask, *, min_size: int = 0, hole_size: int | None = 0, open_radius: int = 0,
                close_radius: int = 0) -> np.ndarray:
    """The steps in a fixed order: opening, closing, small components, holes.

    Args:
        min_size: drop components smaller than this (0: keep all).
        hole_size: fill holes of at most this size (0: none, ``None``: all).
        open_radius, close_radius: disk radii (0: skip).
    """
    out = _binary(mask)
    if open_radius:
        out = open_mask(out, open_radius)
    if close_radius:
        out = close_mask(out, close_radius)
    if min_size:
        out = remove_small_components(out, min_size)
    if hole_size is None or hole_size:
        out = fill_holes(out, hole_size)
    return out
