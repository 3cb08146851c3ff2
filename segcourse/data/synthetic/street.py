"""``street``: a street seen from a car, in perspective; stuff (road, sidewalk, building, vegetation,
sky) and things (cars, people) for panoptic segmentation.

What a lesson can rely on:

* every pixel has a class (no background class): ids 0-4 are stuff, 5 (car) and 6 (person) are things;
* one vanishing point: the road and sidewalks are trapezoids, the building facades are planes
  along the street, windows and lane markings shrink with distance;
* things appear at several scales (an object's size is proportional to its distance below the
  horizon, so far cars are a few pixels wide and near ones a third of the image), near ones
  occlude far ones; each visible thing has its own instance id;
* ``panoptic[..., 0]`` is the class and ``panoptic[..., 1]`` the instance id (0 on stuff), the layout
  ``torchmetrics.detection.PanopticQuality(things={5, 6}, stuffs={0, 1, 2, 3, 4})`` expects.

Difficulty knobs (keyword arguments of :func:`generate_street`) are listed in ``datasets/street/README.md``.
"""

from __future__ import annotations

import numpy as np

from ._common import Sample, blur, ellipse_field, fill_polygon, relabel_sequential, smooth_noise, unit_float_to_uint8

ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON = range(7)

#: Default knobs (documented in ``datasets/street/README.md``).
DEFAULTS = dict(
    cars=(1, 5),             # cars per image (min, max)
    people=(1, 5),           # people per image (min, max)
    depth=(0.12, 1.15),      # range of object scales: 1 = an object standing on the bottom row
    parks=0.2,               # fraction of the street side that is trees instead of buildings
    blur=0.5,                # Gaussian blur sigma in pixels
    noise=0.02,              # pixel noise standard deviation
)

_FACADES = np.array([[0.76, 0.70, 0.60], [0.62, 0.36, 0.28], [0.55, 0.55, 0.56], [0.80, 0.78, 0.72],
                     [0.45, 0.42, 0.40], [0.70, 0.60, 0.45]], dtype=np.float32)
_CARS = np.array([[0.80, 0.10, 0.10], [0.10, 0.20, 0.60], [0.85, 0.85, 0.85], [0.12, 0.12, 0.12],
                  [0.50, 0.52, 0.55], [0.90, 0.75, 0.10], [0.15, 0.45, 0.25]], dtype=np.float32)


def _side(rng, s_col, ground_h, n_seg=40, parks=0.2):
    """Per-column facade description of one street side.

    Returns (segment index, height of the segment's facade, is-park flag) per column.
    """
    lengths = rng.uniform(0.25, 0.9, n_seg)
    bounds = np.cumsum(np.concatenate([[rng.uniform(0.0, 0.5)], lengths]))   # in z = 1/s
    heights = rng.uniform(0.9, 2.6, n_seg + 2) * ground_h
    is_park = rng.random(n_seg + 2) < parks
    z = 1.0 / np.maximum(s_col, 1e-3)
    seg = np.searchsorted(bounds, z)
    return seg, heights[seg], is_park[seg], bounds


