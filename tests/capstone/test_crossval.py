"""Test split, k-fold folds and the fold summary (segcourse.capstone.crossval).

scikit-learn is not installed in the course's environment, so the folds are checked by their
defining properties and against the construction scikit-learn's ``KFold(shuffle=True, random_state=s)``
documents: ``RandomState(s).shuffle`` of the indices, then consecutive folds, the first ``n % k`` one larger.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from segcourse.capstone.crossval import (
    block_kfold_indices,
    format_summary,
    group_kfold_indices,
    holdout_split,
    kfold_indices,
    make_folds,
    make_split,
    summarize,
)


@pytest.mark.parametrize("n, k", [(10, 5), (12, 5), (7, 3), (5, 5), (60, 5), (9, 2)])
def test_every_item_is_validated_exactly_once_and_trains_otherwise(n, k):
    folds = kfold_indices(n, k, seed=3)
    assert len(folds) == k
    validated = np.concatenate([val for _, val in folds])
    assert sorted(validated.tolist()) == list(range(n))
    for train, val in folds:
        assert sorted(train.tolist() + val.tolist()) == list(range(n))
        assert not set(train.tolist()) & set(val.tolist())
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)   # the larger folds first


def test_folds_follow_sklearn_s_kfold_construction():
    # KFold(n_splits=3, shuffle=True, random_state=7) on 10 items: shuffle with RandomState(7), cut 4/3/3.
    order = np.arange(10)
    np.random.RandomState(7).shuffle(order)
    want = [order[:4], order[4:7], order[7:]]
    got = [val for _, val in kfold_indices(10, 3, seed=7)]
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
    assert [val.tolist() for _, val in kfold_indices(5, 2, seed=0)] == [[2, 0, 1], [3, 4]]   # the docstring


def test_seeded_deterministic_and_without_shuffle_consecutive():
    a, b = kfold_indices(20, 4, seed=1), kfold_indices(20, 4, seed=1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    c = kfold_indices(20, 4, seed=2)
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    assert [v.tolist() for _, v in kfold_indices(6, 3, shuffle=False)] == [[0, 1], [2, 3], [4, 5]]


def test_folds_of_a_pool_are_made_of_its_items():
    pool = [3, 5, 8, 13, 21, 34]
    folds = kfold_indices(pool, 3, seed=0)
    assert sorted(i for _, val in folds for i in val.tolist()) == pool
    assert all(set(train.tolist()) == set(pool) - set(val.tolist()) for train, val in folds)


@pytest.mark.parametrize("n, k, match", [(10, 1, "k >= 2"), (10, 0, "k >= 2"), (4, 5, "k <= 4"), (0, 2, "k <= 0")])
def test_impossible_k_is_a_clear_value_error(n, k, match):
    with pytest.raises(ValueError, match=match):
        kfold_indices(n, k)


def test_bad_types_and_repeated_items_are_refused():
    with pytest.raises(TypeError, match="k must be an int"):
        kfold_indices(10, 2.5)
    with pytest.raises(ValueError, match="distinct"):
        kfold_indices([1, 1, 2], 2)


def test_holdout_split_and_make_split_partition_the_items():
    pool, test = holdout_split(80, 0.25, seed=0)
    assert len(test) == 20 and len(pool) == 60
    assert sorted(pool.tolist() + test.tolist()) == list(range(80))
    split = make_split(80, 5, test_fraction=0.25, seed=0)
    assert split["test"] == test.tolist() and split["pool"] == pool.tolist()
    assert sorted(i for f in split["folds"] for i in f) == split["pool"] and len(split["folds"]) == 5
    with pytest.raises(ValueError, match="test_fraction"):
        holdout_split(10, 1.0)
    with pytest.raises(ValueError, match="k <= 3"):
        make_split(4, 5, test_fraction=0.25)          # 3 pool items, 5 folds


def test_summary_is_mean_sample_std_min_max():
    folds = [{"miou": 0.90, "dice": 0.95}, {"miou": 0.92, "dice": 0.96}, {"miou": 0.88, "dice": 0.94}]
    s = summarize(folds)
    # mean 0.90; deviations -0, +0.02, -0.02 -> sample variance 0.0008 / 2 -> std 0.02
    assert s["miou"]["mean"] == pytest.approx(0.90) and s["miou"]["std"] == pytest.approx(0.02)
    assert (s["miou"]["min"], s["miou"]["max"], s["miou"]["n"]) == (0.88, 0.92, 3)
    assert s["dice"]["std"] == pytest.approx(np.std([0.95, 0.96, 0.94], ddof=1))
    assert format_summary(s["miou"]) == "0.900 ± 0.020 (0.880–0.920)"
    assert math.isnan(summarize([{"a": 0.5}])["a"]["std"])


def test_summary_refuses_nan_and_mismatched_folds():
    with pytest.raises(ValueError, match="fold 1: metric 'miou' is nan"):
        summarize([{"miou": 0.9}, {"miou": float("nan")}])
    with pytest.raises(ValueError, match="same metrics"):
        summarize([{"miou": 0.9}, {"dice": 0.9}])
    with pytest.raises(ValueError, match="no fold scores"):
        summarize([])


@pytest.mark.parametrize("n, k, gap", [(30, 5, 0), (30, 5, 1), (24, 4, 2), (7, 3, 1)])
def test_block_folds_are_contiguous_and_keep_the_gap_out_of_training(n, k, gap):
    folds = block_kfold_indices(n, k, gap=gap)
    assert sorted(int(i) for _, val in folds for i in val) == list(range(n))
    for train, val in folds:
        assert val.tolist() == list(range(val[0], val[-1] + 1))                  # one contiguous block
        distance = np.abs(train[:, None] - val[None, :]).min()
        assert distance == gap + 1                                              # neighbours within gap left out
        assert len(train) == n - len(val) - sum(0 <= j < n for j in [*range(val[0] - gap, val[0]),
                                                                     *range(val[-1] + 1, val[-1] + 1 + gap)])
    assert [v.tolist() for _, v in block_kfold_indices(n, k)] == [v.tolist() for _, v in kfold_indices(n, k,
                                                                                                     shuffle=False)]


def test_block_folds_refuse_a_gap_that_leaves_nothing_to_train_on():
    with pytest.raises(ValueError, match="leaves no item to train on"):
        block_kfold_indices(6, 2, gap=3)
    with pytest.raises(ValueError, match="gap"):
        block_kfold_indices(6, 2, gap=-1)


def test_group_folds_keep_every_group_whole_and_balance_sizes():
    groups = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2 + ["e"] * 1 + ["f"] * 1
    folds = group_kfold_indices(groups, 3)
    assert sorted(int(i) for _, val in folds for i in val) == list(range(len(groups)))
    for train, val in folds:
        assert not {groups[i] for i in val} & {groups[i] for i in train}        # no group on both sides
    sizes = sorted(len(val) for _, val in folds)
    assert sizes == [5, 5, 5]                                                    # greedy, largest group first
    with pytest.raises(ValueError, match="number of groups"):
        group_kfold_indices(["a", "a", "b"], 3)


def test_make_folds_names_the_scheme_and_lists_train_and_validation():
    split = make_folds(10, 5, scheme="blocks", gap=1)
    assert split["scheme"] == "blocks" and split["pool"] == list(range(10)) and split["folds"][1] == [2, 3]
    assert split["train"][1] == [0, 5, 6, 7, 8, 9]
    grouped = make_folds(6, 2, scheme="groups", groups=[0, 0, 1, 1, 1, 2])
    assert grouped["folds"] == [[2, 3, 4], [0, 1, 5]]
    shuffled = make_folds(10, 5, seed=3)
    assert shuffled["folds"] == [v.tolist() for _, v in kfold_indices(10, 5, seed=3)]
    with pytest.raises(ValueError, match="unknown fold scheme 'random'"):
        make_folds(10, 5, scheme="random")
    with pytest.raises(ValueError, match="one group label per image"):
        make_folds(10, 5, scheme="groups")
