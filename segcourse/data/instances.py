"""Instance datasets in torchvision's detection format, over the folders ``data build`` writes.

A split of ``cells`` or ``shapes`` on disk (see :mod:`segcourse.data.build`) holds, per image,
``images/<stem>.png`` (RGB), ``masks/<stem>.png`` (class ids) and ``instances/<stem>.png`` (16-bit:
0 = no object, 1..K one id per object). :class:`InstanceFolder` turns each into what torchvision's
detection models take (``torchvision.models.detection``, and its ``references/detection``):

* image: float ``(3, H, W)`` in ``[0, 1]``;
* target: ``boxes`` float32 ``(N, 4)`` ``[x1, y1, x2, y2]`` with **continuous edges**: pixel ``i`` covers
  ``[i, i + 1)``, so an object on columns ``a .. b`` has ``x1 = a``, ``x2 = b + 1`` (``masks_to_boxes``, which
  gives the last column ``b``, plus one). That is the convention of ``torchvision.transforms.v2``'s
  ``BoundingBoxes``, of torchvision's COCO reference scripts (``x2 = x + w``), of detectron2
  (``BitMasks.get_bounding_boxes``) and of COCO's ``bbox`` (``w = x2 - x1``). torchvision's PennFudan tutorial
  feeds ``masks_to_boxes`` as it is (one pixel short); on ``cells`` that costs the 28 x 28 mask head's
  crop-and-paste part of its ceiling (:func:`segcourse.detection.evaluate.crop_and_paste_ceiling` with
  ``box_offset=-1``) and the trained model mask AP (``benchmarks/box_convention.py``).
  ``labels`` int64 ``(N,)`` (the object's class id,
  0 is background), ``masks`` uint8 ``(N, H, W)``, ``image_id`` int, ``area`` float32 ``(N,)`` (pixels),
  ``iscrowd`` int64 ``(N,)`` zeros.

An image with no object gives ``boxes (0, 4)``, ``labels (0,)``, ``masks (0, H, W)`` -- the shapes
torchvision's models accept for a background-only image (they then learn only "no object").
Every object of at least one pixel has a box of positive width and height (torchvision's training
refuses boxes without), so only ``min_pixels`` drops objects.

:class:`InstanceAugment` applies geometric augmentation to image, masks and boxes together
(``torchvision.transforms.v2`` with ``tv_tensors``), then re-derives the boxes from the transformed
masks and drops the instances that left the image (or kept fewer than ``min_pixels`` pixels), so
boxes, masks and labels stay in sync.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def target_from_instances(instances, classes=None, image_id: int = 0, min_pixels: int = 1) -> dict:
    """A torchvision detection target from an ``(H, W)`` instance-id map (0 = none).

    Args:
        instances: ``(H, W)`` integer ids (numpy or torch).
        classes: ``(H, W)`` class-id map; an object's label is the most common class under it.
            ``None`` gives every object label 1.
        image_id: stored as ``target["image_id"]``.
        min_pixels: objects with fewer pixels are dropped.
    """
    inst = torch.as_tensor(np.asarray(instances).astype(np.int64))
    if inst.ndim != 2:
        raise ValueError(f"instances must be (H, W), got shape {tuple(inst.shape)}")
    ids = torch.unique(inst)
    ids = ids[ids > 0]
    masks = (inst[None] == ids[:, None, None]).to(torch.uint8)            # (N, H, W)
    if classes is None:
        labels = torch.ones(len(ids), dtype=torch.int64)
    else:
        cls = torch.as_tensor(np.asarray(classes).astype(np.int64))
        labels = torch.tensor([int(torch.mode(cls[inst == i]).values) for i in ids.tolist()], dtype=torch.int64)
    return _finish(masks, labels, image_id, min_pixels)


def _finish(masks: torch.Tensor, labels: torch.Tensor, image_id: int, min_pixels: int) -> dict:
    from torchvision.ops import masks_to_boxes

    h, w = masks.shape[-2:]
    area = masks.flatten(1).sum(1) if len(masks) else torch.zeros(0, dtype=torch.int64)
    keep = area >= max(int(min_pixels), 1)
    masks, labels, area = masks[keep], labels[keep], area[keep]
    if len(masks):   # continuous edges: the last column / row plus one
        boxes = masks_to_boxes(masks).to(torch.float32) + torch.tensor([0.0, 0.0, 1.0, 1.0])
    else:
        boxes = torch.zeros((0, 4), dtype=torch.float32)
    return {"boxes": boxes, "labels": labels.to(torch.int64), "masks": masks.to(torch.uint8).reshape(-1, h, w),
            "image_id": int(image_id), "area": area.to(torch.float32), "iscrowd": torch.zeros(len(labels), dtype=torch.int64)}


class InstanceFolder(torch.utils.data.Dataset):
    """A folder with ``images/``, ``instances/`` (16-bit ids) and optionally ``masks/`` (class ids), as detection pairs.

    Args:
        root: the split's folder (e.g. from :func:`segcourse.data.ensure_dataset`).
        transform: optional ``transform(image, target) -> (image, target)`` (e.g. :class:`InstanceAugment`).
        min_pixels: objects with fewer pixels are dropped.
        cache: keep the decoded PNGs in memory after the first read.

    ``dataset[i]`` is ``(image (3, H, W) float in [0, 1], target)``; see the module docstring.
    """

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None, min_pixels: int = 1,
                 cache: bool = True):
        self.root = Path(root)
        for sub in ("images", "instances"):
            if not (self.root / sub).is_dir():
                raise ValueError(f"{self.root} has no {sub}/ folder; an instance dataset needs images/ and "
                                 "instances/ (16-bit id PNGs), as `python -m segcourse data build` writes for "
                                 "cells and shapes")
        self.stems = sorted(p.stem for p in (self.root / "instances").glob("*.png"))
        missing = [s for s in self.stems if not (self.root / "images" / f"{s}.png").exists()]
        if missing:
            raise ValueError(f"{self.root}: instance maps without an image: {missing[:5]}")
        self.transform, self.min_pixels, self.cache = transform, int(min_pixels), cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}

    def __len__(self) -> int:
        return len(self.stems)

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(image (H, W, 3) uint8, instances (H, W) int64, classes (H, W) int64 or None)`` of sample ``i``."""
        if i in self._cache:
            return self._cache[i]
        stem = self.stems[i]
        with Image.open(self.root / "images" / f"{stem}.png") as im:
            image = np.array(im.convert("RGB"))
        with Image.open(self.root / "instances" / f"{stem}.png") as im:
            inst = np.array(im).astype(np.int64)
        mask_path = self.root / "masks" / f"{stem}.png"
        classes = None
        if mask_path.exists():
            with Image.open(mask_path) as im:
                classes = np.array(im).astype(np.int64)
        if inst.shape != image.shape[:2]:
            raise ValueError(f"{stem}: instance map {inst.shape} and image {image.shape[:2]} differ in size")
        out = (image, inst, classes)
        if self.cache:
            self._cache[i] = out
        return out

    def __getitem__(self, i: int):
        image, inst, classes = self.arrays(i)
        target = target_from_instances(inst, classes, image_id=i, min_pixels=self.min_pixels)
        img = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        if self.transform is not None:
            img, target = self.transform(img, target)
        return img, target


