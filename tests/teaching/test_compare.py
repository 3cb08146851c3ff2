"""segcourse.teaching.compare: contenders compared paired by seed, a false-claim rate of at most 5 % on A/A.

The simulations draw identical contenders (A/A): a per-seed effect shared by both (what one seed
makes easy or hard: pairing cancels it) plus independent noise. Each rate is measured on N
simulated comparisons with the package's own vectorised test (``t_test``, ``holm``), checked
against ``beats``/``verdict``/``seed_table``/``tied_with_best`` on a subsample, and asserted
<= 5 % + 3 Monte-Carlo standard errors, 3 * sqrt(0.05 * 0.95 / N) (0.33 % for N = 40,000,
0.46 % for N = 20,000): a correct rule fails this with probability about 0.1 %, and the RNG
seeds are fixed, so the test is deterministic. The measured rates are in the module docstring.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from segcourse.teaching import compare

N = 40_000                     # A/A comparisons per case
N_TABLES = 20_000              # A/A tables per case
K = 6                          # contenders in a table


def margin(n):
    """3 Monte-Carlo standard errors of a rate of 5 % measured on n draws."""
    return 3 * math.sqrt(compare.ALPHA * (1 - compare.ALPHA) / n)


def noise(law, rng, shape):
    if law == "normal":
        return rng.standard_normal(shape)
    if law == "student-t3":                    # heavy tails: infinite fourth moment
        return rng.standard_t(3, shape)
    if law == "exponential":                   # skewed, centred
        return rng.exponential(1.0, shape) - 1.0
    raise ValueError(law)


def a_a(law, rng, count, contenders, n_seeds):
    """``(count, contenders, n_seeds)`` identical contenders: a shared per-seed effect plus noise."""
    seed_effect = 5.0 * rng.standard_normal((count, 1, n_seeds))    # large, shared: pairing cancels it
    return seed_effect + noise(law, rng, (count, contenders, n_seeds))


# --- the rule on identical contenders ---------------------------------------------------------------

@pytest.mark.parametrize("law", ["normal", "student-t3", "exponential"])
@pytest.mark.parametrize("n_seeds", [2, 3, 5])
def test_a_a_false_claim_rate_of_one_comparison_is_at_most_5_percent(law, n_seeds):
    rng = np.random.default_rng(1000 * n_seeds + len(law))
    x = a_a(law, rng, N, 2, n_seeds)
    a, b = x[:, 0], x[:, 1]
    _, _, _, p = compare.t_test(a - b)
    claimed = p <= compare.ALPHA                               # verdict names a winner, either way round
    rate = claimed.mean()
    assert rate <= compare.ALPHA + margin(N), f"{law}, {n_seeds} seeds: false-claim rate {rate:.4f}"
    # the vectorised rule is the one beats and verdict apply
    for i in range(150):
        by_beats = compare.beats(a[i], b[i]) or compare.beats(b[i], a[i])
        sentence = compare.verdict("A", a[i], "B", b[i], metric="IoU")
        assert by_beats == claimed[i] == (" beats " in sentence), (i, a[i], b[i], sentence)


def test_the_old_rule_claims_falsely_one_time_in_ten_with_three_seeds():
    # "every seed of A above every seed of B": 2 of the 20 equally likely orderings of 3 + 3 values
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, 2, 3))
    a, b = x[:, 0], x[:, 1]
    old = (a.min(1) > b.max(1)) | (b.min(1) > a.max(1))
    assert abs(old.mean() - 0.1) < 3 * math.sqrt(0.1 * 0.9 / N)
    assert (compare.t_test(a - b)[3] <= compare.ALPHA).mean() < old.mean() / 1.8


def test_bonferroni_level_for_several_verdicts():
    rng = np.random.default_rng(11)
    k = 4                                                      # four verdicts on identical contenders
    x = a_a("normal", rng, N_TABLES, 2 * k, 3)
    d = x[:, 0::2] - x[:, 1::2]                                # (count, k, seeds): k independent pairs
    any_claim = (compare.t_test(d)[3] <= compare.ALPHA / k).any(axis=1)
    assert any_claim.mean() <= compare.ALPHA + margin(N_TABLES)
    for i in range(40):
        by_verdict = any(" beats " in compare.verdict("A", x[i, 2 * j], "B", x[i, 2 * j + 1], metric="IoU",
                                                      comparisons=k) for j in range(k))
        assert by_verdict == any_claim[i]


def tables_claims(x, baseline):
    """Vectorised seed_table: does any row claim "behind"/"ahead"? ``x`` is ``(count, K, seeds)``."""
    k = x.shape[1]
    if baseline:                                               # contender 0, fixed before the data
        p = compare.t_test(x[:, 1:] - x[:, :1])[3]
        return compare.holm(p).any(axis=1)
    i, j = np.triu_indices(k, 1)                               # best mean: all pairs, keep those with the best
    p = compare.t_test(x[:, i] - x[:, j])[3]
    rejected = compare.holm(p)
    best = x.mean(axis=2).argmax(axis=1)[:, None]
    return (rejected & ((i == best) | (j == best))).any(axis=1)


@pytest.mark.parametrize("n_seeds", [2, 3, 5])
@pytest.mark.parametrize("baseline", [True, False])
def test_a_a_family_wise_false_claim_rate_of_a_table_is_at_most_5_percent(n_seeds, baseline):
    rng = np.random.default_rng(100 + n_seeds + 10 * baseline)
    x = a_a("normal", rng, N_TABLES, K, n_seeds)
    claimed = tables_claims(x, baseline)
    rate = claimed.mean()
    assert rate <= compare.ALPHA + margin(N_TABLES), f"{n_seeds} seeds, baseline {baseline}: {rate:.4f}"
    names = [f"c{c}" for c in range(K)]
    for t in range(60):                                        # the vectorised rule is the table's rule
        results = {name: x[t, c] for c, name in enumerate(names)}
        table = compare.seed_table(results, metric="IoU", baseline="c0" if baseline else None)
        tagged = any(" (paired, Holm)" in line for line in table.splitlines())
        assert tagged == claimed[t], table
        if not baseline:
            assert (len(compare.tied_with_best(results)) < K) == claimed[t]


@pytest.mark.parametrize("n_seeds", [2, 3, 5])
def test_choosing_the_best_after_the_data_is_a_selection_effect(n_seeds):
    # Holm over only the K - 1 comparisons with the best mean: too many false claims, which is why
    # tied_with_best and seed_table without a baseline correct over all K (K - 1) / 2 pairs
    rng = np.random.default_rng(50 + n_seeds)
    x = a_a("normal", rng, N_TABLES, K, n_seeds)
    best = x.mean(axis=2).argmax(axis=1)
    d = np.take_along_axis(x, best[:, None, None], axis=1) - x
    others = np.arange(K)[None, :] != best[:, None]
    p = compare.t_test(d[others].reshape(N_TABLES, K - 1, n_seeds))[3]
    naive = compare.holm(p).any(axis=1).mean()
    assert naive > compare.ALPHA + margin(N_TABLES)              # measured 6.4 % / 7.9 % / 8.8 %
    assert tables_claims(x, baseline=False).mean() <= compare.ALPHA + margin(N_TABLES)


def test_power_a_real_difference_of_three_noise_sd():
    rng = np.random.default_rng(3)
    rates, old = {}, {}
    for n_seeds in (2, 3, 5):
        x = a_a("normal", rng, N, 2, n_seeds)
        a, b = x[:, 0] + 3.0, x[:, 1]                          # a better by 3 sd of each contender's noise
        mean, _, _, p = compare.t_test(a - b)
        rates[n_seeds] = ((p <= compare.ALPHA) & (mean > 0)).mean()
        old[n_seeds] = (a.min(axis=1) > b.max(axis=1)).mean()  # every seed of a above every seed of b
    # measured 19 % / 50 % / 94 %: three seeds find a large effect about half the time
    assert rates[2] > 0.15 and rates[3] > 0.45 and rates[5] > 0.9, rates
    assert rates[2] < rates[3] < rates[5]
    # the old, unpaired rule: 9 % with 3 seeds, as the shared seed effect (sd 5) spreads the seeds
    for i in range(100):                                       # the vectorised paired rule is beats' (5 seeds)
        assert compare.beats(a[i], b[i]) == bool(p[i] <= compare.ALPHA and mean[i] > 0)
    assert old[3] < rates[3] / 4 and old[5] < rates[5] / 4, old


# --- the statistics against the reference --------------------------------------------------------

def test_t_test_and_interval_equal_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    for n_seeds in (2, 3, 4, 7):
        a = rng.normal(0.6, 0.05, (25, n_seeds))
        b = a + rng.normal(0.01, 0.03, (25, n_seeds))
        mean, sd, t, p = compare.t_test(a - b)
        ref = stats.ttest_rel(a, b, axis=-1)
        np.testing.assert_allclose(t, ref.statistic, rtol=1e-10)
        np.testing.assert_allclose(p, ref.pvalue, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(mean, (a - b).mean(axis=1))
        np.testing.assert_allclose(sd, (a - b).std(axis=1, ddof=1))
        for i in range(5):
            d = compare.paired(a[i], b[i])
            one = stats.ttest_rel(a[i], b[i])
            ci = one.confidence_interval(0.95)
            assert (d.t, d.p, d.mean) == pytest.approx((one.statistic, one.pvalue, (a[i] - b[i]).mean()), rel=1e-9)
            assert (d.ci_low, d.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
            assert d.claim == (one.pvalue <= 0.05) == (not d.ci_low <= 0 <= d.ci_high)


def test_t_test_zero_variance_nan_and_one_seed():
    mean, sd, t, p = compare.t_test([[0.04, 0.04, 0.04], [0.0, 0.0, 0.0], [-0.02, -0.02, -0.02]])
    assert list(sd) == [0.0, 0.0, 0.0] and mean.tolist() == pytest.approx([0.04, 0.0, -0.02])
    assert t[0] == math.inf and p[0] == 0.0                      # the same non-zero difference every seed: a claim
    assert t[1] == 0.0 and p[1] == 1.0                           # all zero: noise
    assert t[2] == -math.inf and p[2] == 0.0
    with pytest.raises(ValueError, match="at least two seeds, got 1"):
        compare.t_test([0.1])
    with pytest.raises(ValueError, match="NaN"):
        compare.t_test([0.1, float("nan")])


def holm_reference(p, alpha):
    """Holm via adjusted p-values: p_adj(i) = max over j <= i of (m - j + 1) p(j), in sorted order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [a <= alpha for a in adjusted]


