"""Checks for lesson 11 (the capstone): k-fold splits by hand, the fold summary, and what picking the
best fold does to the estimate.

11.1 and 11.2 are compared with :mod:`segcourse.capstone.crossval` (whose folds follow scikit-learn's
``KFold(shuffle=True)``) on hidden cases; 11.3 is answered by a simulation of fold scores.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import CheckFailed, case, exercise, expect_callable, expect_close

# ------------------------------------------------------------------------------------------
# 11.1 -- k-fold cross-validation indices
# ------------------------------------------------------------------------------------------

_KFOLD_CASES = [(10, 5, 0), (12, 5, 1), (7, 3, 2), (60, 5, 0), (5, 5, 3), (9, 2, 4)]


def _as_index_set(values, what: str) -> list[int]:
    try:
        out = [int(v) for v in np.asarray(values).ravel()]
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: expected an array or list of ints, got {type(values).__name__}") from None
    return out


def _folds(candidate, n, k, seed) -> list[tuple[list[int], list[int]]]:
    got = candidate(n, k, seed)
    try:
        pairs = list(got)
    except TypeError:
        raise CheckFailed(f"expected a list of k (train, val) pairs, got {type(got).__name__}") from None
    if len(pairs) != k:
        raise CheckFailed(f"expected {k} (train, val) pairs, got {len(pairs)}")
    out = []
    for i, pair in enumerate(pairs):
        try:
            train, val = pair
        except (TypeError, ValueError):
            raise CheckFailed(f"fold {i}: expected a (train, val) pair, got {type(pair).__name__}") from None
        out.append((_as_index_set(train, f"fold {i} train"), _as_index_set(val, f"fold {i} val")))
    return out


@exercise("11.1", title="k-fold cross-validation folds by hand", level="core", minutes=15, kind="implement",
          goal="Split n items into k folds so that every item is validated exactly once, the rest of each fold "
               "trains, the folds are balanced and shuffled by a seed, and impossible k are refused.",
          hint="Shuffle np.arange(n) with a generator seeded by seed, cut it into k nearly equal pieces "
               "(np.array_split does it), and for each piece return (the other items, the piece). Raise "
               "ValueError when k < 2 or k > n.")
def check_kfold(candidate):
    expect_callable(candidate, "my_kfold")
    for n, k, seed in _KFOLD_CASES:
        with case(f"n={n}, k={k}, seed={seed}"):
            folds = _folds(candidate, n, k, seed)
            seen = [i for _, val in folds for i in val]
            if sorted(seen) != list(range(n)):
                missing = sorted(set(range(n)) - set(seen))
                twice = sorted({i for i in seen if seen.count(i) > 1})
                raise CheckFailed("the validation folds must hold every item exactly once: "
                                  + (f"never validated: {missing[:5]}" if missing else "")
                                  + (f" validated more than once: {twice[:5]}" if twice else ""))
            for i, (train, val) in enumerate(folds):
                if sorted(train) != sorted(set(range(n)) - set(val)) or len(train) != len(set(train)):
                    raise CheckFailed(f"fold {i}: train must be every item not in that fold's val, each once "
                                      f"(got {len(train)} train items for {len(val)} val of {n})")
            sizes = [len(val) for _, val in folds]
            if max(sizes) - min(sizes) > 1:
                raise CheckFailed(f"fold sizes {sizes} differ by more than one: cut into nearly equal folds")
            again = _folds(candidate, n, k, seed)
            if [sorted(v) for _, v in again] != [sorted(v) for _, v in folds]:
                raise CheckFailed("two calls with the same seed gave different folds: seed the shuffle")
    with case("different seeds"):
        a = [sorted(v) for _, v in _folds(candidate, 20, 4, 0)]
        b = [sorted(v) for _, v in _folds(candidate, 20, 4, 1)]
        if a == b:
            raise CheckFailed("seeds 0 and 1 gave the same folds: shuffle with a generator seeded by seed")
    for n, k in [(10, 1), (4, 5)]:
        with case(f"n={n}, k={k} (impossible)"):
            try:
                candidate(n, k, 0)
            except ValueError:
                continue
            raise CheckFailed(f"k={k} with n={n} must raise ValueError ("
                              + ("one fold leaves nothing to train on)" if k < 2 else "a fold would be empty)"))


# ------------------------------------------------------------------------------------------
# 11.2 -- mean and spread of the fold scores
# ------------------------------------------------------------------------------------------

_SUMMARY_CASES = [
    [{"miou": 0.90, "dice": 0.95}, {"miou": 0.92, "dice": 0.96}, {"miou": 0.88, "dice": 0.93}],
    [{"miou": 0.5}, {"miou": 0.7}],
    [{"a": 0.81, "b": 0.1}, {"a": 0.83, "b": 0.3}, {"a": 0.80, "b": 0.2}, {"a": 0.86, "b": 0.6},
     {"a": 0.79, "b": 0.4}],
]


@exercise("11.2", title="Mean and spread over the folds", level="warm-up", minutes=10, kind="implement",
          goal="Summarise k fold scores per metric by their mean and their sample standard deviation, the "
               "numbers a cross-validated result is reported with.",
          hint="For each metric collect the k values; np.mean, and np.std(values, ddof=1): the sample standard "
               "deviation divides by k - 1, not k.")
def check_fold_summary(candidate):
    from ..capstone.crossval import summarize

    expect_callable(candidate, "summarize_folds")
    for i, scores in enumerate(_SUMMARY_CASES):
        with case(f"{len(scores)} folds, metrics {', '.join(scores[0])}"):
            got = candidate([dict(s) for s in scores])
            if not isinstance(got, dict) or set(got) != set(scores[0]):
                raise CheckFailed(f"expected a dict with one entry per metric ({', '.join(scores[0])}), got "
                                  f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
            want = summarize(scores)
            for name, pair in got.items():
                try:
                    mean, std = (float(v) for v in pair)
                except (TypeError, ValueError):
                    raise CheckFailed(f"{name}: expected a (mean, std) pair of numbers, got {pair!r}") from None
                expect_close(mean, want[name]["mean"], f"{name} mean", atol=1e-9)
                population = float(np.std([s[name] for s in scores]))
                if math.isclose(std, population, rel_tol=1e-9) and not math.isclose(std, want[name]["std"]):
                    raise CheckFailed(f"{name}: that is the population standard deviation (divided by k); the "
                                      "spread of k fold scores is reported with the sample one (ddof=1)")
                expect_close(std, want[name]["std"], f"{name} std", atol=1e-9)


# ------------------------------------------------------------------------------------------
# 11.3 -- the best fold as the estimate
# ------------------------------------------------------------------------------------------

_ANSWERS = ("optimistic", "pessimistic", "unbiased")


def best_fold_bias(trials: int = 2000, k: int = 5, seed: int = 11) -> float:
    """Mean of (best of k fold scores) - (mean of the k), for k scores drawn around one true value."""
    rng = np.random.default_rng(seed)
    scores = 0.9 + 0.02 * rng.standard_normal((trials, k))
    return float((scores.max(axis=1) - scores.mean(axis=1)).mean())


@exercise("11.3", title="Predict: the best fold as the estimate", level="core", minutes=5, kind="predict",
          goal="See why the best fold's validation score overstates how well a recipe does on new images, and "
               "why the final model is scored on a held-out test split instead.",
          hint="The folds differ by chance. Taking the largest of k noisy numbers is a selection: on average, "
               "is the largest of k draws above, below or at their common centre?")
def check_best_fold(candidate):
    if not isinstance(candidate, str) or candidate.strip().lower() not in _ANSWERS:
        raise CheckFailed(f"answer with one of {', '.join(map(repr, _ANSWERS))}, got {candidate!r}")
    bias = best_fold_bias()
    truth = "optimistic" if bias > 0 else "pessimistic" if bias < 0 else "unbiased"
    if candidate.strip().lower() != truth:
        raise CheckFailed("that is not what selecting the best of k noisy scores does; look at the per-fold "
                          "figure and compare the best fold with the mean")


# ------------------------------------------------------------------------------------------
# 11.4 -- a rubric check by hand: is this split a partition?
# ------------------------------------------------------------------------------------------


def _split_cases() -> list[tuple[str, dict, bool]]:
    """(name, split, valid) -- a valid split from make_split and one broken copy per rule."""
    import copy

    from ..capstone.crossval import make_split

    good = make_split(20, 4, test_fraction=0.25, seed=5)
    cases = [("a valid split", good, True), ("another valid split", make_split(13, 3, test_fraction=0.3, seed=1), True)]

    def broken(name, change):
        s = copy.deepcopy(good)
        change(s)
        cases.append((name, s, False))

    broken("a test image also in the pool", lambda s: s["pool"].append(s["test"][0]) or s["folds"][0].append(s["test"][0]))
    broken("an image in no split", lambda s: (s["pool"].remove(s["folds"][1][0]), s["folds"][1].pop(0)))
    broken("a pool image in two folds", lambda s: s["folds"][0].append(s["folds"][1][0]))
    broken("a pool image in no fold", lambda s: s["folds"][2].pop())
    broken("one fold only", lambda s: s.update(k=1, folds=[s["pool"]]))
    broken("an empty fold", lambda s: (s["folds"][0].extend(s["folds"][3]), s["folds"].__setitem__(3, [])))
    broken("an index beyond n", lambda s: (s["pool"].append(20), s["folds"][0].append(20), s.update(n=20)))
    return cases


@exercise("11.4", title="A rubric check by hand: is the split a partition", level="stretch", minutes=20,
          kind="implement",
          goal="Write one rubric item as code: decide from a split's lists alone whether the test set is held out "
               "and the folds partition the pool, as the capstone's check_split does.",
          hint="Compare sorted lists: sorted(test + pool) must be list(range(n)) (each image once, nothing "
               "missing or extra); sorted(every index of every fold) must be sorted(pool); at least two folds, "
               "none empty.")
def check_split_by_hand(candidate):
    expect_callable(candidate, "my_check_split")
    for name, split, valid in _split_cases():
        with case(name):
            got = candidate(split)
            if not isinstance(got, (bool, np.bool_)):
                raise CheckFailed(f"expected True or False, got {type(got).__name__} {got!r}")
            if bool(got) != valid:
                raise CheckFailed("this split is valid, but your check rejects it" if valid else
                                  "this split is broken, but your check accepts it")