class CocoInstances(torch.utils.data.Dataset):
    """A COCO instance-segmentation file (``annotations.json``) and its images, as torchvision detection pairs.

    Reads what the course writes with ``python -m segcourse data build`` (and what most annotation tools
    export): ``images`` with ``id``, ``file_name``, ``height``, ``width``; ``annotations`` with
    ``image_id``, ``category_id``, ``segmentation`` (polygons, RLE or compressed RLE, decoded by
    :func:`segcourse.data.coco.annotation_to_mask`), ``iscrowd``. Crowd annotations are skipped.

    Boxes are re-derived from the decoded masks, with continuous edges as in :class:`InstanceFolder`
    (``masks_to_boxes`` plus one), so the COCO ``bbox`` ``[x, y, w, h]`` of a mask's pixels becomes
    ``[x, y, x + w, y + h]``; the tests check that.
    ``labels`` are the ``category_id`` values (``category_ids`` maps them to 1..K if given).

    Args:
        annotation_file: the COCO JSON file.
        image_dir: the folder of ``file_name``; default ``images/`` beside the JSON file.
        transform: optional ``transform(image, target) -> (image, target)``.
        category_ids: optional ``{category_id: label}``.
        min_pixels: objects with fewer pixels are dropped.

    ``dataset[i]`` is ``(image (3, H, W) float in [0, 1], target)`` with ``image_id`` the COCO id.
    """

    def __init__(self, annotation_file: str | os.PathLike, image_dir: str | os.PathLike | None = None,
                 transform: Callable | None = None, category_ids: dict[int, int] | None = None, min_pixels: int = 1):
        import json

        path = Path(annotation_file)
        if not path.is_file():
            raise ValueError(f"no COCO annotation file at {path}")
        coco = json.loads(path.read_text())
        for key in ("images", "annotations"):
            if key not in coco:
                raise ValueError(f"{path} is not a COCO instance file: no '{key}' list")
        self.image_dir = Path(image_dir) if image_dir is not None else path.parent / "images"
        self.images = sorted(coco["images"], key=lambda im: im["id"])
        self.annotations: dict[int, list[dict]] = {im["id"]: [] for im in self.images}
        for ann in coco["annotations"]:
            if ann["image_id"] not in self.annotations:
                raise ValueError(f"{path}: annotation {ann.get('id')} refers to image {ann['image_id']}, not in 'images'")
            self.annotations[ann["image_id"]].append(ann)
        self.transform, self.category_ids, self.min_pixels = transform, category_ids, int(min_pixels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from .coco import annotation_to_mask

        info = self.images[i]
        h, w = int(info["height"]), int(info["width"])
        with Image.open(self.image_dir / Path(info["file_name"]).name) as im:
            image = np.array(im.convert("RGB"))
        if image.shape[:2] != (h, w):
            raise ValueError(f"{info['file_name']}: image is {image.shape[:2]}, the COCO file says {(h, w)}")
        anns = [a for a in self.annotations[info["id"]] if not a.get("iscrowd", 0)]
        masks = torch.from_numpy(np.stack([annotation_to_mask(a, h, w) for a in anns]).astype(np.uint8)) if anns \
            else torch.zeros((0, h, w), dtype=torch.uint8)
        cats = [int(a["category_id"]) for a in anns]
        labels = torch.tensor([self.category_ids[c] if self.category_ids else c for c in cats], dtype=torch.int64)
        target = _finish(masks, labels, int(info["id"]), self.min_pixels)
        img = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        if self.transform is not None:
            img, target = self.transform(img, target)
        return img, target


def instance_dataset(name: str = "cells", split: str = "train", count: int | None = None, size=None,
                     seed: int = 0, transform: Callable | None = None, min_pixels: int = 1, **knobs) -> InstanceFolder:
    """:class:`InstanceFolder` over a synthetic split, built on disk first if needed (:func:`ensure_dataset`)."""
    from .build import ensure_dataset

    return InstanceFolder(ensure_dataset(name, split, count=count, size=size, seed=seed, **knobs),
                          transform=transform, min_pixels=min_pixels)


class InstanceAugment:
    """Geometric augmentation that keeps image, masks, boxes and labels of one sample in sync.

    The image, the ``(N, H, W)`` masks (``tv_tensors.Mask``, nearest-neighbour) and the boxes
    (``tv_tensors.BoundingBoxes``, ``XYXY``) go through one ``torchvision.transforms.v2`` pipeline:
    horizontal and vertical flips, then a random affine (rotation by ``degrees``, scale in ``scale``,
    translation up to ``translate`` of the side). The boxes are then *re-derived from the transformed
    masks* (a rotated box's corners no longer bound the object tightly), and instances with fewer than
    ``min_pixels`` pixels left in the image are dropped with their labels.

    Args:
        hflip, vflip: flip probabilities.
        degrees, scale, translate: ``v2.RandomAffine`` arguments (``degrees=0, scale=(1, 1),
            translate=(0, 0)`` turns it off).
        min_pixels: an instance keeps at least this many pixels or is dropped.
    """

    def __init__(self, hflip: float = 0.5, vflip: float = 0.5, degrees: float = 0.0,
                 scale: Sequence[float] = (1.0, 1.0), translate: Sequence[float] = (0.0, 0.0), min_pixels: int = 4):
        from torchvision.transforms import v2

        steps = [v2.RandomHorizontalFlip(hflip), v2.RandomVerticalFlip(vflip)]
        if degrees or tuple(scale) != (1.0, 1.0) or tuple(translate) != (0.0, 0.0):
            steps.append(v2.RandomAffine(degrees=degrees, translate=tuple(translate) if any(translate) else None,
                                         scale=tuple(scale)))
        self.pipeline = v2.Compose(steps)
        self.min_pixels = int(min_pixels)

    def __call__(self, image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
        from torchvision import tv_tensors

        h, w = image.shape[-2:]
        masks = target["masks"]
        img, m, b = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(masks),
                                  tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w)))
        del b  # the transformed boxes are replaced by the boxes of the transformed masks
        out = _finish(torch.as_tensor(m).to(torch.uint8).reshape(-1, h, w), target["labels"], target.get("image_id", 0),
                      self.min_pixels)
        return torch.as_tensor(img), out
