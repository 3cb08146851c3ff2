"""Sliding-window inference over images larger (or smaller) than the training window.

A network trained on ``h x w`` crops is run on a large tile by cutting the tile into
overlapping windows, predicting each, and blending the overlaps. Three things must be right:

* **coverage** -- the windows must reach the right and bottom edges. A loop
  ``for y in range(0, H - h, stride)`` stops short of the last rows whenever ``H - h`` is not a
  multiple of the stride; here the last window is shifted back to end exactly at the edge
  (:func:`window_starts`), and an image smaller than the window is padded first;
* **blending** -- each output pixel is the weighted mean of every window that covers it, with
  weights from :func:`importance_map` (``"constant"``: all ones; ``"gaussian"``: less weight near a
  window's border, where the network saw the least context);
* **batching** -- windows are sent to the predictor's device in batches of ``batch_size``.

Convention: MONAI's :func:`monai.inferers.sliding_window_inference` (window placement of
``monai.data.utils.dense_patch_slices``, importance map of ``compute_importance_map`` with
``sigma_scale=0.125``, constant padding centred when the image is smaller than the window). The
outputs are equal to 1e-5 (``tests/inference/test_sliding.py``); MONAI is a test-only dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int

MODES = ("constant", "gaussian")


def _pair(window, what: str = "window") -> tuple[int, int]:
    if isinstance(window, int) and not isinstance(window, bool):
        window = (window, window)
    if (not isinstance(window, Sequence) or len(window) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in window)):
        raise ValueError(f"{what} must be a positive int or an (h, w) pair of positive ints, got {window!r}")
    return int(window[0]), int(window[1])


def _check_overlap(overlap: float) -> float:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
        raise ValueError(f"overlap must be a number in [0, 1), got {overlap!r}")
    return float(overlap)


def window_starts(size: int, window: int, overlap: float = 0.25) -> list[int]:
    """Start positions of windows of length ``window`` that cover ``0 .. size-1`` along one axis.

    The stride is ``int(window * (1 - overlap))`` (at least 1); windows start at ``0, stride,
    2 * stride, ...`` until one reaches the end, and that last one is shifted back to start at
    ``size - window`` so that it ends exactly on the edge (MONAI's ``dense_patch_slices``).

    Args:
        size: the image's length along the axis (``>= window``; pad smaller images first).
        window: the window's length.
        overlap: fraction of a window shared with the next, in ``[0, 1)``.

    Returns:
        Increasing start positions; the first is 0 and the last is ``size - window``.

    Example:
        >>> window_starts(100, 32, 0.25)     # stride 24: 0, 24, 48, then 72 > 68 is moved back to 68
        [0, 24, 48, 68]
    """
    overlap = _check_overlap(overlap)
    if window < 1 or size < window:
        raise ValueError(f"need 1 <= window <= size, got window={window}, size={size} (pad the image first)")
    if size == window:
        return [0]
    stride = max(int(window * (1 - overlap)), 1)
    starts, start = [], 0
    while start + window < size:
        starts.append(start)
        start += stride
    starts.append(size - window)
    return starts


def importance_map(window, mode: str = "constant", *, sigma_scale: float = 0.125, device=None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Blending weights of one window, ``(h, w)``.

    ``"constant"``: ones. ``"gaussian"``: ``exp(-d^2 / (2 sigma^2))`` along each axis with the
    distance ``d`` to the window's centre (``-(h-1)/2 .. (h-1)/2``) and ``sigma = sigma_scale * h``
    (resp. ``w``), multiplied; weights below ``max(min weight, 1e-3)`` are raised to it so that no
    pixel gets a zero total weight (MONAI's ``compute_importance_map``).

    Returns:
        ``(h, w)`` tensor of positive weights.
    """
    h, w = _pair(window)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "constant":
        return torch.ones((h, w), device=device, dtype=dtype)
    axes = []
    for n in (h, w):
        x = torch.arange(-(n - 1) / 2.0, (n - 1) / 2.0 + 1, dtype=torch.float, device=device)
        axes.append(torch.exp(x ** 2 / (-2 * (n * sigma_scale) ** 2)))
    weights = axes[0][:, None] * axes[1][None, :]
    floor = max(weights.min().item(), 1e-3)
    return weights.clamp_(min=floor).to(dtype)


def _predictor_device(predictor, device):
    if device is not None:
        return torch.device(device)
    if isinstance(predictor, nn.Module):
        for tensor in predictor.parameters():
            return tensor.device
    return None


#: (H, W, h, w, starts, mode, sigma, device) -> (weights, total weight per pixel); tiles of one size reuse them
_BLEND_CACHE: dict = {}
_BLEND_CACHE_SIZE = 8


def _blend_maps(H, W, h, w, ys, xs, mode, sigma_scale, device):
    """The window's weights ``(h, w)`` and the total weight over each pixel ``(H, W)``, cached."""
    key = (H, W, h, w, ys, xs, mode, float(sigma_scale), str(device))
    if key in _BLEND_CACHE:
        return _BLEND_CACHE[key]
    weights = importance_map((h, w), mode, sigma_scale=sigma_scale, device=device)
    if mode == "constant":  # the number of windows over each pixel: an outer product of two counts
        rows = torch.zeros(H, device=device)
        cols = torch.zeros(W, device=device)
        for y in ys:
            rows[y:y + h] += 1
        for x in xs:
            cols[x:x + w] += 1
        total = rows[:, None] * cols[None, :]
    else:
        total = torch.zeros((H, W), device=device)
        for y in ys:
            for x in xs:
                total[y:y + h, x:x + w] += weights
    if len(_BLEND_CACHE) >= _BLEND_CACHE_SIZE:
        _BLEND_CACHE.pop(next(iter(_BLEND_CACHE)))
    _BLEND_CACHE[key] = (weights, total)
    return weights, total


@torch.no_grad()
def sliding_window(predictor: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, window,
                   overlap: float = 0.25, mode: str = "constant", batch_size: int = 4, *,
                   sigma_scale: float = 0.125, pad_value: float = 0.0, device=None) -> torch.Tensor:
    """Predict a whole image window by window and blend the overlaps.

    Args:
        predictor: a callable (e.g. a model in eval mode) from window batches ``(b, C, h, w)`` to
            ``(b, K, h, w)`` (logits or probabilities: whatever it returns is blended).
        image: ``(N, C, H, W)`` float, any ``H, W`` (smaller than the window too).
        window: the window ``(h, w)`` (or one int for a square window), e.g. the training crop size.
        overlap: fraction of a window shared with its neighbour, in ``[0, 1)``.
        mode: ``"constant"`` (plain mean of the overlapping windows) or ``"gaussian"`` (windows'
            centres count more; see :func:`importance_map`).
        batch_size: windows per predictor call.
        sigma_scale: Gaussian width as a fraction of the window (MONAI's default 0.125).
        pad_value: value of the padding added around an image smaller than the window.
        device: where the windows are predicted; default: the predictor's device (its first
            parameter's, for an ``nn.Module``), else the image's.

    Shapes:
        ``image (N, C, H, W)`` -> ``(N, K, H, W)`` float32, on the image's device.

    Raises:
        TypeError: ``image`` is not a floating-point tensor.
        ValueError: bad shapes, window, overlap, mode or batch size; a predictor that does not
            return ``(b, K, h, w)``.
    """
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise TypeError(f"image must be a float tensor (N, C, H, W), got "
                        f"{type(image).__name__ if not isinstance(image, torch.Tensor) else image.dtype}")
    if image.dim() != 4:
        raise ValueError(f"image must be (N, C, H, W), got shape {tuple(image.shape)}")
    h, w = _pair(window)
    overlap = _check_overlap(overlap)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_int(batch_size, "batch_size")
    out_device = image.device
    run_device = _predictor_device(predictor, device) or image.device
    n, _, height, width = image.shape
    # an image smaller than the window: pad it (centred, as MONAI) and crop the output back
    pad_h, pad_w = max(h - height, 0), max(w - width, 0)
    top, left = pad_h // 2, pad_w // 2
    if pad_h or pad_w:
        image = F.pad(image, (left, pad_w - left, top, pad_h - top), value=pad_value)
    H, W = image.shape[-2:]
    ys, xs = window_starts(H, h, overlap), window_starts(W, w, overlap)
    weights, total = _blend_maps(H, W, h, w, tuple(ys), tuple(xs), mode, sigma_scale, run_device)
    image = image.to(run_device)
    jobs = [(i, y, x) for i in range(n) for y in ys for x in xs]
    out = None
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first:first + batch_size]
        batch = torch.stack([image[i, :, y:y + h, x:x + w] for i, y, x in chunk])
        pred = predictor(batch)
        if not isinstance(pred, torch.Tensor) or pred.dim() != 4 or pred.shape[0] != len(chunk) \
                or tuple(pred.shape[-2:]) != (h, w):
            got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
            raise ValueError(f"the predictor must return (b, K, {h}, {w}) for a batch of {len(chunk)} windows, "
                             f"got {got}")
        pred = pred.float()
        if mode != "constant":
            pred = pred * weights                                      # (b, K, h, w)
        if out is None:
            out = torch.zeros((n, pred.shape[1], H, W), device=run_device)
        for p, (i, y, x) in zip(pred, chunk):
            out[i, :, y:y + h, x:x + w] += p
    out /= total
    out = out[:, :, top:top + height, left:left + width]
    return out.to(out_device)
