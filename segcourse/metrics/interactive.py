"""Interactive segmentation, measured as the field measures it: simulated clicks, IoU after k clicks, NoC.

**The click protocol** (Xu et al. 2016; the form used by RITM, Sofiiuk et al. 2022, and SAM's
interactive evaluation): a simulated user looks at the current prediction and the ground truth,
takes the larger of the two error regions -- false negatives (object pixels missed) or false positives
(background pixels taken) -- and clicks at its *centre*: the error pixel farthest from the error
region's boundary (the maximum of its Euclidean distance transform, the image border counting as
boundary). A click in the false negatives is positive, one in the false positives negative. The first
click, on an empty prediction, is therefore the interior point of the object farthest from its boundary.
"Larger" compares the two maxima of the distance transforms (RITM's ``fn_max_dist > fp_max_dist``),
not the areas: a thin sliver along the whole boundary is many pixels but a poor place to click.

**The metrics**: ``IoU@k``, the IoU after ``k`` clicks, averaged over objects; ``NoC@t``, the number of
clicks needed to reach IoU ``>= t`` (85 % and 90 % are the standard thresholds), capped at
``max_clicks = 20`` for an object that never gets there (so NoC is a mean of numbers in 1..20).

Conventions: masks are ``(H, W)`` bool (any 0/1 array is accepted); a click is ``(row, col, positive)``
with ``row, col`` int and ``positive`` bool; ties between pixels at the same distance go to the first in
row-major order (``np.argmax``); when the prediction equals the target there is no next click (``None``).

References:
    Xu, Price, Cohen, Yang, Huang, "Deep Interactive Object Selection", CVPR 2016, https://arxiv.org/abs/1603.04042.
    Sofiiuk, Petrov, Konushin, "Reviving Iterative Training with Mask Guidance for Interactive
    Segmentation" (RITM), ICIP 2022, https://arxiv.org/abs/2102.06583.
    Kirillov et al., "Segment Anything", ICCV 2023, https://arxiv.org/abs/2304.02643 (Section 7.1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

Click = tuple[int, int, bool]

#: the standard NoC thresholds and cap
NOC_THRESHOLDS = (0.85, 0.90)
MAX_CLICKS = 20


def _binary(mask, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) mask, got shape {mask.shape}")
    return mask.astype(bool)


def _centre_distance(region: np.ndarray) -> np.ndarray:
    """Euclidean distance of each pixel of ``region`` to the nearest pixel outside it or outside the image."""
    padded = np.pad(region, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def farthest_point(region) -> tuple[int, int] | None:
    """The pixel of ``region`` farthest from its boundary ``(row, col)``, or ``None`` for an empty region.

    >>> farthest_point(np.pad(np.ones((3, 5), bool), 1))     # row 2 is the middle; columns 2..4 tie, the first wins
    (2, 2)
    """
    region = _binary(region, "region")
    if not region.any():
        return None
    dist = _centre_distance(region)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c)


def first_click(target) -> Click:
    """The first simulated click: positive, at the object's interior point farthest from its boundary.

    Raises:
        ValueError: an empty target (there is nothing to click on).
    """
    point = farthest_point(target)
    if point is None:
        raise ValueError("the target mask is empty: an interactive benchmark needs an object to click on")
    return point[0], point[1], True


def next_click(pred, target) -> Click | None:
    """The next simulated click: at the centre of the larger error region; ``None`` if ``pred == target``.

    Positive (``True``) in the false negatives, negative in the false positives; see the module docstring.
    """
    pred, target = _binary(pred, "pred"), _binary(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must have the same shape")
    fn_dist = _centre_distance(target & ~pred)
    fp_dist = _centre_distance(pred & ~target)
    fn_max, fp_max = float(fn_dist.max()), float(fp_dist.max())
    if fn_max == 0 and fp_max == 0:
        return None
    positive = fn_max > fp_max
    dist = fn_dist if positive else fp_dist
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c), bool(positive)


def mask_iou(pred, target) -> float:
    """IoU of two ``(H, W)`` masks; two empty masks give 1.0 (nothing to find, nothing found)."""
    pred, target = _binary(pred, "pred"), _binary(target, "target")
    union = int((pred | target).sum())
    return 1.0 if union == 0 else int((pred & target).sum()) / union


def ring_iou(target, pixels: int = 1) -> float:
    """The IoU of ``target`` with itself dilated by ``pixels`` (4-connected steps): what a prediction reaches
    that is right everywhere except a ``pixels``-wide ring outside the object's boundary.

    For small objects this caps the reachable IoU: a 15-pixel-wide nucleus dilated by one pixel has IoU of
    about 0.8, so NoC@85/90 then ask for boundaries exact to the pixel. ``target``: ``(H, W)`` bool, not empty.
    """
    target = _binary(target, "target")
    if not target.any():
        raise ValueError("target is empty: the ring IoU of an empty mask is undefined")
    if not isinstance(pixels, int) or pixels < 0:
        raise ValueError(f"pixels must be a non-negative int, got {pixels!r}")
    grown = ndimage.binary_dilation(target, iterations=pixels) if pixels else target
    return mask_iou(grown, target)


def number_of_clicks(ious: Sequence[float], threshold: float, max_clicks: int = MAX_CLICKS) -> int:
    """NoC: the first ``k`` (1-based) with ``ious[k-1] >= threshold``, else ``max_clicks``.

    >>> number_of_clicks([0.5, 0.86, 0.91], 0.85), number_of_clicks([0.5, 0.86, 0.91], 0.90), number_of_clicks([0.5], 0.9)
    (2, 3, 20)
    """
    for k, value in enumerate(list(ious)[:max_clicks], start=1):
        if value >= threshold:
            return k
    return max_clicks


def simulate(predict: Callable[[list[Click]], np.ndarray], target, max_clicks: int = MAX_CLICKS,
             stop_at: float = max(NOC_THRESHOLDS), min_clicks: int = 5) -> tuple[np.ndarray, list[Click]]:
    """Run the click protocol on one object with any predictor.

    Args:
        predict: ``predict(clicks) -> (H, W)`` bool mask for the clicks so far.
        target: the object's ``(H, W)`` mask.
        max_clicks: the cap (20).
        stop_at, min_clicks: stop once the IoU is ``>= stop_at`` and at least ``min_clicks`` clicks were made
            (later clicks change neither NoC at thresholds ``<= stop_at`` nor ``IoU@k`` for ``k <= min_clicks``).

    Returns:
        ``ious`` float ``(max_clicks,)`` -- the IoU after each click; after a stop, the last IoU is carried
        forward (a prediction equal to the target stays 1.0) -- and the clicks made.
    """
    target = _binary(target, "target")
    clicks = [first_click(target)]
    ious: list[float] = []
    while True:
        pred = _binary(predict(list(clicks)), "prediction")
        ious.append(mask_iou(pred, target))
        if len(ious) == max_clicks or (ious[-1] >= stop_at and len(ious) >= min_clicks):
            break
        click = next_click(pred, target)
        if click is None:
            break
        clicks.append(click)
    return np.array(ious + [ious[-1]] * (max_clicks - len(ious)), dtype=np.float64), clicks


def summarise(curves, areas=None, *, clicks: Sequence[int] = (1, 3, 5), thresholds: Sequence[float] = NOC_THRESHOLDS,
              max_clicks: int = MAX_CLICKS, size_edges: Sequence[float] | None = None) -> dict:
    """Mean ``IoU@k`` and ``NoC@t`` over objects, overall and by object size.

    Args:
        curves: float ``(M, max_clicks)``, each object's IoU after 1..max_clicks clicks.
        areas: ``(M,)`` object areas in pixels (needed for the size groups).
        size_edges: area edges of the size groups, e.g. ``(150, 300)`` -> ``<150``, ``150-300``, ``>=300``;
            ``None`` with ``areas``: the terciles of ``areas``.

    Returns:
        ``{"objects": M, "iou@1": ..., "noc@85": ..., ..., "by_size": {label: {same keys}}}`` (floats).
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.shape[1] < max(clicks):
        raise ValueError(f"curves must be (objects, >= {max(clicks)} clicks), got shape {curves.shape}")

    def one(c: np.ndarray) -> dict:
        out: dict = {"objects": len(c)}
        out.update({f"iou@{k}": float(c[:, k - 1].mean()) if len(c) else float("nan") for k in clicks})
        out.update({f"noc@{round(t * 100)}": float(np.mean([number_of_clicks(row, t, max_clicks) for row in c])) if len(c) else float("nan")
                    for t in thresholds})
        return out

    result = one(curves)
    if areas is not None:
        areas = np.asarray(areas, dtype=np.float64)
        if areas.shape != (len(curves),):
            raise ValueError(f"areas must be ({len(curves)},), got {areas.shape}")
        edges = list(size_edges) if size_edges is not None else [float(np.round(q)) for q in np.quantile(areas, [1 / 3, 2 / 3])]
        bounds = [-np.inf, *edges, np.inf]
        groups = {}
        for lo, hi in itertools.pairwise(bounds):
            label = f"< {hi:g} px" if lo == -np.inf else (f">= {lo:g} px" if hi == np.inf else f"{lo:g}-{hi:g} px")
            groups[label] = one(curves[(areas >= lo) & (areas < hi)])
        result["by_size"] = groups
    return result
