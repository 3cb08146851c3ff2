"""Meta-tests of lesson 07's checks: "not attempted" on the learner's stub, "failed" on plausible
wrong answers, "passed" on the solution (stub and solution read from solutions/07_metrics.ipynb)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from segcourse.metrics import confusion_matrix, scores_from_confusion

from .notebook_solutions import solution, verify_against_notebook

# 69 % background, 15 % + 15 % classes 1-2, 1 % class 3 predicted as background:
# pixel accuracy = 0.99; IoU = [6900/7000, 1, 1, 0] -> mIoU = 0.7464
WRONG_7_1 = [
    {"pixel_accuracy": 0.99, "miou": 0.99},     # believes mIoU drops like accuracy
    {"pixel_accuracy": 0.75, "miou": 0.75},     # believes accuracy drops by a class too
    {"pixel_accuracy": 0.99, "miou": 0.66},     # averaged over the 3 classes still found
    {"pixel_accuracy": 0.99},                   # a key missing
    "miou",                                     # not a dict
]


def test_7_1_answer_is_what_the_metrics_say():
    target = torch.zeros(1, 100, 70, dtype=torch.long)          # 7000 pixels: 69 % / 15 % / 15 % / 1 %
    target.view(-1)[4830:5880], target.view(-1)[5880:6930], target.view(-1)[6930:] = 1, 2, 3
    pred = torch.where(target == 3, 0, target)
    scores = scores_from_confusion(confusion_matrix(pred, target, 4))
    answer = solution("7.1")
    assert float(scores["pixel_accuracy"]) == pytest.approx(answer["pixel_accuracy"])
    assert float(scores["iou"].mean()) == pytest.approx(answer["miou"], abs=5e-4)


def _cm_transposed(pred, target, num_classes, ignore_index=None):
    return solution("7.2")(pred, target, num_classes, ignore_index).t()


def _cm_no_ignore(pred, target, num_classes, ignore_index=None):
    keep = target.reshape(-1) < num_classes  # drops ignored pixels -- but also forgets minlength
    index = target.reshape(-1)[keep].long() * num_classes + pred.reshape(-1)[keep].long()
    return torch.bincount(index).reshape(num_classes, -1)


def _cm_ignore_kept(pred, target, num_classes, ignore_index=None):
    t = target.reshape(-1).long().clamp(max=num_classes - 1)  # ignored pixels counted as the last class
    return torch.bincount(t * num_classes + pred.reshape(-1).long(), minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def _case_solution(pred, target, num_classes):
    return solution("7.3")(pred, target, num_classes).numpy()


def _case_empty_is_perfect(pred, target, num_classes):      # MONAI's ignore_empty=False: both empty -> 1
    return np.nan_to_num(_case_solution(pred, target, num_classes), nan=1.0)


def _case_empty_is_zero(pred, target, num_classes):         # a smoothing-free 0/0 -> 0
    return np.nan_to_num(_case_solution(pred, target, num_classes), nan=0.0)


def _case_nan_when_target_empty(pred, target, num_classes):  # MONAI's ignore_empty=True: hides false alarms
    out = _case_solution(pred, target, num_classes)
    for c in range(num_classes):
        out[(target == c).sum(dim=(1, 2)) == 0, c] = np.nan
    return out


def _case_smoothed(pred, target, num_classes):              # (2I + 1) / (|P| + |T| + 1)
    out = np.zeros((len(pred), num_classes))
    for c in range(num_classes):
        pc, tc = pred == c, target == c
        out[:, c] = ((2 * (pc & tc).sum(dim=(1, 2)) + 1) / (pc.sum(dim=(1, 2)) + tc.sum(dim=(1, 2)) + 1)).numpy()
    return out


def _case_pooled(pred, target, num_classes):                # the pooled Dice, repeated for every image
    dice = scores_from_confusion(confusion_matrix(pred, target, num_classes))["dice"].numpy()
    return np.tile(dice, (len(pred), 1))


def _case_transposed(pred, target, num_classes):
    return _case_solution(pred, target, num_classes).T


def _biou_border_not_boundary(pred, target, dilation_ratio=0.02):
    h, w = pred.shape
    d = max(1, round(dilation_ratio * (h ** 2 + w ** 2) ** 0.5))

    def band(m):
        return m & ~ndimage.binary_erosion(m, np.ones((3, 3)), iterations=d, border_value=1)

    bp, bt = band(pred), band(target)
    return (bp & bt).sum() / max((bp | bt).sum(), 1)


def _biou_width_one(pred, target, dilation_ratio=0.02):
    return solution("7.4")(pred, target, 1e-9)  # always a 1-pixel band


def _plain_iou(pred, target, dilation_ratio=0.02):
    return (pred & target).sum() / (pred | target).sum()


# ---------------------------------------------------------------- the meta-test

WRONG = {
    "7.1": WRONG_7_1,
    "7.2": [_cm_transposed, _cm_no_ignore, _cm_ignore_kept, 42],
    "7.3": [_case_empty_is_perfect, _case_empty_is_zero, _case_nan_when_target_empty, _case_smoothed, _case_pooled,
            _case_transposed, "dice"],
    "7.4": [_biou_border_not_boundary, _biou_width_one, _plain_iou],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])
