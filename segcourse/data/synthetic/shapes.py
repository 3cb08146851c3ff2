"""``shapes``: circles, rectangles and triangles on a textured background (4 classes + instances).

What a lesson can rely on:

* the class is given by the **shape**, not the colour: every object draws its colour from the same
  distribution, so a network must look at the outline and the corners (context), not a pixel;
* objects are large and few by default (2-4 per image, radius 11-26 % of the image side), so
  FCN-8s and DeepLabV3+ can reach a high mIoU in minutes while FCN-32s's coarse output still
  visibly rounds their corners;
* objects may overlap a little (at most 15 % of an object is hidden); the later one is on top;
* the scale is relative to the image size; ``scales=(lo, hi)`` widens it, and the variant
  ``shapes-multiscale`` (small *and* large objects) shows the receptive-field effect of lesson 05.

Difficulty knobs (keyword arguments of :func:`generate_shapes`) are listed in ``datasets/shapes/README.md``.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    Sample,
    blur,
    drop_small,
    ellipse_field,
    fill_polygon,
    relabel_sequential,
    rotated_rect,
    smooth_noise,
    unit_float_to_uint8,
)

#: Default knobs (documented in ``datasets/shapes/README.md``).
DEFAULTS = dict(
    objects=(2, 4),          # number of objects per image (min, max), inclusive
    scales=(0.11, 0.26),     # object "radius" as a fraction of the image side (min, max)
    max_hidden=0.15,         # largest fraction of an object that later objects may cover
    texture=0.12,            # strength of the background and fill textures
    blur=0.6,                # Gaussian blur sigma in pixels
    noise=0.03,              # pixel noise standard deviation
)

#: The variant used by lesson 05 (``shapes-multiscale``): small and large objects in one image.
MULTISCALE = dict(objects=(3, 6), scales=(0.04, 0.32))

CIRCLE, RECTANGLE, TRIANGLE = 1, 2, 3


def _random_colour(rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    """A saturated-ish colour at least a fixed distance from ``avoid`` (the local background)."""
    for _ in range(50):
        colour = rng.uniform(0.05, 0.95, 3).astype(np.float32)
        if np.abs(colour - avoid).sum() > 0.55:
            return colour
    return (1.0 - avoid).astype(np.float32)


def _object_mask(rng, shape, cls, cx, cy, r):
    if cls == CIRCLE:
        d, (y0, y1, x0, x1) = ellipse_field(shape, cx, cy, r, r, 0.0) or (None, (0, 0, 0, 0))
        out = np.zeros(shape, dtype=bool)
        if d is not None:
            out[y0:y1, x0:x1] = d <= 0
        return out
    if cls == RECTANGLE:
        aspect = rng.uniform(0.5, 1.0)
        half_w, half_h = r * 0.95, r * 0.95 * aspect
        return fill_polygon(shape, rotated_rect(cx, cy, half_w, half_h, rng.uniform(0, np.pi)))
    # triangle: near-equilateral (corner angles 40-80 degrees), enlarged so its area matches the others
    base = rng.uniform(0, 2 * np.pi)
    angles = base + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.25, 0.25, 3)
    rr = 1.2 * r
    xy = np.stack([cx + rr * np.cos(angles), cy + rr * np.sin(angles)], axis=1)
    return fill_polygon(shape, xy)


def generate_shapes(rng: np.random.Generator, height: int, width: int, **knobs) -> Sample:
    """Draw one ``shapes`` sample; see the module docstring and the dataset card for the knobs."""
    k = {**DEFAULTS, **knobs}
    shape = (height, width)
    side = min(height, width)
    # background: two colours mixed by a smooth field, plus fine grain and sometimes stripes
    c1, c2 = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    mix = np.clip(0.5 + 0.35 * smooth_noise(rng, shape, side / 3), 0, 1)[..., None]
    image = (c1 * mix + c2 * (1 - mix)).astype(np.float32)
    grain = smooth_noise(rng, shape, 1.5)[..., None]
    image = image * (1 + k["texture"] * grain)
    if rng.random() < 0.4:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        theta, period = rng.uniform(0, np.pi), rng.uniform(0.05, 0.12) * side
        stripes = np.sin(2 * np.pi * (np.cos(theta) * xx + np.sin(theta) * yy) / period)
        image = image * (1 + 0.5 * k["texture"] * stripes[..., None])

    instances = np.zeros(shape, dtype=np.uint16)
    classes = [0]
    lo, hi = k["objects"]
    n = int(rng.integers(lo, hi + 1))
    s_lo, s_hi = k["scales"]
    tries = 0
    while len(classes) - 1 < n and tries < 25 * n:
        tries += 1
        cls = int(rng.integers(1, 4))
        r = np.exp(rng.uniform(np.log(s_lo), np.log(s_hi))) * side     # log-uniform scale
        cx, cy = rng.uniform(0.1 * width, 0.9 * width), rng.uniform(0.1 * height, 0.9 * height)
        obj = _object_mask(rng, shape, cls, cx, cy, r)
        n_obj = int(obj.sum())
        if n_obj < 20:
            continue
        under = instances[obj]
        hidden = np.bincount(under, minlength=len(classes))[1:]
        sizes = np.bincount(instances.ravel(), minlength=len(classes))[1:]
        if np.any(hidden > k["max_hidden"] * np.maximum(sizes, 1)):
            continue
        new_id = len(classes)
        instances[obj] = new_id
        classes.append(cls)
        avoid = image[obj].mean(axis=0)
        colour = _random_colour(rng, avoid)
        # fill: flat colour with a gentle shading gradient and its own texture
        yy, xx = np.nonzero(obj)
        g = rng.uniform(-0.15, 0.15, 2)
        shade = 1 + (g[0] * (xx - cx) + g[1] * (yy - cy)) / max(r, 1.0) * 0.5
        fill = colour[None, :] * shade[:, None] * (1 + k["texture"] * 0.7 * grain[obj])
        image[obj] = fill

    instances = drop_small(instances, 10)
    class_of = np.asarray(classes, dtype=np.uint8)          # instance id -> class id (0 -> background)
    mask = class_of[instances]
    instances = relabel_sequential(instances)
    image = blur(image, k["blur"])
    image = image + k["noise"] * rng.standard_normal(image.shape).astype(np.float32)
    return Sample(image=unit_float_to_uint8(image), mask=mask, instances=instances)
