"""Checks for lesson 07 (metrics): predicting what deleting a rare class does to pixel accuracy
and mIoU, the confusion matrix with one ``bincount``, reproducing the per-batch averaging bug,
and Boundary IoU from scratch.

Each check compares the learner's answer with :mod:`segcourse.metrics` (itself cross-checked
against torchmetrics and the Boundary IoU reference code) on hidden cases.
"""

from __future__ import annotations

import numpy as np
import torch

from ..constants import IGNORE_INDEX
from ..metrics import boundary_iou, confusion_matrix, scores_from_confusion
from ..metrics.explore import per_batch_mean_miou
from .registry import CheckFailed, case, exercise, expect_callable, expect_close, expect_equal, expect_tensor

# ------------------------------------------------------------------------------------------
# 7.1 -- predict: a perfect 4-class prediction loses its rare class
# ------------------------------------------------------------------------------------------


def rare_class_case() -> tuple[torch.Tensor, torch.Tensor]:
    """The 7.1 setting: a 100 x 100 target with class 0 on 69 % of the pixels, classes 1 and 2 on 15 %
    each and class 3 on 1 % (a 10 x 10 square); the prediction is perfect except that every class-3
    pixel is predicted as background (class 0). Returns ``(pred, target)``, ``(100, 100)`` int64."""
    target = torch.zeros(100, 100, dtype=torch.int64)
    target[:50, 70:] = 1          # 50 x 30 = 1500 pixels
    target[50:, 70:] = 2          # 1500 pixels
    target[40:50, 30:40] = 3      # 100 pixels = 1 %
    pred = target.clone()
    pred[target == 3] = 0
    return pred, target


@exercise("7.1", title="Predict: delete the rare class", level="warm-up", minutes=5, kind="predict",
          goal="See that pixel accuracy barely notices a class that is never found, while mIoU loses 1/C of "
               "its value: every class weighs the same in mIoU, every pixel the same in accuracy.",
          hint="Pixel accuracy: 99 of every 100 pixels are still right. mIoU: classes 1 and 2 keep IoU 1, class 3 "
               "drops to 0, background gains 100 false positives: IoU = 6900 / 7000. Average the four.")
