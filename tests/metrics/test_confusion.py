"""confusion_matrix / ConfusionMatrix / scores_from_confusion against torchmetrics and hand-derived cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from segcourse.constants import IGNORE_INDEX
from segcourse.metrics import ConfusionMatrix, confusion_matrix, logits_to_pred, scores_from_confusion


def _random_case(seed, num_classes=5, shape=(3, 17, 19), ignore_frac=0.0, missing=()):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=g)
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target, torch.randint(0, num_classes, shape, generator=g))
    for c in missing:  # remove class c from both
        target[target == c] = (c + 1) % num_classes
        pred[pred == c] = (c + 1) % num_classes
    if ignore_frac:
        target[torch.rand(shape, generator=g) < ignore_frac] = IGNORE_INDEX
    return pred, target


# --- hand-derived tiny cases ---------------------------------------------------------------

def test_tiny_case_by_hand():
    # target [0,0,1,1], pred [0,1,1,1]: cm = [[1,1],[0,2]]
    # iou0 = 1/(1+1+0) = 1/2, iou1 = 2/(2+1+0) = 2/3; dice0 = 2/3, dice1 = 4/5
    # pixel acc = 3/4; recall = [1/2, 1]; precision = [1, 2/3]; fwiou = .5*.5 + .5*2/3
    cm = confusion_matrix(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]), 2)
    assert cm.tolist() == [[1, 1], [0, 2]] and cm.dtype == torch.int64
    s = scores_from_confusion(cm)
    assert s["pixel_accuracy"] == pytest.approx(3 / 4)
    torch.testing.assert_close(s["iou"], torch.tensor([1 / 2, 2 / 3], dtype=torch.float64))
    torch.testing.assert_close(s["dice"], torch.tensor([2 / 3, 4 / 5], dtype=torch.float64))
    torch.testing.assert_close(s["recall"], torch.tensor([1 / 2, 1.0], dtype=torch.float64))
    torch.testing.assert_close(s["precision"], torch.tensor([1.0, 2 / 3], dtype=torch.float64))
    assert s["mean_accuracy"] == pytest.approx(3 / 4)
    assert s["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert s["fwiou"] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_nan_policy_absent_and_prediction_only_classes():
    # class 2 absent from both -> NaN; class 1 only predicted -> iou 0, recall NaN, precision 0
    target = torch.tensor([0, 0, 0, 0])
    pred = torch.tensor([0, 0, 1, 1])
    s = scores_from_confusion(confusion_matrix(pred, target, 3))
    assert math.isnan(s["iou"][2]) and math.isnan(s["dice"][2])
    assert s["iou"][1] == 0 and s["precision"][1] == 0 and math.isnan(s["recall"][1])
    # miou over classes 0 and 1: (2/4 + 0) / 2; mean_accuracy over class 0 only: 2/4
    assert s["miou"] == pytest.approx(0.25)
    assert s["mean_accuracy"] == pytest.approx(0.5)


def test_empty_matrix_gives_nan():
    s = scores_from_confusion(torch.zeros(3, 3, dtype=torch.int64))
    assert math.isnan(s["pixel_accuracy"]) and math.isnan(s["miou"]) and math.isnan(s["fwiou"])


# --- cross-checks against torchmetrics --------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ignore_frac,missing", [(0.0, ()), (0.2, ()), (0.1, (3,)), (0.0, (0, 4))])
def test_matches_torchmetrics(seed, ignore_frac, missing):
    C = 5
    pred, target = _random_case(seed, C, ignore_frac=ignore_frac, missing=missing)
    ii = IGNORE_INDEX if ignore_frac else None
    cm = confusion_matrix(pred, target, C, ignore_index=ii)
    ref_cm = MulticlassConfusionMatrix(C, ignore_index=ii)(pred, target)
    torch.testing.assert_close(cm, ref_cm.long())
    s = scores_from_confusion(cm)
    miou_ref = MulticlassJaccardIndex(C, average="macro", ignore_index=ii)(pred, target)
    assert s["miou"] == pytest.approx(float(miou_ref), abs=1e-6)
    iou_ref = MulticlassJaccardIndex(C, average="none", ignore_index=ii)(pred, target).double()
    present = ~torch.isnan(s["iou"])
    torch.testing.assert_close(s["iou"][present], iou_ref[present], atol=1e-6, rtol=0)
    acc_ref = multiclass_accuracy(pred, target, C, average="micro", ignore_index=ii)
    assert s["pixel_accuracy"] == pytest.approx(float(acc_ref), abs=1e-6)
    f1_ref = multiclass_f1_score(pred, target, C, average="none", ignore_index=ii).double()
    torch.testing.assert_close(s["dice"][present], f1_ref[present], atol=1e-6, rtol=0)
    if not missing:  # torchmetrics' macro accuracy counts absent classes as 0; we leave them out
        macc_ref = multiclass_accuracy(pred, target, C, average="macro", ignore_index=ii)
        assert s["mean_accuracy"] == pytest.approx(float(macc_ref), abs=1e-6)


def test_numpy_input_and_dtypes():
    pred, target = _random_case(7, 4)
    ref = confusion_matrix(pred, target, 4)
    torch.testing.assert_close(confusion_matrix(pred.numpy().astype(np.uint8), target.numpy().astype(np.int32), 4), ref)
    torch.testing.assert_close(confusion_matrix(pred.to(torch.uint8), target, 4), ref)
    b = confusion_matrix(torch.tensor([True, False]), torch.tensor([True, True]), 2)
    assert b.tolist() == [[0, 0], [1, 1]]


def test_does_not_modify_inputs():
    pred, target = _random_case(3, 4, ignore_frac=0.1)
    p0, t0 = pred.clone(), target.clone()
    confusion_matrix(pred, target, 4, ignore_index=IGNORE_INDEX)
    assert torch.equal(pred, p0) and torch.equal(target, t0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    pred, target = _random_case(1, 6, ignore_frac=0.1)
    cpu = confusion_matrix(pred, target, 6, IGNORE_INDEX)
    gpu = confusion_matrix(pred.cuda(), target.cuda(), 6, IGNORE_INDEX)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)


# --- properties ---------------------------------------------------------------------------------

def test_iou_of_identical_is_one_and_dice_relation():
    _, target = _random_case(11, 6)
    s = scores_from_confusion(confusion_matrix(target, target, 6))
    assert s["miou"] == 1.0 and s["pixel_accuracy"] == 1.0
    pred, target = _random_case(12, 6)
    s = scores_from_confusion(confusion_matrix(pred, target, 6))
    torch.testing.assert_close(s["dice"], 2 * s["iou"] / (1 + s["iou"]))


def test_permuting_class_ids_changes_nothing():
    C = 6
    pred, target = _random_case(13, C)
    perm = torch.randperm(C, generator=torch.Generator().manual_seed(0))
    s = scores_from_confusion(confusion_matrix(pred, target, C))
    sp = scores_from_confusion(confusion_matrix(perm[pred], perm[target], C))
    for key in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou"):
        assert sp[key] == pytest.approx(s[key])
    for key in ("iou", "dice", "precision", "recall"):
        torch.testing.assert_close(sp[key][perm], s[key])


def test_ignored_pixels_change_nothing():
    C = 4
    pred, target = _random_case(14, C)
    base = confusion_matrix(pred, target, C, ignore_index=IGNORE_INDEX)
    # add ignored pixels with arbitrary (even out-of-range) predictions
    extra_t = torch.full((50,), IGNORE_INDEX)
    extra_p = torch.randint(0, 256, (50,))
    both = confusion_matrix(torch.cat([pred.flatten(), extra_p]), torch.cat([target.flatten(), extra_t]), C,
                            IGNORE_INDEX)
    torch.testing.assert_close(both, base)


def test_ignore_index_defaults_to_the_course_constant():
    # One ignore policy: confusion_matrix and ConfusionMatrix default to IGNORE_INDEX, like every loss.
    C = 4
    pred, target = _random_case(16, C, ignore_frac=0.1)
    assert bool((target == IGNORE_INDEX).any())
    explicit = confusion_matrix(pred, target, C, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(confusion_matrix(pred, target, C), explicit)
    meter = ConfusionMatrix(C)
    assert meter.ignore_index == IGNORE_INDEX
    torch.testing.assert_close(meter.update(pred, target).compute(), explicit)
    # ignore_index=None stays available, and then the ignore value is an error
    with pytest.raises(ValueError, match="ignore_index"):
        ConfusionMatrix(C, ignore_index=None).update(pred, target)
    # without any ignored pixel the default changes nothing
    clean = torch.where(target == IGNORE_INDEX, 0, target)
    torch.testing.assert_close(confusion_matrix(pred, clean, C), confusion_matrix(pred, clean, C, ignore_index=None))


def test_accumulating_batches_equals_one_pass():
    C = 4
    pred, target = _random_case(15, C, shape=(8, 16, 16), ignore_frac=0.05)
    acc = ConfusionMatrix(C, ignore_index=IGNORE_INDEX)
    for i in range(0, 8, 3):
        acc.update(pred[i:i + 3], target[i:i + 3])
    torch.testing.assert_close(acc.compute(), confusion_matrix(pred, target, C, IGNORE_INDEX))
    assert acc.scores()["miou"] == pytest.approx(scores_from_confusion(acc.compute())["miou"])
    acc.reset()
    assert int(acc.compute().sum()) == 0


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("pred,target,kw,match", [
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), {}, "same shape"),
    (torch.zeros(4), torch.zeros(4, dtype=torch.long), {}, "integer class ids"),
    (torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 3]), {}, "class id 3"),
    (torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, IGNORE_INDEX, 1]), {"ignore_index": None}, "ignore_index"),
    (torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 7, 1]), {}, "class id 7"),
    (torch.zeros(4, dtype=torch.long), torch.tensor([0, -1, 0, 1]), {}, "class id -1"),
    (torch.tensor([0, 5, 0, 0]), torch.tensor([0, 1, 0, 1]), {}, "pred holds class id 5"),
    (torch.tensor([0, -2, 0, 0]), torch.tensor([0, 1, 0, 1]), {"ignore_index": IGNORE_INDEX}, "pred holds"),
])
def test_bad_input_raises(pred, target, kw, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(pred, target, 3, **kw)


def test_bad_types_and_num_classes():
    with pytest.raises(TypeError, match="torch.Tensor or a numpy array"):
        confusion_matrix([0, 1], [0, 1], 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(torch.zeros(2, 3))


def test_logits_to_pred():
    logits = torch.tensor([[[[0.0, 2.0]], [[1.0, 0.0]]]])  # (1, 2, 1, 2)
    assert logits_to_pred(logits).tolist() == [[[1, 0]]]
    assert logits_to_pred(torch.tensor([[[[-1.0, 1.0]]]])).tolist() == [[[0, 1]]]
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        logits_to_pred(torch.zeros(2, 3))
