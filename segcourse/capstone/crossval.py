"""A held-out test split, k-fold cross-validation, and the fold summary.

On a small data set (a few dozen annotated images, the usual case in medical imaging) one
train/validation split gives a score that depends on which images landed in validation. k-fold
cross-validation trains the same recipe k times, each time holding out a different fold, so every
image is validated exactly once, and reports the **mean and the spread** over the folds. A test
split set aside *before* the folds are made is touched once, at the end, by the final model.

The folds follow scikit-learn's ``KFold(n_splits=k, shuffle=True, random_state=seed)``: the
indices are shuffled with ``numpy.random.RandomState(seed)``, then cut in order into k folds, the
first ``n % k`` of them one item larger. (scikit-learn is not a dependency of the course; the tests
check the defining properties and this construction.)

    >>> [val.tolist() for _, val in kfold_indices(5, 2, seed=0)]
    [[2, 0, 1], [3, 4]]

**Shuffled folds assume independent images.** The synthetic ``cells`` images are generated one by one, so
shuffling them is fine. The slices of a volume are not independent: neighbouring slices of ISBI 2012 (30
serial electron-microscopy sections) are nearly the same image, so a slice in a validation fold whose
neighbour was trained on is half-seen, and the fold score is optimistic (leakage; the ISBI recipe of
:mod:`segcourse.data.recipes` keeps its validation slices contiguous for this reason). For ordered data use
:func:`block_kfold_indices` (contiguous blocks, with ``gap`` neighbours of the block left out of training);
for images grouped by origin (patient, slide, volume) use :func:`group_kfold_indices` (a whole group in one
fold). :func:`make_folds` names the scheme in what ``results.json`` stores.

    >>> [(train.tolist(), val.tolist()) for train, val in block_kfold_indices(8, 4, gap=1)][1]
    ([0, 5, 6, 7], [2, 3])
    >>> [val.tolist() for _, val in group_kfold_indices([0, 0, 1, 1, 1, 2], 2)]
    [[2, 3, 4], [0, 1, 5]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .._checks import check_int


def kfold_indices(n: int | Sequence[int], k: int, *, seed: int = 0,
                  shuffle: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, val)`` index arrays of k-fold cross-validation.

    Args:
        n: the number of items (indices ``0 .. n-1``), or the item indices themselves (e.g. the
            pool left after a test split); the folds are then made of those values.
        k: the number of folds, ``2 <= k <= n``.
        seed: seeds the shuffle (``numpy.random.RandomState(seed)``, as scikit-learn's ``random_state``).
        shuffle: shuffle before cutting (``False``: consecutive blocks).

    Returns:
        k pairs ``(train, val)`` of int64 arrays: every item is in exactly one ``val``; ``train`` is the
        rest, in the items' order. Fold sizes differ by at most one (the first ``n % k`` folds are larger).

    Raises:
        ValueError: ``k < 2`` (one fold leaves nothing to train on), ``k > n`` (a fold would be empty),
            or repeated items.
        TypeError: ``k`` or ``n`` not an int.
    """
    items = np.arange(check_int(n, "n", minimum=0)) if isinstance(n, (int, np.integer)) and not isinstance(n, bool) \
        else np.asarray(list(n), dtype=np.int64)
    if items.ndim != 1:
        raise ValueError(f"the items must be one-dimensional, got shape {items.shape}")
    if len(np.unique(items)) != len(items):
        raise ValueError(f"the items must be distinct: {len(items) - len(np.unique(items))} repeated")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__} {k!r}")
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2 folds, got k={k}: with one fold nothing is left "
                         "to train on")
    if k > len(items):
        raise ValueError(f"k={k} folds of {len(items)} items: a fold would be empty; use k <= {len(items)}")
    order = items.copy()
    if shuffle:
        np.random.RandomState(seed).shuffle(order)
    sizes = np.full(k, len(items) // k)
    sizes[: len(items) % k] += 1
    folds, start = [], 0
    for size in sizes:
        val = order[start:start + size]
        start += size
        in_val = np.isin(items, val)
        folds.append((items[~in_val].astype(np.int64), val.astype(np.int64)))
    return folds


def block_kfold_indices(n: int | Sequence[int], k: int, *, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold cross-validation of **ordered** items (slices of a volume, frames of a video): contiguous blocks.

    Fold ``j`` validates the ``j``-th contiguous block of the items (in their order, sizes as
    :func:`kfold_indices` without shuffling) and trains on the rest **minus** the ``gap`` items on each side of
    the block, which are used neither for training nor for validation in that fold: the neighbours of a
    validation slice are the ones that leak the most.

    Args:
        n: the number of items (``0 .. n-1``, in order) or the item indices in their order (e.g. the slices of
            the pool).
        k: the number of folds, ``2 <= k <= n``.
        gap: items left out of training on each side of the validation block (0: none; 1 or 2 for serial
            sections).

    Returns:
        k pairs ``(train, val)`` of int64 arrays: every item in exactly one ``val``, each ``val`` contiguous in
        the items' order; ``train`` the items more than ``gap`` positions away from the block.

    Raises:
        ValueError: as :func:`kfold_indices`; ``gap < 0``; or a gap so wide that some fold has no training item.
    """
    items = np.arange(check_int(n, "n", minimum=0)) if isinstance(n, (int, np.integer)) and not isinstance(n, bool) \
        else np.asarray(list(n), dtype=np.int64)
    gap = check_int(gap, "gap", minimum=0)
    folds = []
    for fold, (_, val) in enumerate(kfold_indices(items, k, shuffle=False)):
        first = int(np.flatnonzero(items == val[0])[0])
        last = first + len(val) - 1
        positions = np.arange(len(items))
        keep = (positions < first - gap) | (positions > last + gap)
        if not keep.any():
            raise ValueError(f"block fold {fold} (items {first}..{last} of {len(items)}) with gap={gap} leaves no item "
                             "to train on; use a smaller gap or more items")
        folds.append((items[keep].astype(np.int64), val.astype(np.int64)))
    return folds


def group_kfold_indices(groups: Sequence, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold cross-validation with whole **groups** in one fold (images of one patient, one slide, one volume).

    The greedy construction of scikit-learn's ``GroupKFold`` (without shuffling): the groups, largest first (ties:
    the group seen first), each go to the fold with the fewest items so far (ties: the lowest fold number).
    Deterministic, no seed.

    Args:
        groups: one group label per item (any hashable: ``"patient-3"``, a volume number); item ``i`` is index ``i``.
        k: the number of folds, ``2 <= k <= number of groups``.

    Returns:
        k pairs ``(train, val)`` of sorted int64 arrays: no group is split between ``train`` and ``val``.

    Raises:
        ValueError: ``k < 2`` or more folds than groups (a fold would be empty).
    """
    labels = list(groups)
    names = list(dict.fromkeys(labels))                      # groups in order of first appearance
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__} {k!r}")
    if k < 2 or k > len(names):
        raise ValueError(f"group k-fold needs 2 <= k <= the number of groups ({len(names)}), got k={k}")
    members = {name: [i for i, g in enumerate(labels) if g == name] for name in names}
    order = sorted(names, key=lambda name: (-len(members[name]), names.index(name)))
    fold_items: list[list[int]] = [[] for _ in range(k)]
    for name in order:
        smallest = min(range(k), key=lambda j: (len(fold_items[j]), j))
        fold_items[smallest].extend(members[name])
    everything = np.arange(len(labels))
    return [(np.setdiff1d(everything, val).astype(np.int64), np.sort(np.asarray(val, dtype=np.int64)))
            for val in fold_items]


#: The fold schemes :func:`make_folds` knows: independent images, ordered slices, grouped images.
SCHEMES = ("shuffled", "blocks", "groups")


def make_folds(n: int, k: int, *, scheme: str = "shuffled", seed: int = 0, gap: int = 0,
               groups: Sequence | None = None) -> dict:
    """The cross-validation folds of a pool of ``n`` images, as JSON-ready lists (``results.json``'s ``split``).

    The capstone's test images are fixed by the brief (:mod:`segcourse.capstone.task`), so the whole pool is
    cut into folds here.

    Args:
        n: pool size (images ``0 .. n-1``, in their order: slice order for a volume).
        k: number of folds.
        scheme: ``"shuffled"`` (:func:`kfold_indices`, independent images such as ``cells``), ``"blocks"``
            (:func:`block_kfold_indices`, slices of a volume) or ``"groups"`` (:func:`group_kfold_indices`).
        seed: the shuffle's seed (``"shuffled"`` only).
        gap: neighbours left out of training on each side of a block (``"blocks"`` only).
        groups: one group label per image (``"groups"`` only).

    Returns:
        ``{"n", "k", "scheme", "seed", "gap", "pool": [0 .. n-1], "folds": [[val indices of fold 0], ...],
        "train": [[train indices of fold 0], ...]}``.

    Raises:
        ValueError: an unknown scheme, ``groups`` missing or of the wrong length, and as the fold functions.
    """
    n = check_int(n, "n", minimum=2)
    if scheme == "shuffled":
        folds = kfold_indices(n, k, seed=seed)
    elif scheme == "blocks":
        folds = block_kfold_indices(n, k, gap=gap)
    elif scheme == "groups":
        if groups is None or len(groups) != n:
            raise ValueError(f"scheme 'groups' needs one group label per image: got "
                             f"{'none' if groups is None else len(groups)} for n={n}")
        folds = group_kfold_indices(groups, k)
    else:
        raise ValueError(f"unknown fold scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return {"n": n, "k": int(k), "scheme": scheme, "seed": int(seed), "gap": int(gap), "pool": list(range(n)),
            "folds": [val.tolist() for _, val in folds], "train": [train.tolist() for train, _ in folds]}


def holdout_split(n: int, test_fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``0 .. n-1`` cut into ``(pool, test)``: the test split is set aside before any fold is made.

    Args:
        n: number of items.
        test_fraction: share of items in the test split, ``0 < test_fraction < 1`` (rounded to whole
            items, at least one on each side).
        seed: seeds the shuffle (a ``numpy.random.default_rng(seed)`` permutation).

    Returns:
        ``(pool, test)``, both sorted int64 arrays, disjoint, together ``0 .. n-1``.

    Raises:
        ValueError: ``n < 2`` or ``test_fraction`` outside (0, 1).
    """
    n = check_int(n, "n", minimum=2)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]).astype(np.int64), np.sort(order[:n_test]).astype(np.int64)


def make_split(n: int, k: int, *, test_fraction: float = 0.2, seed: int = 0) -> dict:
    """A held-out test split and k folds of the rest, as JSON-ready lists (what ``results.json`` stores).

    Returns:
        ``{"n": n, "k": k, "scheme": "shuffled", "seed": seed, "test": [...], "pool": [...],
        "folds": [[val indices of fold 0], ...]}``.

    Raises:
        ValueError: as :func:`holdout_split` and :func:`kfold_indices` (k larger than the pool, k < 2).
    """
    pool, test = holdout_split(n, test_fraction, seed=seed)
    folds = kfold_indices(pool, k, seed=seed)
    return {"n": int(n), "k": int(k), "scheme": "shuffled", "seed": int(seed), "test": test.tolist(),
            "pool": pool.tolist(), "folds": [val.tolist() for _, val in folds]}


def summarize(fold_scores: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean ± standard deviation, min and max of each metric over the folds.

    Args:
        fold_scores: one ``{metric: value}`` per fold, every fold with the same metrics.

    Returns:
        ``{metric: {"mean", "std", "min", "max", "n"}}``; ``std`` is the **sample** standard deviation
        (``ddof=1``, the spread of the fold scores as an estimate of the recipe's; NaN for one fold).

    Raises:
        ValueError: no folds, folds with different metrics, or a metric that is NaN or not finite
            in some fold (name and fold given).
    """
    if not fold_scores:
        raise ValueError("no fold scores to summarise")
    names = list(fold_scores[0])
    for i, scores in enumerate(fold_scores):
        if set(scores) != set(names):
            raise ValueError(f"fold {i} has metrics {sorted(scores)}, fold 0 has {sorted(names)}: every fold "
                             "must report the same metrics")
        for name in names:
            value = float(scores[name])
            if not math.isfinite(value):
                raise ValueError(f"fold {i}: metric {name!r} is {value}; a fold score must be a finite number")
    out = {}
    for name in names:
        values = np.array([float(s[name]) for s in fold_scores])
        out[name] = {"mean": float(values.mean()),
                     "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                     "min": float(values.min()), "max": float(values.max()), "n": len(values)}
    return out


def format_summary(stats: Mapping[str, float], fmt: str = ".3f") -> str:
    """``"0.912 ± 0.010 (0.899–0.925)"`` for one metric's entry of :func:`summarize`."""
    return (f"{stats['mean']:{fmt}} ± {stats['std']:{fmt}} "
            f"({stats['min']:{fmt}}–{stats['max']:{fmt}})")


def compare_folds(a_name: str, a: Sequence[float], b_name: str, b: Sequence[float], *, metric: str,
                  comparisons: int = 1, fmt: str = ".3f") -> str:
    """The course's paired verdict (:func:`segcourse.teaching.compare.verdict`) for two contenders scored on the
    **same folds**: ``a[i]`` and ``b[i]`` are fold ``i``'s validation scores, and the sentence says "folds".

    Pairing by fold cancels what makes a fold easy or hard. The folds' training sets overlap, so the per-fold
    differences are not independent and the paired t-test is somewhat optimistic (Nadeau and Bengio, "Inference
    for the generalization error", Machine Learning 52, 2003): claim only clear differences.

        >>> print(compare_folds("U-Net", [0.97, 0.98, 0.96], "Otsu", [0.94, 0.95, 0.94], metric="Dice"))
        U-Net beats Otsu on Dice: mean paired difference (U-Net minus Otsu) +0.027 over 3 folds (per fold +0.030, +0.030, +0.020; sd 0.006; 95 % CI +0.012 to +0.041; paired t-test at the 5 % level).
    """
    from ..teaching.compare import verdict

    sentence = verdict(a_name, a, b_name, b, metric=metric, comparisons=comparisons, fmt=fmt)
    return (sentence.replace(" seeds", " folds").replace("per seed", "per fold").replace("one seed", "one fold")
            .replace("(quick and full mode train several seeds)", "(quick and full mode make several folds)"))
