"""Checks for lesson 08 (Mask R-CNN): box IoU, greedy NMS and RoIAlign's bilinear sampling, by hand.

Each check compares the learner's function with torchvision (``ops.box_iou``, ``ops.nms``,
``ops.roi_align``) on cases the notebook does not show: disjoint, touching and nested boxes, score
ties, empty inputs, boxes partly outside the feature map, both ``aligned`` conventions.
"""

from __future__ import annotations

import torch

from .registry import CheckFailed, case, exercise, expect_callable, expect_close, expect_equal, expect_tensor

# ------------------------------------------------------------------------------------------
# 8.1 -- box IoU
# ------------------------------------------------------------------------------------------


def _iou_cases():
    g = torch.Generator().manual_seed(801)
    xy = torch.rand(9, 2, generator=g) * 40
    a = torch.cat([xy, xy + 1 + torch.rand(9, 2, generator=g) * 20], 1)
    xy = torch.rand(5, 2, generator=g) * 40
    b = torch.cat([xy, xy + 1 + torch.rand(5, 2, generator=g) * 20], 1)
    yield "random boxes (9 x 5)", a, b
    yield "disjoint boxes give 0", torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[20.0, 20, 30, 30], [10.0, 0, 20, 10]])
    yield "a box inside another", torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[2.0, 2, 4, 7]])
    yield "identical boxes give 1", a[:3], a[:3]
    yield "thin boxes overlapping on a strip", torch.tensor([[0.0, 0, 100, 1]]), torch.tensor([[50.0, 0, 150, 1]])
    yield "an empty second set: shape (N, 0)", a[:4], torch.zeros(0, 4)
    yield "float64 boxes", a.double(), b.double()


@exercise("8.1", title="Box IoU by hand", level="warm-up", minutes=10, kind="implement",
          goal="Write the (N, M) IoU matrix of two sets of xyxy boxes with broadcasting, equal to torchvision.ops.box_iou.",
          hint="Broadcast so that every box of the first set meets every box of the second (new axes, shape "
               "(N, M, 2) for the corners). One corner of the intersection is a maximum, the other a minimum; a width "
               "must not go negative when boxes miss each other; the union counts the intersection once.")
def check_box_iou(candidate):
    from torchvision.ops import box_iou

    expect_callable(candidate, "my_box_iou(boxes1, boxes2)")
    for name, a, b in _iou_cases():
        with case(name):
            got = candidate(a.clone(), b.clone())
            expect_tensor(got, " (N, M)")
            expect_close(got, box_iou(a, b), "IoU matrix", atol=1e-6)


# ------------------------------------------------------------------------------------------
# 8.2 -- greedy NMS
# ------------------------------------------------------------------------------------------


def _nms_cases():
    g = torch.Generator().manual_seed(802)
    xy = torch.rand(30, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(30, 2, generator=g) * 25], 1)
    yield "30 random boxes, threshold 0.5", boxes, torch.rand(30, generator=g), 0.5
    yield "30 random boxes, threshold 0.2", boxes, torch.rand(30, generator=g), 0.2
    tied = (torch.randint(0, 3, (30,), generator=g).float() + 1) / 3
    yield "many equal scores (ties keep the input order)", boxes, tied, 0.4
    same = torch.tensor([[0.0, 0, 10, 10]] * 3 + [[30.0, 30, 40, 40]])
    yield "three copies of one box with the same score", same, torch.tensor([0.5, 0.5, 0.5, 0.4]), 0.5
    yield "IoU exactly at the threshold is kept", torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 20]]), torch.tensor([0.9, 0.8]), 0.5
    chain = torch.tensor([[0.0, 0, 10, 10], [4.0, 0, 14, 10], [8.0, 0, 18, 10]])
    yield "a chain: a discarded box discards nothing", chain, torch.tensor([0.9, 0.8, 0.7]), 0.3
    yield "no boxes at all", torch.zeros(0, 4), torch.zeros(0), 0.5
    yield "one box", torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([0.1]), 0.5


@exercise("8.2", title="Greedy NMS by hand", level="core", minutes=15, kind="implement",
          goal="Write greedy non-maximum suppression, equal to torchvision.ops.nms: the kept indices by "
               "decreasing score, ties in input order, empty input giving an empty int64 tensor.",
          hint="Fix the visiting order first (which sort keeps equal scores in input order?), then walk it, "
               "keeping a box unless an earlier kept box overlaps it by more than the threshold (equal is not more). "
               "What should an empty result look like, dtype included?")
def check_nms(candidate):
    from torchvision.ops import nms

    expect_callable(candidate, "my_nms(boxes, scores, iou_threshold)")
    for name, boxes, scores, thr in _nms_cases():
        with case(name):
            got = candidate(boxes.clone(), scores.clone(), thr)
            expect_tensor(got, " of kept indices")
            if got.dtype != torch.int64:
                raise CheckFailed(f"the kept indices must be int64 (as torchvision's), got {got.dtype}")
            expect_equal(got, nms(boxes, scores, thr), "kept indices")


# ------------------------------------------------------------------------------------------
# 8.3 -- RoIAlign for one box
# ------------------------------------------------------------------------------------------


def _roi_cases():
    g = torch.Generator().manual_seed(803)
    feature = torch.rand(3, 11, 13, generator=g, dtype=torch.float64)
    yield "a box inside, sampling_ratio 2, aligned=False", feature, [2.3, 1.7, 9.8, 8.1], 3, 1.0, 2, False
    yield "a box inside, sampling_ratio 2, aligned=True", feature, [2.3, 1.7, 9.8, 8.1], 3, 1.0, 2, True
    yield "stride 4 (spatial_scale 0.25), 4 x 4 bins", feature, [5.0, 3.0, 40.0, 33.0], 4, 0.25, 2, True
    yield "adaptive sampling (sampling_ratio -1)", feature, [0.5, 0.5, 12.0, 10.0], 2, 1.0, -1, False
    yield "a box partly outside the map", feature, [-3.0, 6.0, 16.0, 14.0], 3, 1.0, 2, True
    yield "a box smaller than one pixel, aligned=False", feature, [4.2, 4.2, 4.6, 4.5], 2, 1.0, 2, False
    yield "a box smaller than one pixel, aligned=True", feature, [4.2, 4.2, 4.6, 4.5], 2, 1.0, 2, True


@exercise("8.3", title="RoIAlign sampling for one box", level="stretch", minutes=25, kind="implement",
          goal="Write RoIAlign for one box -- bins, regularly spaced samples, bilinear interpolation with torchvision's "
               "border rule -- equal to torchvision.ops.roi_align for sampling_ratio > 0 and <= 0, aligned True and False.",
          hint="Write the interpolation at one point first, with the border rules of the exercise text, and test it "
               "between four known pixels. Then the box: scale it (and shift it if aligned), split it into bins, place "
               "the samples at regular spacing inside each bin, and average them.")
def check_roi_align(candidate):
    from torchvision.ops import roi_align

    expect_callable(candidate, "my_roi_align(feature, box, output_size, spatial_scale, sampling_ratio, aligned)")
    for name, feature, box, size, scale, ratio, aligned in _roi_cases():
        with case(name):
            got = candidate(feature.clone(), torch.tensor(box, dtype=torch.float64), size, scale, ratio, aligned)
            expect_tensor(got, " (C, P, P)")
            want = roi_align(feature[None], [torch.tensor([box], dtype=torch.float64)], size, scale, ratio, aligned)[0]
            expect_close(got, want, "pooled features", atol=1e-6)
