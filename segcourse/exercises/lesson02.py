"""Checks for lesson 02, data and augmentation."""

from __future__ import annotations

import numpy as np

from ..constants import IGNORE_INDEX
from .registry import CheckFailed, case, exercise


# ---------------------------------------------------------------------------------- 2.1 RLE encode
def _rle_cases():
    rng = np.random.default_rng(202)
    yield "3x2 example from the lesson", np.array([[0, 1], [1, 1], [0, 0]], np.uint8)
    yield "first pixel is foreground", np.array([[1, 0, 0], [1, 1, 0]], np.uint8)
    yield "empty mask", np.zeros((4, 5), np.uint8)
    yield "full mask", np.ones((3, 3), np.uint8)
    yield "bool mask, noise", rng.random((13, 9)) < 0.4
    yy, xx = np.mgrid[:40, :30]
    yield "disc", ((yy - 20) ** 2 + (xx - 12) ** 2 < 100).astype(np.uint8)


@exercise("2.1", title="COCO run-length encoding by hand", level="warm-up", minutes=15, kind="implement",
          goal="Understand how COCO stores masks: runs of 0s and 1s in column-major order, starting with a 0-run.",
          hint="flat = mask.ravel(order='F'); find where flat changes (flat[1:] != flat[:-1]); the run lengths are "
               "the differences between those positions (plus 0 and len(flat)); prepend a 0 if flat[0] is 1.")
def check_rle_encode(candidate):
    from ..data.coco import rle_encode

    for name, mask in _rle_cases():
        with case(name):
            got = candidate(mask.copy())
            try:
                got = [int(c) for c in got]
            except TypeError:
                raise CheckFailed(f"expected a list of ints (the run lengths), got {type(got).__name__}") from None
            want = rle_encode(mask)
            if got == want:
                continue
            if sum(got) != mask.size:
                raise CheckFailed(f"the runs add up to {sum(got)} but the mask has {mask.size} pixels")
            if got == rle_encode(mask.T):
                raise CheckFailed("these are the runs in row-major order; COCO reads the mask column by column "
                                  "(Fortran order: ravel(order='F'))")
            if mask.ravel(order="F")[0] and got and got[0] != 0:
                raise CheckFailed("the mask starts with a 1, so the counts must start with a 0-run of length 0")
            raise CheckFailed(f"expected {len(want)} runs, got {len(got)}; first runs {got[:6]} vs expected {want[:6]}")


# ------------------------------------------------------------------------ 2.2 bilinear mask resizing
def bilinear_demo_mask() -> np.ndarray:
    """The 3-class mask of exercise 2.2: background 0, a circle (1) touching a triangle (3), 24x24 uint8."""
    mask = np.zeros((24, 24), np.uint8)
    yy, xx = np.mgrid[:24, :24]
    mask[(yy - 12) ** 2 + (xx - 7) ** 2 < 30] = 1
    mask[(xx >= 12) & (yy >= 4) & (yy <= 20) & (xx - 12 <= (yy - 4))] = 3
    return mask


