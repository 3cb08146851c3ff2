"""Write a synthetic split to disk in the standard folder formats, once and atomically.

One split of one dataset becomes one folder, ``data_root()/NAME/<split>-<H>x<W>-n<count>-seed<seed>/``::

    images/00000.png        RGB, 8 bit
    masks/00000.png         indexed ("P") PNG: pixel value = class id, the dataset's palette attached
    instances/00000.png     16-bit grey label map: 0 = no object, 1..K one id per object   (cells, shapes, street)
    annotations.json        COCO instance annotations, uncompressed RLE per object             (cells, shapes)
    panoptic/00000.png      COCO panoptic PNG: segment id = R + 256 G + 256^2 B                (street)
    panoptic.json           COCO panoptic segments_info per image                              (street)
    dataset.json            manifest: what was generated, with which arguments (written last)

Files are paired by stem (``00000``); file ``i`` holds ``generate(NAME, SPLIT_OFFSETS[split] + i, size, seed)``.

Atomicity: a split is built in a hidden sibling folder (``.tmp-...``) and renamed into place in one
``os.rename``; a folder without its manifest or with missing files is treated as absent and rebuilt.
Two processes asking for the same split at once (nbval runs notebooks in parallel) both build it;
the first rename wins and the other process discards its copy, so nobody ever reads half-written data.

Determinism: the same arguments give byte-identical files (Pillow writes no timestamps into PNGs,
JSON is written with sorted keys).

Staleness: the manifest records :func:`segcourse.data.synthetic.generator_fingerprint`, a hash of the
generator's source code; a split written by other code (an edited generator) is not complete and is
rebuilt, so nobody trains on stale data. ``FORMAT_VERSION`` only tracks the on-disk layout.

References:
    COCO data format (instances with RLE, panoptic PNG + segments_info): https://cocodataset.org/#format-data
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .._checks import check_int
from ..files import save_indexed_png
from .catalog import get_info
from .coco import mask_to_rle
from .paths import MANIFEST, data_root, variant_name
from .synthetic import GENERATORS, SPLIT_OFFSETS, default_count, default_size, generate, generator_fingerprint
from .synthetic._common import check_size

#: Version of the on-disk layout, stored in every manifest; bump it when the layout changes.
FORMAT_VERSION = 1
#: Panoptic segment ids: ``(class_id + 1) * PANOPTIC_DIVISOR + instance_id`` (never 0, which COCO reserves for void).
PANOPTIC_DIVISOR = 1000


# ----------------------------------------------------------------------------------------------- encoders
def save_label_png(path: Path, labels: np.ndarray) -> None:
    """Save ``labels: (H, W)`` non-negative ints below 65536 as a 16-bit greyscale PNG."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError(f"a 16-bit PNG holds 0..65535, got values in [{labels.min()}, {labels.max()}]")
    Image.fromarray(labels.astype(np.uint16)).save(path, format="PNG")


