"""Greedy non-maximum suppression, equal to ``torchvision.ops.nms`` and ``batched_nms``."""

from __future__ import annotations

import torch

from .boxes import box_iou


def nms(boxes, scores, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy NMS, highest score first; equals ``torchvision.ops.nms``.

    Go down the boxes by decreasing score (ties keep their input order: a stable sort, as
    torchvision's kernels); keep a box unless it overlaps an already kept box with
    ``IoU > iou_threshold`` (strictly greater: a box at exactly the threshold survives).

    Args:
        boxes: ``(N, 4)`` ``xyxy`` (a ``yxyx`` box here is silently read as its transpose).
        scores: ``(N,)``.
        iou_threshold: discard overlaps above this.

    Returns:
        int64 ``(K,)`` indices into ``boxes``, by decreasing score; empty for empty input.
    """
    boxes, scores = torch.as_tensor(boxes), torch.as_tensor(scores)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def batched_nms(boxes, scores, idxs, iou_threshold: float) -> torch.Tensor:
    """NMS within each class ``idxs`` separately; equals ``torchvision.ops.batched_nms``.

    Boxes of different classes never suppress each other; the result is sorted by decreasing score
    over all classes (ties in input order).
    """
    boxes, scores, idxs = torch.as_tensor(boxes), torch.as_tensor(scores), torch.as_tensor(idxs)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    keep = torch.cat([torch.nonzero(idxs == c).flatten()[nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
                      for c in torch.unique(idxs)])
    keep = torch.sort(keep).values                                   # input order ...
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]   # ... then by score
