"""COCO segmentation formats by hand: polygons, run-length encoding (RLE) and its compressed string.

A COCO annotation stores an object's mask in one of three ways::

    {"segmentation": [[x1, y1, x2, y2, ...], ...]}                     # polygons (one object, >= 1 part)
    {"segmentation": {"size": [H, W], "counts": [5, 3, 8, ...]}}        # uncompressed RLE (iscrowd=1)
    {"segmentation": {"size": [H, W], "counts": "a1b2..."}}             # compressed RLE string

**RLE** reads the mask in *column-major* (Fortran) order -- down the first column, then the
second -- and stores the lengths of alternating runs, always starting with a run of **zeros**
(which has length 0 when the mask starts with a 1). For the 3x2 mask ``[[0, 1], [1, 1], [0, 0]]``
the column-major sequence is ``0 1 0 | 1 1 0`` and the counts are ``[1, 1, 1, 2, 1]``.

The **compressed string** packs those counts into printable characters: each count after the
second is stored as the difference from the count two places before it (runs of the same
label tend to have similar lengths), then written 5 bits at a time, least significant first,
in characters ``chr(48 + c)`` where bit 5 (``0x20``) says "more characters follow" and bit 4 of
the last character carries the sign. This is ``rleToString``/``rleFrString`` in pycocotools'
``maskApi.c``; the tests cross-check every function here against ``pycocotools.mask``.

Polygons are rasterised with Pillow (pixel centres inside the polygon or on its outline).
pycocotools rasterises them slightly differently (it upsamples the polygon by 5 and follows
its edges), so the two agree everywhere except in a band along the outline (one pixel, up to two
on steep edges; ``tests/data/test_coco.py`` measures it). Compute areas and IoUs with one
rasteriser throughout, never mixing the two.

References:
    Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014, https://arxiv.org/abs/1405.0312 ;
    the format: https://cocodataset.org/#format-data ; pycocotools ``common/maskApi.c``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._checks import as_binary_mask

__all__ = ["rle_encode", "rle_decode", "compress_counts", "decompress_counts", "mask_to_rle", "rle_to_mask",
           "polygons_to_mask", "mask_to_polygons", "annotation_to_mask", "rle_area", "rle_to_bbox",
           "coco_to_semantic"]


def rle_encode(mask) -> list[int]:
    """Uncompressed COCO RLE counts of a binary mask.

    Args:
        mask: ``(H, W)`` bool or 0/1 array.

    Returns:
        Run lengths in column-major order, alternating 0-runs and 1-runs, starting with a
        0-run (of length 0 if the first pixel is 1). ``sum(counts) == H * W``. An empty
        (``H * W == 0``) mask gives ``[]``.

    Raises:
        ValueError: the mask is not 2-D or not binary.
    """
    flat = as_binary_mask(mask).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1         # indices where a new run starts
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return [int(c) for c in counts]


def rle_decode(counts: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`rle_encode`.

    Args:
        counts: run lengths, starting with a 0-run.
        size: ``(H, W)``.

    Returns:
        ``(H, W) uint8`` with values 0/1 (pycocotools' convention).

    Raises:
        ValueError: the counts do not add up to ``H * W`` or contain a negative run.
    """
    h, w = (int(s) for s in size)
    counts = np.asarray(list(counts), dtype=np.int64)
    if (counts < 0).any():
        raise ValueError(f"RLE counts must be >= 0, got {counts[counts < 0][:5].tolist()}")
    if counts.sum() != h * w:
        raise ValueError(f"RLE counts sum to {int(counts.sum())} but size {h}x{w} has {h * w} pixels")
    values = np.arange(len(counts)) % 2                            # 0, 1, 0, 1, ...
    flat = np.repeat(values.astype(np.uint8), counts)
    return flat.reshape((h, w), order="F")


