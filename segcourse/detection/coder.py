"""Box encoding and decoding, equal to torchvision's ``BoxCoder`` (``models.detection._utils``).

A detector does not regress a box's corners; it regresses offsets relative to a reference box (an
anchor for the RPN, a proposal for the box head), in the centre form ``cxcywh``:

    dx = wx * (gx - ax) / aw      dy = wy * (gy - ay) / ah
    dw = ww * log(gw / aw)        dh = wh * log(gh / ah)

``weights = (wx, wy, ww, wh)`` are ``(1, 1, 1, 1)`` in torchvision's RPN and ``(10, 10, 5, 5)`` in its
box head. Decoding inverts this and clamps ``dw, dh`` at ``log(1000 / 16)`` so ``exp`` cannot blow up.
"""

from __future__ import annotations

import math

import torch

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _centre(boxes):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(gt_boxes, reference_boxes, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """``(N, 4)`` regression targets of ``xyxy`` ``gt_boxes`` relative to ``reference_boxes``; equals ``BoxCoder.encode_single``."""
    wx, wy, ww, wh = weights
    gx, gy, gw, gh = _centre(torch.as_tensor(gt_boxes))
    ax, ay, aw, ah = _centre(torch.as_tensor(reference_boxes))
    return torch.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah,
                        ww * torch.log(gw / aw), wh * torch.log(gh / ah)], 1)


def decode_boxes(codes, reference_boxes, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """``xyxy`` boxes from ``(N, 4)`` ``codes`` relative to ``reference_boxes``; equals ``BoxCoder.decode_single``."""
    wx, wy, ww, wh = weights
    codes = torch.as_tensor(codes)
    ax, ay, aw, ah = _centre(torch.as_tensor(reference_boxes).to(codes.dtype))
    dx, dy = codes[:, 0] / wx, codes[:, 1] / wy
    dw = (codes[:, 2] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (codes[:, 3] / wh).clamp(max=BBOX_XFORM_CLIP)
    cx, cy = dx * aw + ax, dy * ah + ay
    w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], 1)
