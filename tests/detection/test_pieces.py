"""Every hand-written piece of ``segcourse.detection`` equals its torchvision counterpart."""

from __future__ import annotations

import pytest
import torch
from torchvision import ops
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes

from segcourse import detection as D


def random_boxes(n, size=64, seed=0, min_side=1.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * (size - min_side)
    wh = min_side + torch.rand(n, 2, generator=g) * (size / 2)
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_iou_equals_torchvision(seed):
    a, b = random_boxes(13, seed=seed), random_boxes(7, seed=seed + 10)
    torch.testing.assert_close(D.box_iou(a, b), ops.box_iou(a, b))
    assert D.box_iou(a, b[:0]).shape == (13, 0)
    torch.testing.assert_close(D.box_area(a), ops.box_area(a))


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_convert_equals_torchvision(fmt):
    b = random_boxes(9)
    torch.testing.assert_close(D.box_convert(b, "xyxy", fmt), ops.box_convert(b, "xyxy", fmt))
    other = ops.box_convert(b, "xyxy", fmt)
    torch.testing.assert_close(D.box_convert(other, fmt, "xyxy"), ops.box_convert(other, fmt, "xyxy"))
    torch.testing.assert_close(D.box_convert(D.box_convert(b, "xyxy", "yxyx"), "yxyx", fmt), other)


def test_yxyx_is_the_transpose_and_clip():
    b = torch.tensor([[1.0, 2.0, 30.0, 10.0]])
    assert D.box_convert(b, "xyxy", "yxyx").tolist() == [[2.0, 1.0, 10.0, 30.0]]
    with pytest.raises(ValueError, match="format"):
        D.box_convert(b, "xyxy", "xxyy")
    big = torch.tensor([[-5.0, 3.0, 70.0, 90.0]])
    torch.testing.assert_close(D.clip_boxes(big, (64, 48)), ops.clip_boxes_to_image(big, (64, 48)))


@pytest.mark.parametrize("sizes,ratios,fmap,image", [
    ((16, 32), (0.5, 1.0, 2.0), (4, 5), (64, 80)),
    ((8,), (1.0,), (7, 7), (30, 30)),       # stride 30 // 7 = 4 (integer division)
    ((12, 24, 48), (0.7, 1.3), (3, 2), (48, 32)),
])
def test_anchors_equal_anchor_generator(sizes, ratios, fmap, image):
    gen = AnchorGenerator(sizes=(sizes,), aspect_ratios=(ratios,))
    images = ImageList(torch.zeros(1, 3, *image), [image])
    ref = gen(images, [torch.zeros(1, 1, *fmap)])[0]
    torch.testing.assert_close(D.grid_anchors(fmap, image, sizes, ratios), ref)
    torch.testing.assert_close(D.cell_anchors(sizes, ratios), gen.generate_anchors(sizes, ratios))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_equals_torchvision(seed, thr):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(40, seed=seed)
    scores = torch.randint(0, 5, (40,), generator=g).float() / 5   # many ties
    assert D.nms(boxes, scores, thr).tolist() == ops.nms(boxes, scores, thr).tolist()
    idxs = torch.randint(0, 3, (40,), generator=g)
    assert D.batched_nms(boxes, scores, idxs, thr).tolist() == ops.batched_nms(boxes, scores, idxs, thr).tolist()


def test_nms_edge_cases():
    empty = torch.zeros(0, 4)
    assert D.nms(empty, torch.zeros(0), 0.5).tolist() == ops.nms(empty, torch.zeros(0), 0.5).tolist() == []
    assert D.nms(empty, torch.zeros(0), 0.5).dtype == torch.int64
    same = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [20.0, 20, 30, 30]])
    s = torch.ones(3)
    assert D.nms(same, s, 0.5).tolist() == ops.nms(same, s, 0.5).tolist() == [0, 2]
    # IoU exactly at the threshold survives (strictly greater suppresses)
    half = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 20]])
    assert D.nms(half, torch.tensor([1.0, 0.9]), 0.5).tolist() == ops.nms(half, torch.tensor([1.0, 0.9]), 0.5).tolist()


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coder_equals_torchvision(weights):
    coder = BoxCoder(weights)
    ref, gt = random_boxes(11, min_side=2), random_boxes(11, seed=3, min_side=2)
    codes = D.encode_boxes(gt, ref, weights)
    torch.testing.assert_close(codes, coder.encode_single(gt, ref))
    torch.testing.assert_close(D.decode_boxes(codes, ref, weights), coder.decode_single(codes, ref))
    torch.testing.assert_close(D.decode_boxes(codes, ref, weights), gt, rtol=1e-4, atol=1e-4)
    huge = torch.tensor([[0.0, 0.0, 50.0, 50.0]])   # dw clamped at log(1000/16)
    torch.testing.assert_close(D.decode_boxes(huge, ref[:1], weights), coder.decode_single(huge, ref[:1]))


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_roi_align_one_equals_torchvision(aligned, sampling_ratio, scale):
    g = torch.Generator().manual_seed(1)
    feature = torch.rand(2, 16, 20, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[3.3, 4.1, 40.7, 30.2], [0.0, 0.0, 1.5, 2.0], [-6.0, 50.0, 90.0, 70.0], [10.0, 10.0, 10.4, 10.2]],
                         dtype=torch.float64)
    for box in boxes:
        ref = ops.roi_align(feature[None], [box[None]], 5, spatial_scale=scale, sampling_ratio=sampling_ratio,
                            aligned=aligned)[0]
        mine = D.roi_align_one(feature, box, 5, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned)
        torch.testing.assert_close(mine, ref)
    rect = D.roi_align_one(feature, boxes[0], (3, 4), spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned)
    torch.testing.assert_close(rect, ops.roi_align(feature[None], [boxes[:1]], (3, 4), scale, sampling_ratio, aligned)[0])


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.125])
def test_roi_pool_one_equals_torchvision(scale):
    g = torch.Generator().manual_seed(2)
    feature = torch.rand(3, 12, 14, generator=g)
    for box in random_boxes(6, size=90, seed=4):
        ref = ops.roi_pool(feature[None], [box[None]], 4, spatial_scale=scale)[0]
        torch.testing.assert_close(D.roi_pool_one(feature, box, 4, scale), ref)
    for half in ([8.0, 8.0, 24.0, 40.0], [-8.0, 24.0, 56.0, 72.0]):          # edges exactly on half cells
        box = torch.tensor(half)
        torch.testing.assert_close(D.roi_pool_one(feature, box, 2, 1 / 16), ops.roi_pool(feature[None], [box[None]], 2, 1 / 16)[0])


