"""segcourse.files: the one atomic write and the one indexed-PNG writer."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from segcourse.files import atomic_path, atomic_write_text, indexed_png, palette_bytes, save_indexed_png


def test_atomic_write_replaces_or_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "notes.txt"
    atomic_write_text(path, "one")
    assert path.read_text() == "one"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "one"                       # the old file is kept
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.txt"]
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and len(list(path.parent.iterdir())) == 1


def test_indexed_png_keeps_the_ids_and_draws_them_in_the_palette(tmp_path):
    mask = np.array([[0, 1], [2, 255]], np.uint8)
    palette = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    save_indexed_png(tmp_path / "m.png", mask, palette)
    buffer = io.BytesIO()
    save_indexed_png(buffer, mask, palette)
    for source in (tmp_path / "m.png", io.BytesIO(buffer.getvalue())):
        with Image.open(source) as image:
            assert image.mode == "P"
            np.testing.assert_array_equal(np.array(image), mask)
            assert image.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 255, 0]
            assert image.getpalette()[3 * 255:3 * 256] == [255, 255, 255]   # the ignore index is white
    assert palette_bytes(palette, ignore_index=None)[3 * 255:] == [0, 0, 0]
    with pytest.raises(ValueError, match="0..255"):
        indexed_png(np.full((2, 2), 300), palette)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        indexed_png(np.zeros((2, 2, 3)), palette)
