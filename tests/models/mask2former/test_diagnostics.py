"""query_verdicts agrees with panoptic_inference; panoptic_from_semantic against scipy's labelling by hand cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from segcourse.models.mask2former import VOID, panoptic_from_semantic, panoptic_inference, query_verdicts

THINGS = (5, 6)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("thresholds", [(0.5, 0.8, 0.5), (0.3, 0.5, 0.3), (0.7, 0.9, 0.6)])
def test_query_verdicts_kept_queries_are_the_segments_of_panoptic_inference(seed, thresholds):
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(10, 8, generator=g) * 3
    msk = torch.randn(10, 8, 8, generator=g) * 4
    st, ot, mt = thresholds
    kw = dict(score_threshold=st, overlap_threshold=ot, mask_threshold=mt)
    _pan, segments = panoptic_inference(cls, msk, THINGS, (16, 16), return_segments=True, **kw)
    verdicts = query_verdicts(cls, msk, THINGS, (16, 16), **kw)
    kept = {v["query"] for v in verdicts if v["verdict"] == "kept"}
    assert {s["query"] for s in segments} <= kept
    # a kept query that is not a segment of its own joined an earlier query of the same stuff class
    for q in kept - {s["query"] for s in segments}:
        assert verdicts[q]["category"] not in THINGS
        assert any(s["category"] == verdicts[q]["category"] for s in segments)
    probs = cls.softmax(-1)
    for v in verdicts:
        assert v["verdict"] in {"no object", "low score", "empty mask", "covered", "kept"}
        assert (v["verdict"] == "no object") == (int(probs[v["query"]].argmax()) == 7)
        if v["verdict"] == "low score":
            assert v["score"] <= st
    assert len(verdicts) == 10


def test_query_verdicts_hand_case():
    cls = torch.full((3, 8), -9.0)
    cls[0, 5] = cls[1, 5] = 9.0                    # two confident cars
    cls[2, 7] = 9.0                                # "no object"
    msk = torch.full((3, 4, 4), -9.0)
    msk[0, :2, :2] = 9.0                           # car 0: 4 px
    msk[1, :2, :3] = 8.0                           # car 1: 6 px, loses the 4 px of car 0 (lower score x prob)
    v = query_verdicts(cls, msk, THINGS)
    assert [r["verdict"] for r in v] == ["kept", "covered", "no object"]
    assert v[1]["won_fraction"] == pytest.approx(2 / 6) and v[1]["own_area"] == 6
    assert [r["verdict"] for r in query_verdicts(cls, msk, THINGS, overlap_threshold=0.3)][:2] == ["kept", "kept"]


def test_panoptic_from_semantic_components_become_instances():
    sem = np.zeros((6, 8), np.int64)
    sem[0:2, 0:2] = 5                  # car A
    sem[4:6, 6:8] = 5                  # car B, separate
    sem[3, 3] = 6                      # a one-pixel person
    sem[2, 2] = 5                      # touches car A diagonally only
    pan = panoptic_from_semantic(sem, THINGS).numpy()
    assert pan.shape == (6, 8, 2) and (pan[..., 0] == sem).all()
    assert len({int(i) for i in pan[..., 1][sem == 5]}) == 3          # 4-connectivity: the diagonal pixel alone
    assert (pan[..., 1][sem == 0] == 0).all()
    pan8 = panoptic_from_semantic(sem, THINGS, connectivity=2).numpy()
    assert len({int(i) for i in pan8[..., 1][sem == 5]}) == 2
    small = panoptic_from_semantic(sem, THINGS, min_area=2).numpy()
    assert small[3, 3, 0] == VOID and small[2, 2, 0] == VOID and small[0, 0, 0] == 5


def test_panoptic_from_semantic_batch_equals_scipy_labels():
    rng = np.random.default_rng(0)
    sem = rng.integers(0, 7, (3, 12, 12))
    pan = panoptic_from_semantic(torch.from_numpy(sem), THINGS).numpy()
    for b in range(3):
        for c in THINGS:
            _, n = ndimage.label(sem[b] == c)
            assert len(np.unique(pan[b][..., 1][sem[b] == c])) == n
        ids = pan[b][..., 1][np.isin(sem[b], THINGS)]
        assert sorted(np.unique(ids)) == list(range(1, len(np.unique(ids)) + 1))


def test_panoptic_from_semantic_bad_input():
    with pytest.raises(ValueError, match="integer"):
        panoptic_from_semantic(np.zeros((4, 4)), THINGS)
    with pytest.raises(ValueError, match="connectivity"):
        panoptic_from_semantic(np.zeros((4, 4), np.int64), THINGS, connectivity=3)


def test_thing_coverage_hand_case():
    from segcourse.models.mask2former import thing_coverage

    pan = np.zeros((4, 4, 2), np.int64)
    pan[0:2, 0:2] = (5, 1)                         # car, 4 px
    pan[3, 0:4] = (6, 2)                           # person, 4 px
    msk = torch.full((2, 4, 4), -9.0)
    msk[0, 0:2, 0:3] = 9.0                         # 6 px covering the car: IoU 4/6
    msk[1, 3, 0:2] = 9.0                           # half the person: IoU 2/4
    rows = thing_coverage(msk, pan, THINGS)
    assert [(r["category"], r["instance"], r["area"], r["query"]) for r in rows] == [(5, 1, 4, 0), (6, 2, 4, 1)]
    assert rows[0]["best_iou"] == pytest.approx(4 / 6) and rows[1]["best_iou"] == pytest.approx(0.5)
    up = thing_coverage(msk[:, ::2, ::2].contiguous(), pan, THINGS, (4, 4))   # resized masks, same shapes out
    assert len(up) == 2
    with pytest.raises(ValueError, match="size"):
        thing_coverage(msk, pan[:3], THINGS)
