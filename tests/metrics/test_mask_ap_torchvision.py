"""mask_ap on what torchvision's Mask R-CNN gives and takes equals pycocotools' COCOeval(iouType="segm")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segcourse.metrics import mask_ap

from coco_reference import coco_segm


def soft_predictions(targets, seed):
    """Mask R-CNN-like outputs: (N, 1, H, W) float probabilities, scores with ties, misses and false positives."""
    g = torch.Generator().manual_seed(seed)
    preds = []
    for t in targets:
        h, w = t["masks"].shape[-2:]
        soft = []
        for m in t["masks"]:
            if torch.rand(1, generator=g) < 0.2:
                continue                                  # a miss
            shift = int(torch.randint(-3, 4, (1,), generator=g))
            soft.append(torch.roll(m.float(), shift, dims=-1) * 0.6 + 0.35 * torch.rand(h, w, generator=g))
        for _ in range(int(torch.randint(0, 3, (1,), generator=g))):   # false positives
            fp = torch.zeros(h, w)
            y, x = torch.randint(0, h - 8, (2,), generator=g).tolist()
            fp[y:y + 8, x:x + 8] = 0.9
            soft.append(fp)
        masks = torch.stack(soft)[:, None] if soft else torch.zeros(0, 1, h, w)
        scores = torch.randint(1, 6, (len(masks),), generator=g).float() / 5
        preds.append({"masks": masks, "scores": scores, "labels": torch.ones(len(masks), dtype=torch.int64),
                      "boxes": torch.zeros(len(masks), 4)})
    return preds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_masks_and_uint8_targets_equal_pycocotools(seed):
    from segcourse.data.instances import instance_dataset

    ds = instance_dataset("cells", "val", count=4, size=64)
    targets = [ds[i][1] for i in range(len(ds))]
    h, w = targets[0]["masks"].shape[-2:]
    targets.append({"masks": torch.zeros(0, h, w, dtype=torch.float32), "labels": torch.zeros(0, dtype=torch.int64),
                    "boxes": torch.zeros(0, 4)})                     # an empty image, float (0, H, W)
    preds = soft_predictions(targets, seed)
    got = mask_ap(preds, targets, mask_threshold=0.5)
    ref = coco_segm(preds, targets, 0.5)
    assert got["map"] == pytest.approx(ref[0], abs=1e-12)
    assert got["map_50"] == pytest.approx(ref[1], abs=1e-12)
    assert got["map_75"] == pytest.approx(ref[2], abs=1e-12)
    bool_targets = [{**t, "masks": t["masks"].bool()} for t in targets]
    assert mask_ap(preds, bool_targets, mask_threshold=0.5)["map"] == got["map"]
    other = mask_ap(preds, targets, mask_threshold=0.7)
    assert other["map"] == pytest.approx(coco_segm(preds, targets, 0.7)[0], abs=1e-12)


def test_soft_masks_are_refused_without_a_threshold():
    t = [{"masks": torch.ones(1, 6, 6, dtype=torch.uint8), "labels": torch.ones(1, dtype=torch.int64)}]
    p = [{"masks": torch.rand(1, 1, 6, 6), "scores": torch.ones(1), "labels": torch.ones(1, dtype=torch.int64)}]
    with pytest.raises(ValueError, match="mask_threshold=0.5"):
        mask_ap(p, t)
    with pytest.raises(ValueError, match="binary"):
        mask_ap(p, [{**t[0], "masks": torch.ones(1, 6, 6)}], mask_threshold=0.5)
    # empty stacks of any dtype are fine, on either side
    empty_p = [{"masks": torch.zeros(0, 1, 6, 6), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}]
    assert mask_ap(empty_p, t)["map"] == 0.0
    empty_t = [{"masks": np.zeros((0, 6, 6), np.float64), "labels": np.zeros(0, np.int64)}]
    assert math.isnan(mask_ap(p, empty_t, mask_threshold=0.5)["map"])