def bilinear_ids(mask: np.ndarray, scale: float = 2.5) -> list[int]:
    """Class ids present after resizing ``mask`` with bilinear interpolation (the bug), rounded to integers."""
    import cv2

    h, w = mask.shape
    out = cv2.resize(mask, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    return sorted(np.unique(out).tolist())


@exercise("2.2", title="Predict what bilinear resizing does to a 3-class mask", level="core", minutes=5,
          kind="predict",
          goal="See why masks must be resized with nearest neighbour: interpolation averages class ids into ids "
               "that were never annotated there.",
          hint="Along the border between class 1 and class 3, bilinear interpolation produces values between 1 "
               "and 3; between 0 and 3, values between 0 and 3. Which integers lie in between?")
def check_bilinear_prediction(candidate):
    if isinstance(candidate, (str, bytes)) or not hasattr(candidate, "__iter__"):
        raise CheckFailed(f"answer with a set of class ids such as {{0, 1, 3}}, got {candidate!r}")
    try:
        got = sorted({int(c) for c in candidate})
    except (TypeError, ValueError):
        raise CheckFailed(f"answer with a set of integer class ids, got {candidate!r}") from None
    want = bilinear_ids(bilinear_demo_mask())
    if got != want:
        raise CheckFailed("that is not the set of ids the bilinear resize produces; run the next cell and look "
                          "at which ids appear along the borders")


# ------------------------------------------------------------------------------ 2.3 mask / 255 bug
def normalised_mask_ids(mask: np.ndarray) -> list[int]:
    """What survives of a mask normalised like an image (``/ 255``) and cast back to ``long`` (the bug)."""
    import torch

    return sorted(torch.unique((torch.from_numpy(mask.astype(np.float32)) / 255.0).long()).tolist())


def divide_demo_mask() -> np.ndarray:
    """A shapes-like mask with ids 0..3 and an ignored border (255), 16x16 uint8."""
    mask = np.zeros((16, 16), np.uint8)
    mask[2:7, 2:7], mask[9:14, 2:7], mask[4:12, 9:14] = 1, 2, 3
    mask[0, :] = IGNORE_INDEX
    return mask


@exercise("2.3", title="Break it: normalise the mask like an image", level="core", minutes=10, kind="break-it",
          goal="See what dividing a mask by 255 (as the source tutorials do) does to class ids and to ignore_index.",
          hint="Class ids 0..3 divided by 255 are all below 1, and .long() truncates toward zero. "
               "What does the ignore value 255 become?")
def check_divided_mask(candidate):
    if isinstance(candidate, (str, bytes)) or not hasattr(candidate, "__iter__"):
        raise CheckFailed(f"answer with the set of ids that remain, such as {{0, 3}}, got {candidate!r}")
    try:
        got = sorted({int(c) for c in candidate})
    except (TypeError, ValueError):
        raise CheckFailed(f"answer with a set of integer ids, got {candidate!r}") from None
    if got != normalised_mask_ids(divide_demo_mask()):
        raise CheckFailed("not what remains; run the cell that divides the mask and look at torch.unique")


# -------------------------------------------------------------------------- 2.4 paired crop and flip
def _coded_pair(h, w, seed):
    """An image that encodes each pixel's position, and a random 4-class mask: a crop can be located exactly."""
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 4, (h, w)).astype(np.uint8)
    rows, cols = np.mgrid[:h, :w]
    image = np.stack([rows, cols, mask * 60], axis=-1).astype(np.uint8)
    return image, mask


def _usable(out_image, out_mask):
    """The pair must reach a DataLoader: torch.from_numpy and default_collate refuse negative strides."""
    import torch
    from torch.utils.data import default_collate

    for name, arr in (("image", out_image), ("mask", out_mask)):
        if any(step < 0 for step in arr.strides):
            raise CheckFailed(f"the {name} you return is a view with a negative stride {arr.strides} (what [:, ::-1] "
                              f"makes): torch.from_numpy and the DataLoader refuse it; return "
                              f"np.ascontiguousarray({name}) (or {name}.copy()) after flipping")
    try:
        torch.from_numpy(out_image), torch.from_numpy(out_mask)
        default_collate([(out_image, out_mask), (out_image, out_mask)])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckFailed(f"torch.from_numpy or the DataLoader's default_collate refuses your image and mask "
                          f"({exc}); return contiguous NumPy arrays (np.ascontiguousarray)") from None


def _locate(image, mask_src, out_image, out_mask, size):
    """Check one output pair: returns whether it was flipped; raises CheckFailed if out of sync."""
    h, w = size
    if tuple(out_image.shape[:2]) != (h, w) or tuple(out_mask.shape[:2]) != (h, w):
        raise CheckFailed(f"expected image and mask crops of size {(h, w)}, got {tuple(out_image.shape[:2])} and "
                          f"{tuple(out_mask.shape[:2])}")
    if out_mask.dtype != mask_src.dtype:
        raise CheckFailed(f"the mask dtype changed from {mask_src.dtype} to {out_mask.dtype}; keep class ids as they are")
    rows, cols = out_image[..., 0].astype(int), out_image[..., 1].astype(int)
    if not ((rows == rows[:, :1]).all() and (np.abs(np.diff(cols, axis=1)) == 1).all()):
        raise CheckFailed("the image is not a plain crop (rows/columns are not contiguous): crop by slicing, "
                          "do not resize")
    flipped = w > 1 and cols[0, 0] > cols[0, -1]
    want_mask = mask_src[rows, cols]                    # the labels of exactly the pixels the image shows
    if not np.array_equal(out_mask, want_mask):
        raise CheckFailed("the mask does not show the same pixels as the image: image and mask were cropped "
                          "or flipped differently")
    return flipped


