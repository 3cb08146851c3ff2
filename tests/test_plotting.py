import matplotlib
import numpy as np
import pytest
import torch

from segcourse import plotting
from segcourse.constants import IGNORE_INDEX
from segcourse.data.catalog import DATASETS, get_info

matplotlib.use("agg")


def test_every_dataset_has_one_colour_per_class():
    for info in DATASETS.values():
        assert len(info.palette) == info.num_classes
        assert len(set(info.palette)) == info.num_classes
        assert set(info.things) | set(info.stuff) == set(range(info.num_classes))


def test_colorize_uses_the_palette_and_paints_ignore_white():
    mask = np.array([[0, 1], [3, IGNORE_INDEX]])
    rgb = plotting.colorize(mask, "shapes")
    palette = get_info("shapes").palette
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 1]) == palette[1] and tuple(rgb[1, 0]) == palette[3] and tuple(rgb[1, 1]) == (255, 255, 255)


def test_colorize_rejects_ids_without_colour():
    with pytest.raises(ValueError, match="class id 5 but the palette has 2 colours"):
        plotting.colorize(np.array([[5]]), "cells")


def test_overlay_leaves_background_and_blends_classes():
    image = torch.zeros(3, 4, 4)  # (3, H, W) as datasets return it
    mask = torch.zeros(4, 4, dtype=torch.long)
    mask[0, 0] = 1
    out = plotting.overlay(image, mask, "cells", alpha=0.5)
    assert out.shape == (4, 4, 3)
    np.testing.assert_allclose(out[1, 1], 0.0)
    np.testing.assert_allclose(out[0, 0], 0.5 * np.array(get_info("cells").palette[1]) / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="same height and width"):
        plotting.overlay(image, mask[:3], "cells")


def test_to_numpy_image_handles_layouts_and_ranges():
    assert plotting.to_numpy_image(np.full((5, 6, 3), 255, np.uint8)).max() == 1.0
    chw = plotting.to_numpy_image(torch.randn(3, 5, 6))
    assert chw.shape == (5, 6, 3) and chw.min() >= 0 and chw.max() <= 1


def test_show_grid_returns_a_figure():
    img = np.zeros((8, 8, 3), np.uint8)
    mask = np.zeros((8, 8), np.int64)
    prob = np.linspace(0, 1, 64).reshape(8, 8)
    fig = plotting.show_grid([(img, mask, prob)], titles=["image", "truth", "prob"], dataset="cells")
    assert len(fig.axes) == 3 and fig.axes[0].get_title() == "image"
