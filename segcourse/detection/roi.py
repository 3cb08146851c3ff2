"""RoIAlign's bilinear sampling for one box, and RoIPool's quantisation, equal to ``torchvision.ops``.

RoIPool (Fast R-CNN) rounds each box edge to the nearest feature cell and then pools the cells from the
first to the last one *inclusive*: feature column ``c`` covers image pixels ``[c * stride, (c + 1) * stride)``,
so the window it reads starts up to half a cell before or after ``x1`` but ends half a cell to one and
a half cells after ``x2`` (:func:`roi_pool_quantisation` computes it; 24 px at stride 16). RoIAlign
(Mask R-CNN) keeps the box's real coordinates: each of the
``P x P`` bins averages ``sampling_ratio^2`` bilinearly interpolated samples at regularly spaced
points inside the bin.

``aligned=True`` shifts the box by -0.5 feature pixel, so that a pixel's *centre* is at
integer + 0.5 (continuous coordinates); ``aligned=False`` (torchvision's default, and what
its Mask R-CNN heads use) keeps the convention of the legacy Detectron code (Caffe2), which is off by
half a pixel and stretches boxes smaller than one feature pixel to one pixel. The Mask R-CNN paper
describes no such offset; detectron2 fixed it and defaults to ``aligned=True`` for its RoIAlign
(``detectron2.layers.ROIAlign``; its docstring explains the half-pixel misalignment).
"""

from __future__ import annotations

import math

import torch


def bilinear(feature: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """Bilinear interpolation of ``feature: (C, H, W)`` at continuous ``(y, x)``, torchvision's RoIAlign rule.

    Pixel ``(i, j)`` sits at ``(y, x) = (i, j)``. A point more than one pixel outside the map
    (``y < -1``, ``y > H``, ...) gives 0; a point between -1 and 0 is clamped to 0; at the last
    row/column the value of that row/column is used.
    """
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
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * feature[:, y0, x0] + hy * lx * feature[:, y0, x1]
            + ly * hx * feature[:, y1, x0] + ly * lx * feature[:, y1, x1])


def roi_align_one(feature: torch.Tensor, box, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
                  sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """RoIAlign of one ``xyxy`` box (image pixels) on ``feature: (C, H, W)``; equals ``torchvision.ops.roi_align``.

    Args:
        feature: ``(C, H, W)`` feature map of one image.
        box: ``[x1, y1, x2, y2]`` in image pixels.
        output_size: ``P`` or ``(Ph, Pw)`` bins.
        spatial_scale: feature pixels per image pixel (``1 / stride``).
        sampling_ratio: samples per bin along each axis; ``<= 0`` means ``ceil(box side / P)`` (adaptive).
        aligned: shift by -0.5 pixel (the correct continuous convention); ``False`` is torchvision's default.

    Returns:
        ``(C, Ph, Pw)``.
    """
    ph_n, pw_n = (output_size, output_size) if isinstance(output_size, int) else output_size
    x1, y1, x2, y2 = (float(v) for v in box)
    offset = 0.5 if aligned else 0.0
    start_x, start_y = x1 * spatial_scale - offset, y1 * spatial_scale - offset
    roi_w = x2 * spatial_scale - offset - start_x
    roi_h = y2 * spatial_scale - offset - start_y
    if not aligned:  # the legacy rule: a box is at least one feature pixel
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ph_n)
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pw_n)
    count = max(grid_h * grid_w, 1)
    out = feature.new_zeros((feature.shape[0], ph_n, pw_n))
    for ph in range(ph_n):
        for pw in range(pw_n):
            acc = feature.new_zeros(feature.shape[0])
            for iy in range(grid_h):
                y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = start_x + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    acc = acc + bilinear(feature, y, x)
            out[:, ph, pw] = acc / count
    return out


def _c_round(v: float) -> int:
    """C's ``round``: halves away from zero (``round(2.5) == 3``), as torchvision's RoIPool kernel."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_pool_one(feature: torch.Tensor, box, output_size: int | tuple[int, int],
                 spatial_scale: float = 1.0) -> torch.Tensor:
    """RoIPool of one ``xyxy`` box on ``feature: (C, H, W)``; equals ``torchvision.ops.roi_pool``.

    The box is rounded to whole feature pixels (``round(x * scale)``, C's rounding: halves away from
    zero, not Python's halves to even), its sides are
    ``end - start + 1`` pixels, each bin covers ``floor(p * bin) .. ceil((p + 1) * bin)`` of them,
    and the bin's value is the maximum there (0 for an empty bin).
    """
    ph_n, pw_n = (output_size, output_size) if isinstance(output_size, int) else output_size
    c, h, w = feature.shape
    x1, y1, x2, y2 = (_c_round(float(v) * spatial_scale) for v in box)
    roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
    out = feature.new_zeros((c, ph_n, pw_n))
    for ph in range(ph_n):
        hs = min(max(math.floor(ph * bin_h) + y1, 0), h)
        he = min(max(math.ceil((ph + 1) * bin_h) + y1, 0), h)
        for pw in range(pw_n):
            ws = min(max(math.floor(pw * bin_w) + x1, 0), w)
            we = min(max(math.ceil((pw + 1) * bin_w) + x1, 0), w)
            if he > hs and we > ws:
                out[:, ph, pw] = feature[:, hs:he, ws:we].amax(dim=(1, 2))
    return out


def roi_pool_quantisation(boxes, spatial_scale: float) -> torch.Tensor:
    """How far the window RoIPool reads lies from each box edge, in image pixels (signed: + is right/down).

    ``torchvision.ops.roi_pool`` reads feature cells ``round(x1 * scale) .. round(x2 * scale)``
    inclusive; cell ``c`` covers image pixels ``[c / scale, (c + 1) / scale)``. So the window is
    ``[round(x1 * scale) / scale, (round(x2 * scale) + 1) / scale)`` and the returned ``(N, 4)`` float64
    movements are ``round(v * scale) / scale - v`` for ``x1, y1`` (within half a cell either way)
    and ``(round(v * scale) + 1) / scale - v`` for ``x2, y2`` (half a cell to one and a half cells
    outwards). ``boxes: (N, 4)`` ``xyxy`` in image pixels. RoIAlign moves no edge.

    Example:
        >>> roi_pool_quantisation([[8.0, 0.0, 40.0, 16.0]], 1 / 16).tolist()   # 40 px = cell 2.5 -> 3, read whole
        [[8.0, 0.0, 24.0, 16.0]]
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float64)
    scaled = boxes * spatial_scale
    cells = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)        # C's round(): halves away from zero
    cells[:, 2:] += 1
    return cells / spatial_scale - boxes
