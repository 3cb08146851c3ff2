"""Scoring a segmentation model on a set of images: per-class overlap and boundary metrics.

One call gives what the capstone's report needs for a split: mIoU, foreground Dice, IoU and Dice
per class from one confusion matrix pooled over every pixel (the scores :func:`segcourse.train.evaluate`
reports, lesson 07), and per image the Boundary IoU and HD95 of the foreground, averaged over the images. The
model runs once: the same predictions give the confusion matrix and the boundary metrics.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def score(model: nn.Module, images: torch.Tensor, target: torch.Tensor, *, num_classes: int = 2,
          foreground: int = 1, device="cpu", batch_size: int = 16) -> dict:
    """Scores of ``model`` on ``images``.

    Args:
        model: returns logits ``(N, C, H, W)``.
        images: ``(N, 3, H, W)`` float in [0, 1]; target: ``(N, H, W)`` int64 class ids.
        num_classes: classes of the confusion matrix.
        foreground: the class whose boundary is scored.

    Returns:
        ``{"images", "miou", "fg_dice", "iou_per_class", "dice_per_class", "boundary_iou", "hd95"}``.
        ``boundary_iou`` is the mean over images where the foreground is in truth or prediction
        (lesson 07's policy); ``hd95`` (pixels) the mean over images with foreground in the truth, an
        empty prediction there counted as the image diagonal (the largest distance possible), so a
        model that misses every object cannot get a small distance.

    Raises:
        ValueError: ``images`` and ``target`` of different lengths or sizes.
    """
    from ..metrics import confusion_matrix
    from ..metrics.boundary import boundary_iou, hausdorff_distance
    from ..train import predict, summarize_confusion

    if images.shape[0] != target.shape[0] or images.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"images {tuple(images.shape)} and target {tuple(target.shape)} must have the same number "
                         "of images and the same height and width")
    classes = predict(model, images, device=device, batch_size=batch_size)          # (N, H, W) int64
    scores = summarize_confusion(confusion_matrix(classes, target, num_classes))
    pred = classes.numpy() == foreground
    truth = target.numpy() == foreground
    diagonal = math.hypot(*truth.shape[-2:])
    bious, hds = [], []
    for p, t in zip(pred, truth):
        bious.append(boundary_iou(p, t))
        if t.any():
            hd = hausdorff_distance(p, t, percentile=95)
            hds.append(diagonal if not math.isfinite(hd) else hd)
    iou, dice = scores["iou_per_class"], scores["dice_per_class"]
    return {"images": int(images.shape[0]), "miou": float(scores["miou"]), "fg_dice": float(dice[foreground]),
            "iou_per_class": [float(v) for v in iou], "dice_per_class": [float(v) for v in dice],
            "boundary_iou": float(np.nanmean(bious)) if not np.all(np.isnan(bious)) else float("nan"),
            "hd95": float(np.mean(hds)) if hds else float("nan")}


def error_breakdown(pred, truth, *, width: int = 1) -> dict:
    """Where the foreground errors are, for reading them (the capstone's error analysis).

    The true outline of each mask is its inner boundary (foreground pixels with a 4-neighbour in the
    background, as ``skimage.segmentation.find_boundaries(mode="inner")``; the image border counts as
    background); the *outline band* is that outline grown by ``width`` pixels (4-connected dilation) on
    both sides.

    Args:
        pred, truth: ``(N, H, W)`` (or ``(H, W)``) masks, bool or 0/1.
        width: half-width of the outline band in pixels (>= 0).

    Returns:
        ``{"fp", "fn"}``: false positive and false negative pixels (ints); ``"near_outline"``: the share of all
        error pixels inside the outline band (NaN without errors); ``"band_share"``: the share of all pixels in
        the band (what ``near_outline`` would be if errors fell anywhere); ``"dice_per_image"``: a list of floats
        (1.0 where both masks are empty).
    """
    from scipy import ndimage

    from ..metrics.boundary import surface_pixels
    from ..metrics.per_case import per_case_dice

    pred, truth = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must have the same shape")
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    pred, truth = pred.reshape((-1, *pred.shape[-2:])), truth.reshape((-1, *truth.shape[-2:]))
    cross = ndimage.generate_binary_structure(2, 1)
    band = np.zeros_like(truth)
    for i, t in enumerate(truth):
        outline = surface_pixels(t)
        band[i] = ndimage.binary_dilation(outline, cross, iterations=width) if width else outline
    errors = pred ^ truth
    dice = np.nan_to_num(per_case_dice(pred.astype(np.int64), truth.astype(np.int64), 2, ignore_index=None)[:, 1],
                         nan=1.0).tolist()                         # both empty: 1.0
    return {"fp": int((pred & ~truth).sum()), "fn": int((~pred & truth).sum()),
            "near_outline": float((errors & band).sum() / errors.sum()) if errors.any() else float("nan"),
            "band_share": float(band.mean()), "dice_per_image": dice}
