"""Class statistics: counts derived by hand, ignore handling, errors, and a cross-check with torch."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.constants import IGNORE_INDEX
from segcourse.data.stats import class_statistics


def test_counts_by_hand():
    a = np.array([[0, 0, 1], [1, 1, IGNORE_INDEX]])     # class 0: 2, class 1: 3, one ignored
    b = np.array([[0, 2], [0, 0]])                       # class 0: 3, class 2: 1
    s = class_statistics([a, b], 3, class_names=["bg", "x", "y"])
    assert s.pixels.tolist() == [5, 3, 1] and s.images.tolist() == [2, 1, 1]
    assert s.ignored == 1 and s.num_images == 2
    np.testing.assert_allclose(s.fraction, [5 / 9, 3 / 9, 1 / 9])
    np.testing.assert_allclose(s.image_fraction, [1.0, 0.5, 0.5])
    assert s.imbalance == 5.0
    assert "ignored" in s.table() and "55.56%" in s.table()


def test_matches_torch_bincount_on_a_batch():
    import torch

    rng = np.random.default_rng(0)
    masks = rng.integers(0, 4, (6, 9, 11))
    masks[rng.random(masks.shape) < 0.1] = IGNORE_INDEX
    s = class_statistics(torch.from_numpy(masks), 4)
    t = torch.from_numpy(masks)
    ref = torch.bincount(t[t != IGNORE_INDEX], minlength=4).numpy()
    assert np.array_equal(s.pixels, ref) and s.ignored == int((masks == IGNORE_INDEX).sum())


def test_absent_class_and_median_frequency_weights():
    masks = np.zeros((4, 10, 10), np.int64)
    masks[:, :1] = 1                                     # class 1: 10 % of every image, class 2 absent
    s = class_statistics(masks, 3)
    assert s.imbalance == float("inf")
    w = s.median_frequency_weights()
    # frequencies 0.9 and 0.1 (each class is in all images); median 0.5 -> weights 0.5/0.9, 0.5/0.1, absent 0
    np.testing.assert_allclose(w, [0.5 / 0.9, 5.0, 0.0])


def test_errors():
    with pytest.raises(TypeError, match="divided by 255"):
        class_statistics([np.zeros((2, 2)) / 255], 2)
    with pytest.raises(ValueError, match=r"mask #1 has labels \[7\]"):
        class_statistics([np.zeros((2, 2), int), np.full((2, 2), 7)], 2)
    with pytest.raises(ValueError, match="no masks"):
        class_statistics([], 2)
    with pytest.raises(ValueError, match="class_names"):
        class_statistics([np.zeros((2, 2), int)], 2, class_names=["a"])


def test_one_count_behind_the_table_and_the_loss_weights():
    """The lesson 02 table and lesson 06's class weights come from the same count: with ignored pixels and
    masks of different sizes the median-frequency weights are exact (they were approximated here before)."""
    import torch

    from segcourse.losses import inverse_frequency_weights, median_frequency_weights

    a = np.zeros((4, 4), np.int64)
    a[0, :2] = 1
    a[3, 3] = IGNORE_INDEX
    b = np.full((2, 8), 2, np.int64)
    b[0, 0] = 1
    s = class_statistics([a, b], 3)
    np.testing.assert_array_equal(s.image_pixels, [15, 15 + 16, 16])
    torch.testing.assert_close(median_frequency_weights([a, b], 3), torch.tensor(s.median_frequency_weights(),
                                                                              dtype=torch.float32))
    torch.testing.assert_close(inverse_frequency_weights([a, b], 3), torch.tensor(s.inverse_frequency_weights(),
                                                                               dtype=torch.float32))
