"""Deterministic synthetic datasets: ``cells``, ``shapes`` (and ``shapes-multiscale``), ``aerial``, ``street``.

A sample is a pure function of ``(name, seed, index, size)``: :func:`generate` seeds a fresh
``numpy.random.Generator`` from exactly those values, so sample 17 is the same whether you ask for
it alone, as part of a split, in another process or on another machine (same NumPy/SciPy/OpenCV).

Splits are disjoint by construction: split ``s`` of :func:`load_arrays` uses sample indices
``SPLIT_OFFSETS[s] + 0 .. count-1`` (train from 0, val from 1,000,000, test from 2,000,000).

Each dataset's classes and palette are in :mod:`segcourse.data.catalog`; the difficulty knobs and
the measured statistics are in its dataset card, ``datasets/NAME/README.md``.

Example::

    >>> from segcourse.data import generate, load_arrays
    >>> s = generate("cells", 0, size=96)
    >>> s.image.shape, s.image.dtype, s.mask.shape, int(s.instances.max()) > 1
    ((96, 96, 3), dtype('uint8'), (96, 96), True)
    >>> data = load_arrays("cells", "val", count=4, size=64)
    >>> data["images"].shape, data["masks"].dtype
    ((4, 64, 64, 3), dtype('int64'))
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ..._checks import check_int
from ...config import mode_index
from . import aerial, cells, shapes, street
from ._common import Sample, check_size, make_rng
from .aerial import generate_aerial
from .cells import generate_cells
from .shapes import MULTISCALE, generate_shapes
from .street import generate_street

#: name -> (generator, fixed knobs). ``shapes-multiscale`` is ``shapes`` with small and large objects.
GENERATORS: dict[str, tuple[Callable[..., Sample], dict]] = {
    "cells": (generate_cells, {}),
    "shapes": (generate_shapes, {}),
    "shapes-multiscale": (generate_shapes, MULTISCALE),
    "aerial": (generate_aerial, {}),
    "street": (generate_street, {}),
}

#: name -> the generator's default knobs (their meaning is in ``datasets/NAME/README.md``).
KNOBS: dict[str, dict] = {
    "cells": cells.DEFAULTS,
    "shapes": shapes.DEFAULTS,
    "shapes-multiscale": {**shapes.DEFAULTS, **MULTISCALE},
    "aerial": aerial.DEFAULTS,
    "street": street.DEFAULTS,
}

#: First sample index of each split; splits never share a sample.
SPLIT_OFFSETS: dict[str, int] = {"train": 0, "val": 1_000_000, "test": 2_000_000}

#: Default image side per mode: (smoke, quick, full).
DEFAULT_SIZE: dict[str, tuple[int, int, int]] = {
    "cells": (64, 96, 256),
    "shapes": (64, 128, 256),
    "shapes-multiscale": (64, 128, 256),
    "aerial": (64, 128, 512),
    "street": (64, 128, 256),
}

#: Default number of samples per split and mode: split -> (smoke, quick, full).
DEFAULT_COUNT: dict[str, dict[str, tuple[int, int, int]]] = {
    "cells": {"train": (8, 192, 800), "val": (4, 48, 100), "test": (4, 48, 100)},
    "shapes": {"train": (8, 256, 2000), "val": (4, 64, 200), "test": (4, 64, 200)},
    "shapes-multiscale": {"train": (8, 256, 2000), "val": (4, 64, 200), "test": (4, 64, 200)},
    "aerial": {"train": (8, 192, 400), "val": (4, 48, 50), "test": (4, 48, 50)},
    "street": {"train": (8, 256, 2000), "val": (4, 64, 200), "test": (4, 64, 200)},
}

def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a dataset name (str), got {type(name).__name__}")
    if name not in GENERATORS:
        raise ValueError(f"unknown synthetic dataset {name!r}; expected one of {', '.join(GENERATORS)}")
    return name


def default_size(name: str) -> int:
    """The image side ``name`` uses in the current mode (see :data:`DEFAULT_SIZE`)."""
    return DEFAULT_SIZE[_check_name(name)][mode_index()]


def default_count(name: str, split: str = "train") -> int:
    """The number of samples of ``split`` in the current mode (see :data:`DEFAULT_COUNT`)."""
    _check_name(name)
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_OFFSETS)}, got {split!r}")
    return DEFAULT_COUNT[name][split][mode_index()]


def generate(name: str, index: int, size: int | tuple[int, int] | None = None, seed: int = 0, **knobs) -> Sample:
    """One synthetic sample, a pure deterministic function of ``(name, seed, index, size, knobs)``.

    Args:
        name: ``"cells"``, ``"shapes"``, ``"shapes-multiscale"``, ``"aerial"`` or ``"street"``.
        index: sample index (>= 0). Split ``s`` of :func:`load_arrays` uses ``SPLIT_OFFSETS[s] + i``.
        size: image side ``S`` (square ``S x S``) or ``(H, W)``; ``None`` = the mode's default.
        seed: dataset seed (>= 0); a different seed gives a different dataset.
        **knobs: difficulty knobs of the dataset's generator, e.g. ``scales=(0.04, 0.3)`` for ``shapes``
            (the defaults and their meaning are in ``datasets/NAME/README.md``).

    Returns:
        :class:`Sample` with ``image (H, W, 3) uint8``, ``mask (H, W) uint8`` class ids,
        ``instances (H, W) uint16`` (0 = none, 1..K) for cells/shapes/street, else ``None``, and
        ``panoptic (H, W, 2) int64`` ``(category_id, instance_id)`` for street, else ``None``.

    Raises:
        ValueError / TypeError: unknown name, negative index or seed, bad size, unknown knob.
    """
    _check_name(name)
    index = check_int(index, "index", minimum=0)
    seed = check_int(seed, "seed", minimum=0)
    height, width = check_size(default_size(name) if size is None else size)
    func, fixed = GENERATORS[name]
    unknown = sorted(set(knobs) - set(KNOBS[name]))
    if unknown:
        raise ValueError(f"unknown knob(s) {', '.join(unknown)} for {name!r}; its knobs are {', '.join(KNOBS[name])}")
    rng = make_rng(name, seed, index, height, width)
    sample = func(rng, height, width, **{**fixed, **knobs})
    sample.name, sample.index = name, index
    return sample


def _source(obj) -> str:
    """The source text of a module or function (the installed file as it is now)."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # no source shipped (e.g. only .pyc): fall back to the package version
        from ... import __version__

        return f"{getattr(obj, '__name__', obj)!r} of segcourse {__version__}"


