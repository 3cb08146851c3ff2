"""Checks for lesson 07 (metrics): predicting what deleting a rare class does to pixel accuracy
and mIoU, the confusion matrix with one ``bincount``, per-case Dice with an explicit empty-case
policy, and Boundary IoU from scratch.

Each check compares the learner's answer with :mod:`segcourse.metrics` (itself cross-checked
against torchmetrics and the Boundary IoU reference code) on hidden cases.
"""

from __future__ import annotations

import numpy as np
import torch

from ..constants import IGNORE_INDEX
from ..metrics import boundary_iou, confusion_matrix, scores_from_confusion
from ..metrics.per_case import per_case_dice
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
# 7.3 -- per-case Dice with an explicit empty-case policy
# ------------------------------------------------------------------------------------------


def _case_cases():
    g = torch.Generator().manual_seed(77)
    target = torch.zeros(4, 8, 8, dtype=torch.int64)
    target[:, 2:5, 2:5] = 1
    target[0, 6:, 6:] = 2                     # class 2 only in the first image's target
    pred = target.clone()
    noise = torch.rand(target.shape, generator=g) < 0.15
    pred[noise] = torch.randint(0, 2, (int(noise.sum()),), generator=g)
    pred[3, 0, 0] = 2                          # a false alarm of class 2 in image 3
    yield "4 images, a class present in one of them", pred, target, 3
    yield "a class absent from every image (num_classes=4)", pred, target, 4
    t = torch.zeros(2, 5, 5, dtype=torch.int64)
    p = t.clone()
    t[0, 1:3, 1:3] = 1                        # image 0: class 1 entirely missed
    p[1, 0, :2] = 1                           # image 1: class 1 predicted where there is none
    yield "a missed class and a false alarm", p, t, 2
    yield "uint8 masks", pred.to(torch.uint8), target.to(torch.uint8), 3


def _as_array(got) -> np.ndarray:
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().numpy()
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"expected an (N, C) array of numbers, got {type(got).__name__}") from None


@exercise("7.3", title="Per-case Dice with an empty-case policy", level="core", minutes=15, kind="implement",
          goal="Score every class in every image separately, as medical segmentation reports per-case Dice, and "
               "decide what an empty case scores: nothing to find and nothing found is not a perfect score.",
          hint="For each class c: pc = pred == c, tc = target == c; inter = (pc & tc).sum over (H, W), "
               "total = pc.sum + tc.sum over (H, W); Dice = 2 * inter / total where total > 0, NaN where total == 0.")
def check_per_case_dice(candidate):
    expect_callable(candidate, "per_case_dice(pred, target, num_classes)")
    for name, pred, target, num_classes in _case_cases():
        with case(name):
            got = _as_array(candidate(pred.clone(), target.clone(), num_classes))
            want = per_case_dice(pred, target, num_classes)
            if got.shape == want.shape[::-1] and got.shape != want.shape:
                raise CheckFailed(f"shape {got.shape}: the rows must be the images (N) and the columns the classes (C)")
            expect_equal(got.shape, want.shape, "shape (N, C)")
            nan_want, nan_got = np.isnan(want), np.isnan(got)
            if (nan_want & ~nan_got).any():
                value = got[nan_want & ~nan_got][0]
                raise CheckFailed(f"a class in neither the prediction nor the target of an image got {value:g}; "
                                  f"there is nothing to score there: return NaN, so that np.nanmean leaves it out")
            if (nan_got & ~nan_want).any():
                raise CheckFailed("you returned NaN where the class is in the prediction or the target (but not both): "
                                  "a missed class or a false alarm is an error, Dice 0")
            expect_close(got[~nan_want], want[~nan_want], "per-case Dice", atol=1e-6)


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
