"""segcourse.compare: a winner is claimed only when every seed of it beats every seed of the other."""

from __future__ import annotations

import pytest

from segcourse import compare


def test_spread_statistics_and_format():
    s = compare.spread([0.90, 0.94, 0.92])
    assert (s.n, s.low, s.high) == (3, 0.90, 0.94)
    assert s.mean == pytest.approx(0.92) and s.range == pytest.approx(0.04)
    assert s.format() == "0.920 (0.900-0.940, 3 seeds)"
    assert compare.spread([0.5]).format() == "0.500 (1 seed)"
    with pytest.raises(ValueError, match="at least one"):
        compare.spread([])
    with pytest.raises(ValueError, match="NaN"):
        compare.spread([float("nan"), 1.0])


@pytest.mark.parametrize("a, b, higher, expected", [
    ([0.95, 0.96], [0.90, 0.94], True, True),       # every seed of a above every seed of b
    ([0.95, 0.96], [0.90, 0.955], True, False),     # ranges overlap: noise
    ([0.95], [0.90], True, False),                  # one seed: no claim
    ([0.10, 0.12], [0.20, 0.30], False, True),      # lower is better (a loss, a distance)
])
def test_beats(a, b, higher, expected):
    assert compare.beats(a, b, higher_is_better=higher) is expected


def test_verdict_names_the_winner_either_way_round_or_says_noise():
    assert compare.verdict("A", [0.5, 0.6], "B", [0.8, 0.9], metric="IoU").startswith("B beats A on IoU by 0.300")
    noise = compare.verdict("A", [0.50, 0.60], "B", [0.55, 0.65], metric="IoU")
    assert "noise" in noise and "beats" not in noise
    assert "no winner is claimed" in compare.verdict("A", [0.5], "B", [0.9], metric="IoU")


def test_seed_table_orders_by_mean_and_marks_ties():
    table = compare.seed_table({"CE": [0.60, 0.62, 0.61], "Dice": [0.40, 0.45, 0.42], "Focal": [0.59, 0.63, 0.60]},
                               metric="IoU")
    lines = table.splitlines()
    assert lines[1].startswith("CE") and "best mean" in lines[1]
    assert lines[2].startswith("Focal") and "tied with CE within noise" in lines[2]
    assert lines[3].startswith("Dice") and "behind CE beyond noise" in lines[3]
    assert compare.tied_with_best({"CE": [0.60, 0.62], "Dice": [0.40, 0.45], "Focal": [0.59, 0.63]}) == ["CE", "Focal"]


def test_seeds_follow_the_mode(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "quick")
    assert compare.seeds() == [0, 1, 2]
    monkeypatch.setenv("SEGCOURSE_MODE", "smoke")
    assert compare.seeds() == [0]
    assert compare.seeds(smoke=2) == [0, 1]


def test_seed_offset_shifts_what_is_seeded_not_the_returned_seed(monkeypatch):
    import torch

    from segcourse import seed_everything

    monkeypatch.setenv("SEGCOURSE_SEED_OFFSET", "100")
    assert seed_everything(1, deterministic=False) == 1
    shifted = torch.rand(1)
    monkeypatch.delenv("SEGCOURSE_SEED_OFFSET")
    seed_everything(101, deterministic=False)
    assert torch.equal(shifted, torch.rand(1))
    monkeypatch.setenv("SEGCOURSE_SEED_OFFSET", "x")
    with pytest.raises(ValueError, match="SEGCOURSE_SEED_OFFSET"):
        seed_everything(0)