@exercise("2.4", title="A random crop and flip that keeps image and mask in sync", level="core", minutes=15,
          kind="implement",
          goal="Write the core of segmentation augmentation: draw the random parameters once, apply them to both.",
          hint="Draw top = rng.integers(0, H - h + 1), left = rng.integers(0, W - w + 1) and flip = rng.random() < 0.5 "
               "ONCE; slice image[top:top+h, left:left+w] and mask[top:top+h, left:left+w]; if flip, reverse "
               "both along axis 1 ([:, ::-1]); return np.ascontiguousarray(...) of both, since torch.from_numpy "
               "refuses the negative-stride view a flip makes.")
def check_paired_crop_flip(candidate):
    rng = np.random.default_rng(2024)
    image, mask = _coded_pair(20, 30, 7)
    flips, corners = set(), set()
    with case("60 random draws on a 20x30 image, crop 8x12"):
        for _ in range(60):
            out_image, out_mask = candidate(image.copy(), mask.copy(), (8, 12), rng)
            out_image, out_mask = np.asarray(out_image), np.asarray(out_mask)
            flips.add(_locate(image, mask, out_image, out_mask, (8, 12)))
            _usable(out_image, out_mask)
            corners.add((int(out_image[0, 0, 0]), int(min(out_image[0, 0, 1], out_image[0, -1, 1]))))
        if flips != {True, False}:
            raise CheckFailed("in 60 draws the crops were " + ("always" if True in flips else "never")
                              + " flipped; flip with probability 0.5")
        if len(corners) < 10:
            raise CheckFailed(f"only {len(corners)} different crop positions in 60 draws; draw the corner at random")
    with case("crop as large as the image"):
        out_image, out_mask = candidate(image.copy(), mask.copy(), (20, 30), rng)
        out_image, out_mask = np.asarray(out_image), np.asarray(out_mask)
        _locate(image, mask, out_image, out_mask, (20, 30))
        _usable(out_image, out_mask)


# ------------------------------------------------------------------------------- 2.5 pairing by stem
def _pairing_cases():
    yield ("different extensions, listed out of order",
           ["b.jpg", "a.jpg", "c.jpg"], ["c.png", "a.png", "b.png"])
    yield ("numbered names without zero padding, in listdir's arbitrary order",
           ["img10.jpg", "img2.jpg", "img1.jpg"], ["img2.png", "img1.png", "img10.png"])
    yield ("a missing mask", ["x1.png", "x2.png", "x3.png"], ["x1.png", "x3.png"])
    yield ("a mask without an image", ["x1.png"], ["x1.png", "x2.png"])


@exercise("2.5", title="Pair images and masks by stem, not by sorted order", level="stretch", minutes=15,
          kind="implement",
          goal="Make a silent data bug (shifted image/mask pairs) impossible by pairing on the file stem and "
               "failing loudly on anything unmatched.",
          hint="Build {Path(name).stem: name} for each list; compare the two key sets and raise ValueError naming a "
               "file that has no partner; return [(images[s], masks[s]) for s in sorted(images)].")
def check_pair_by_stem(candidate):
    from pathlib import Path

    for name, images, masks in _pairing_cases():
        with case(name):
            im = {Path(f).stem: f for f in images}
            ms = {Path(f).stem: f for f in masks}
            if set(im) != set(ms):
                try:
                    got = candidate(list(images), list(masks))
                except ValueError as exc:
                    lonely = sorted(set(im) ^ set(ms))
                    if not any(s in str(exc) for s in lonely):
                        raise CheckFailed(f"your ValueError should name the file without a partner "
                                          f"({lonely[0]}); it said: {exc}") from None
                    continue
                raise CheckFailed(f"expected a ValueError naming the unmatched file, got {got!r}")
            got = candidate(list(images), list(masks))
            want = [(im[s], ms[s]) for s in sorted(im)]
            try:
                got = [tuple(p) for p in got]
            except TypeError:
                raise CheckFailed(f"expected a list of (image, mask) pairs, got {type(got).__name__}") from None
            if sorted(got) != sorted(want):
                wrong = next(((a, b) for a, b in got if Path(a).stem != Path(b).stem), None)
                raise CheckFailed(f"{wrong[0]} was paired with {wrong[1]}" if wrong
                                  else f"expected the pairs {want}, got {got}")
