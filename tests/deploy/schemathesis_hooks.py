"""Schemathesis hooks for the prediction service: real images for the ``file`` part.

The schema declares the part's media types (``encoding.file.contentType``: PNG, JPEG, BMP, TIFF,
WebP). A fuzzer cannot know what bytes make a valid PNG, so these strategies give it small real
images (random sizes, modes and pixels) of each type; without them schemathesis sends arbitrary
bytes, which the service rightly refuses with 415. Use with the CLI::

    SCHEMATHESIS_HOOKS=tests.deploy.schemathesis_hooks schemathesis run http://127.0.0.1:8000/openapi.json --checks all
"""

from __future__ import annotations

import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/bmp": "BMP", "image/tiff": "TIFF", "image/webp": "WEBP"}


def images(fmt: str) -> st.SearchStrategy[bytes]:
    """Encoded ``fmt`` images, 1-48 pixels a side, in a mode the format can store."""
    modes = ["RGB", "L"] + (["RGBA", "P"] if fmt in ("PNG", "WEBP", "TIFF") else [])

    @st.composite
    def draw(draw_) -> bytes:
        height, width = draw_(st.integers(1, 48)), draw_(st.integers(1, 48))
        seed, mode = draw_(st.integers(0, 2**32 - 1)), draw_(st.sampled_from(modes))
        rgb = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buffer, format=fmt)
        return buffer.getvalue()

    return draw()


for media_type, fmt in FORMATS.items():
    schemathesis.openapi.media_type(media_type, images(fmt))
