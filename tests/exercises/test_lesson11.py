"""Meta-tests of lesson 11's checks: each says "not attempted" on the learner's stub, fails on
plausible wrong answers and passes on the solution (stub and solution read from solutions/11_capstone.ipynb)."""

from __future__ import annotations

import numpy as np
import pytest

from segcourse.exercises.lesson11 import best_fold_bias

from .notebook_solutions import solution, verify_against_notebook

# ---------------------------------------------------------------- 11.1


def _no_shuffle(n, k, seed):                       # same folds for every seed
    if k < 2 or k > n:
        raise ValueError("bad k")
    return [(np.setdiff1d(np.arange(n), val), val) for val in np.array_split(np.arange(n), k)]


def _unseeded(n, k, seed):                         # a fresh shuffle each call
    if k < 2 or k > n:
        raise ValueError("bad k")
    order = np.random.permutation(n)
    return [(np.setdiff1d(np.arange(n), val), val) for val in np.array_split(order, k)]


def _last_fold_short(n, k, seed):                  # n // k per fold, the remainder dropped
    if k < 2 or k > n:
        raise ValueError("bad k")
    order, size = np.random.default_rng(seed).permutation(n), n // k
    return [(np.setdiff1d(np.arange(n), order[i * size:(i + 1) * size]), order[i * size:(i + 1) * size])
            for i in range(k)]


def _train_includes_val(n, k, seed):               # trains on everything
    if k < 2 or k > n:
        raise ValueError("bad k")
    order = np.random.default_rng(seed).permutation(n)
    return [(np.arange(n), val) for val in np.array_split(order, k)]


def _no_validation_of_k(n, k, seed):               # accepts k = 1 and k > n
    order = np.random.default_rng(seed).permutation(n)
    return [(np.setdiff1d(np.arange(n), val), val) for val in np.array_split(order, max(k, 1))]


# ---------------------------------------------------------------- 11.2


def _population_std(fold_scores):
    return {name: (float(np.mean([s[name] for s in fold_scores])), float(np.std([s[name] for s in fold_scores])))
            for name in fold_scores[0]}


def _first_metric_only(fold_scores):
    name = next(iter(fold_scores[0]))
    return {name: solution("11.2")(fold_scores)[name]}


def _range_as_spread(fold_scores):
    return {name: (float(np.mean([s[name] for s in fold_scores])),
                   float(np.ptp([s[name] for s in fold_scores]))) for name in fold_scores[0]}


# ---------------------------------------------------------------- 11.4


def _sets_only(split):                             # set() hides an image listed twice
    return (set(split["test"]) | set(split["pool"])) == set(range(split["n"])) and \
        {i for f in split["folds"] for i in f} == set(split["pool"]) and len(split["folds"]) >= 2


def _forgets_disjoint_test(split):                 # never compares the test set with the pool
    folds = split["folds"]
    return len(folds) >= 2 and all(folds) and sorted(i for f in folds for i in f) == sorted(split["pool"])


def _always_true(split):
    return True


WRONG = {
    "11.1": [_no_shuffle, _unseeded, _last_fold_short, _train_includes_val, _no_validation_of_k],
    "11.2": [_population_std, _first_metric_only, _range_as_spread],
    "11.3": ["pessimistic", "unbiased", "up"],
    "11.4": [_sets_only, _forgets_disjoint_test, _always_true],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])


def test_the_best_of_k_fold_scores_is_above_their_mean_on_average():
    # E[max of 5 standard normals] = 1.163 (order statistics), so 0.02 * 1.163 = 0.023 above the mean.
    assert best_fold_bias() == pytest.approx(0.02 * 1.163, rel=0.05)


def test_the_capstone_s_split_check_agrees_with_the_exercise_s_cases(tmp_path):
    import json

    from segcourse.capstone.checks import check_split
    from segcourse.exercises.lesson11 import _split_cases

    for i, (name, split, valid) in enumerate(_split_cases()):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"split": split}))
        assert check_split(folder).passed == valid == solution("11.4")(split), name
