"""``aerial``: small, rare buildings on textured ground, among roof-coloured clutter (binary).

What a lesson can rely on:

* buildings cover about 3-6 % of the pixels of a split (per tile anything from 0 to ~12 %),
  so plain cross-entropy is tempted to predict "ground" everywhere (lesson 06);
* buildings are small rotated rectangles (5-15 px a side at the fixed ground resolution), mostly
  lined up along roads, with a gable ridge and a cast shadow;
* the ground is confusable with them: asphalt roads and parking lots share the grey roofs'
  colours, bare-soil and rock patches share the terracotta roofs' colours, trees may hide parts
  of a roof. What tells a building apart is its crisp rectangular outline and its shadow;
* the pixel scale is fixed, so a larger tile holds more buildings: tiles of 512-1024 px are
  what sliding-window inference (lesson 10) is for.

Difficulty knobs (keyword arguments of :func:`generate_aerial`) are listed in ``datasets/aerial/README.md``.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    Sample,
    blur,
    ellipse_field,
    fill_polygon,
    polygon_window,
    rotated_rect,
    smooth_noise,
    unit_float_to_uint8,
)

#: Default knobs (documented in ``datasets/aerial/README.md``).
DEFAULTS = dict(
    building_size=(5.0, 15.0),   # building side lengths in pixels (min, max)
    density=0.55,                # mean buildings per 1000 px^2 (varies per tile, log-normal)
    roads=0.9,                   # mean roads per 128 px of tile side
    clutter=0.5,                 # roof-coloured clutter patches per 1000 px^2 (parking lots, soil, rocks)
    trees=0.35,                  # trees per 1000 px^2
    shadow=2.0,                  # shadow length in pixels
    blur=0.7,                    # Gaussian blur sigma in pixels
    noise=0.035,                 # pixel noise standard deviation
)

_ROOFS = np.array([
    [0.62, 0.32, 0.24],   # terracotta
    [0.52, 0.28, 0.22],   # dark terracotta
    [0.40, 0.40, 0.42],   # dark grey
    [0.58, 0.58, 0.57],   # light grey
    [0.42, 0.45, 0.52],   # blue-grey
    [0.50, 0.42, 0.34],   # brown
], dtype=np.float32)
_ASPHALT = np.array([0.43, 0.43, 0.44], dtype=np.float32)


def _ground(rng, shape):
    h, w = shape
    grass = np.array([0.36, 0.45, 0.25], dtype=np.float32) * rng.uniform(0.85, 1.1)
    soil = np.array([0.55, 0.47, 0.36], dtype=np.float32) * rng.uniform(0.85, 1.1)
    mix = np.clip(0.5 + 0.4 * smooth_noise(rng, shape, 40.0), 0, 1)[..., None]
    image = grass * mix + soil * (1 - mix)
    image = image * (1 + 0.10 * smooth_noise(rng, shape, 6.0)[..., None])
    image = image * (1 + 0.06 * smooth_noise(rng, shape, 1.2)[..., None])
    # a few fields: large rotated rectangles with a stripe pattern (ploughed land)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(rng.poisson(h * w / 40000.0)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        theta = rng.uniform(0, np.pi)
        poly = rotated_rect(cx, cy, rng.uniform(20, 60), rng.uniform(15, 40), theta)
        freq = rng.uniform(0.8, 1.6)
        tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
        res = polygon_window(shape, poly)          # rasterise on the field's bounding box only
        if res is None:
            continue
        field, (y0, y1, x0, x1) = res
        stripes = 1 + 0.08 * np.sin((np.cos(theta) * xx[y0:y1, x0:x1] + np.sin(theta) * yy[y0:y1, x0:x1]) * freq)
        patch = image[y0:y1, x0:x1]
        patch[field] = patch[field] * tint * stripes[field][:, None]
    return image


def generate_aerial(rng: np.random.Generator, height: int, width: int, **knobs) -> Sample:
    """Draw one ``aerial`` sample; see the module docstring and the dataset card for the knobs."""
    k = {**DEFAULTS, **knobs}
    shape = (height, width)
    area = height * width
    image = _ground(rng, shape)
    mask = np.zeros(shape, dtype=bool)
    shadow = np.zeros(shape, dtype=bool)

    # roads: straight strips; buildings line up along them
    roads = []
    n_roads = rng.poisson(k["roads"] * max(height, width) / 128.0)
    for _ in range(n_roads):
        cx, cy, theta = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, np.pi)
        half = rng.uniform(1.8, 3.5)
        length = 2 * (height + width)
        poly = rotated_rect(cx, cy, length, half, theta)
        road = fill_polygon(shape, poly)
        image[road] = _ASPHALT * rng.uniform(0.85, 1.15) * (1 + 0.05 * rng.standard_normal((int(road.sum()), 1)))
        roads.append((cx, cy, theta, half))

    # clutter that looks like roofs but is ground: parking lots (grey), soil/rock patches (terracotta)
    n_clutter = rng.poisson(k["clutter"] * area / 1000.0)
    for _ in range(n_clutter):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        colour = _ROOFS[rng.integers(len(_ROOFS))] * rng.uniform(0.9, 1.1)
        if rng.random() < 0.4:      # parking lot: a rectangle with painted bays
            theta = rng.uniform(0, np.pi)
            poly = rotated_rect(cx, cy, rng.uniform(5, 14), rng.uniform(4, 9), theta)
            res = polygon_window(shape, poly)
            if res is None:
                continue
            lot, (y0, y1, x0, x1) = res
            image[y0:y1, x0:x1][lot] = colour
            yy, xx = np.nonzero(lot)
            yy, xx = yy + y0, xx + x0
            bays = np.sin((np.cos(theta) * xx + np.sin(theta) * yy) * 1.6) > 0.85
            image[yy[bays], xx[bays]] = 0.8
        else:                        # an irregular blob: bare soil, rocks, a pile of tiles
            r = rng.uniform(2.5, 7.0)
            wob = np.stack([rng.uniform(0, 0.25, 4), rng.uniform(0, 2 * np.pi, 4)], axis=1)
            res = ellipse_field(shape, cx, cy, r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi), wob)
            if res is None:
                continue
            d, (y0, y1, x0, x1) = res
            blob = d <= 0
            patch = image[y0:y1, x0:x1]
            patch[blob] = colour * (1 + 0.12 * rng.standard_normal((int(blob.sum()), 1)))

    # buildings: count varies a lot from tile to tile (log-normal density)
    density = k["density"] * np.exp(rng.normal(-0.32, 0.8))
    n_build = rng.poisson(density * area / 1000.0)
    s_lo, s_hi = k["building_size"]
    sun = rng.uniform(0, 2 * np.pi)
    sdx, sdy = k["shadow"] * np.cos(sun), k["shadow"] * np.sin(sun)
    for _ in range(n_build):
        bw, bh = rng.uniform(s_lo, s_hi), rng.uniform(s_lo, s_hi * 0.8)
        if roads and rng.random() < 0.75:   # along a road, facing it
            cx0, cy0, theta, half = roads[rng.integers(len(roads))]
            t = rng.uniform(-(height + width), height + width)
            side = rng.choice([-1.0, 1.0])
            off = half + bh / 2 + rng.uniform(2.0, 6.0)
            cx = cx0 + t * np.cos(theta) - side * off * np.sin(theta)
            cy = cy0 + t * np.sin(theta) + side * off * np.cos(theta)
            if not (-s_hi < cx < width + s_hi and -s_hi < cy < height + s_hi):
                cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        else:
            cx, cy, theta = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, np.pi)
        poly = rotated_rect(cx, cy, bw / 2, bh / 2, theta)
        res = polygon_window(shape, poly)
        if res is None or not res[0].any():
            continue
        roof, (y0, y1, x0, x1) = res
        cast = polygon_window(shape, poly + np.array([sdx, sdy]))
        if cast is not None:
            win, (a0, a1, b0, b1) = cast
            shadow[a0:a1, b0:b1] |= win
        colour = _ROOFS[rng.integers(len(_ROOFS))] * rng.uniform(0.9, 1.1)
        yy, xx = np.nonzero(roof)
        yy, xx = yy + y0, xx + x0
        # gable roof: the two halves either side of the ridge are lit differently
        across = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
        lit = np.where(across > 0, 1.08, 0.88).astype(np.float32)
        image[yy, xx] = colour * lit[:, None]
        mask[y0:y1, x0:x1] |= roof

    # shadows darken the ground (not roofs)
    shade = shadow & ~mask
    image[shade] *= 0.55
    # trees: dark round crowns with their own shadow; they hide what is under them
    n_trees = rng.poisson(k["trees"] * area / 1000.0)
    for _ in range(n_trees):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(1.8, 4.5)
        res = ellipse_field(shape, cx, cy, r, r, 0.0)
        if res is None:
            continue
        d, (y0, y1, x0, x1) = res
        crown = d <= 0
        patch = image[y0:y1, x0:x1]
        patch[crown] = np.array([0.18, 0.30, 0.14], dtype=np.float32) * rng.uniform(0.8, 1.2) * (
            1 + 0.15 * rng.standard_normal((int(crown.sum()), 1)))
        mask[y0:y1, x0:x1][crown] = False

    image = blur(image, k["blur"])
    image = image + k["noise"] * rng.standard_normal(image.shape).astype(np.float32)
    return Sample(image=unit_float_to_uint8(image), mask=mask.astype(np.uint8), instances=None)