def generate_street(rng: np.random.Generator, height: int, width: int, **knobs) -> Sample:
    """Draw one ``street`` sample; see the module docstring and the dataset card for the knobs."""
    k = {**DEFAULTS, **knobs}
    h, w = height, width
    shape = (h, w)
    yh = h * rng.uniform(0.36, 0.48)             # horizon row
    xv = w * rng.uniform(0.4, 0.6)               # vanishing point column
    gh = h - yh                                   # ground height on screen at scale 1
    road_b = w * rng.uniform(0.32, 0.5)          # road half-width at scale 1 (bottom row)
    walk_b = w * rng.uniform(0.12, 0.22)         # sidewalk width at scale 1
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy += 0.5
    xx += 0.5
    s_row = (yy - yh) / gh                        # scale of a ground point on this row (<0 above horizon)
    lateral = np.abs(xx - xv)

    label = np.full(shape, SKY, dtype=np.uint8)
    below = s_row > 0
    label[below & (lateral <= s_row * road_b)] = ROAD
    label[below & (lateral > s_row * road_b) & (lateral <= s_row * (road_b + walk_b))] = SIDEWALK

    image = np.zeros((h, w, 3), dtype=np.float32)
    # sky: gradient + clouds
    sky_top, sky_hor = np.array([0.30, 0.50, 0.80]), np.array([0.70, 0.80, 0.92])
    t = np.clip(yy / max(yh, 1.0), 0, 1)[..., None]
    sky = sky_top * (1 - t) + sky_hor * t
    clouds = np.clip(smooth_noise(rng, shape, w / 6) - 0.3, 0, 1)[..., None] * 0.5
    image[:] = sky * (1 - clouds) + 0.95 * clouds
    # road: asphalt texture, a dashed centre line whose dashes shrink with distance
    s_safe = np.maximum(s_row, 1e-3)
    z = 1.0 / s_safe
    road = label == ROAD
    asphalt = 0.36 + 0.03 * smooth_noise(rng, shape, 2.0)
    image[road] = asphalt[road][:, None] * np.array([1.0, 1.0, 1.05])
    dash = road & (lateral <= s_safe * w * 0.012) & (np.mod(z * 2.5, 1.0) < 0.5)
    image[dash] = 0.9
    walk = label == SIDEWALK
    tiles = (np.mod((xx - xv) / s_safe / (w * 0.05), 1.0) < 0.08) | (np.mod(z * 6, 1.0) < 0.08)
    paving = np.array([0.68, 0.62, 0.64]) * rng.uniform(0.85, 1.1)
    image[walk] = paving * np.where(tiles[walk], 0.8, 1.0)[:, None]

    # the two street sides: facades (planes along the street) or parks
    for sign in (-1.0, 1.0):
        side = (xx - xv) * sign > 0
        s_col = np.where(side, (xx - xv) * sign / (road_b + walk_b), 0.0)
        seg, top_h, is_park, bounds = _side(rng, s_col, gh, parks=k["parks"])
        y_ground = yh + s_col * gh
        y_top = y_ground - s_col * top_h
        facade = side & (s_col > 0) & (yy >= y_top) & (yy < y_ground) & ~is_park
        label[facade] = BUILDING
        colours = _FACADES[rng.integers(len(_FACADES), size=len(bounds) + 2)] * rng.uniform(0.85, 1.1, (len(bounds) + 2, 1))
        v = (y_ground - yy) / np.maximum(s_col, 1e-3) / gh          # height above the ground, in ground units
        zc = 1.0 / np.maximum(s_col, 1e-3)
        windows = (np.mod(v / 0.22, 1.0) > 0.35) & (np.mod(zc / 0.09, 1.0) > 0.3) & (v > 0.25) & (v < top_h / gh - 0.1)
        image[facade] = colours[seg[facade]] * np.where(windows[facade], 0.45, 1.0)[:, None]
        # parks: grass up to the ground line, hedges a little higher
        hedge = side & (s_col > 0) & is_park & (yy < y_ground) & (yy >= y_ground - s_col * gh * 0.15)
        label[hedge] = VEGETATION
        image[hedge] = np.array([0.25, 0.40, 0.15])
        # trees along the sidewalk and in parks: round crowns over facades and sky
        for zb in bounds[:30]:
            if rng.random() > 0.45 + k["parks"]:
                continue
            s = 1.0 / (zb + rng.uniform(0, 0.4))
            if s < 0.06:
                continue
            cx = xv + sign * s * (road_b + walk_b * rng.uniform(0.6, 0.95))
            base = yh + s * gh * (road_b + walk_b * 0.8) / (road_b + walk_b)
            r = s * gh * rng.uniform(0.3, 0.5)
            cy = base - s * gh * rng.uniform(0.9, 1.4)
            trunk = fill_polygon(shape, np.array([[cx - 0.06 * r, cy], [cx + 0.06 * r, cy], [cx + 0.06 * r, base],
                                                  [cx - 0.06 * r, base]]))
            label[trunk] = VEGETATION
            image[trunk] = np.array([0.30, 0.22, 0.15])
            res = ellipse_field(shape, cx, cy, r, r * 0.9, 0.0,
                                np.stack([rng.uniform(0, 0.1, 3), rng.uniform(0, 6.28, 3)], axis=1))
            if res is None:
                continue
            d, (y0, y1, x0, x1) = res
            crown = d <= 0
            label[y0:y1, x0:x1][crown] = VEGETATION
            leaf = np.array([0.22, 0.42, 0.16]) * rng.uniform(0.8, 1.15)
            image[y0:y1, x0:x1][crown] = leaf * (1 + 0.2 * smooth_noise(rng, (y1 - y0, x1 - x0), 2.0)[crown][:, None])

    # things: cars on the road, people on the sidewalks (a few crossing), painted far to near
    things = []
    d_lo, d_hi = k["depth"]
    for _ in range(int(rng.integers(k["cars"][0], k["cars"][1] + 1))):
        s = np.exp(rng.uniform(np.log(d_lo), np.log(d_hi)))
        cw = 0.3 * w * s * rng.uniform(0.85, 1.1)
        u = rng.uniform(-road_b + 0.15 * w, road_b - 0.15 * w)
        things.append((s, CAR, xv + s * u, cw))
    for _ in range(int(rng.integers(k["people"][0], k["people"][1] + 1))):
        s = np.exp(rng.uniform(np.log(d_lo), np.log(d_hi)))
        if rng.random() < 0.8:
            u = np.sign(rng.random() - 0.5) * (road_b + walk_b * rng.uniform(0.2, 0.8))
        else:
            u = rng.uniform(-road_b, road_b)
        things.append((s, PERSON, xv + s * u, 0.085 * w * s * rng.uniform(0.9, 1.15)))
    things.sort(key=lambda t: t[0])
    instances = np.zeros(shape, dtype=np.uint16)
    for inst_id, (s, cls, cx, size) in enumerate(things, start=1):
        yb = yh + s * gh
        if cls == CAR:
            ch = 0.8 * size
            body = fill_polygon(shape, np.array([[cx - size / 2, yb - 0.62 * ch], [cx + size / 2, yb - 0.62 * ch],
                                                 [cx + size / 2, yb - 0.12 * ch], [cx - size / 2, yb - 0.12 * ch]]))
            cabin = fill_polygon(shape, np.array([[cx - 0.36 * size, yb - ch], [cx + 0.36 * size, yb - ch],
                                                  [cx + 0.46 * size, yb - 0.6 * ch], [cx - 0.46 * size, yb - 0.6 * ch]]))
            wheels = fill_polygon(shape, np.array([[cx - 0.45 * size, yb - 0.15 * ch], [cx - 0.25 * size, yb - 0.15 * ch],
                                                   [cx - 0.25 * size, yb], [cx - 0.45 * size, yb]]))
            wheels |= fill_polygon(shape, np.array([[cx + 0.25 * size, yb - 0.15 * ch], [cx + 0.45 * size, yb - 0.15 * ch],
                                                    [cx + 0.45 * size, yb], [cx + 0.25 * size, yb]]))
            glass = fill_polygon(shape, np.array([[cx - 0.3 * size, yb - 0.93 * ch], [cx + 0.3 * size, yb - 0.93 * ch],
                                                  [cx + 0.38 * size, yb - 0.66 * ch], [cx - 0.38 * size, yb - 0.66 * ch]]))
            lights = fill_polygon(shape, np.array([[cx - 0.47 * size, yb - 0.5 * ch], [cx - 0.33 * size, yb - 0.5 * ch],
                                                   [cx - 0.33 * size, yb - 0.4 * ch], [cx - 0.47 * size, yb - 0.4 * ch]]))
            lights |= fill_polygon(shape, np.array([[cx + 0.33 * size, yb - 0.5 * ch], [cx + 0.47 * size, yb - 0.5 * ch],
                                                    [cx + 0.47 * size, yb - 0.4 * ch], [cx + 0.33 * size, yb - 0.4 * ch]]))
            obj = body | cabin | wheels
            paint = _CARS[rng.integers(len(_CARS))] * rng.uniform(0.85, 1.1)
            image[body | cabin] = paint
            image[glass & (body | cabin)] = np.array([0.15, 0.18, 0.25])
            image[lights & body] = np.array([0.9, 0.1, 0.1])
            image[wheels & ~body] = 0.06
        else:
            ph = 3.4 * size            # person height on screen
            pw = size
            head_r = 0.11 * ph
            legs = fill_polygon(shape, np.array([[cx - 0.3 * pw, yb - 0.48 * ph], [cx + 0.3 * pw, yb - 0.48 * ph],
                                                 [cx + 0.25 * pw, yb], [cx - 0.25 * pw, yb]]))
            gap = fill_polygon(shape, np.array([[cx - 0.05 * pw, yb - 0.4 * ph], [cx + 0.05 * pw, yb - 0.4 * ph],
                                                [cx + 0.12 * pw, yb], [cx - 0.12 * pw, yb]]))
            legs &= ~gap
            torso = fill_polygon(shape, np.array([[cx - 0.5 * pw, yb - 0.8 * ph], [cx + 0.5 * pw, yb - 0.8 * ph],
                                                  [cx + 0.38 * pw, yb - 0.46 * ph], [cx - 0.38 * pw, yb - 0.46 * ph]]))
            head = np.zeros(shape, dtype=bool)
            res = ellipse_field(shape, cx, yb - 0.8 * ph - 0.9 * head_r, head_r * 0.85, head_r, 0.0)
            if res is not None:
                d, (y0, y1, x0, x1) = res
                head[y0:y1, x0:x1] = d <= 0
            obj = legs | torso | head
            image[legs] = rng.uniform(0.05, 0.5, 3) * np.array([0.6, 0.6, 1.0])
            image[torso] = rng.uniform(0.1, 0.9, 3)
            image[head] = np.array([0.85, 0.65, 0.5]) * rng.uniform(0.6, 1.05)
        if not obj.any():
            continue
        instances[obj] = inst_id
        label[obj] = cls

    instances = relabel_sequential(instances)
    # the things' classes were painted into `label`; the instance map is consistent with them by construction
    image = image * rng.uniform(0.85, 1.1)          # exposure
    image = blur(image, k["blur"])
    image = image + k["noise"] * rng.standard_normal(image.shape).astype(np.float32)
    panoptic = np.stack([label.astype(np.int64), np.where(np.isin(label, (CAR, PERSON)), instances, 0).astype(np.int64)],
                        axis=-1)
    return Sample(image=unit_float_to_uint8(image), mask=label, instances=instances, panoptic=panoptic)
