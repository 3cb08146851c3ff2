"""Pictures for the lessons: mask overlays, image / truth / prediction grids (training curves:
:func:`segcourse.train.plot_history`).

Every function takes NumPy arrays or torch tensors, uses the dataset's palette from
:mod:`segcourse.data.catalog` (so a class has one colour throughout the course) and
returns the matplotlib ``Figure`` it drew, so a cell can end on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .constants import IGNORE_INDEX
from .data.catalog import DatasetInfo, get_info

_IGNORE_COLOUR = (255, 255, 255)


def to_numpy_image(image) -> np.ndarray:
    """An image as ``(H, W, 3)`` or ``(H, W)`` float in [0, 1] for display.

    Accepts ``(3, H, W)``/``(1, H, W)`` tensors (as datasets return them), ``(H, W, 3)``
    arrays, ``uint8`` or float. Float images outside [0, 1] (e.g. normalised) are
    rescaled by their own min and max.
    """
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    image = image.astype(np.float32)
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        image = (image - lo) / max(hi - lo, 1e-8)
    return image


def _to_numpy_mask(mask) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W) of class ids, got shape {mask.shape}")
    return mask.astype(np.int64)


def _palette(dataset: str | DatasetInfo | None, num_colours: int) -> np.ndarray:
    if dataset is None:
        import matplotlib

        cmap = matplotlib.colormaps["tab20"]
        colours = [(0, 0, 0)] + [tuple(int(255 * c) for c in cmap(i % 20)[:3]) for i in range(max(num_colours - 1, 1))]
        return np.array(colours[:max(num_colours, 1)], dtype=np.uint8)
    info = get_info(dataset) if isinstance(dataset, str) else dataset
    return np.array(info.palette, dtype=np.uint8)


def colorize(mask, dataset: str | DatasetInfo | None = None) -> np.ndarray:
    """Class ids ``(H, W)`` -> RGB ``(H, W, 3) uint8`` with the dataset's palette (ignore pixels white).

    Raises:
        ValueError: the mask holds a class id the palette has no colour for.
    """
    mask = _to_numpy_mask(mask)
    valid = mask != IGNORE_INDEX
    top = int(mask[valid].max()) if valid.any() else 0
    palette = _palette(dataset, top + 1)
    if top >= len(palette):
        raise ValueError(f"mask holds class id {top} but the palette has {len(palette)} colours (ids 0..{len(palette) - 1})")
    if mask[valid].size and mask[valid].min() < 0:
        raise ValueError(f"mask holds negative class id {int(mask[valid].min())}")
    rgb = np.zeros((*mask.shape, 3), dtype=np.uint8)
    rgb[valid] = palette[mask[valid]]
    rgb[~valid] = _IGNORE_COLOUR
    return rgb


def overlay(image, mask, dataset: str | DatasetInfo | None = None, alpha: float = 0.45,
            background: int | None = 0) -> np.ndarray:
    """Blend a class mask over an image.

    Args:
        image: ``(H, W, 3)``, ``(3, H, W)`` or ``(H, W)`` image.
        mask: ``(H, W)`` class ids.
        dataset: dataset name or info for the palette (None: a generic palette).
        alpha: opacity of the mask colours.
        background: class id left transparent (None: colour every class).

    Returns:
        ``(H, W, 3)`` float RGB in [0, 1].
    """
    img = to_numpy_image(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    m = _to_numpy_mask(mask)
    if img.shape[:2] != m.shape:
        raise ValueError(f"image is {img.shape[:2]} but mask is {m.shape}: they must have the same height and width")
    colours = colorize(m, dataset).astype(np.float32) / 255.0
    weight = np.full(m.shape, alpha, dtype=np.float32)
    if background is not None:
        weight[m == background] = 0.0
    return img * (1 - weight[..., None]) + colours * weight[..., None]


def show_grid(rows: Sequence[Sequence], titles: Sequence[str] | None = None, dataset: str | DatasetInfo | None = None,
              size: float = 2.4, overlay_masks: bool = False):
    """Side-by-side panels, one row per sample: e.g. ``[(image, truth, prediction), ...]``.

    The first item of a row is drawn as an image; the others are drawn as masks in the
    dataset's palette (or, with ``overlay_masks=True``, blended over the row's image).
    A 2-D float array among the masks is drawn as a heat map (probabilities).

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    rows = [list(r) for r in rows]
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols, size * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i, j]
            ax.axis("off")
            if j >= len(row) or row[j] is None:
                continue
            item = row[j]
            if j == 0:
                ax.imshow(to_numpy_image(item), cmap="gray")
            else:
                arr = item.detach().cpu().numpy() if hasattr(item, "detach") else np.asarray(item)
                if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating) and not np.all(np.mod(arr, 1) == 0):
                    ax.imshow(arr, cmap="magma", vmin=0, vmax=1)
                elif overlay_masks:
                    ax.imshow(overlay(row[0], arr, dataset))
                else:
                    ax.imshow(colorize(arr, dataset), interpolation="nearest")
            if titles is not None and i == 0 and j < len(titles):
                ax.set_title(titles[j], fontsize=10)
    fig.tight_layout()
    return fig


def legend_handles(dataset: str | DatasetInfo):
    """Matplotlib patches naming each class in its colour (``ax.legend(handles=...)``)."""
    from matplotlib.patches import Patch

    info = get_info(dataset) if isinstance(dataset, str) else dataset
    return [Patch(color=np.array(c) / 255.0, label=name) for name, c in zip(info.classes, info.palette)]
