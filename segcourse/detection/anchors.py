"""Anchors at several scales and aspect ratios, equal to torchvision's ``AnchorGenerator``.

``torchvision.models.detection.anchor_utils.AnchorGenerator(sizes, aspect_ratios)`` places, at every
cell of a feature map, one anchor per (ratio, size) pair, centred on the cell's top-left corner in
image pixels (``stride * i``, not ``stride * (i + 0.5)``), with ``h / w = ratio`` and area ``size^2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float], dtype=torch.float32) -> torch.Tensor:
    """The ``(len(ratios) * len(sizes), 4)`` ``xyxy`` anchors of one cell, centred on ``(0, 0)``.

    For ratio ``r = h / w`` and size ``s``: ``h = s * sqrt(r)``, ``w = s / sqrt(r)`` (so ``w * h = s^2``),
    the box ``[-w/2, -h/2, w/2, h/2]`` rounded to whole pixels. Order: ratios outer, sizes inner --
    as ``AnchorGenerator.generate_anchors``.
    """
    scales = torch.as_tensor(sizes, dtype=dtype)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
    rows = []
    for r in ratios:
        h_ratio = torch.sqrt(r)
        w_ratio = 1 / h_ratio
        for s in scales:
            w, h = w_ratio * s, h_ratio * s
            rows.append(torch.stack([-w, -h, w, h]) / 2)
    return torch.stack(rows).round()


def grid_anchors(feature_size: tuple[int, int], image_size: tuple[int, int], sizes: Sequence[float],
                 aspect_ratios: Sequence[float], dtype=torch.float32) -> torch.Tensor:
    """All anchors of one feature map of ``feature_size = (h, w)`` for an image of ``image_size = (H, W)``.

    The stride is ``H // h`` by ``W // w`` (integer division, as torchvision). Returns
    ``(h * w * A, 4)`` ``xyxy`` anchors, cell by cell in row-major order and, within a cell, in the
    order of :func:`cell_anchors` -- the order ``AnchorGenerator`` returns and the RPN's head predicts.
    """
    fh, fw = feature_size
    stride_y, stride_x = image_size[0] // fh, image_size[1] // fw
    base = cell_anchors(sizes, aspect_ratios, dtype)
    out = []
    for i in range(fh):
        for j in range(fw):
            shift = torch.tensor([j * stride_x, i * stride_y, j * stride_x, i * stride_y], dtype=dtype)
            out.append(base + shift)
    return torch.cat(out)
