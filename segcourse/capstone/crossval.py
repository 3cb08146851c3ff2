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
        ``{"n": n, "k": k, "seed": seed, "test": [...], "pool": [...], "folds": [[val indices of fold 0], ...]}``.

    Raises:
        ValueError: as :func:`holdout_split` and :func:`kfold_indices` (k larger than the pool, k < 2).
    """
    pool, test = holdout_split(n, test_fraction, seed=seed)
    folds = kfold_indices(pool, k, seed=seed)
    return {"n": int(n), "k": int(k), "seed": int(seed), "test": test.tolist(), "pool": pool.tolist(),
            "folds": [val.tolist() for _, val in folds]}


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
