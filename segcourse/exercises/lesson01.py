"""Checks for lesson 01, classical segmentation."""

from __future__ import annotations

import numpy as np

from .registry import CheckFailed, case, exercise

_DIRECTIONS = ("up", "down", "same")


def _uint8_cases():
    """Hidden grey-level images: bimodal, skewed, three modes, a flat image with one bright dot, coins, cells."""
    from skimage import data

    from ..classical import to_uint8
    from ..data.synthetic import generate

    rng = np.random.default_rng(101)
    bimodal = np.concatenate([rng.normal(60, 12, 600), rng.normal(170, 20, 400)]).clip(0, 255)
    skewed = np.concatenate([rng.normal(40, 8, 900), rng.normal(200, 10, 100)]).clip(0, 255)
    three = np.concatenate([rng.normal(30, 6, 400), rng.normal(120, 6, 300), rng.normal(220, 6, 300)]).clip(0, 255)
    dot = np.full((10, 10), 17, np.uint8)
    dot[4, 4] = 230
    yield "bimodal", bimodal.astype(np.uint8).reshape(25, 40)
    yield "skewed (10% bright)", skewed.astype(np.uint8).reshape(25, 40)
    yield "three modes", three.astype(np.uint8).reshape(25, 40)
    yield "two grey levels (17 and 230)", dot
    yield "coins", data.coins()[::2, ::2]
    yield "cells", to_uint8(generate("cells", 2_000_123, size=96).image.mean(axis=-1))


@exercise("1.1", title="Otsu's threshold from the histogram", level="warm-up", minutes=15, kind="implement",
          goal="Turn a histogram into a threshold by maximising the between-class variance, the idea behind Otsu.",
          hint="hist = np.bincount(image.ravel(), minlength=256); for each t: w0 = hist[:t+1].sum(), "
               "m0 = mean level of hist[:t+1], likewise w1, m1 for hist[t+1:]; keep the t with the largest "
               "w0 * w1 * (m0 - m1)**2. Foreground is image > t.")
def check_otsu(candidate):
    from ..classical import otsu_threshold

    for name, image in _uint8_cases():
        with case(name):
            got = candidate(image.copy())
            if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
                if hasattr(got, "item") and getattr(got, "size", 2) == 1:
                    got = got.item()
                else:
                    raise CheckFailed(f"expected a single number (the threshold), got {type(got).__name__}")
            want = otsu_threshold(image)
            # any threshold that splits the pixels the same way is right (e.g. 17..229 for two levels)
            same_split = np.array_equal(image > got, image > want)
            if not same_split and abs(float(got) - want) > 1:
                raise CheckFailed(f"your threshold {got} puts {int((image > got).sum())} pixels in the foreground; "
                                  f"Otsu's puts {int((image > want).sum())} there")


@exercise("1.2", title="Predict: larger min_distance in the watershed", level="core", minutes=5, kind="predict",
          goal="Understand how the marker spacing controls over- and under-segmentation in a watershed.",
          hint="min_distance is the smallest allowed distance between two markers; each marker becomes one object.")
def check_min_distance(candidate):
    if not isinstance(candidate, str) or candidate.strip().lower() not in _DIRECTIONS:
        raise CheckFailed(f"answer with one of {', '.join(map(repr, _DIRECTIONS))}, got {candidate!r}")
    from ..classical import global_threshold, otsu_threshold, to_uint8, watershed_instances
    from ..data.synthetic import generate

    image = to_uint8(generate("cells", 2_000_007, size=128).image.mean(axis=-1))
    mask = global_threshold(image, otsu_threshold(image))
    small, large = (int(watershed_instances(mask, min_distance=d).max()) for d in (3, 12))
    truth = "up" if large > small else "down" if large < small else "same"
    if candidate.strip().lower() != truth:
        raise CheckFailed("that is not what the watershed does; run the next cell, which counts the objects "
                          "for both settings, and explain to yourself why")


def _uneven_cases():
    """Hidden cells images under a steep left-to-right light gradient (12 % -> 100 %)."""
    from ..classical import to_uint8
    from ..data.synthetic import generate

    for i in range(6):
        s = generate("cells", 2_000_300 + i, size=128)
        ramp = np.linspace(0.12, 1.0, s.image.shape[1])[None, :]
        if i % 2:
            ramp = ramp[:, ::-1]
        yield f"gradient image {i}", to_uint8(s.image.mean(axis=-1) * ramp), s.mask > 0


