"""Meta-tests of lesson 08's checks: "not attempted" on the learner's stub, "failed" on plausible
wrong answers, "passed" on the solution (stub and solution read from solutions/08_mask_rcnn.ipynb)."""

from __future__ import annotations

import math

import pytest
import torch

from .notebook_solutions import solution, verify_against_notebook


# ---- 8.1 ------------------------------------------------------------------------------------------
def iou_no_clamp(boxes1, boxes2):          # disjoint boxes get a "positive" intersection
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    wh = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def iou_plus_one(boxes1, boxes2):          # the old "+ 1" pixel convention
    return solution("8.1")(boxes1 + torch.tensor([0.0, 0, 1, 1], dtype=boxes1.dtype),
                        boxes2 + torch.tensor([0.0, 0, 1, 1], dtype=boxes2.dtype))


def intersection_over_first(boxes1, boxes2):
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    wh = (torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.max(boxes1[:, None, :2], boxes2[None, :, :2])).clamp(min=0)
    return wh[..., 0] * wh[..., 1] / area1[:, None]


def iou_yxyx(boxes1, boxes2):              # reads the boxes as [y1, x1, y2, x2]: same IoU! only fails if mixed
    return solution("8.1")(boxes1[:, [1, 0, 3, 2]], boxes2)


# ---- 8.2 ------------------------------------------------------------------------------------------
def nms_ge(boxes, scores, iou_threshold):          # suppresses at IoU == threshold too
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = solution("8.1")(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] >= iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def nms_suppressed_still_suppress(boxes, scores, iou_threshold):   # a discarded box still discards others
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = solution("8.1")(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if not suppressed[i]:
            keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def nms_unstable_ties(boxes, scores, iou_threshold):   # reversed order among ties
    n = len(scores)
    order = sorted(range(n), key=lambda i: (-float(scores[i]), -i))
    iou = solution("8.1")(boxes, boxes) if n else torch.zeros(0, 0)
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    for i in order:
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def nms_float_empty(boxes, scores, iou_threshold):     # torch.tensor([]) is float32
    keep = solution("8.2")(boxes, scores, iou_threshold).tolist()
    return torch.tensor(keep) if keep else torch.tensor([])


def nms_no_order(boxes, scores, iou_threshold):        # walks the input order, not the score order
    iou = solution("8.1")(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in range(len(boxes)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


# ---- 8.3 ------------------------------------------------------------------------------------------
def _bilinear(feature, y, x):
    _, h, w = feature.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return feature.new_zeros(feature.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * feature[:, y0, x0] + (1 - ly) * lx * feature[:, y0, x1]
            + ly * (1 - lx) * feature[:, y1, x0] + ly * lx * feature[:, y1, x1])


def make_roi_align(offset_rule="ok", sampler=_bilinear, min_size=True, adaptive=True):
    """RoI Align with one thing changed (the defaults give the right one: see test_the_solutions_equal_the_package)."""
    def roi(feature, box, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        x1, y1, x2, y2 = (float(v) for v in box)
        offset = 0.5 if (aligned and offset_rule == "ok") else 0.0
        sx, sy = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        w, h = x2 * spatial_scale - offset - sx, y2 * spatial_scale - offset - sy
        if not aligned and min_size:
            w, h = max(w, 1.0), max(h, 1.0)
        bw, bh = w / output_size, h / output_size
        gh = sampling_ratio if sampling_ratio > 0 else (math.ceil(h / output_size) if adaptive else 1)
        gw = sampling_ratio if sampling_ratio > 0 else (math.ceil(w / output_size) if adaptive else 1)
        out = feature.new_zeros((feature.shape[0], output_size, output_size))
        for ph in range(output_size):
            for pw in range(output_size):
                acc = feature.new_zeros(feature.shape[0])
                for iy in range(gh):
                    for ix in range(gw):
                        acc = acc + sampler(feature, sy + ph * bh + (iy + 0.5) * bh / gh, sx + pw * bw + (ix + 0.5) * bw / gw)
                out[:, ph, pw] = acc / max(gh * gw, 1)
        return out
    return roi


def _nearest(feature, y, x):
    _, h, w = feature.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return feature.new_zeros(feature.shape[0])
    return feature[:, min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)]


def _bilinear_zero_outside(feature, y, x):   # no clamping between -1 and 0: out-of-map samples give 0
    _, h, w = feature.shape
    if y < 0 or x < 0 or y > h - 1 or x > w - 1:
        return feature.new_zeros(feature.shape[0])
    return _bilinear(feature, y, x)


# ---- the meta-test -------------------------------------------------------------------------------
WRONG = {
    "8.1": [iou_no_clamp, iou_plus_one, intersection_over_first, iou_yxyx, 3],
    "8.2": [nms_ge, nms_suppressed_still_suppress, nms_unstable_ties, nms_float_empty, nms_no_order],
    "8.3": [make_roi_align(offset_rule="never"), make_roi_align(sampler=_nearest), make_roi_align(min_size=False),
            make_roi_align(adaptive=False), make_roi_align(sampler=_bilinear_zero_outside)],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])


def test_the_solutions_equal_the_package():
    from segcourse import detection as D

    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(12, 2, generator=g) * 30
    boxes = torch.cat([boxes, boxes + 2 + torch.rand(12, 2, generator=g) * 20], 1)
    scores = torch.rand(12, generator=g)
    torch.testing.assert_close(solution("8.1")(boxes, boxes), D.box_iou(boxes, boxes))
    assert solution("8.2")(boxes, scores, 0.3).tolist() == D.nms(boxes, scores, 0.3).tolist()
    feature = torch.rand(2, 9, 9, generator=g)
    for aligned in (False, True):
        want = D.roi_align_one(feature, boxes[0] / 4, 3, 1.0, 2, aligned)
        torch.testing.assert_close(solution("8.3")(feature, boxes[0] / 4, 3, 1.0, 2, aligned), want)
        torch.testing.assert_close(make_roi_align()(feature, boxes[0] / 4, 3, 1.0, 2, aligned), want)
