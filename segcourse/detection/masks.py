"""The mask head's targets and outputs, by hand: equal to torchvision's ``roi_heads`` helpers.

Training: each positive proposal's ground-truth mask is cropped *to the proposal box* and resampled
to ``M x M`` (28 in Mask R-CNN) with RoIAlign -- ``roi_heads.project_masks_on_boxes``, i.e.
``roi_align(mask[None, None].float(), [box], (M, M), spatial_scale=1.0)`` with the defaults
``sampling_ratio=-1, aligned=False``. The targets are soft (fractions in [0, 1]); the loss is the
per-pixel binary cross-entropy of the predicted class's mask against them.

Inference: each ``M x M`` probability map is pasted back into the image at its box --
``roi_heads.paste_masks_in_image``: pad the map by one cell on each side, grow the box by
``(M + 2) / M`` to match, truncate the grown box to integers, resize the map bilinearly to the box's
``(x2 - x1 + 1) x (y2 - y1 + 1)`` pixels and copy the part inside the image. The result is soft;
threshold it (0.5) to get a binary mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .roi import roi_align_one


def mask_target(instance_mask, box, size: int = 28) -> torch.Tensor:
    """The ``(size, size)`` float training target of one proposal ``box`` (``xyxy``) for a ``(H, W)`` binary mask."""
    mask = torch.as_tensor(instance_mask).float()[None]
    return roi_align_one(mask, box, size, spatial_scale=1.0, sampling_ratio=-1, aligned=False)[0]


def paste_mask(mask: torch.Tensor, box, image_size: tuple[int, int], padding: int = 1) -> torch.Tensor:
    """Paste one ``(M, M)`` soft mask at ``xyxy`` ``box`` into an image of ``image_size = (H, W)``.

    Equals ``torchvision.models.detection.roi_heads.paste_masks_in_image`` for one mask (soft output).
    """
    mask = torch.as_tensor(mask, dtype=torch.float32)
    m = mask.shape[-1]
    scale = (m + 2 * padding) / m
    padded = F.pad(mask, (padding,) * 4)
    box = torch.as_tensor(box, dtype=torch.float32)
    cx, cy = (box[0] + box[2]) * 0.5, (box[1] + box[3]) * 0.5
    hw, hh = (box[2] - box[0]) * 0.5 * scale, (box[3] - box[1]) * 0.5 * scale
    x1, y1, x2, y2 = (int(v) for v in torch.stack([cx - hw, cy - hh, cx + hw, cy + hh]).to(torch.int64))
    w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    resized = F.interpolate(padded[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    im_h, im_w = image_size
    out = torch.zeros((im_h, im_w), dtype=resized.dtype)
    xa, xb = max(x1, 0), min(x2 + 1, im_w)
    ya, yb = max(y1, 0), min(y2 + 1, im_h)
    if xb > xa and yb > ya:
        out[ya:yb, xa:xb] = resized[ya - y1:yb - y1, xa - x1:xb - x1]
    return out