def test_holm_step_down():
    # m = 4: 0.01 <= 0.05/4 rejected, 0.02 <= 0.05/3 fails: stop, even though 0.03 <= 0.05/2 would pass
    assert compare.holm([0.03, 0.01, 0.02, 0.5]).tolist() == [False, True, False, False]
    assert compare.holm([0.012, 0.01, 0.02, 0.04]).tolist() == [True, True, True, True]   # 0.04 <= 0.05/1
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 0.06, (300, 5))
    got = compare.holm(p)
    assert got.any() and not got.all()
    for row, want in zip(p, got):
        assert holm_reference(list(row), 0.05) == want.tolist()


# --- sentences ---------------------------------------------------------------------------------

def test_verdict_names_the_winner_either_way_round():
    a, b = [0.50, 0.62, 0.55], [0.80, 0.91, 0.86]
    s = compare.verdict("A", a, "B", b, metric="IoU")
    assert s == ("B beats A on IoU: mean paired difference (B minus A) +0.300 over 3 seeds (per seed +0.300, "
                 "+0.290, +0.310; sd 0.010; 95 % CI +0.275 to +0.325; paired t-test at the 5 % level).")
    assert compare.verdict("B", b, "A", a, metric="IoU") == s
    assert compare.beats(b, a) and not compare.beats(a, b)
    assert "gap" not in s and "range" not in s


