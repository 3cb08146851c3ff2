"""The small Mask2Former: shapes, auxiliary outputs, a loss that decreases on a fixed batch, valid panoptic
maps, semantic inference as the paper's einsum, and PQ of its outputs equal to torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from segcourse.data import load_arrays
from segcourse.metrics import panoptic_quality
from segcourse.models.mask2former import (
    VOID,
    Mask2FormerTask,
    PanopticBatches,
    SetCriterion,
    mask2former,
    panoptic_inference,
    panoptic_targets,
    predict_outputs,
    predict_panoptic,
    semantic_inference,
)
from segcourse.train import fit

THINGS, STUFFS = (5, 6), (0, 1, 2, 3, 4)


def _train(model, x, targets, *, epochs, criterion, lr=2e-3, hflip=True):
    """Lesson 09's recipe: Mask2Former through the course's fit (AdamW, one-cycle, clipping, flips)."""
    return fit(model, PanopticBatches(x, targets, batch_size=4, hflip=hflip), task=Mask2FormerTask(criterion),
               epochs=epochs, lr=lr, weight_decay=0.05, scheduler="onecycle", clip_grad_norm=1.0, amp="off",
               channels_last="off", device="cpu", progress=False, verbose=False)


@pytest.fixture(scope="module")
def street():
    d = load_arrays("street", "train", count=4, size=64)
    x = (torch.from_numpy(d["images"]).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    return x, [panoptic_targets(p, THINGS) for p in d["panoptic"]], d


def test_shapes_and_aux_outputs():
    torch.manual_seed(0)
    m = mask2former(num_classes=7, num_queries=5, num_layers=4)
    out = m(torch.randn(2, 3, 64, 96))
    assert out["class_logits"].shape == (2, 5, 8)
    assert out["mask_logits"].shape == (2, 5, 32, 48)
    assert len(out["aux"]) == 4 and out["aux"][0]["mask_logits"].shape == (2, 5, 32, 48)
    assert [b.shape[-1] for b in m.last_blocked] == [4 * 6, 8 * 12, 16 * 24, 4 * 6]   # round-robin 16, 8, 4, 16
    assert torch.isfinite(out["mask_logits"]).all()


def test_bad_stride_is_refused():
    with pytest.raises(ValueError, match="stride 3"):
        mask2former(levels=(16, 3))


def test_targets_from_a_panoptic_map():
    pan = np.zeros((4, 4, 2), np.int64)
    pan[..., 0] = 0
    pan[:2, :2] = (5, 1)
    pan[2:, 2:] = (5, 2)
    pan[0, 3] = (3, 7)                     # a stuff pixel with a stray instance id: still one segment
    t = panoptic_targets(pan, THINGS)
    assert t["labels"].tolist() == [0, 3, 5, 5]
    assert t["masks"].sum((1, 2)).tolist() == [7, 1, 4, 4]
    assert t["masks"].sum(0).eq(1).all()


def test_loss_decreases_on_a_fixed_batch(street):
    x, targets, _ = street
    torch.manual_seed(0)
    m = mask2former(num_queries=12, num_layers=3)
    crit = SetCriterion(7, num_points=128)
    with torch.no_grad():
        first = float(crit(m(x), targets)["loss"])
    history = _train(m, x, targets, epochs=15, criterion=crit, hflip=False)
    assert history[-1]["train_loss"] < 0.6 * first
    assert {"train_loss_class", "train_loss_mask", "train_loss_dice"} <= set(history[-1])
    losses = crit(m(x), targets)
    assert {"loss_class", "loss_mask", "loss_dice", "loss_class_aux0", "loss_dice_aux2"} <= set(losses)


def test_semantic_inference_is_the_sum_over_queries():
    g = torch.Generator().manual_seed(1)
    cls, msk = torch.randn(6, 4, generator=g), torch.randn(6, 5, 7, generator=g)
    got = semantic_inference(cls, msk)
    p, s = cls.softmax(-1)[:, :-1], msk.sigmoid()
    want = sum(p[q][:, None, None] * s[q][None] for q in range(6))
    torch.testing.assert_close(got, want)


def _valid(pan, things):
    cats = pan[..., 0]
    assert set(torch.unique(cats).tolist()) <= {VOID, *range(7)}
    inst = pan[..., 1]
    assert torch.all(inst[~torch.isin(cats, torch.tensor(things))] == 0)      # stuff and void: instance 0
    thing_ids = torch.unique(inst[torch.isin(cats, torch.tensor(things))])
    assert torch.all(thing_ids > 0)
    for i in thing_ids.tolist():                                               # one category per instance id
        assert len(torch.unique(cats[inst == i])) == 1


def test_panoptic_inference_gives_valid_maps():
    # query 0: stuff 0 on the left; 1 and 2: two cars; 3: a low score; 4: "no object"; 5: stuff 0 again
    cls = torch.full((6, 8), -10.0)
    for q, c in enumerate([0, 5, 5, 6, 7, 0]):
        cls[q, c] = 10.0
    cls[3, 6] = -9.0                       # its best class is then weak
    msk = torch.full((6, 8, 8), -10.0)
    msk[0, :, :4] = 10
    msk[1, :3, 4:] = 10
    msk[2, 4:, 4:] = 10
    msk[3] = 10
    msk[5, 3, 4:] = 10
    pan, segments = panoptic_inference(cls, msk, THINGS, return_segments=True)
    _valid(pan, THINGS)
    assert pan[:, :4, 0].eq(0).all()
    assert pan[0, 5].tolist() == [5, 1] and pan[6, 5].tolist() == [5, 2]
    assert pan[3, 5].tolist() == [0, 0]    # the second stuff-0 query merges into the first segment
    assert [s["category"] for s in segments] == [0, 5, 5]
    empty = panoptic_inference(torch.zeros(3, 8).index_fill_(1, torch.tensor([7]), 9.0), msk[:3], THINGS)
    assert empty[..., 0].eq(VOID).all()


def test_overlap_threshold_drops_a_covered_query():
    cls = torch.full((2, 8), -10.0)
    cls[0, 5], cls[1, 5] = 10.0, 3.0       # two cars, the second less sure and covering the first
    msk = torch.full((2, 8, 8), -10.0)
    msk[0, :4] = 10
    msk[1, :5] = 10
    pan = panoptic_inference(cls, msk, THINGS, overlap_threshold=0.8)
    assert torch.unique(pan[..., 1]).tolist() == [0, 1]


def test_pq_of_model_outputs_equals_torchmetrics(street):
    x, targets, d = street
    torch.manual_seed(0)
    m = mask2former(num_queries=12, num_layers=3)
    _train(m, x, targets, epochs=6, criterion=SetCriterion(7, num_points=128))
    out = predict_outputs(m, x)
    for thr in (0.3, 0.6):
        pan = predict_panoptic(out, THINGS, (64, 64), score_threshold=thr)
        for p in pan:
            _valid(p, THINGS)
        ours = panoptic_quality(pan, d["panoptic"], THINGS, STUFFS, allow_unknown_preds_category=True,
                                void_handling="torchmetrics")
        tm = PanopticQuality(things=set(THINGS), stuffs=set(STUFFS), allow_unknown_preds_category=True,
                             return_sq_and_rq=True)
        want = tm(pan, torch.from_numpy(d["panoptic"]))        # (pq, sq, rq)
        np.testing.assert_allclose([ours["pq"], ours["sq"], ours["rq"]], want.numpy().ravel(), atol=1e-6)
    with pytest.raises(ValueError, match="neither things"):
        panoptic_quality(pan, d["panoptic"], THINGS, STUFFS)


def test_mask2former_validates_through_fit_and_its_batches_repeat(street):
    x, targets, _ = street
    torch.manual_seed(0)
    m = mask2former(num_queries=12, num_layers=3)
    val = PanopticBatches(x, targets, batch_size=4, shuffle=False, hflip=False)
    history = fit(m, PanopticBatches(x, targets, batch_size=3), val, task=Mask2FormerTask(SetCriterion(7, num_points=64)),
                  epochs=1, device="cpu", progress=False, verbose=False)
    assert history.monitor == "val_loss" and history.mode == "min" and history[-1]["val_loss"] > 0
    assert {"val_loss_class", "val_loss_mask", "val_loss_dice"} <= set(history[-1])
    assert len(PanopticBatches(x, targets, batch_size=3)) == 2
    first = [(b[0].clone(), [t["masks"].clone() for t in b[1]]) for b in PanopticBatches(x, targets, batch_size=3, seed=4)]
    again = list(PanopticBatches(x, targets, batch_size=3, seed=4))
    for (xa, ma), (xb, tb) in zip(first, again):
        assert torch.equal(xa, xb) and all(torch.equal(a, t["masks"]) for a, t in zip(ma, tb))
    with pytest.raises(ValueError, match="4 images but 3 targets"):
        PanopticBatches(x, targets[:3])