def check_rare_class(prediction):
    if not isinstance(prediction, dict):
        raise CheckFailed(f"expected a dict with keys 'pixel_accuracy' and 'miou', got {type(prediction).__name__}")
    missing = {"pixel_accuracy", "miou"} - set(prediction)
    if missing:
        raise CheckFailed(f"the dict is missing the key(s) {sorted(missing)}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    pred, target = rare_class_case()
    s = scores_from_confusion(confusion_matrix(pred, target, 4))
    for key in ("pixel_accuracy", "miou"):
        try:
            got = float(prediction[key])
        except (TypeError, ValueError):
            raise CheckFailed(f"{key}: expected a number, got {prediction[key]!r}") from None
        if abs(got - s[key]) > 0.01:
            raise CheckFailed(f"{key}: your prediction {got:.3f} is more than 0.01 away from the measured value")


# ------------------------------------------------------------------------------------------
# 7.2 -- the confusion matrix with one bincount
# ------------------------------------------------------------------------------------------


def _cm_cases():
    g = torch.Generator().manual_seed(707)
    target = torch.randint(0, 3, (2, 5, 7), generator=g)
    pred = torch.randint(0, 3, (2, 5, 7), generator=g)
    yield "3 classes, no ignore", pred, target, 3, None
    t = target.clone()
    t[0, 0] = IGNORE_INDEX
    yield "ignored pixels (255) with arbitrary predictions", pred, t, 3, IGNORE_INDEX
    yield "a class absent from both (num_classes=5)", pred, target, 5, None
    t = torch.zeros(4, 4, dtype=torch.int64)
    p = torch.zeros(4, 4, dtype=torch.int64)
    p[0, :2] = 1
    yield "rows = target, columns = prediction", p, t, 2, None
    yield "uint8 masks", pred.to(torch.uint8), target.to(torch.uint8), 3, None


@exercise("7.2", title="The confusion matrix with one bincount", level="core", minutes=15, kind="implement",
          goal="Count (target, prediction) pairs for every pixel at once -- the O(C²) summary every "
               "segmentation score is computed from -- and leave ignored pixels out.",
          hint="Flatten; keep = target != ignore_index; index = target[keep] * num_classes + pred[keep] (as int64); "
               "torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes).")
def check_confusion_matrix(candidate):
    expect_callable(candidate, "confusion_matrix_bincount(pred, target, num_classes, ignore_index)")
    for name, pred, target, num_classes, ignore in _cm_cases():
        with case(name):
            got = candidate(pred.clone(), target.clone(), num_classes, ignore)
            expect_tensor(got)
            want = confusion_matrix(pred, target, num_classes, ignore)
            expect_equal(tuple(got.shape), tuple(want.shape), "shape")
            if got.t().equal(want) and not want.equal(want.t()):
                raise CheckFailed("the matrix is transposed: rows must be the target class, columns the prediction")
            expect_equal(got.long(), want, "counts")


# ------------------------------------------------------------------------------------------
# 7.3 -- break it: average mIoU per batch
# ------------------------------------------------------------------------------------------


def _batch_cases():
    g = torch.Generator().manual_seed(77)
    target = torch.zeros(6, 8, 8, dtype=torch.int64)
    target[:, 2:5, 2:5] = 1
    target[0, 6:, 6:] = 2                     # class 2 only in the first image
    pred = target.clone()
    noise = torch.rand(target.shape, generator=g) < 0.15
    pred[noise] = torch.randint(0, 3, (int(noise.sum()),), generator=g)
    yield "batches of 2", pred, target, 3, 2
    yield "batches of 4 (a short last batch)", pred, target, 3, 4


@exercise("7.3", title="Break it: average mIoU batch by batch", level="core", minutes=15, kind="break-it",
          goal="Reproduce the per-batch averaging bug of the source article, measure how far it is from the pooled "
               "confusion matrix, and explain why.",
          hint="For each slice pred[i:i + batch_size], compute that batch's mIoU with "
               "scores_from_confusion(confusion_matrix(...))['miou'], then return the plain mean of those numbers.")
def check_per_batch(candidate):
    expect_callable(candidate, "miou_averaged_per_batch(pred, target, num_classes, batch_size)")
    for name, pred, target, num_classes, batch in _batch_cases():
        with case(name):
            got = candidate(pred.clone(), target.clone(), num_classes, batch)
            pooled = scores_from_confusion(confusion_matrix(pred, target, num_classes))["miou"]
            if abs(float(got) - pooled) < 1e-9:
                raise CheckFailed("this is the pooled (correct) mIoU -- the exercise asks for the buggy per-batch "
                                  "average, to see how far it is")
            expect_close(float(got), per_batch_mean_miou(pred, target, num_classes, batch), "per-batch average mIoU")


# ------------------------------------------------------------------------------------------
# 7.4 -- Boundary IoU from scratch
# ------------------------------------------------------------------------------------------


def _boundary_cases():
    yy, xx = np.mgrid[:48, :64]
    disk = (yy - 24) ** 2 + (xx - 30) ** 2 < 15 ** 2
    yield "a disk and itself", disk, disk, 0.02
    yield "a disk shifted by 2 pixels", np.roll(disk, 2, axis=1), disk, 0.02
    yield "a wider band (dilation_ratio=0.1)", np.roll(disk, 3, axis=0), disk, 0.1
    square = np.zeros((48, 64), bool)
    square[:20, :20] = True                       # touches the image border
    yield "an object cut by the image border", square, np.roll(square, 1, axis=1), 0.02
    yield "a grown square", np.pad(square[:-4, :-4], ((2, 2), (2, 2))) | square, square, 0.05


@exercise("7.4", title="Boundary IoU from scratch", level="stretch", minutes=25, kind="implement",
          goal="Write the boundary band of Cheng et al. (erosion with a 3x3 square, width a fraction of the "
               "diagonal, image border counted as boundary) and the IoU of two bands.",
          hint="d = max(1, round(dilation_ratio * sqrt(H**2 + W**2))); band = mask & ~scipy.ndimage.binary_erosion("
               "mask, np.ones((3, 3)), iterations=d, border_value=0); IoU = |bp & bt| / |bp | bt|.")
def check_boundary_iou(candidate):
    expect_callable(candidate, "my_boundary_iou(pred, target, dilation_ratio)")
    for name, pred, target, ratio in _boundary_cases():
        with case(name):
            got = candidate(pred.copy(), target.copy(), ratio)
            expect_close(float(got), boundary_iou(pred, target, ratio), "Boundary IoU", atol=1e-9)
