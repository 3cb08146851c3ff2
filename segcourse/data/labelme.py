"""Labelme JSON annotations -> class masks (and instance maps).

`Labelme <https://github.com/wkentaro/labelme>`_ stores one JSON file per image::

    {"version": "5.4.1", "imagePath": "street_01.png", "imageData": null,
     "imageHeight": 96, "imageWidth": 128,
     "shapes": [{"label": "car", "points": [[x, y], ...], "shape_type": "polygon",
                 "group_id": null, "flags": {}}, ...]}

Points are ``(x, y)`` = (column, row) pixel coordinates, which is the opposite order from a
NumPy index ``mask[row, col]`` -- a classic source of transposed masks.

Shapes are rasterised the way Labelme's own ``labelme.utils.shape_to_mask`` does it, with
Pillow's ``ImageDraw`` (outline included): ``polygon`` fills the polygon, ``rectangle`` takes two
opposite corners, ``circle`` takes the centre and one point on the circle, ``line``/``linestrip``
are drawn ``line_width`` pixels wide, ``point`` is a small disc. ``mask`` shapes (Labelme >= 5.3)
carry a base64 PNG of the object inside the box given by their two points.

Where shapes overlap, one has to win. ``overlap="later"`` (Labelme's own convention and the
default) paints in file order so a later shape covers an earlier one; ``"earlier"`` lets the
first shape keep its pixels; ``"smaller"`` paints large shapes first so small objects drawn
inside big ones (a window in a building) survive regardless of drawing order.

References:
    Wada, "Labelme: image polygonal annotation with Python", https://github.com/wkentaro/labelme
    (``labelme/utils/shape.py``: ``shape_to_mask``, the rasterisation matched here; ``labelme_json_to_dataset``
    and ``examples/semantic_segmentation/labelme2voc.py``: the ``labels.txt`` convention).
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import IGNORE_INDEX
from ..files import atomic_path, save_indexed_png

__all__ = ["LABELME_SHAPE_TYPES", "OVERLAP_MODES", "load_labelme", "labelme_image", "shape_to_mask",
           "labelme_to_mask", "labelme_to_instances", "convert_labelme_folder", "class_map_from_names", "read_labels_txt"]

LABELME_SHAPE_TYPES = ("polygon", "rectangle", "circle", "line", "linestrip", "point", "mask")
OVERLAP_MODES = ("later", "earlier", "smaller")


def load_labelme(source: str | os.PathLike | Mapping[str, Any]) -> dict:
    """Read a Labelme JSON file (or check an already-loaded dict).

    Returns:
        The annotation dict, with ``"__file__"`` set to the JSON path when read from disk (used in
        error messages and to find the image).

    Raises:
        ValueError: the file is not valid JSON or lacks ``shapes``/``imageHeight``/``imageWidth``.
    """
    if isinstance(source, Mapping):
        data = dict(source)
        data.setdefault("__file__", "<dict>")
    else:
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); expected a Labelme annotation file") from exc
        data["__file__"] = str(path)
    missing = [k for k in ("shapes", "imageHeight", "imageWidth") if k not in data]
    if missing:
        raise ValueError(f"{data['__file__']}: not a Labelme annotation, missing key(s) {missing}; "
                         f"expected 'shapes', 'imageHeight' and 'imageWidth'")
    return data


def labelme_image(data: Mapping[str, Any]) -> np.ndarray:
    """The annotated image as ``(H, W, 3) uint8`` RGB.

    Taken from the embedded ``imageData`` (base64) when present, otherwise from ``imagePath``
    relative to the JSON file.

    Raises:
        ValueError: no image data and the image file cannot be found, or its size differs from
            ``imageHeight`` x ``imageWidth``.
    """
    from PIL import Image, ImageOps

    where = data.get("__file__", "<dict>")
    if data.get("imageData"):
        source = io.BytesIO(base64.b64decode(data["imageData"]))
    else:
        rel = data.get("imagePath")
        if not rel:
            raise ValueError(f"{where}: neither imageData nor imagePath is set; cannot find the image")
        base = Path(where).parent if where != "<dict>" else Path.cwd()
        path = base / rel.replace("\\", "/")
        if not path.is_file():
            raise ValueError(f"{where}: imagePath {rel!r} does not exist (looked for {path})")
        source = path
    # Labelme shows (and its annotator clicked on) the photo turned upright by its EXIF orientation tag.
    with Image.open(source) as image:
        array = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    if array.shape[:2] != (data["imageHeight"], data["imageWidth"]):
        raise ValueError(f"{where}: the image is {array.shape[0]}x{array.shape[1]} (HxW) but the JSON says "
                         f"{data['imageHeight']}x{data['imageWidth']}")
    return array


def shape_to_mask(shape: Mapping[str, Any], height: int, width: int, *, line_width: int = 3,
                  point_size: int = 3) -> np.ndarray:
    """Rasterise one Labelme shape.

    Args:
        shape: one entry of ``data["shapes"]``.
        height, width: the image size.
        line_width: width in pixels of ``line``/``linestrip`` shapes.
        point_size: radius in pixels of ``point`` shapes.

    Returns:
        ``(H, W) bool``, True inside the shape. Matches ``labelme.utils.shape_to_mask``.

    Raises:
        ValueError: an unknown ``shape_type`` or the wrong number of points for it.
    """
    from PIL import Image, ImageDraw

    kind = shape.get("shape_type") or "polygon"
    points = [tuple(map(float, p)) for p in shape.get("points", [])]
    label = shape.get("label", "?")
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon":
        if len(points) < 3:
            raise ValueError(f"polygon {label!r} has {len(points)} points; a polygon needs at least 3")
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle":
        if len(points) != 2:
            raise ValueError(f"rectangle {label!r} has {len(points)} points; expected 2 opposite corners")
        (x0, y0), (x1, y1) = points
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    elif kind == "circle":
        if len(points) != 2:
            raise ValueError(f"circle {label!r} has {len(points)} points; expected the centre and a point on it")
        (cx, cy), (px, py) = points
        r = float(np.hypot(cx - px, cy - py))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        if len(points) < 2:
            raise ValueError(f"{kind} {label!r} has {len(points)} points; expected at least 2")
        draw.line(points, fill=1, width=line_width)
    elif kind == "point":
        if len(points) != 1:
            raise ValueError(f"point {label!r} has {len(points)} points; expected 1")
        (cx, cy), r = points[0], point_size
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind == "mask":
        if len(points) != 2 or not shape.get("mask"):
            raise ValueError(f"mask shape {label!r} needs 2 box corners and a base64 'mask' PNG")
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as mask_png:
            patch = np.asarray(mask_png).astype(bool)
        if patch.ndim == 3:
            patch = patch.any(axis=-1)
        (x0, y0), _ = points
        x0, y0 = round(x0), round(y0)
        out = np.zeros((height, width), dtype=bool)
        h = max(0, min(patch.shape[0], height - y0))
        w = max(0, min(patch.shape[1], width - x0))
        out[y0:y0 + h, x0:x0 + w] = patch[:h, :w]
        return out
    else:
        raise ValueError(f"shape {label!r} has shape_type {kind!r}; expected one of {', '.join(LABELME_SHAPE_TYPES)}")
    return np.asarray(canvas, dtype=bool)


def class_map_from_names(class_names: Sequence[str] | Mapping[str, int]) -> dict[str, int]:
    """``["_background_", "car", ...]`` -> ``{"_background_": 0, "car": 1, ...}``; a dict is checked and kept.

    Values must be class ids ``>= 0``; :data:`~segcourse.constants.IGNORE_INDEX` is allowed (a label
    such as ``"__ignore__"`` that marks pixels to leave out of training).
    """
    if isinstance(class_names, Mapping):
        mapping = {str(k): int(v) for k, v in class_names.items()}
    elif isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a list of names or a dict name -> id, got {type(class_names).__name__}")
    else:
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names has duplicates: {list(class_names)}")
        mapping = {str(name): i for i, name in enumerate(class_names)}
    bad = {k: v for k, v in mapping.items() if v < 0 or (v > 254 and v != IGNORE_INDEX)}
    if bad:
        raise ValueError(f"class ids must be in 0..254 or {IGNORE_INDEX} (ignore) to fit an 8-bit mask; got {bad}")
    return mapping


def read_labels_txt(path: str | os.PathLike) -> dict[str, int]:
    """Read a Labelme ``labels.txt`` (one label per line, the ``--labels`` file of the Labelme app).

    Labelme's convention: an optional first line ``__ignore__`` marks pixels to leave out (mapped
    here to :data:`~segcourse.constants.IGNORE_INDEX`), then ``_background_`` is class 0 and the
    following lines are classes 1, 2, ...

    Returns:
        A dict ``label -> class id`` for :func:`labelme_to_mask`.
    """
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    mapping: dict[str, int] = {}
    next_id = 0
    for name in names:
        if name == "__ignore__":
            mapping[name] = IGNORE_INDEX
            continue
        if name in mapping:
            raise ValueError(f"{path}: label {name!r} appears twice")
        mapping[name] = next_id
        next_id += 1
    return class_map_from_names(mapping)


def _shape_masks(data, class_map, overlap, **kw):
    if overlap not in OVERLAP_MODES:
        raise ValueError(f"overlap={overlap!r}; expected one of {', '.join(OVERLAP_MODES)}")
    where = data.get("__file__", "<dict>")
    height, width = int(data["imageHeight"]), int(data["imageWidth"])
    items = []
    for k, shape in enumerate(data["shapes"]):
        label = shape.get("label")
        if label not in class_map:
            raise ValueError(f"{where}: shape #{k} has label {label!r}, which is not in the class list "
                             f"{sorted(class_map)}; add it to class_names (or map it to {IGNORE_INDEX} to ignore it)")
        try:
            region = shape_to_mask(shape, height, width, **kw)
        except ValueError as exc:
            raise ValueError(f"{where}: shape #{k}: {exc}") from None
        items.append((k, shape, region))
    if overlap == "earlier":
        items.reverse()  # paint the first shape last so it wins
    elif overlap == "smaller":
        items.sort(key=lambda item: -int(item[2].sum()))  # stable: equal areas keep file order
    return height, width, items


def labelme_to_mask(source, class_names: Sequence[str] | Mapping[str, int], *, overlap: str = "later",
                    background: int = 0, line_width: int = 3, point_size: int = 3) -> np.ndarray:
    """A Labelme annotation as a class-id mask.

    Args:
        source: a Labelme JSON path or the loaded dict.
        class_names: list of class names (index = class id, so ``class_names[0]`` is usually the
            background), or a dict ``label -> id``; map a label to 255 to mark it ignored.
        overlap: which shape wins where shapes overlap: ``"later"`` (file order, Labelme's
            convention), ``"earlier"``, or ``"smaller"`` (small shapes on top of large ones).
        background: id of unannotated pixels.
        line_width, point_size: see :func:`shape_to_mask`.

    Returns:
        ``(H, W) uint8`` class ids.

    Raises:
        ValueError: a shape's label is not in ``class_names`` (the message names the file, the
            shape and the label), a malformed shape, or an unknown ``overlap``.

    Example:
        >>> classes = read_labels_txt("datasets/samples/labelme/labels.txt")
        >>> mask = labelme_to_mask("datasets/samples/labelme/street_01.json", classes)
        >>> mask.shape, sorted(set(mask.ravel().tolist()))
        ((120, 160), [0, 1, 2, 3, 4, 5])
    """
    data = load_labelme(source)
    class_map = class_map_from_names(class_names)
    height, width, items = _shape_masks(data, class_map, overlap, line_width=line_width, point_size=point_size)
    mask = np.full((height, width), background, dtype=np.uint8)
    for _, shape, region in items:
        mask[region] = class_map[shape["label"]]
    return mask


def labelme_to_instances(source, class_names: Sequence[str] | Mapping[str, int], *, overlap: str = "later",
                         line_width: int = 3, point_size: int = 3) -> tuple[np.ndarray, dict[int, int]]:
    """A Labelme annotation as an instance label map.

    Shapes with the same ``label`` and the same non-null ``group_id`` form one instance (Labelme's
    way of drawing one occluded object in several pieces); every other shape is its own instance.
    Shapes whose label maps to background (id 0) or to the ignore index are not instances.

    Returns:
        ``(instances, classes)``: ``(H, W) int32`` with 0 = no instance and ``1..N`` instance ids in
        order of first appearance, and a dict ``instance id -> class id``.
    """
    data = load_labelme(source)
    class_map = class_map_from_names(class_names)
    height, width, items = _shape_masks(data, class_map, overlap, line_width=line_width, point_size=point_size)
    keys: dict[tuple, int] = {}
    for k, shape in enumerate(data["shapes"]):
        cid = class_map[shape["label"]]
        if cid in (0, IGNORE_INDEX):
            continue
        gid = shape.get("group_id")
        key = (shape["label"], gid) if gid is not None else ("#", k)
        keys.setdefault(key, len(keys) + 1)
    instances = np.zeros((height, width), dtype=np.int32)
    classes: dict[int, int] = {}
    for k, shape, region in items:
        cid = class_map[shape["label"]]
        if cid in (0, IGNORE_INDEX):
            instances[region] = 0
            continue
        gid = shape.get("group_id")
        iid = keys[(shape["label"], gid) if gid is not None else ("#", k)]
        instances[region] = iid
        classes[iid] = cid
    present = set(np.unique(instances).tolist()) - {0}
    return instances, {i: c for i, c in sorted(classes.items()) if i in present}


def convert_labelme_folder(src: str | os.PathLike, dst: str | os.PathLike,
                           class_names: Sequence[str] | Mapping[str, int], *, overlap: str = "later",
                           palette: Sequence[Sequence[int]] | None = None) -> list[str]:
    """Convert a folder of Labelme JSON files into the course's folder format.

    Writes ``dst/images/<stem>.png`` (RGB) and ``dst/masks/<stem>.png`` (indexed 8-bit PNG whose
    pixel values are class ids) for every ``*.json`` in ``src``.

    Returns:
        The stems written, sorted.

    Raises:
        ValueError: as :func:`labelme_to_mask`; nothing is half-written for the failing file.
    """
    from PIL import Image

    src, dst = Path(src), Path(dst)
    files = sorted(src.glob("*.json"))
    if not files:
        raise ValueError(f"{src}: no *.json Labelme files found")
    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "masks").mkdir(parents=True, exist_ok=True)
    stems = []
    for path in files:
        data = load_labelme(path)
        mask = labelme_to_mask(data, class_names, overlap=overlap)
        image = labelme_image(data)
        stem = path.stem
        with atomic_path(dst / "images" / f"{stem}.png") as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        if palette:
            save_indexed_png(dst / "masks" / f"{stem}.png", mask, palette)
        else:
            with atomic_path(dst / "masks" / f"{stem}.png") as tmp:
                Image.fromarray(mask).save(tmp, format="PNG")   # mode "L": pixel value = class id
        stems.append(stem)
    return sorted(stems)
