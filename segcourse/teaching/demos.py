"""Demonstration scenarios of lesson 07: fake predictions for the explorers and deliberately wrong formulas.

None of these is a metric to use. They stage what the lesson shows next to the real metrics of
:mod:`segcourse.metrics` (and what the explorers of :mod:`segcourse.widgets.metrics` draw), deterministic
numpy/torch on small arrays so that nbval can compare the lesson's numbers:

* fake predictions: :func:`soft_prediction` (a realistic probability map from a mask, for the threshold
  slider), :func:`simulate_prediction` and :func:`simulate_instances` (a damaged semantic or instance
  prediction), :func:`perturb_mask` (shift / dilate / erode / delete objects), :func:`perturb_panoptic`;
* what the metrics make of them: :func:`perturbation_scores`, :func:`imbalance_scores`;
* wrong formulas shown beside the right ones: :func:`per_batch_mean_miou` (the per-batch averaging bug)
  and :func:`rq_double_fp` (the RQ formula with FP counted twice).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from .._checks import as_binary_mask
from ..constants import IGNORE_INDEX
from ..metrics.boundary import boundary_iou, hausdorff_distance
from ..metrics.confusion import confusion_matrix, scores_from_confusion

__all__ = [
    "PERTURBATIONS",
    "imbalance_scores",
    "per_batch_mean_miou",
    "perturb_mask",
    "perturb_panoptic",
    "perturbation_scores",
    "rq_double_fp",
    "simulate_instances",
    "simulate_prediction",
    "soft_prediction",
]

PERTURBATIONS: tuple[str, ...] = ("none", "shift", "dilate", "erode", "delete")


def soft_prediction(target: Any, blur: float = 2.0, noise: float = 0.6, bias: float = 0.0, seed: int = 0) -> np.ndarray:
    """A fake probability map that looks like a network's: blurred edges, smooth noise, a bias.

    Args:
        target: ``(H, W)`` bool mask.
        blur: Gaussian sigma (pixels) of the edges.
        noise: amplitude of smooth noise in logit space.
        bias: added to the logits (negative: an under-confident network).
        seed: noise seed.

    Returns:
        ``(H, W)`` float64 probabilities in (0, 1), a deterministic function of the arguments.
    """
    t = as_binary_mask(target, "target", ndim=None).astype(np.float64)
    rng = np.random.default_rng(seed)
    logits = 8.0 * (ndimage.gaussian_filter(t, blur) - 0.5)
    smooth = ndimage.gaussian_filter(rng.standard_normal(t.shape), 3.0)
    smooth /= smooth.std() + 1e-12
    return 1.0 / (1.0 + np.exp(-(logits + noise * 2.0 * smooth + bias)))


def perturb_mask(mask: Any, kind: str, amount: int = 1) -> np.ndarray:
    """A deliberately damaged copy of a binary mask.

    Args:
        mask: ``(H, W)`` bool.
        kind: ``"none"``; ``"shift"`` (move right by ``amount`` pixels, background enters on the left);
            ``"dilate"`` / ``"erode"`` (``amount`` iterations with a 3×3 square);
            ``"delete"`` (remove the ``amount`` smallest connected objects).
        amount: size of the damage (>= 0).

    Returns:
        ``(H, W)`` bool.
    """
    m = as_binary_mask(mask, ndim=None)
    if kind not in PERTURBATIONS:
        raise ValueError(f"kind must be one of {PERTURBATIONS}, got {kind!r}")
    if not isinstance(amount, (int, np.integer)) or amount < 0:
        raise ValueError(f"amount must be an int >= 0, got {amount!r}")
    if kind == "none" or amount == 0:
        return m.copy()
    if kind == "shift":
        out = np.zeros_like(m)
        if amount < m.shape[1]:
            out[:, amount:] = m[:, :-amount]
        return out
    square = np.ones((3, 3), bool)
    if kind == "dilate":
        return ndimage.binary_dilation(m, square, iterations=amount)
    if kind == "erode":
        return ndimage.binary_erosion(m, square, iterations=amount)
    labels, n = ndimage.label(m)
    if n == 0:
        return m.copy()
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    drop = 1 + np.argsort(sizes, kind="stable")[:amount]
    return m & ~np.isin(labels, drop)


def perturbation_scores(pred: Any, target: Any, dilation_ratio: float = 0.02) -> dict[str, float]:
    """How region and boundary metrics see one binary prediction.

    Returns:
        ``iou`` (foreground), ``miou`` (background and foreground), ``dice``, ``boundary_iou``,
        ``hd95`` (pixels; inf when exactly one mask is empty).
    """
    p, t = as_binary_mask(pred, "pred", ndim=None), as_binary_mask(target, "target", ndim=None)
    s = scores_from_confusion(confusion_matrix(torch.from_numpy(p), torch.from_numpy(t), 2))
    return {"iou": float(s["iou"][1]), "miou": s["miou"], "dice": float(s["dice"][1]),
            "boundary_iou": boundary_iou(p, t, dilation_ratio), "hd95": hausdorff_distance(p, t, percentile=95)}


def imbalance_scores(fraction: float, size: int = 128, error_pixels: int = 1) -> dict[str, dict[str, float]]:
    """Pixel accuracy, mIoU and foreground Dice of three predictors as the foreground shrinks.

    The target is one centred square covering ``fraction`` of a ``size × size`` image. The
    predictors: ``"all background"`` (never predicts the object), ``"boundary error"`` (the square
    grown by ``error_pixels`` on every side), ``"perfect"``.

    Returns:
        ``{predictor: {"pixel_accuracy", "miou", "dice", "foreground_fraction"}}``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    side = max(1, round(math.sqrt(fraction) * size))
    target = np.zeros((size, size), bool)
    lo = (size - side) // 2
    target[lo:lo + side, lo:lo + side] = True
    grown = np.zeros_like(target)
    a, b = max(lo - error_pixels, 0), min(lo + side + error_pixels, size)
    grown[a:b, a:b] = True
    out = {}
    for name, pred in (("all background", np.zeros_like(target)), ("boundary error", grown), ("perfect", target)):
        s = scores_from_confusion(confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 2))
        out[name] = {"pixel_accuracy": s["pixel_accuracy"], "miou": s["miou"],
                     "dice": float(s["dice"][1]),
                     "foreground_fraction": float(target.mean())}
    return out


