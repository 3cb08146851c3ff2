"""Box conventions, areas and IoU, written out (equal to ``torchvision.ops.box_convert``, ``box_area``, ``box_iou``).

Conventions (all in pixels, one box per row of an ``(N, 4)`` tensor):

* ``xyxy`` -- ``[x1, y1, x2, y2]``, torchvision's convention everywhere (targets, ``nms``, ``roi_align``);
  a valid box has ``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``;
* ``xywh`` -- ``[x1, y1, w, h]``, COCO's ``bbox`` field;
* ``cxcywh`` -- ``[cx, cy, w, h]``, the centre form of box regression (and of DETR);
* ``yxyx`` -- ``[y1, x1, y2, x2]``, older TensorFlow detection code. torchvision has no ``yxyx``:
  a ``yxyx`` box given to a torchvision op is silently read as ``xyxy`` (the box transposed).
"""

from __future__ import annotations

import torch

FORMATS = ("xyxy", "xywh", "cxcywh", "yxyx")


def _to_xyxy(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xyxy":
        return boxes.clone()
    if fmt == "xywh":
        return torch.stack([a, b, a + c, b + d], -1)
    if fmt == "cxcywh":
        return torch.stack([a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d], -1)
    return torch.stack([b, a, d, c], -1)  # yxyx


def _from_xyxy(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    if fmt == "xyxy":
        return boxes
    if fmt == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], -1)
    if fmt == "cxcywh":
        return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    return torch.stack([y1, x1, y2, x2], -1)  # yxyx


def box_convert(boxes, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """Convert ``(N, 4)`` boxes between ``xyxy``, ``xywh``, ``cxcywh`` and ``yxyx``.

    Equals ``torchvision.ops.box_convert`` for the formats it knows (``xyxy``, ``xywh``, ``cxcywh``);
    ``yxyx`` is added here because older code uses it and torchvision does not.
    """
    for f in (in_fmt, out_fmt):
        if f not in FORMATS:
            raise ValueError(f"box format must be one of {FORMATS}, got {f!r}")
    boxes = torch.as_tensor(boxes)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, 4), got shape {tuple(boxes.shape)}")
    if in_fmt == out_fmt:
        return boxes.clone()
    return _from_xyxy(_to_xyxy(boxes, in_fmt), out_fmt)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """``(x2 - x1) * (y2 - y1)`` of ``(N, 4)`` ``xyxy`` boxes; equals ``torchvision.ops.box_area``."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2) -> torch.Tensor:
    """The ``(N, M)`` IoU matrix of two sets of ``xyxy`` boxes; equals ``torchvision.ops.box_iou``.

    ``IoU = |A n B| / |A u B|``: the intersection is the box ``[max x1, max y1, min x2, min y2]``
    (zero when it is empty), the union is ``area A + area B - intersection``. Continuous
    coordinates: a box ``[0, 0, 10, 10]`` has area 100 (no ``+ 1`` as in some older code).
    """
    boxes1, boxes2 = torch.as_tensor(boxes1), torch.as_tensor(boxes2)
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])       # (N, M, 2)
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])   # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / union


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clip ``xyxy`` boxes to an image of ``size = (H, W)``; equals ``torchvision.ops.clip_boxes_to_image``."""
    h, w = size
    x = boxes[:, 0::2].clamp(0, w)
    y = boxes[:, 1::2].clamp(0, h)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)
