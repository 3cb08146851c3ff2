"""The brief's task as code (segcourse.capstone.task): fixed test images, the Otsu baseline and the targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from segcourse.capstone import task


def test_the_test_images_are_regenerated_identically_and_share_nothing_with_the_pool():
    images, masks = task.test_data("smoke")
    again, again_masks = task.test_data("smoke")
    assert torch.equal(images, again) and torch.equal(masks, again_masks)
    spec = task.SPEC["smoke"]
    assert images.shape == (spec["test"], 3, spec["size"], spec["size"]) and images.dtype == torch.float32
    assert masks.shape == (spec["test"], spec["size"], spec["size"]) and masks.dtype == torch.int64
    pool, _ = task.pool_data("smoke")
    assert pool.shape[0] == spec["pool"]
    flat_pool = {bytes(p.numpy().tobytes()) for p in pool}
    assert not any(bytes(t.numpy().tobytes()) in flat_pool for t in images)


def test_the_baseline_is_otsu_on_the_grey_image_as_scikit_image_computes_it():
    images, _ = task.test_data("smoke")
    masks = task.otsu_masks(images)
    grey = (images.mean(dim=1) * 255).round().to(torch.uint8).numpy()
    want = np.stack([g > threshold_otsu(g) for g in grey])      # skimage's convention: foreground is image > t
    assert np.array_equal(masks.numpy(), want) and masks.dtype == torch.int64
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        task.otsu_masks(images[:, :1])


def test_targets_are_the_baseline_plus_the_margins_and_none_in_smoke_mode():
    base = task.baseline(*task.test_data("smoke"))
    assert 0.5 < base["fg_dice"] < 1 and 0 < base["boundary_iou"] < 1
    assert task.targets(base, "quick") == {k: round(base[k] + m, 4) for k, m in task.MARGINS.items()}
    assert task.targets(base, "smoke") == {}
    with pytest.raises(ValueError, match="no capstone data for mode 'fast'"):
        task.spec("fast")
