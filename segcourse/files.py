"""Writing files: atomically (a reader never sees half a file), and masks as indexed PNGs.

* :func:`atomic_path` -- write to a temporary sibling, then rename it over the target in one step
  (``os.replace``); an error or an interrupt leaves the old file, and no temporary one;
* :func:`atomic_write_text` / :func:`atomic_write_bytes` -- the same for a string or bytes;
* :func:`atomic_directory` -- the same for a folder built in a temporary sibling;
* :func:`indexed_png` / :func:`save_indexed_png` -- a mask of class ids as a palette ("P") PNG: the pixel
  values are the ids, the palette only decides how a viewer draws them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from .constants import IGNORE_INDEX

# Standard library only at import time (NumPy and Pillow are imported by the PNG writers): the offline
# installer (coursetools.wheelhouse) writes its files with these helpers on a bare Python.

__all__ = ["atomic_directory", "atomic_path", "atomic_write_bytes", "atomic_write_text", "indexed_png", "palette_bytes",
           "save_indexed_png"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on leaving the block it replaces ``path``.

    The temporary name is hidden and unique per writer (``.NAME.PID-RANDOM.tmp``), so two processes
    writing the same file never share one. The parent folder is created.

    Example::

        with atomic_path(out / "model.onnx") as tmp:
            torch.onnx.export(model, sample, str(tmp))

    Yields:
        The temporary ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interrupt: keep the old file, leave no temporary one
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(dest: str | os.PathLike) -> Iterator[Path]:
    """Build a folder elsewhere, then put it at ``dest`` in one rename.

    Yields an empty temporary folder beside ``dest`` (same file system). When the ``with`` block
    succeeds, an existing ``dest`` is removed and the temporary folder renamed to ``dest``; when it
    fails (or is interrupted), the temporary folder is deleted and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def palette_bytes(palette: Sequence[Sequence[int]], ignore_index: int | None = IGNORE_INDEX) -> list[int]:
    """A 768-entry flat palette: the class colours in order, white at ``ignore_index``, black elsewhere."""
    flat = [0] * 768
    for i, rgb in enumerate(palette):
        flat[3 * i:3 * i + 3] = [int(c) for c in rgb]
    if ignore_index is not None:
        flat[3 * ignore_index:3 * ignore_index + 3] = [255, 255, 255]
    return flat


def indexed_png(mask: Any, palette: Sequence[Sequence[int]], ignore_index: int | None = IGNORE_INDEX):
    """``mask: (H, W)`` integer class ids in ``[0, 255]`` as a PIL palette ("P") image.

    Built as an "L" image given a palette (``Image.fromarray(..., mode="P")`` is deprecated in Pillow 11),
    which leaves the values untouched: ``np.array(image)`` gives the ids back.

    Raises:
        ValueError: ``mask`` is not 2-D or has values outside ``[0, 255]``.
    """
    import numpy as np
    from PIL import Image

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"an indexed PNG holds ids 0..255, got values in [{mask.min()}, {mask.max()}]")
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))   # mode "L": value = class id
    image.putpalette(palette_bytes(palette, ignore_index))               # -> "P", values untouched
    return image


def save_indexed_png(target: str | os.PathLike | IO[bytes], mask: Any, palette: Sequence[Sequence[int]],
                     ignore_index: int | None = IGNORE_INDEX) -> None:
    """Save ``mask`` as an indexed PNG (see :func:`indexed_png`) to a path (atomically) or a binary file object."""
    image = indexed_png(mask, palette, ignore_index)
    if isinstance(target, (str, os.PathLike)):
        with atomic_path(target) as tmp:
            image.save(tmp, format="PNG")
    else:
        image.save(target, format="PNG")
