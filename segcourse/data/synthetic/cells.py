"""``cells``: fluorescence-like nuclei that touch and overlap, with uneven light, blur and noise.

What a lesson can rely on:

* nuclei are bright on a dark background (like a DAPI/Hoechst stain) but the illumination is uneven,
  so a single global threshold is slightly wrong in the corners;
* many nuclei come in clusters whose members touch or overlap: Otsu + connected components
  merges them, a distance-transform watershed separates most of them (lesson 01);
* fluorescence adds up, so overlaps are brighter; the later nucleus owns the overlap in the
  instance map (each pixel has one instance id);
* the pixel scale is fixed (a nucleus is about 14-22 px across), so a larger image holds more nuclei.

Difficulty knobs (keyword arguments of :func:`generate_cells`) are listed in ``datasets/cells/README.md``.
"""

from __future__ import annotations

import numpy as np

from ._common import Sample, blur, drop_small, ellipse_field, relabel_sequential, smooth_noise, unit_float_to_uint8

#: Default knobs (documented in ``datasets/cells/README.md``).
DEFAULTS = dict(
    radius=(6.5, 10.5),      # mean nucleus radius in pixels (min, max)
    coverage=(0.18, 0.34),   # fraction of the image the nuclei try to cover (min, max per image)
    touching=0.65,           # probability that a new nucleus is placed against an existing one
    overlap=(0.72, 0.98),    # centre distance / (r1 + r2) for touching pairs: < 1 overlaps
    illumination=0.45,       # depth of the uneven illumination (0 = flat)
    blur=1.0,                # Gaussian blur sigma in pixels
    noise=0.05,              # noise standard deviation (relative to a bright nucleus = 1)
    specks=0.4,              # bright dust specks per 1000 px^2 (labelled background)
)


def generate_cells(rng: np.random.Generator, height: int, width: int, **knobs) -> Sample:
    """Draw one ``cells`` sample; see the module docstring and the dataset card for the knobs."""
    k = {**DEFAULTS, **knobs}
    shape = (height, width)
    area = height * width
    r_lo, r_hi = k["radius"]
    mean_area = np.pi * ((r_lo + r_hi) / 2) ** 2 * 1.1
    target = rng.uniform(*k["coverage"]) * area
    n_target = max(1, round(target / mean_area))

    instances = np.zeros(shape, dtype=np.uint16)
    signal = np.zeros(shape, dtype=np.float32)
    centres: list[tuple[float, float, float]] = []
    next_id = 1
    for _ in range(n_target * 3):
        if next_id > n_target:
            break
        r = rng.uniform(r_lo, r_hi)
        if centres and rng.random() < k["touching"]:
            px, py, pr = centres[rng.integers(len(centres))]
            phi = rng.uniform(0, 2 * np.pi)
            dist = (pr + r) * rng.uniform(*k["overlap"])
            cx, cy = px + dist * np.cos(phi), py + dist * np.sin(phi)
        else:
            cx, cy = rng.uniform(-0.3 * r, width + 0.3 * r), rng.uniform(-0.3 * r, height + 0.3 * r)
        elong = rng.uniform(1.0, 1.35)
        a, b = r * np.sqrt(elong), r / np.sqrt(elong)
        wobble = np.stack([rng.uniform(0, 0.06, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)
        res = ellipse_field(shape, cx, cy, a, b, rng.uniform(0, np.pi), wobble)
        if res is None:
            continue
        d, (y0, y1, x0, x1) = res
        inside = d <= 0
        n_in = int(inside.sum())
        if n_in < 12:
            continue
        # reject a nucleus that would mostly hide others (keeps every instance recognisable)
        if (instances[y0:y1, x0:x1][inside] > 0).sum() > 0.4 * n_in:
            continue
        instances[y0:y1, x0:x1][inside] = next_id
        # soft, slightly domed profile: bright centre, 1.5 px soft edge; fluorescence adds up
        edge = np.clip(-d * r / 1.5 + 0.5, 0.0, 1.0)
        dome = 0.7 + 0.3 * np.sqrt(np.clip(1.0 - (d + 1.0) ** 2, 0.0, 1.0))
        signal[y0:y1, x0:x1] += rng.uniform(0.45, 1.0) * edge * dome
        centres.append((cx, cy, r))
        next_id += 1

    instances = relabel_sequential(drop_small(instances, 8))
    # chromatin texture inside the nuclei
    signal *= 1.0 + 0.18 * smooth_noise(rng, shape, 1.5)
    # bright specks (debris): small, labelled background
    n_specks = rng.poisson(k["specks"] * area / 1000.0)
    if n_specks:
        ys, xs = rng.integers(0, height, n_specks), rng.integers(0, width, n_specks)
        signal[ys, xs] += rng.uniform(1.5, 3.0, n_specks)
    # uneven illumination: a tilted plane times a smooth field, between 1 - depth and 1
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * xx / width + np.sin(theta) * yy / height)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    field = 0.6 * ramp + 0.4 * (0.5 + 0.2 * smooth_noise(rng, shape, 0.7 * max(height, width)))
    illum = 1.0 - k["illumination"] * np.clip(field, 0.0, 1.0)
    background = 0.06 + 0.06 * (1.0 - illum) + 0.02 * smooth_noise(rng, shape, 12.0)
    image = blur(signal, k["blur"]) * illum + background
    # shot-like noise: grows with the signal
    image = image + k["noise"] * np.sqrt(np.clip(image, 0.0, None) + 0.05) * rng.standard_normal(shape).astype(np.float32)
    tint = np.array([0.30, 0.62, 1.0], dtype=np.float32) * rng.uniform(0.9, 1.0)
    rgb = image[..., None] * tint + 0.01 * rng.standard_normal((height, width, 3)).astype(np.float32)
    mask = (instances > 0).astype(np.uint8)
    return Sample(image=unit_float_to_uint8(rgb), mask=mask, instances=instances)