def test_verdict_lower_is_better():
    loss_a, loss_b = [0.30, 0.41, 0.35], [0.20, 0.30, 0.26]
    s = compare.verdict("A", loss_a, "B", loss_b, metric="loss", higher_is_better=False, fmt=".2f")
    assert s.startswith("B beats A on loss (lower is better): mean paired difference (B minus A) -0.10 over 3 seeds")
    assert compare.beats(loss_b, loss_a, higher_is_better=False) and not compare.beats(loss_b, loss_a)


def test_verdict_noise_reports_the_same_numbers_and_the_interval_with_zero():
    s = compare.verdict("A", [0.50, 0.60, 0.58], "B", [0.55, 0.57, 0.56], metric="IoU")
    assert s == ("A and B on IoU: mean paired difference (A minus B) +0.000 over 3 seeds (per seed -0.050, +0.030, "
                 "+0.020; sd 0.044; 95 % CI -0.108 to +0.108, which includes 0): the difference is noise at 3 seeds, "
                 "not a ranking (paired t-test at the 5 % level).")


def test_pairing_finds_what_the_seed_ranges_hide():
    # the seed effect (0.40 -> 0.80) dwarfs the difference, but A is 0.02 better on every seed
    b = [0.40, 0.60, 0.80]
    a = [0.42, 0.621, 0.819]
    assert compare.beats(a, b)
    assert not compare.beats(a, list(reversed(b)))                # the same values, mispaired: noise


def test_verdict_with_several_comparisons_uses_the_bonferroni_level():
    a, b = [0.60, 0.61, 0.61], [0.55, 0.58, 0.57]                   # p = 0.020: a claim alone, not one of 3
    assert 0.05 / 3 < compare.paired(a, b).p < 0.05
    assert compare.verdict("A", a, "B", b, metric="IoU").startswith("A beats B")
    three = compare.verdict("A", a, "B", b, metric="IoU", comparisons=3)
    assert "noise" in three and "98.3 % CI" in three and "1.67 % level (5 % / 3 comparisons, Bonferroni)" in three
    with pytest.raises(ValueError, match="comparisons"):
        compare.verdict("A", a, "B", b, metric="IoU", comparisons=0)