def compress_counts(counts: Sequence[int]) -> str:
    """COCO's compressed RLE string for a list of counts (``rleToString`` in pycocotools).

    Each count ``x_i`` with ``i > 2`` is replaced by ``x_i - x_{i-2}``; every value is then written
    in 5-bit groups, least significant first, as ``chr(48 + c)``; ``c | 0x20`` marks "more groups
    follow", and the last group's bit ``0x10`` is the sign.

    Returns:
        An ASCII string (characters ``'0'`` to ``'o'``).
    """
    counts = [int(c) for c in counts]
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5                                   # arithmetic shift: -1 stays -1
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def decompress_counts(string: str | bytes) -> list[int]:
    """Inverse of :func:`compress_counts` (``rleFrString`` in pycocotools).

    Raises:
        ValueError: a character outside ``'0'..'o'`` or a string that ends in the middle of a value.
    """
    if isinstance(string, bytes):
        string = string.decode("ascii")
    counts: list[int] = []
    p = 0
    while p < len(string):
        x, k, more = 0, 0, True
        while more:
            if p >= len(string):
                raise ValueError("compressed RLE string ends in the middle of a value")
            c = ord(string[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {string[p]!r} at position {p} is not a COCO RLE character ('0'..'o')")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)                     # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def mask_to_rle(mask, *, compressed: bool = True) -> dict[str, Any]:
    """A binary mask as a COCO RLE dict ``{"size": [H, W], "counts": ...}``.

    Args:
        mask: ``(H, W)`` bool or 0/1.
        compressed: counts as the compressed string (what ``pycocotools.mask.encode`` returns,
            as ``str`` here rather than ``bytes`` so it can go straight into JSON) or as a list.
    """
    m = as_binary_mask(mask)
    counts = rle_encode(m)
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": compress_counts(counts) if compressed else counts}


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE dict (compressed string/bytes or uncompressed list counts) to ``(H, W) uint8`` 0/1."""
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"an RLE must be a dict with 'size' and 'counts', got {type(rle).__name__}: {str(rle)[:80]}")
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = decompress_counts(counts)
    return rle_decode(counts, rle["size"])


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels (the sum of the odd-position counts)."""
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = decompress_counts(counts)
    return int(sum(counts[1::2]))


def rle_to_bbox(rle: Mapping[str, Any]) -> list[float]:
    """COCO box ``[x, y, width, height]`` of the foreground (all zeros for an empty mask), like ``pycocotools.mask.toBbox``."""
    m = rle_to_mask(rle)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` (the parts of one object) to ``(H, W) uint8`` 0/1.

    Parts are OR-ed together (COCO has no holes in polygon form). Coordinates are pixel
    ``(x, y)`` = (column, row).

    Raises:
        ValueError: a part with an odd number of coordinates or fewer than 3 points.
    """
    from PIL import Image, ImageDraw

    if isinstance(polygons, np.ndarray) or (polygons and not isinstance(polygons[0], (list, tuple, np.ndarray))):
        polygons = [polygons]
    canvas = Image.new("1", (int(width), int(height)), 0)
    draw = ImageDraw.Draw(canvas)
    for k, poly in enumerate(polygons):
        flat = [float(v) for v in poly]
        if len(flat) % 2 or len(flat) < 6:
            raise ValueError(f"polygon part {k} has {len(flat)} numbers; expected x, y pairs for at least 3 points")
        draw.polygon(list(zip(flat[0::2], flat[1::2])), outline=1, fill=1)
    return np.asarray(canvas, dtype=np.uint8)


def mask_to_polygons(mask, *, tolerance: float = 0.0, min_points: int = 3) -> list[list[float]]:
    """Outline polygons of a binary mask, in COCO's flat ``[x1, y1, x2, y2, ...]`` form.

    Uses OpenCV's border following (Suzuki & Abe, 1985) on the outer contours; holes are lost,
    which is why COCO switches to RLE for complicated masks. ``tolerance > 0`` simplifies each
    outline with Douglas-Peucker (that many pixels) -- the "vertex spacing" trade-off of
    hand annotation, done by a program.

    Returns:
        A list of flat coordinate lists (float pixel coordinates of the outer pixels' centres).
    """
    import cv2

    m = as_binary_mask(mask).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance, True)
        pts = contour.reshape(-1, 2)
        if len(pts) < min_points:
            continue
        polygons.append([float(v) for v in pts.ravel()])
    return polygons


def annotation_to_mask(annotation: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    """The ``segmentation`` of one COCO annotation (polygons, RLE or compressed RLE) as ``(H, W) uint8`` 0/1.

    Raises:
        ValueError: the RLE size disagrees with ``(height, width)``, or the segmentation is malformed.
    """
    seg = annotation.get("segmentation") if isinstance(annotation, Mapping) else None
    if seg is None:
        raise ValueError(f"annotation {annotation.get('id', '?') if isinstance(annotation, Mapping) else annotation!r} "
                         f"has no 'segmentation'")
    if isinstance(seg, Mapping):
        if [int(s) for s in seg["size"]] != [int(height), int(width)]:
            raise ValueError(f"annotation {annotation.get('id', '?')}: RLE size {list(seg['size'])} but the image is "
                             f"[{height}, {width}]")
        return rle_to_mask(seg)
    return polygons_to_mask(seg, height, width)


def coco_to_semantic(coco: Mapping[str, Any], image_id: int, category_to_class: Mapping[int, int] | None = None,
                     *, background: int = 0, crowd_value: int | None = None) -> np.ndarray:
    """All annotations of one image painted into a class mask.

    Args:
        coco: the loaded instances JSON (``images``, ``annotations``, ``categories``).
        image_id: which image.
        category_to_class: COCO category id -> class id (default: identity).
        background: value of unannotated pixels.
        crowd_value: paint ``iscrowd=1`` regions with this value instead of their class
            (e.g. :data:`~segcourse.constants.IGNORE_INDEX`, as the COCO-Stuff conversion does).

    Returns:
        ``(H, W) uint8``; annotations are painted largest first, so small objects stay visible.
    """
    images = {img["id"]: img for img in coco["images"]}
    if image_id not in images:
        raise ValueError(f"image_id {image_id} is not in this COCO file (it has {len(images)} images)")
    info = images[image_id]
    h, w = int(info["height"]), int(info["width"])
    anns = [a for a in coco["annotations"] if a["image_id"] == image_id]
    masks = [(annotation_to_mask(a, h, w).astype(bool), a) for a in anns]
    masks.sort(key=lambda item: -int(item[0].sum()))
    out = np.full((h, w), background, dtype=np.uint8)
    for region, ann in masks:
        cat = int(ann["category_id"])
        value = (category_to_class[cat] if category_to_class is not None else cat)
        if ann.get("iscrowd") and crowd_value is not None:
            value = crowd_value
        out[region] = value
    return out
