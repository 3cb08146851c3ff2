"""Box AP, AP per IoU threshold and AP by object size of ``mask_ap``, each equal to pycocotools' COCOeval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcourse.data.instances import instance_dataset
from segcourse.detection.evaluate import crop_and_paste_ceiling
from segcourse.metrics import mask_ap
from segcourse.metrics.mask_ap import COCO_AREA_RANGES, IOU_THRESHOLDS, box_iou_matrix

from coco_reference import coco_precision


def _mean_valid(x):
    valid = x[x > -1]
    return float(valid.mean()) if valid.size else float("nan")


def _noisy_predictions(targets, seed):
    """Detections near the truth: shifted masks and boxes, a few false positives, random scores with ties."""
    rng = np.random.default_rng(seed)
    preds = []
    for t in targets:
        masks, boxes = [], []
        for m, b in zip(t["masks"].numpy().astype(bool), t["boxes"].numpy()):
            if rng.random() < 0.15:
                continue                                                     # a miss
            dy, dx = rng.integers(-2, 3, size=2)
            masks.append(np.roll(m, (dy, dx), axis=(0, 1)))
            boxes.append(b + np.array([dx, dy, dx, dy]) + rng.normal(0, 1.0, 4))
        for _ in range(rng.integers(0, 3)):                                # false positives of any size
            y, x, s = rng.integers(0, 40), rng.integers(0, 40), rng.integers(2, 24)
            m = np.zeros(t["masks"].shape[-2:], bool)
            m[y:y + s, x:x + s] = True
            masks.append(m)
            boxes.append(np.array([x, y, x + s, y + s], float))
        n = len(masks)
        h, w = t["masks"].shape[-2:]
        preds.append({"masks": torch.from_numpy(np.array(masks).reshape(n, h, w)),
                      "boxes": torch.tensor(np.array(boxes).reshape(n, 4), dtype=torch.float32),
                      "scores": torch.from_numpy(np.round(rng.random(n), 1)).float(),      # rounded: many ties
                      "labels": t["labels"][:1].repeat(n) if len(t["labels"]) else torch.ones(n, dtype=torch.int64)})
    return preds


@pytest.fixture(scope="module")
def shapes_targets():
    ds = instance_dataset("shapes", "val", count=6, size=64)
    return [ds[i][1] for i in range(len(ds))]


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("seed", [0, 1])
def test_ap_per_threshold_and_size_equal_pycocotools(shapes_targets, iou_type, seed):
    preds = _noisy_predictions(shapes_targets, seed)
    areas = torch.cat([t["area"] for t in shapes_targets])
    lo, hi = float(areas.quantile(1 / 3)), float(areas.quantile(2 / 3))
    ranges = {"a": (0.0, lo), "b": (lo, hi), "c": (hi, 1e10), **COCO_AREA_RANGES}
    ours = mask_ap(preds, shapes_targets, iou_type=iou_type, area_ranges=ranges, per_threshold=True)
    ref = coco_precision(preds, shapes_targets, iou_type)
    assert ours["map"] == pytest.approx(_mean_valid(ref), abs=1e-12)
    assert list(ours["map_per_iou"].values()) == pytest.approx([_mean_valid(ref[t]) for t in range(len(IOU_THRESHOLDS))], abs=1e-12, nan_ok=True)
    for name, rng in ranges.items():
        want = _mean_valid(coco_precision(preds, shapes_targets, iou_type, area_rng=rng))
        assert ours[f"map_{name}"] == pytest.approx(want, abs=1e-12, nan_ok=True), name


def test_box_iou_matrix_is_the_coco_iou_of_xywh_boxes():
    from pycocotools import mask as mask_utils

    a = np.array([[0.0, 0, 10, 10], [5, 5, 15, 21]])                    # pixels 0..9: a 10 x 10 box
    b = np.array([[0.0, 0, 5, 10], [20, 20, 22, 22]])
    to_xywh = lambda x: np.c_[x[:, :2], x[:, 2:] - x[:, :2]]
    ref = mask_utils.iou(to_xywh(a).tolist(), to_xywh(b).tolist(), [0, 0])
    np.testing.assert_allclose(box_iou_matrix(a, b), ref)
    assert box_iou_matrix(a, b)[0, 0] == 0.5                               # half of the 10 x 10 box


def test_default_keys_are_unchanged(shapes_targets):
    """Lesson 07 prints the whole result: the extras appear only when asked for."""
    perfect = [{**t, "scores": torch.ones(len(t["labels"]))} for t in shapes_targets]
    assert set(mask_ap(perfect, shapes_targets)) == {"map", "map_50", "map_75", "map_per_class"}


def test_true_boxes_and_masks_score_one(shapes_targets):
    perfect = [{**t, "scores": torch.ones(len(t["labels"]))} for t in shapes_targets]
    for iou_type in ("segm", "bbox"):
        assert mask_ap(perfect, shapes_targets, iou_type=iou_type)["map"] == pytest.approx(1.0)


def test_crop_and_paste_ceiling(shapes_targets):
    ceiling = crop_and_paste_ceiling(shapes_targets, size=28)
    assert len(ceiling) == len(shapes_targets)
    for c, t in zip(ceiling, shapes_targets):
        assert c["masks"].shape == t["masks"].shape and c["masks"].dtype == torch.bool
        torch.testing.assert_close(c["boxes"], t["boxes"])
        # the score is the mask's IoU with its own object: an oracle ranking
        inter = (c["masks"] & t["masks"].bool()).flatten(1).sum(1)
        union = (c["masks"] | t["masks"].bool()).flatten(1).sum(1)
        torch.testing.assert_close(c["scores"], (inter / union).float())
    # with the oracle ranking, AP at threshold t is (up to COCO's 101 recall points) the share of objects
    # whose round trip keeps IoU >= t
    ap = mask_ap(ceiling, shapes_targets, per_threshold=True)
    scores = torch.cat([c["scores"] for c in ceiling])
    labels = torch.cat([t["labels"] for t in shapes_targets])
    for ti, thr in enumerate(IOU_THRESHOLDS):
        shares = [float((scores[labels == k] >= thr).float().mean()) for k in labels.unique()]
        assert ap["map_per_iou"][round(float(thr), 2)] == pytest.approx(np.mean(shares), abs=0.02)
