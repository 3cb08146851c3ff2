"""Per-case Dice: its empty-case policy by hand, and against MONAI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segcourse.metrics.per_case import per_case_dice


def test_per_case_dice_by_hand_and_policy():
    # image 0: class 1 pred [1,1,0,0] vs target [1,0,0,0] -> 2*1/(2+1) = 2/3; class 2 nowhere -> NaN
    # image 1: class 1 predicted, not present -> 0 (a false alarm); class 2 missed -> 0
    pred = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]])
    target = np.array([[[1, 0, 0, 0]], [[2, 0, 0, 0]]])
    d = per_case_dice(pred, target, num_classes=3)
    assert d.shape == (2, 3)
    assert d[0, 1] == pytest.approx(2 / 3) and math.isnan(d[0, 2])
    assert d[1, 1] == 0.0 and d[1, 2] == 0.0
    assert d[0, 0] == pytest.approx(2 * 2 / (2 + 3)) and d[1, 0] == pytest.approx(2 * 3 / (3 + 3))
    ignored = target.copy()
    ignored[0, 0, 1] = 255                      # the false-positive pixel becomes "don't care"
    assert per_case_dice(pred, ignored, 3, ignore_index=255)[0, 1] == 1.0
    with pytest.raises(ValueError, match="N, H, W"):
        per_case_dice(pred[0], target[0], 3)


def test_per_case_dice_matches_monai():
    from monai.metrics import compute_dice

    g = torch.Generator().manual_seed(3)
    target = torch.randint(0, 3, (5, 9, 11), generator=g)
    target[1][target[1] == 2] = 0                # class 2 absent from image 1's target ...
    pred = torch.randint(0, 3, (5, 9, 11), generator=g)
    pred[1][pred[1] == 2] = 1                    # ... and from its prediction: both empty
    pred[2][pred[2] == 1] = 0                    # class 1 missed in image 2
    target[3][target[3] == 1] = 0                # class 1 predicted but absent in image 3
    ours = per_case_dice(pred, target, 3)

    def one_hot(x):
        return torch.nn.functional.one_hot(x, 3).permute(0, 3, 1, 2).float()

    monai = compute_dice(one_hot(pred), one_hot(target), include_background=True, ignore_empty=False).numpy()
    both_empty = np.isnan(ours)
    assert both_empty[1, 2] and both_empty.sum() == 1
    np.testing.assert_allclose(ours[~both_empty], monai[~both_empty], atol=1e-6)
    assert monai[1, 2] == 1.0                   # MONAI scores "nothing to find, nothing found" as perfect
    assert ours[3, 1] == 0.0 and ours[2, 1] == 0.0
