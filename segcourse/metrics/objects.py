"""Per-object recall of a semantic prediction, split by object size: does a model find small objects?

mIoU pools pixels, so large objects dominate it; a model can miss every small object and lose little.
Scoring each ground-truth *object* separately (its instance mask from the dataset) shows it:

* **recall of an object** (per class): the fraction of its pixels predicted as its own class;
* **class-agnostic recall**: the fraction of its pixels predicted as *any* foreground class, i.e. the
  object was found, whatever it was called. The gap between the two is the objects found but misnamed.

Both are averaged over the objects smaller than ``split_px`` pixels and over the others. This is a
teaching diagnostic in the spirit of COCO's AP by object size (``areaRng`` small/medium/large), not a
reproduction of it: it has no matching, no scores and no precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ObjectRecall", "object_recall"]


@dataclass(frozen=True)
class ObjectRecall:
    """Mean per-object recall of the small and the large objects (NaN where a group is empty)."""

    small: float
    large: float
    small_agnostic: float
    large_agnostic: float
    n_small: int
    n_large: int


def object_recall(pred: Any, masks: Any, instances: Any, split_px: int, *, background: int = 0) -> ObjectRecall:
    """Per-object recall, per class and class-agnostic, averaged over small and large objects.

    Args:
        pred: ``(N, H, W)`` predicted class ids.
        masks: ``(N, H, W)`` true class ids (an object's class is the most frequent class under its instance mask).
        instances: ``(N, H, W)`` instance ids, 0 = no object, ``1..K`` one per object in each image.
        split_px: objects with fewer pixels than this are "small".
        background: the background class id.

    Returns:
        An :class:`ObjectRecall`.

    Raises:
        ValueError: shapes differ or are not ``(N, H, W)``; ``split_px < 1``.
    """
    p, m, inst = (np.asarray(a) for a in (pred, masks, instances))
    if not p.shape == m.shape == inst.shape or p.ndim != 3:
        raise ValueError(f"pred, masks and instances must all be (N, H, W), got {p.shape}, {m.shape}, {inst.shape}")
    if split_px < 1:
        raise ValueError(f"split_px must be a positive number of pixels, got {split_px}")
    groups: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for pi, mi, ii in zip(p, m, inst):
        for k in np.unique(ii):
            if k == 0:
                continue
            obj = ii == k
            cls = np.bincount(mi[obj].astype(np.int64)).argmax()
            per_class, agnostic = groups[bool(obj.sum() < split_px)]
            per_class.append(float((pi[obj] == cls).mean()))
            agnostic.append(float((pi[obj] != background).mean()))

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    (small, small_any), (large, large_any) = groups[True], groups[False]
    return ObjectRecall(mean(small), mean(large), mean(small_any), mean(large_any), len(small), len(large))