@pytest.mark.parametrize("stride", [4, 16])
def test_roi_pool_quantisation_is_the_window_roi_pool_reads(stride):
    """A ramp (value = feature column) pooled by ops.roi_pool tells which columns it read: the first is the
    minimum, the last the maximum; the window is [first * stride, (last + 1) * stride) in image pixels."""
    fw = 12
    ramp = torch.arange(fw, dtype=torch.float64).expand(fw, fw)[None, None]
    g = torch.Generator().manual_seed(6)
    x1 = torch.rand(300, generator=g, dtype=torch.float64) * 5 * stride
    x2 = x1 + stride + torch.rand(300, generator=g, dtype=torch.float64) * 4 * stride
    x1 = torch.cat([x1, torch.arange(0.0, 4 * stride, stride / 2, dtype=torch.float64)])        # halves: ties
    x2 = torch.cat([x2, torch.arange(0.0, 4 * stride, stride / 2, dtype=torch.float64) + 2.5 * stride])
    rois = torch.stack([x1, torch.zeros_like(x1), x2, torch.full_like(x1, float(stride))], 1)
    last = ops.roi_pool(ramp, [rois], (1, 1), 1 / stride).flatten()
    first = -ops.roi_pool(-ramp, [rois], (1, 1), 1 / stride).flatten()
    q = D.roi_pool_quantisation(rois, 1 / stride)
    torch.testing.assert_close(q[:, 0], first * stride - x1)
    torch.testing.assert_close(q[:, 2], (last + 1) * stride - x2)
    # the bounds: start edge within half a cell, end edge half a cell to 1.5 cells outwards
    assert q[:, 0].abs().max() <= stride / 2 and q[:, 2].min() >= stride / 2 and q[:, 2].max() <= 1.5 * stride


def test_mask_target_equals_project_masks_on_boxes():
    mask = torch.zeros(40, 50, dtype=torch.uint8)
    mask[8:30, 12:41] = 1
    mask[15:20, 20:25] = 0
    boxes = torch.tensor([[11.0, 7.0, 42.0, 31.0], [5.5, 2.2, 30.1, 25.7]])
    ref = project_masks_on_boxes(mask[None].expand(2, -1, -1), boxes, torch.zeros(2, dtype=torch.int64), 28)
    for i in range(2):
        torch.testing.assert_close(D.mask_target(mask, boxes[i], 28), ref[i])


def test_paste_mask_equals_paste_masks_in_image():
    g = torch.Generator().manual_seed(3)
    masks = torch.rand(4, 1, 28, 28, generator=g)
    boxes = torch.tensor([[3.0, 4.0, 30.0, 20.0], [-4.0, 10.0, 12.5, 47.0], [20.2, 30.7, 70.0, 60.0], [5.0, 5.0, 5.5, 6.0]])
    ref = paste_masks_in_image(masks, boxes, (50, 60), padding=1)
    for i in range(4):
        torch.testing.assert_close(D.paste_mask(masks[i, 0], boxes[i], (50, 60)), ref[i, 0])