def test_verdict_one_seed_no_claim():
    s = compare.verdict("A", [0.5], "B", [0.9], metric="IoU")
    assert s.startswith("A 0.500 vs B 0.900 on IoU") and "no winner is claimed" in s
    assert not compare.beats([0.9], [0.5]) and not compare.paired([0.9], [0.5]).claim


def test_verdict_zero_variance():
    same_gap = compare.verdict("A", [0.6, 0.7, 0.8], "B", [0.5, 0.6, 0.7], metric="IoU")
    assert same_gap.startswith("A beats B on IoU: mean paired difference (A minus B) +0.100") and "sd 0.000" in same_gap
    equal = compare.verdict("A", [0.6, 0.7, 0.8], "B", [0.6, 0.7, 0.8], metric="IoU")
    assert "noise at 3 seeds" in equal and "includes 0" in equal


def test_errors_unequal_lengths_and_nan():
    with pytest.raises(ValueError, match="got 3 values for U-Net and 2 for Otsu"):
        compare.verdict("U-Net", [0.9, 0.91, 0.92], "Otsu", [0.8, 0.8], metric="Dice")
    with pytest.raises(ValueError, match="got 2 values for a and 1 for b"):
        compare.beats([0.9, 0.91], [0.8])
    with pytest.raises(ValueError, match="Otsu: NaN"):
        compare.verdict("U-Net", [0.9, 0.91], "Otsu", [0.8, float("nan")], metric="Dice")
    with pytest.raises(ValueError, match="got 3 for CE, 2 for Dice"):
        compare.seed_table({"CE": [0.6, 0.6, 0.6], "Dice": [0.5, 0.5]}, metric="IoU")
    with pytest.raises(ValueError, match="baseline 'Lovasz' is not among"):
        compare.seed_table({"CE": [0.6, 0.6], "Dice": [0.5, 0.5]}, metric="IoU", baseline="Lovasz")


# --- tables ------------------------------------------------------------------------------------

RESULTS = {"CE": [0.60, 0.62, 0.61], "Dice": [0.40, 0.45, 0.42], "Focal": [0.59, 0.63, 0.60]}


def test_seed_table_best_mean_first_with_paired_differences():
    lines = compare.seed_table(RESULTS, metric="IoU").splitlines()
    assert lines[0].split() == ["seed", "0", "seed", "1", "seed", "2", "mean", "minus", "CE", "(mean", "±", "sd)", "IoU"]
    assert lines[1].startswith("CE") and lines[1].endswith("best mean")
    assert lines[2].startswith("Focal") and "-0.003 ± 0.012" in lines[2] and lines[2].endswith("tied with CE within noise")
    assert lines[3].startswith("Dice") and "-0.187 ± 0.015" in lines[3] and lines[3].endswith("behind CE (paired, Holm)")
    assert "all 3 pairs of the 3 contenders" in lines[4]
    tag = lines[0].index("IoU")                                        # fixed width: every tag starts there
    assert all(line[tag - 2:tag] == "  " and line[tag] != " " for line in lines[1:4])
    assert compare.tied_with_best(RESULTS) == ["CE", "Focal"]


def test_seed_table_against_a_baseline():
    lines = compare.seed_table(RESULTS, metric="IoU", baseline="Focal").splitlines()
    assert lines[1].startswith("Focal") and lines[1].endswith("baseline")
    assert lines[2].startswith("CE") and lines[2].endswith("tied with Focal within noise")
    assert lines[3].startswith("Dice") and lines[3].endswith("behind Focal (paired, Holm)")
    assert "the 2 comparisons with the baseline" in lines[4]
    ahead = compare.seed_table(RESULTS, metric="IoU", baseline="Dice").splitlines()
    assert ahead[2].endswith("ahead of Dice (paired, Holm)") and ahead[3].endswith("ahead of Dice (paired, Holm)")
    losses = compare.seed_table(RESULTS, metric="loss", higher_is_better=False, baseline="Focal").splitlines()
    assert losses[2].startswith("Dice") and losses[2].endswith("ahead of Focal (paired, Holm)")


def test_seed_table_one_seed_claims_nothing():
    one = {name: v[:1] for name, v in RESULTS.items()}
    lines = compare.seed_table(one, metric="IoU").splitlines()
    assert all(line.endswith("no claim from one seed") for line in lines[2:4])
    assert lines[4].startswith("one seed: no claim")
    assert compare.tied_with_best(one) == ["CE", "Focal", "Dice"]


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
