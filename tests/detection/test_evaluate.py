"""segcourse.detection.evaluate.pooled_instance_f1: counts summed over images, not a mean of per-image F1s."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.detection.evaluate import pooled_instance_f1
from segcourse.metrics import instance_f1


def _maps():
    """Image 0: two nuclei, one found; image 1: twenty nuclei, all found, plus one false alarm."""
    t0, p0 = np.zeros((20, 20), int), np.zeros((20, 20), int)
    t0[2:6, 2:6], t0[10:14, 10:14] = 1, 2
    p0[2:6, 2:6] = 1
    t1, p1 = np.zeros((40, 50), int), np.zeros((40, 50), int)
    for k in range(20):
        r, c = divmod(k, 5)
        t1[8 * r + 1:8 * r + 5, 10 * c + 1:10 * c + 5] = k + 1
        p1[8 * r + 1:8 * r + 5, 10 * c + 1:10 * c + 5] = k + 1
    p1[34:38, 44:48] = 21
    return [p0, p1], [t0, t1]


def test_pooled_f1_sums_the_counts_of_every_image():
    preds, targets = _maps()
    got = pooled_instance_f1(preds, targets)
    per_image = [instance_f1(p, t) for p, t in zip(preds, targets)]
    tp, fp, fn = (sum(r[k] for r in per_image) for k in ("tp", "fp", "fn"))
    assert (got["tp"], got["fp"], got["fn"]) == (tp, fp, fn) == (21, 1, 1)
    assert got["precision"] == pytest.approx(21 / 22) and got["recall"] == pytest.approx(21 / 22)
    assert got["f1"] == pytest.approx(42 / 44)
    assert got["f1"] != pytest.approx(np.mean([r["f1"] for r in per_image]))     # not the mean of per-image F1s


def test_pooled_f1_empty_cases_follow_instance_f1():
    empty, one = np.zeros((8, 8), int), np.zeros((8, 8), int)
    one[2:5, 2:5] = 1
    nothing = pooled_instance_f1([empty], [empty])
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (1.0, 1.0, 1.0)
    for preds, targets in (([empty], [one]), ([one], [empty])):
        got, ref = pooled_instance_f1(preds, targets), instance_f1(preds[0], targets[0])
        assert {k: got[k] for k in ("precision", "recall", "f1")} == {k: ref[k] for k in ("precision", "recall", "f1")}


def test_pooled_f1_refuses_unpaired_lists():
    with pytest.raises(ValueError, match="paired by image"):
        pooled_instance_f1([np.zeros((4, 4), int)], [])