def bbox_xywh(binary: np.ndarray) -> list[int]:
    """COCO box ``[x, y, width, height]`` of the pixels of a non-empty ``(H, W)`` bool mask (as pycocotools' ``toBbox``)."""
    ys, xs = np.nonzero(binary)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def panoptic_rgb(segment_ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` segment ids -> ``(H, W, 3) uint8`` with ``id = R + 256 G + 256^2 B`` (COCO panoptic PNG)."""
    ids = np.asarray(segment_ids, dtype=np.int64)
    return np.stack([ids % 256, (ids // 256) % 256, (ids // 65536) % 256], axis=-1).astype(np.uint8)


def panoptic_ids(rgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`panoptic_rgb`: ``(H, W, 3) uint8`` -> ``(H, W) int64`` segment ids."""
    rgb = np.asarray(rgb, dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


# ----------------------------------------------------------------------------------------------- writing
def _tag(knobs: dict) -> str:
    """Short stable hash of the knobs for the folder name (lists and tuples hash alike)."""
    if not knobs:
        return ""
    knobs = {k: tuple(v) if isinstance(v, list) else v for k, v in knobs.items()}
    return f"k{zlib.crc32(repr(sorted(knobs.items())).encode()):08x}"


def _resolve(name: str, split: str, count, size, seed) -> tuple[int, tuple[int, int], int]:
    if name not in GENERATORS:
        raise ValueError(f"unknown synthetic dataset {name!r}; expected one of {', '.join(GENERATORS)}")
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_OFFSETS)}, got {split!r}")
    count = default_count(name, split) if count is None else count
    count = check_int(count, "count")
    hw = check_size(default_size(name) if size is None else size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(count), hw, int(seed)


def write_split(folder: Path, name: str, split: str, count: int, size: tuple[int, int], seed: int = 0,
                progress: bool = False, **knobs) -> Path:
    """Generate ``count`` samples of ``name``/``split`` and write them into ``folder`` (created; must not exist).

    This is the non-atomic worker of :func:`ensure_dataset`; call that instead unless you manage the folder.

    Returns:
        ``folder``.
    """
    info = get_info(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    for sub in ("images", "masks"):
        (folder / sub).mkdir()
    offset = SPLIT_OFFSETS[split]
    width_digits = max(5, len(str(count - 1)))
    coco_images, coco_anns, pan_anns = [], [], []
    with_coco = name.split("-")[0] in ("cells", "shapes")
    iterator = range(count)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"{name}/{split}", unit="img", leave=False)
    for i in iterator:
        sample = generate(name, offset + i, size, seed, **knobs)
        stem = f"{i:0{width_digits}d}"
        h, w = sample.mask.shape
        Image.fromarray(sample.image).save(folder / "images" / f"{stem}.png", format="PNG")
        save_indexed_png(folder / "masks" / f"{stem}.png", sample.mask, info.palette, info.ignore_index)
        if sample.instances is not None:
            (folder / "instances").mkdir(exist_ok=True)
            save_label_png(folder / "instances" / f"{stem}.png", sample.instances)
        image_id = i + 1
        coco_images.append({"id": image_id, "file_name": f"{stem}.png", "height": int(h), "width": int(w)})
        if with_coco and sample.instances is not None:
            for inst in np.unique(sample.instances):
                if inst == 0:
                    continue
                binary = sample.instances == inst
                classes = np.unique(sample.mask[binary])
                coco_anns.append({"id": len(coco_anns) + 1, "image_id": image_id, "category_id": int(classes[0]),
                                  "segmentation": mask_to_rle(binary, compressed=False), "area": int(binary.sum()),
                                  "bbox": bbox_xywh(binary), "iscrowd": 0})
        if sample.panoptic is not None:
            (folder / "panoptic").mkdir(exist_ok=True)
            cls, inst = sample.panoptic[..., 0], sample.panoptic[..., 1]
            seg = (cls + 1) * PANOPTIC_DIVISOR + inst
            segments = []
            for sid in np.unique(seg):
                binary = seg == sid
                segments.append({"id": int(sid), "category_id": int(sid // PANOPTIC_DIVISOR - 1),
                                 "area": int(binary.sum()), "bbox": bbox_xywh(binary), "iscrowd": 0})
            Image.fromarray(panoptic_rgb(seg)).save(folder / "panoptic" / f"{stem}.png", format="PNG")
            pan_anns.append({"image_id": image_id, "file_name": f"{stem}.png", "segments_info": segments})

    categories = [{"id": i, "name": n, "isthing": int(i in info.things), "color": list(info.palette[i])}
                  for i, n in enumerate(info.classes)]
    if with_coco:
        _write_json(folder / "annotations.json", {
            "info": {"description": f"segcourse synthetic {name}/{split}, seed {seed}", "version": str(FORMAT_VERSION)},
            "images": coco_images, "annotations": coco_anns,
            "categories": [c for c in categories if c["isthing"]]})
    if pan_anns:
        _write_json(folder / "panoptic.json", {
            "info": {"description": f"segcourse synthetic {name}/{split}, seed {seed}; segment id = "
                                    f"(category_id + 1) * {PANOPTIC_DIVISOR} + instance id",
                     "version": str(FORMAT_VERSION)},
            "images": coco_images, "annotations": pan_anns, "categories": categories})
    _write_json(folder / MANIFEST, {
        "format_version": FORMAT_VERSION, "generator": generator_fingerprint(name), "name": name, "split": split, "count": count, "height": size[0],
        "width": size[1], "seed": seed, "knobs": {k: list(v) if isinstance(v, tuple) else v for k, v in knobs.items()},
        "index_offset": offset, "classes": list(info.classes), "palette": [list(c) for c in info.palette],
        "things": list(info.things), "ignore_index": info.ignore_index,
        "files": [c["file_name"] for c in coco_images],
        "folders": sorted(p.name for p in folder.iterdir() if p.is_dir()),
    })
    return folder


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")


def _remove_stale(parent: Path, max_age_s: float = 3600.0) -> None:
    """Delete ``.tmp-*``/``.trash-*`` folders left behind by killed builds (older than ``max_age_s``)."""
    now = time.time()
    for path in parent.glob(".t*-*"):
        if not path.name.startswith((".tmp-", ".trash-")):
            continue
        try:
            if now - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished split: a readable manifest, written by the current generator code
    (:func:`segcourse.data.synthetic.generator_fingerprint`), and every file it lists."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("format_version") != FORMAT_VERSION:
        return False
    if manifest.get("name") not in GENERATORS or manifest.get("generator") != generator_fingerprint(manifest["name"]):
        return False  # written by another version of the generator's code: stale
    files = manifest.get("files", [])
    if len(files) != manifest.get("count"):
        return False
    for sub in manifest.get("folders", ["images", "masks"]):
        present = {p.name for p in (folder / sub).iterdir()} if (folder / sub).is_dir() else set()
        if not present.issuperset(files):
            return False
    return True


def dataset_dir(name: str, split: str = "train", count: int | None = None, size=None, seed: int = 0,
                root: str | os.PathLike | None = None, **knobs) -> Path:
    """The folder :func:`ensure_dataset` uses for these arguments (it may not exist yet)."""
    count, (h, w), seed = _resolve(name, split, count, size, seed)
    base = Path(root) if root is not None else data_root()
    return base / name / variant_name(split, h, w, count, seed, _tag(knobs))


def ensure_dataset(name: str, split: str = "train", count: int | None = None, size=None, seed: int = 0,
                   root: str | os.PathLike | None = None, progress: bool = False, force: bool = False,
                   **knobs) -> Path:
    """Make sure a synthetic split exists on disk in the standard folder format, and return its folder.

    Builds it the first time (atomically: into a temporary sibling folder, then one rename) and reuses
    it afterwards. See the module docstring for the layout.

    Args:
        name: ``"cells"``, ``"shapes"``, ``"shapes-multiscale"``, ``"aerial"`` or ``"street"``.
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint samples).
        count: number of samples; ``None`` = the mode's default.
        size: image side or ``(H, W)``; ``None`` = the mode's default.
        seed: dataset seed.
        root: data root; ``None`` = :func:`segcourse.data.paths.data_root`. The split lands in ``root/NAME/<variant>``.
        progress: show a tqdm progress bar while building (off by default so notebook outputs stay stable).
        force: rebuild even when a complete copy exists.
        **knobs: generator knobs (see the dataset cards); they become part of the folder name.

    Returns:
        The split's folder, containing ``images/``, ``masks/`` and, depending on the dataset,
        ``instances/``, ``annotations.json``, ``panoptic/``, ``panoptic.json``, plus ``dataset.json``.

    Raises:
        ValueError: unknown dataset or split, bad count/size/seed/knob.
    """
    count, hw, seed = _resolve(name, split, count, size, seed)
    final = dataset_dir(name, split, count, hw, seed, root, **knobs)
    if not force and is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final.parent)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_split(tmp, name, split, count, hw, seed, progress=progress, **knobs)
        if final.exists() and (force or not is_complete(final)):
            trash = final.parent / f".trash-{final.name}-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            os.rename(tmp, final)
        except OSError:
            # another process renamed its (identical) copy into place first
            if not is_complete(final):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


__all__ = ["FORMAT_VERSION", "PANOPTIC_DIVISOR", "bbox_xywh", "dataset_dir", "ensure_dataset",
           "is_complete", "panoptic_ids", "panoptic_rgb",
           "save_label_png", "write_split"]