def per_batch_mean_miou(pred: Any, target: Any, num_classes: int, batch_size: int,
                        ignore_index: int | None = IGNORE_INDEX) -> float:
    """The **wrong** dataset mIoU: the mean over batches of each batch's mIoU.

    Shown in lesson 07 next to the right answer (one pooled confusion matrix). It differs because
    a batch where a rare class is absent or tiny weighs as much as any other batch, and the
    last, smaller batch weighs as much as a full one.

    Args:
        pred, target: ``(N, H, W)`` class ids; batch_size: split along N.
    """
    n = len(pred)
    values = []
    for i in range(0, n, batch_size):
        cm = confusion_matrix(pred[i:i + batch_size], target[i:i + batch_size], num_classes, ignore_index)
        values.append(scores_from_confusion(cm)["miou"])
    return float(np.nanmean(values))


def rq_double_fp(tp: int, fp: int, fn: int) -> float:
    """The **buggy** recognition quality ``TP / (TP + ½FP + ½FP + ½FN)`` (FP counted twice).

    The correct formula is ``TP / (TP + ½FP + ½FN)``; this one is kept to show by how much the
    bug underestimates RQ when a model has false positives.
    """
    den = tp + 0.5 * fp + 0.5 * fp + 0.5 * fn
    return tp / den if den > 0 else 0.0