def generator_fingerprint(name: str) -> str:
    """A short hash of the code that draws dataset ``name``: what its cached copies are keyed by.

    It covers the generator's module (e.g. ``synthetic/shapes.py``), the shared helpers
    (``synthetic/_common.py``, which also seeds the random generator), :func:`generate` itself and
    the dataset's fixed knobs. Editing any of them changes the fingerprint, so a split written to
    disk by :func:`segcourse.data.build.ensure_dataset` (its manifest records the fingerprint) or
    held in :func:`load_arrays`' memory cache is regenerated instead of silently reused; no version
    number has to be bumped by hand. Editing another dataset's generator leaves it unchanged.

    Returns:
        16 hexadecimal characters.
    """
    func, fixed = GENERATORS[_check_name(name)]
    digest = hashlib.sha256()
    for part in (_source(sys.modules[func.__module__]), _source(sys.modules[Sample.__module__]), _source(generate),
                 repr(sorted(fixed.items()))):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 12


def load_arrays(name: str, split: str = "train", count: int | None = None, size: int | tuple[int, int] | None = None,
                seed: int = 0, **knobs) -> dict[str, np.ndarray]:
    """A whole split as stacked arrays (generated in memory; cached by arguments).

    Args:
        name: dataset name (see :func:`generate`).
        split: ``"train"``, ``"val"`` or ``"test"``; they never share a sample.
        count: number of samples; ``None`` = the mode's default (:data:`DEFAULT_COUNT`).
        size: image side or ``(H, W)``; ``None`` = the mode's default (:data:`DEFAULT_SIZE`).
        seed: dataset seed.
        **knobs: generator knobs, passed to :func:`generate`.

    Returns:
        ``{"images": (N, H, W, 3) uint8, "masks": (N, H, W) int64}`` plus ``"instances": (N, H, W) int64``
        for cells/shapes/street and ``"panoptic": (N, H, W, 2) int64`` for street. The arrays are fresh
        copies: changing them does not change the cache.
    """
    _check_name(name)
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_OFFSETS)}, got {split!r}")
    count = default_count(name, split) if count is None else check_int(count, "count")
    hw = check_size(default_size(name) if size is None else size)
    seed = check_int(seed, "seed", minimum=0)
    knobs = {k: tuple(v) if isinstance(v, list) else v for k, v in knobs.items()}   # hashable cache key
    key = (name, split, count, hw, seed, tuple(sorted(knobs.items())), generator_fingerprint(name))
    if key not in _CACHE:
        offset = SPLIT_OFFSETS[split]
        samples = [generate(name, offset + i, hw, seed, **knobs) for i in range(count)]
        out = {
            "images": np.stack([s.image for s in samples]),
            "masks": np.stack([s.mask for s in samples]).astype(np.int64),
        }
        if samples[0].instances is not None:
            out["instances"] = np.stack([s.instances for s in samples]).astype(np.int64)
        if samples[0].panoptic is not None:
            out["panoptic"] = np.stack([s.panoptic for s in samples])
        for arr in out.values():
            arr.flags.writeable = False
        _CACHE[key] = out
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return {k: v.copy() for k, v in _CACHE[key].items()}


__all__ = ["DEFAULT_COUNT", "DEFAULT_SIZE", "GENERATORS", "KNOBS", "SPLIT_OFFSETS", "Sample", "default_count", "default_size",
           "generator_fingerprint",
           "generate", "load_arrays"]
