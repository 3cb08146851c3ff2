"""Data for the course: synthetic datasets, the folder format, converters and real-dataset recipes.

The parts, from the bottom up:

* :mod:`~segcourse.data.catalog` -- each dataset's classes, palette, things and stuff;
* :mod:`~segcourse.data.synthetic` -- deterministic generators (:func:`generate`, :func:`load_arrays`)
  for ``cells``, ``shapes`` / ``shapes-multiscale``, ``aerial`` and ``street``;
* :mod:`~segcourse.data.build` -- :func:`ensure_dataset` writes a split to disk in the standard
  folder format (images, indexed-PNG masks, 16-bit instance maps, COCO JSON, COCO panoptic), once
  and atomically; ``python -m segcourse data build`` is its command line;
* :mod:`~segcourse.data.folder` -- :class:`SegmentationFolder`, a torch ``Dataset`` over any
  ``root/images`` + ``root/masks`` folder, paired by file stem, with strict input checks;
* :mod:`~segcourse.data.paths` -- :func:`data_root`, where datasets live.

The converters (``labelme``, ``coco``) and the real-dataset recipes are imported on first use
(``segcourse.data.labelme`` ...), so ``from segcourse.data import generate`` stays light and
does not import torch.

Example::

    >>> from segcourse.data import generate, load_arrays, ensure_dataset
    >>> generate("cells", 0, size=64).image.shape
    (64, 64, 3)
"""

from __future__ import annotations

import importlib

from .build import ensure_dataset
from .catalog import DATASETS, DatasetInfo, get_info
from .paths import data_root
from .synthetic import SPLIT_OFFSETS, Sample, default_count, default_size, generate, load_arrays

_LAZY = {"SegmentationFolder": ("folder", "SegmentationFolder")}
_SUBMODULES = {"folder", "labelme", "coco", "download", "recipes", "cli"}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DATASETS", "DatasetInfo", "SPLIT_OFFSETS", "Sample", "SegmentationFolder", "data_root", "default_count",
           "default_size", "ensure_dataset", "generate", "get_info", "load_arrays"]
