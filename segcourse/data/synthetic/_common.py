"""Building blocks shared by the synthetic generators: seeding, smooth noise, rasterising shapes.

Everything here is a pure function of its arguments (the random generator included), so that a
sample is a deterministic function of ``(name, seed, index, size)``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage


@dataclass
class Sample:
    """One synthetic sample.

    Attributes:
        image: ``(H, W, 3) uint8`` RGB image.
        mask: ``(H, W) uint8`` semantic class ids, as listed by :func:`segcourse.data.catalog.get_info`.
        instances: ``(H, W) uint16`` instance label map (0 = no instance, ``1..K`` one id per object),
            or ``None`` for datasets without instances (``aerial``).
        panoptic: ``(H, W, 2) int64`` with ``[..., 0]`` the category id and ``[..., 1]`` the instance id
            (0 for stuff pixels), the layout ``torchmetrics.detection.PanopticQuality`` expects;
            ``street`` only, ``None`` elsewhere.
        name: the dataset's name.
        index: the sample's index.
    """

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    name: str = ""
    index: int = 0


def make_rng(name: str, seed: int, index: int, height: int, width: int) -> np.random.Generator:
    """A generator seeded by every argument, so samples never share random streams.

    ``zlib.crc32`` (not ``hash``) gives the same number for a name in every process.
    """
    key = [zlib.crc32(name.encode("utf-8")), int(seed), int(index), int(height), int(width)]
    return np.random.default_rng(np.random.SeedSequence(key))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian random field with correlation length ``scale`` pixels, zero mean, unit std.

    Drawn on a grid ``scale/2`` times coarser and resized with cubic interpolation, so the cost
    does not grow with ``scale`` (a 1024² field with scale 100 costs the same as scale 2).

    Returns:
        ``(H, W) float32``.
    """
    h, w = shape
    step = max(scale / 2.0, 1.0)
    gh, gw = max(int(np.ceil(h / step)) + 3, 4), max(int(np.ceil(w / step)) + 3, 4)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    if step <= 1.0:
        field = ndimage.gaussian_filter(coarse, max(scale / 2.0, 0.5), mode="wrap")[:h, :w]
    else:
        coarse = ndimage.gaussian_filter(coarse, 0.8, mode="wrap")
        big = cv2.resize(coarse, (int(gw * step), int(gh * step)), interpolation=cv2.INTER_CUBIC)
        oy, ox = int(step), int(step)
        field = big[oy:oy + h, ox:ox + w]
    field = field - field.mean()
    std = field.std()
    return (field / std if std > 1e-8 else field).astype(np.float32)


def fill_polygon(shape: tuple[int, int], xy: np.ndarray) -> np.ndarray:
    """Rasterise a polygon given as ``(K, 2)`` float ``(x, y)`` vertices into a ``(H, W) bool`` mask.

    A pixel is inside when its centre is (``cv2.fillPoly`` with 4 bits of sub-pixel precision).
    """
    mask = np.zeros(shape, dtype=np.uint8)
    pts = np.round(np.asarray(xy, dtype=np.float64) * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def polygon_window(shape: tuple[int, int], xy: np.ndarray):
    """Like :func:`fill_polygon`, but rasterised only over the polygon's bounding box (much faster on big tiles).

    Returns:
        ``(inside, (y0, y1, x0, x1))``: a ``(y1 - y0, x1 - x0) bool`` array equal to
        ``fill_polygon(shape, xy)[y0:y1, x0:x1]`` (which is ``False`` everywhere outside the box), or
        ``None`` when the box misses the image.
    """
    h, w = shape
    xy = np.asarray(xy, dtype=np.float64)
    x0, x1 = max(int(np.floor(xy[:, 0].min())) - 1, 0), min(int(np.ceil(xy[:, 0].max())) + 2, w)
    y0, y1 = max(int(np.floor(xy[:, 1].min())) - 1, 0), min(int(np.ceil(xy[:, 1].max())) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    pts = (np.round(xy * 16).astype(np.int32) - np.array([x0 * 16, y0 * 16], dtype=np.int32)).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool), (y0, y1, x0, x1)


def rotated_rect(cx: float, cy: float, half_w: float, half_h: float, angle: float) -> np.ndarray:
    """The 4 ``(x, y)`` corners of a rectangle centred at ``(cx, cy)`` rotated by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    local = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + np.array([cx, cy])


def ellipse_field(shape: tuple[int, int], cx: float, cy: float, a: float, b: float, angle: float,
                  wobble: np.ndarray | None = None, pad: float = 2.0):
    """Normalised radius of an ellipse, evaluated only on its bounding box.

    Args:
        shape: ``(H, W)`` of the image.
        cx, cy: centre in pixels; a, b: semi-axes; angle: rotation in radians.
        wobble: optional ``(K, 2)`` array of (amplitude, phase) for harmonics ``2..K+1`` that make the
            outline irregular: the boundary is at ``rho == 1 + sum_k amp_k cos(k phi + phase_k)``.
        pad: extra pixels around the bounding box.

    Returns:
        ``(rho - boundary, (y0, y1, x0, x1))``: a float32 array over the box, negative inside the
        shape and about ``-1`` at the centre, and the box. ``None`` when the box is outside the image.
    """
    h, w = shape
    r = max(a, b) * (1.0 + (np.abs(wobble[:, 0]).sum() if wobble is not None else 0.0)) + pad
    y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, h)
    x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, w)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    boundary = np.ones_like(rho)
    if wobble is not None:
        phi = np.arctan2(v / b, u / a)
        for k, (amp, phase) in enumerate(wobble, start=2):
            boundary += amp * np.cos(k * phi + phase)
    return (rho - boundary).astype(np.float32), (y0, y1, x0, x1)


def relabel_sequential(instances: np.ndarray) -> np.ndarray:
    """Renumber instance ids to ``1..K`` in order of first appearance id (0 stays 0), dropping hidden ones."""
    ids = np.unique(instances)
    ids = ids[ids != 0]
    lut = np.zeros(int(instances.max()) + 1 if instances.size else 1, dtype=np.uint16)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.uint16)
    return lut[instances]


def drop_small(instances: np.ndarray, min_pixels: int) -> np.ndarray:
    """Set instances with fewer than ``min_pixels`` visible pixels to 0."""
    counts = np.bincount(instances.ravel())
    small = np.flatnonzero((counts < min_pixels) & (counts > 0))
    small = small[small != 0]
    if small.size:
        instances = np.where(np.isin(instances, small), 0, instances)
    return instances


def unit_float_to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> ``uint8``: times 255, rounded, clipped (not rescaled: compare
    :func:`segcourse.classical.to_uint8`, which stretches min..max to 0..255)."""
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the spatial axes of ``(H, W)`` or ``(H, W, C)``."""
    if sigma <= 0:
        return image
    sig = (sigma, sigma, 0) if image.ndim == 3 else sigma
    return ndimage.gaussian_filter(image, sig, mode="reflect")


def check_size(size) -> tuple[int, int]:
    """``size`` (int or ``(H, W)``) -> ``(H, W)``, validated."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, (int, np.integer)) for v in size):
        h, w = int(size[0]), int(size[1])
    else:
        raise TypeError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16 pixels on each side, got {(h, w)}")
    return h, w
