"""Meta-tests of lesson 07's checks: "not attempted" on the learner's stub, "failed" on plausible
wrong answers, "passed" on the solution (as written in solutions/07_metrics.ipynb)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from segcourse.exercises.registry import learner_stub, verify_exercise
from segcourse.metrics import confusion_matrix, scores_from_confusion


def test_7_1_rare_class_prediction():
    # 69 % background, 15 % + 15 % classes 1-2, 1 % class 3 predicted as background:
    # pixel accuracy = 0.99; IoU = [6900/7000, 1, 1, 0] -> mIoU = 0.7464
    verify_exercise(
        "7.1",
        stub={"pixel_accuracy": None, "miou": None},
        wrong=[
            {"pixel_accuracy": 0.99, "miou": 0.99},     # believes mIoU drops like accuracy
            {"pixel_accuracy": 0.75, "miou": 0.75},     # believes accuracy drops by a class too
            {"pixel_accuracy": 0.99, "miou": 0.66},     # averaged over the 3 classes still found
            {"pixel_accuracy": 0.99},                   # a key missing
            "miou",                                     # not a dict
        ],
        solution={"pixel_accuracy": 0.99, "miou": 0.746},
    )


def _cm_solution(pred, target, num_classes, ignore_index=None):
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    index = target * num_classes + pred
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _cm_transposed(pred, target, num_classes, ignore_index=None):
    return _cm_solution(pred, target, num_classes, ignore_index).t()


def _cm_no_ignore(pred, target, num_classes, ignore_index=None):
    keep = target.reshape(-1) < num_classes  # drops ignored pixels -- but also forgets minlength
    index = target.reshape(-1)[keep].long() * num_classes + pred.reshape(-1)[keep].long()
    return torch.bincount(index).reshape(num_classes, -1)


def _cm_ignore_kept(pred, target, num_classes, ignore_index=None):
    t = target.reshape(-1).long().clamp(max=num_classes - 1)  # ignored pixels counted as the last class
    return torch.bincount(t * num_classes + pred.reshape(-1).long(), minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def test_7_2_confusion_matrix():
    verify_exercise("7.2", stub=learner_stub, wrong=[_cm_transposed, _cm_no_ignore, _cm_ignore_kept, 42],
                    solution=_cm_solution)


def _case_solution(pred, target, num_classes):
    out = np.full((len(pred), num_classes), np.nan)
    for c in range(num_classes):
        pc, tc = pred == c, target == c
        inter = (pc & tc).sum(dim=(1, 2)).double()
        total = (pc.sum(dim=(1, 2)) + tc.sum(dim=(1, 2))).double()
        out[:, c] = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.nan).numpy()
    return out


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


def test_7_3_per_case_dice():
    verify_exercise("7.3", stub=learner_stub,
                    wrong=[_case_empty_is_perfect, _case_empty_is_zero, _case_nan_when_target_empty, _case_smoothed,
                           _case_pooled, _case_transposed, "dice"],
                    solution=_case_solution)


def _biou_solution(pred, target, dilation_ratio=0.02):
    h, w = pred.shape
    d = max(1, round(dilation_ratio * (h ** 2 + w ** 2) ** 0.5))

    def band(m):
        return m & ~ndimage.binary_erosion(m, np.ones((3, 3)), iterations=d, border_value=0)

    bp, bt = band(pred), band(target)
    return (bp & bt).sum() / (bp | bt).sum()


def _biou_border_not_boundary(pred, target, dilation_ratio=0.02):
    h, w = pred.shape
    d = max(1, round(dilation_ratio * (h ** 2 + w ** 2) ** 0.5))

    def band(m):
        return m & ~ndimage.binary_erosion(m, np.ones((3, 3)), iterations=d, border_value=1)

    bp, bt = band(pred), band(target)
    return (bp & bt).sum() / max((bp | bt).sum(), 1)


def _biou_width_one(pred, target, dilation_ratio=0.02):
    return _biou_solution(pred, target, 1e-9)  # always a 1-pixel band


def _plain_iou(pred, target, dilation_ratio=0.02):
    return (pred & target).sum() / (pred | target).sum()


def test_7_4_boundary_iou():
    verify_exercise("7.4", stub=learner_stub, wrong=[_biou_border_not_boundary, _biou_width_one, _plain_iou],
                    solution=_biou_solution)