def perturb_panoptic(target: Any, things: Collection[int], shift: int = 0, drop: int = 0, spurious: int = 0,
                     seed: int = 0) -> np.ndarray:
    """A panoptic prediction made from a ground-truth map by damaging its things.

    Args:
        target: ``(H, W, 2)`` int (category_id, instance_id).
        things: category ids that have instances.
        shift: move every thing ``shift`` pixels right (the stuff underneath shows through).
        drop: remove the ``drop`` smallest things (they become false negatives), filled with
            the stuff class most common in the image.
        spurious: add ``spurious`` small square things at seeded random places (false positives).
        seed: for the spurious things.

    Returns:
        ``(H, W, 2)`` int64 prediction.
    """
    t = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    if t.ndim != 3 or t.shape[-1] != 2:
        raise ValueError(f"target must be one (H, W, 2) panoptic map, got shape {t.shape}")
    things = sorted(int(c) for c in things)
    t = t.astype(np.int64)
    is_thing = np.isin(t[..., 0], things)
    stuff_cats = t[..., 0][~is_thing]
    filler = int(np.bincount(stuff_cats).argmax()) if stuff_cats.size else 0
    pred = t.copy()
    pred[is_thing] = (filler, 0)
    ids = np.unique(t[is_thing], axis=0) if is_thing.any() else np.zeros((0, 2), np.int64)
    areas = [int(np.all(t == key, axis=-1).sum()) for key in ids]
    keep = [ids[i] for i in np.argsort(areas, kind="stable")[drop:]] if len(ids) else []
    h, w = t.shape[:2]
    for key in sorted(keep, key=lambda k: (k[0], k[1])):
        sel = np.all(t == key, axis=-1)
        if shift:
            moved = np.zeros_like(sel)
            if shift < w:
                moved[:, shift:] = sel[:, :-shift]
            sel = moved
        pred[sel] = key
    rng = np.random.default_rng(seed)
    next_id = int(t[..., 1].max()) + 1
    side = max(2, min(h, w) // 10)
    for k in range(spurious):
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        pred[y:y + side, x:x + side] = (things[k % len(things)] if things else filler, next_id + k)
    return pred


def _objects(instances: np.ndarray, mask: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """(object mask, majority class) for every instance id > 0, in id order."""
    out = []
    for k in np.unique(instances):
        if k == 0:
            continue
        obj = instances == k
        out.append((obj, int(np.bincount(mask[obj].astype(np.int64)).argmax())))
    return out


def _jitter(obj: np.ndarray, step: int) -> np.ndarray:
    square = np.ones((3, 3), bool)
    if step > 0:
        return ndimage.binary_dilation(obj, square, iterations=step)
    if step < 0:
        eroded = ndimage.binary_erosion(obj, square, iterations=-step)
        return eroded if eroded.any() else obj
    return obj


def simulate_prediction(mask: Any, instances: Any, num_classes: int, seed: int = 0, p_miss: float = 0.15,
                        p_confuse: float = 0.15, jitter: int = 1, spurious: int = 1) -> np.ndarray:
    """A deterministic, plausibly imperfect semantic prediction made from the ground truth.

    Lesson 07 studies metrics, not models: instead of training a network it damages the truth in
    the ways networks err. Each object (instance) is, independently: missed with probability
    ``p_miss`` (predicted as background 0), given another class with probability ``p_confuse``,
    and grown or shrunk by up to ``jitter`` pixels; ``spurious`` small false blobs are added.

    Args:
        mask: ``(H, W)`` int class ids (0 = background); instances: ``(H, W)`` int (0 = none).
        num_classes: C; seed: the damage is a function of the seed.

    Returns:
        ``(H, W)`` int64 predicted class ids.
    """
    m, inst = np.asarray(mask), np.asarray(instances)
    if m.shape != inst.shape:
        raise ValueError(f"mask and instances must have the same shape, got {m.shape} and {inst.shape}")
    rng = np.random.default_rng(seed)
    pred = np.zeros(m.shape, np.int64)
    for obj, cls in _objects(inst, m):
        r_miss, r_conf, step = rng.random(), rng.random(), int(rng.integers(-jitter, jitter + 1))
        if r_miss < p_miss:
            continue
        if r_conf < p_confuse and num_classes > 2:
            cls = int(rng.choice([c for c in range(1, num_classes) if c != cls]))
        pred[_jitter(obj, step)] = cls
    h, w = m.shape
    side = max(2, min(h, w) // 16)
    for _ in range(spurious):
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        pred[y:y + side, x:x + side] = int(rng.integers(1, num_classes))
    return pred


def simulate_instances(mask: Any, instances: Any, num_classes: int, seed: int = 0, p_miss: float = 0.15,
                       p_confuse: float = 0.1, jitter: int = 2, spurious: int = 1) -> tuple[dict, dict]:
    """Ground truth and a plausibly imperfect detector output for one image, in torchvision's format.

    Every object is detected unless missed (``p_miss``), with a mask grown/shrunk by up to ``jitter``
    pixels and a score that is higher the smaller the damage; ``spurious`` false detections get low
    scores. Class ids are the semantic classes (1..C-1).

    Returns:
        ``(prediction, target)``: ``{"masks": (N, H, W) bool, "scores": (N,) float32, "labels": (N,) int64}``
        and ``{"masks": (M, H, W) bool, "labels": (M,) int64}`` as torch tensors.
    """
    m, inst = np.asarray(mask), np.asarray(instances)
    rng = np.random.default_rng(seed)
    objects = _objects(inst, m)
    h, w = m.shape
    gt_masks = [o for o, _ in objects]
    gt_labels = [c for _, c in objects]
    p_masks, p_scores, p_labels = [], [], []
    for obj, cls in objects:
        r_miss, r_conf, step = rng.random(), rng.random(), int(rng.integers(-jitter, jitter + 1))
        if r_miss < p_miss:
            continue
        if r_conf < p_confuse and num_classes > 2:
            cls = int(rng.choice([c for c in range(1, num_classes) if c != cls]))
        p_masks.append(_jitter(obj, step))
        p_scores.append(round(0.95 - 0.15 * abs(step) - 0.1 * rng.random(), 3))
        p_labels.append(cls)
    side = max(2, min(h, w) // 12)
    for _ in range(spurious):
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        blob = np.zeros((h, w), bool)
        blob[y:y + side, x:x + side] = True
        p_masks.append(blob)
        p_scores.append(round(0.3 + 0.4 * rng.random(), 3))
        p_labels.append(int(rng.integers(1, num_classes)))

    def stack(ms: list) -> torch.Tensor:
        return torch.from_numpy(np.stack(ms)) if ms else torch.zeros((0, h, w), dtype=torch.bool)

    prediction = {"masks": stack(p_masks), "scores": torch.tensor(p_scores, dtype=torch.float32),
                  "labels": torch.tensor(p_labels, dtype=torch.int64)}
    target = {"masks": stack(gt_masks), "labels": torch.tensor(gt_labels, dtype=torch.int64)}
    return prediction, target
