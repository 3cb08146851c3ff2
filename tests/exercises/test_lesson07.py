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


def _per_batch_solution(pred, target, num_classes, batch_size):
    values = [scores_from_confusion(confusion_matrix(pred[i:i + batch_size], target[i:i + batch_size],
                                                     num_classes))["miou"] for i in range(0, len(pred), batch_size)]
    return float(np.mean(values))


def _pooled(pred, target, num_classes, batch_size):
    return scores_from_confusion(confusion_matrix(pred, target, num_classes))["miou"]


def _per_image(pred, target, num_classes, batch_size):
    return _per_batch_solution(pred, target, num_classes, 1)  # ignores batch_size


def test_7_3_per_batch_average():
    verify_exercise("7.3", stub=learner_stub, wrong=[_pooled, _per_image], solution=_per_batch_solution)


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
