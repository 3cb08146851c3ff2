"""Test-time augmentation: predict transformed copies of the input, undo each, average probabilities.

Averaging **probabilities** (softmax, or sigmoid for a one-channel model) keeps the confidence of
each view; a majority vote of argmax labels throws it away and breaks ties arbitrarily. Each
transform is undone on the prediction before averaging: a horizontally flipped input gives a
horizontally flipped mask, which is flipped back; an input resized by ``s`` gives probabilities
that are resized back to ``(H, W)`` (bilinear).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

#: flip name -> dims of an (N, C, H, W) tensor it flips
FLIPS = {"none": (), "h": (3,), "v": (2,), "hv": (2, 3)}


def to_probs(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over classes, or sigmoid for a one-channel (binary) output."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else logits.softmax(dim=1)


@torch.no_grad()
def tta_predict(predictor: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *,
                flips: Sequence[str] = ("none", "h"), scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """Average the probabilities of every (flip, scale) view, each mapped back to the input's frame.

    Args:
        predictor: ``(N, C, h, w)`` -> logits ``(N, K, h, w)``, for any ``h, w`` it is given.
        image: ``(N, C, H, W)`` float.
        flips: any of ``"none"``, ``"h"`` (left-right), ``"v"`` (up-down), ``"hv"``.
        scales: input scale factors (1.0 = as is); a scaled view is resized back bilinearly.

    Shapes:
        ``image (N, C, H, W)`` -> probabilities ``(N, K, H, W)``.

    Raises:
        ValueError: unknown flip, non-positive scale, empty lists, a 3-D image.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        raise ValueError(f"image must be a tensor (N, C, H, W), got {getattr(image, 'shape', type(image).__name__)}")
    if not flips or not scales:
        raise ValueError("flips and scales must each name at least one view (use ('none',) and (1.0,))")
    unknown = [f for f in flips if f not in FLIPS]
    if unknown:
        raise ValueError(f"unknown flip(s) {unknown}; choose from {list(FLIPS)}")
    if any(not isinstance(s, (int, float)) or s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {list(scales)}")
    size = tuple(image.shape[-2:])
    total, views = None, 0
    for scale in scales:
        scaled = image if scale == 1 else F.interpolate(image, scale_factor=float(scale), mode="bilinear",
                                                        align_corners=False)
        for name in flips:
            dims = FLIPS[name]
            view = scaled.flip(dims) if dims else scaled
            probs = to_probs(predictor(view).float())
            if dims:
                probs = probs.flip(dims)                              # undo the flip
            if tuple(probs.shape[-2:]) != size:
                probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)  # undo the scale
            total = probs if total is None else total + probs
            views += 1
    return total / views