def _dice(pred: np.ndarray, target: np.ndarray) -> float:
    total = pred.sum() + target.sum()
    return 1.0 if total == 0 else float(2 * (pred & target).sum() / total)


#: Mean foreground Dice that exercise 1.3 asks for (:func:`uneven_baseline_dice` gives a global Otsu's score).
UNEVEN_DICE_TARGET = 0.86


def uneven_baseline_dice() -> float:
    """Mean foreground Dice of a global Otsu threshold on exercise 1.3's hidden images: the score to beat."""
    from ..classical import global_threshold, otsu_threshold

    return float(np.mean([_dice(global_threshold(image, otsu_threshold(image)), target)
                          for _, image, target in _uneven_cases()]))


@exercise("1.3", title="Break it: uneven illumination, global vs local threshold", level="core", minutes=15,
          kind="break-it",
          goal="See why one global threshold fails under uneven light, and fix it with a local (adaptive) threshold.",
          hint="Compare each pixel with its neighbourhood: segcourse.classical.adaptive_threshold(image, block_size, "
               "offset). The block must be much larger than a nucleus, and a negative offset keeps background noise out.")
def check_uneven(candidate):
    scores = []
    for name, image, target in _uneven_cases():
        with case(name):
            pred = candidate(image.copy())
            pred = np.asarray(pred)
            if pred.shape != image.shape:
                raise CheckFailed(f"expected a mask of shape {image.shape}, got shape {pred.shape}")
            if pred.dtype != bool:
                raise CheckFailed(f"expected a boolean mask (True = nucleus), got dtype {pred.dtype}")
            scores.append(_dice(pred, target))
    mean = float(np.mean(scores))
    if mean < UNEVEN_DICE_TARGET:
        worst = int(np.argmin(scores))
        raise CheckFailed(f"mean foreground Dice {mean:.3f} over {len(scores)} images with a light gradient; "
                          f"aim for >= {UNEVEN_DICE_TARGET} (worst: gradient image {worst}, Dice {scores[worst]:.3f})")


def _component_cases():
    rng = np.random.default_rng(7)
    diagonal = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    ring[3, 3] = True
    yield "diagonal pixels (not 4-connected)", diagonal
    yield "empty", np.zeros((4, 5), bool)
    yield "full", np.ones((3, 4), bool)
    yield "ring with a dot inside", ring
    yield "border-touching stripes", np.tile(np.array([1, 0, 1, 1, 0], bool), (5, 1))
    yield "random 30x40", rng.random((30, 40)) < 0.45


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label maps describe the same regions (ids may differ)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    fg = a > 0
    pairs = np.unique(np.stack([a[fg], b[fg]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@exercise("1.4", title="Connected components by hand", level="stretch", minutes=25, kind="implement",
          goal="Label the 4-connected regions of a mask with a flood fill, the step that turns pixels into objects.",
          hint="Scan the pixels; at each foreground pixel without a label, start a new label and spread it with a "
               "queue (collections.deque) to the up/down/left/right neighbours that are foreground and unlabelled.")
def check_components(candidate):
    from scipy import ndimage

    for name, mask in _component_cases():
        with case(name):
            out = candidate(mask.copy())
            if not (isinstance(out, tuple) and len(out) == 2):
                raise CheckFailed(f"expected a tuple (labels, n), got {type(out).__name__}")
            labels, n = np.asarray(out[0]), out[1]
            want, want_n = ndimage.label(mask)
            if labels.shape != mask.shape:
                raise CheckFailed(f"labels: expected shape {mask.shape}, got {labels.shape}")
            if not np.issubdtype(labels.dtype, np.integer):
                raise CheckFailed(f"labels: expected integer ids, got dtype {labels.dtype}")
            if int(n) != want_n:
                raise CheckFailed(f"expected {want_n} components (4-connectivity), you report n = {n}")
            if set(np.unique(labels[labels > 0]).tolist()) != set(range(1, want_n + 1)):
                raise CheckFailed(f"labels should be 1..{want_n} (0 = background), got ids "
                                  f"{sorted(np.unique(labels).tolist())[:10]}")
            if not _same_partition(labels, want):
                raise CheckFailed("the regions differ from the 4-connected components (check the background stays 0 "
                                  "and that diagonal neighbours are not joined)")
