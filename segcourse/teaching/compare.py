"""Comparisons that survive another machine: results over several seeds, paired by seed.

Floating-point results of training differ between CPUs, so a run with one seed on one
machine says little about which of two models or losses is better. A lesson that compares
trains each contender with the same few seeds (:func:`seeds`), the same seed giving both the
same data order and the same initial weights for the parts they share. Then ``a[i]`` and
``b[i]`` come from seed ``i``, and what one seed makes easy or hard cancels in the
**per-seed difference** ``a[i] - b[i]``. :func:`verdict` decides in code whether those
differences are a real effect or noise:

    >>> unet, otsu = [0.962, 0.958, 0.965], [0.921, 0.921, 0.921]
    >>> print(verdict("U-Net", unet, "Otsu", otsu, metric="Dice"))
    U-Net beats Otsu on Dice: mean paired difference (U-Net minus Otsu) +0.041 over 3 seeds (per seed +0.041, +0.037, +0.044; sd 0.004; 95 % CI +0.032 to +0.049; paired t-test at the 5 % level).
    >>> print(verdict("A", [0.50, 0.55], "B", [0.52, 0.56], metric="IoU"))
    A and B on IoU: mean paired difference (A minus B) -0.015 over 2 seeds (per seed -0.020, -0.010; sd 0.007; 95 % CI -0.079 to +0.049, which includes 0): the difference is noise at 2 seeds, not a ranking (paired t-test at the 5 % level).

**The rule.** A two-sided paired t-test at the 5 % level on the per-seed differences
(Student 1908; the t quantile from :mod:`scipy.stats`), with at least two seeds: A beats B
when the 95 % confidence interval of the mean difference excludes 0. A difference that is the
same non-zero number on every seed is a claim (t is infinite); differences that are all zero are
noise. With one seed (smoke mode) no claim is made. Several comparisons raise the chance that one
of them claims by accident, so:

* ``verdict(..., comparisons=k)`` and ``beats(..., comparisons=k)`` test at the Bonferroni level
  ``0.05 / k`` (and show the matching ``1 - 0.05 / k`` interval);
* :func:`seed_table` with ``baseline=`` compares every other contender with that baseline, Holm's
  step-down (Holm 1979) over those ``k - 1`` comparisons;
* :func:`seed_table` without a baseline, and :func:`tied_with_best`, compare with the contender of
  best mean. Choosing the best *after* seeing the results is a selection effect: Holm over only the
  ``k - 1`` comparisons with it claimed falsely in 6.4 % / 7.9 % / 8.8 % of A/A tables (6 identical
  contenders; 2 / 3 / 5 seeds), so these comparisons are Holm-corrected over **all** ``k (k - 1) / 2``
  pairs, which brings the rate below 5 % (measured below). Name a baseline fixed before the
  experiment when there is one: it needs fewer corrections, so it finds real differences more often.

**Measured false-claim rates** (``tests/teaching/test_compare.py``). A/A: identical contenders, a per-seed
effect shared by both (sd 5) plus independent noise (sd 1). One comparison, a winner named either
way round, 40,000 simulated comparisons per case (Monte-Carlo standard error 0.11 %):

=========================  =========  =========  =========
noise law                  2 seeds    3 seeds    5 seeds
=========================  =========  =========  =========
normal                     5.01 %     4.96 %     5.01 %
Student t, 3 df            4.37 %     3.97 %     4.01 %
exponential, centred       3.95 %     3.34 %     3.38 %
=========================  =========  =========  =========

(Under A/A the difference of two draws of the same law is symmetric, so a skewed law does not bias
the test; heavy tails make it conservative.) Four verdicts with ``comparisons=4``, any false claim:
4.88 % (3 seeds). Tables of 6 identical contenders (20,000 each, normal noise), any row tagged
"behind" or "ahead": against a fixed baseline 4.89 % / 4.98 % / 4.32 % (2 / 3 / 5 seeds), against the
best mean 2.43 % / 2.50 % / 3.25 %. The old rule, "every seed of A above every seed of B", claimed
falsely in 9.88 % of A/A comparisons with 3 seeds (2 of the 20 equally likely orderings: 1 in 10),
and lessons make about ten comparisons each.

**Power.** A real difference of 3 noise standard deviations (the noise sd of each contender; the
per-seed differences have sqrt(2) times that sd) is claimed in 19 % of runs with 2 seeds, 50 % with 3 and 94 %
with 5. The old rule found it in 9 % of runs with 3 seeds, because the shared seed effect (sd 5) spreads
each contender's seeds over a range wider than the difference; pairing removes it. Three seeds
find large effects only: a "noise" verdict means "not shown at this number of seeds", not "equal".

:func:`seeds` gives the seeds a lesson uses in the current mode (one in smoke mode, three in
quick mode, five in full mode unless the lesson asks otherwise).

References:
    Student (W. S. Gosset), "The probable error of a mean", Biometrika 6, 1908.
    S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6, 1979.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..config import pick

#: The level of every test: the false-claim rate allowed for one comparison or one table.
ALPHA = 0.05


def seeds(*, smoke: int = 1, quick: int = 3, full: int = 5) -> list[int]:
    """The seeds ``0, 1, ...`` a multi-seed comparison uses in the current mode.

    Args:
        smoke, quick, full: how many seeds in each mode.

    Returns:
        ``list(range(n))`` for the current mode's ``n``.
    """
    n = pick(smoke=smoke, quick=quick, full=full)
    if n < 1:
        raise ValueError(f"a comparison needs at least one seed, got {n}")
    return list(range(n))


@dataclass(frozen=True)
class Spread:
    """One contender's results over several seeds."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a spread needs at least one value")
        if any(math.isnan(v) for v in self.values):
            raise ValueError(f"a spread cannot contain NaN: {self.values}")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def range(self) -> float:
        """``high - low``: how far one contender's seeds scatter (not a test: see :func:`paired`)."""
        return self.high - self.low

    def format(self, fmt: str = ".3f") -> str:
        """``"0.912 (0.905-0.920, 3 seeds)"``; one seed: ``"0.912 (1 seed)"``."""
        if self.n == 1:
            return f"{self.mean:{fmt}} (1 seed)"
        return f"{self.mean:{fmt}} ({self.low:{fmt}}-{self.high:{fmt}}, {self.n} seeds)"

    def __str__(self) -> str:
        return self.format()


def spread(values: Sequence[float]) -> Spread:
    """A :class:`Spread` of ``values`` (floats, one per seed)."""
    return Spread(tuple(float(v) for v in values))


def t_test(differences) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The paired t-test on per-seed differences, vectorised over all but the last axis.

    Args:
        differences: ``(..., n)`` floats, ``a[i] - b[i]`` for seeds ``i < n``; ``n >= 2``.

    Returns:
        ``(mean, sd, t, p)``, each of shape ``(...)``: the mean difference, its sample standard
        deviation (``ddof=1``), ``t = mean / (sd / sqrt(n))`` and the two-sided p-value from
        Student's t with ``n - 1`` degrees of freedom. Zero variance: ``t = ±inf, p = 0`` when the
        mean is not 0, ``t = 0, p = 1`` when every difference is 0. Equal to
        ``scipy.stats.ttest_rel(a, b, axis=-1)`` where the variance is not zero (tested).

    Raises:
        ValueError: fewer than two seeds, or a NaN.
    """
    d = np.asarray(differences, dtype=np.float64)
    n = d.shape[-1] if d.ndim else 0
    if n < 2:
        raise ValueError(f"a paired t-test needs at least two seeds, got {n}")
    if np.isnan(d).any():
        raise ValueError("a paired t-test cannot use NaN differences")
    mean = d.mean(axis=-1)
    sd = d.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(n))
    t = np.where(sd > 0, t, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)))
    p = 2.0 * stats.t.sf(np.abs(t), n - 1)
    return mean, sd, t, p


def holm(p_values, *, alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down: which of ``m`` hypotheses to reject, family-wise error rate <= ``alpha``.

    Sort the p-values, reject the ``i``-th smallest (``i = 1 ... m``) while it is ``<= alpha / (m - i + 1)``,
    and stop at the first that is not. Valid whatever the dependence between the tests.

    Args:
        p_values: ``(..., m)`` p-values (vectorised over the leading axes).
        alpha: the family-wise level.

    Returns:
        ``(..., m)`` bool: rejected (a claim) or not.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    passes = ranked <= alpha / (m - np.arange(m))
    passes = np.cumprod(passes, axis=-1).astype(bool)          # stop at the first that fails
    rejected = np.zeros_like(passes)
    np.put_along_axis(rejected, order, passes, axis=-1)
    return rejected


@dataclass(frozen=True)
class PairedDifference:
    """Two contenders compared seed by seed: ``differences[i] = a[i] - b[i]``.

    ``sd``, ``t``, ``p`` and the interval are NaN with one seed (no claim is possible); ``claim``
    is whether the paired t-test at level ``alpha`` rejects "no difference", i.e. whether the
    ``1 - alpha`` confidence interval excludes 0.
    """

    differences: tuple[float, ...]
    mean: float
    sd: float
    t: float
    p: float
    ci_low: float
    ci_high: float
    alpha: float

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def claim(self) -> bool:
        return self.n >= 2 and self.p <= self.alpha


def _values(name: str, values: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not out:
        raise ValueError(f"{name}: a comparison needs at least one value (one per seed), got none")
    if any(math.isnan(v) for v in out):
        raise ValueError(f"{name}: NaN among the per-seed values {out}; a comparison needs a number for every seed")
    return out


def _pair(a_name: str, a: Sequence[float], b_name: str, b: Sequence[float]) -> tuple[tuple[float, ...], ...]:
    va, vb = _values(a_name, a), _values(b_name, b)
    if len(va) != len(vb):
        raise ValueError(f"a paired comparison needs one value per seed for both, in seed order: got {len(va)} "
                         f"values for {a_name} and {len(vb)} for {b_name}")
    return va, vb


def paired(a: Sequence[float], b: Sequence[float], *, alpha: float = ALPHA) -> PairedDifference:
    """``a`` against ``b`` seed by seed: per-seed differences, their mean, sd, t, p and interval.

    Args:
        a, b: the metric for each seed, in the same seed order (``a[i]`` and ``b[i]`` from seed ``i``).
        alpha: the test's level; the interval has confidence ``1 - alpha``.

    Returns:
        A :class:`PairedDifference` of ``a - b``.

    Raises:
        ValueError: unequal lengths (naming both), no value, or a NaN.
    """
    va, vb = _pair("a", a, "b", b)
    d = tuple(x - y for x, y in zip(va, vb))
    n = len(d)
    if n < 2:
        nan = float("nan")
        return PairedDifference(d, d[0], nan, nan, nan, nan, nan, alpha)
    mean, sd, t, p = (float(x) for x in t_test(d))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    return PairedDifference(d, mean, sd, t, p, mean - half, mean + half, alpha)


def _level(comparisons: int) -> float:
    if comparisons < 1:
        raise ValueError(f"comparisons must be >= 1, got {comparisons}")
    return ALPHA / comparisons


def beats(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool = True, comparisons: int = 1) -> bool:
    """Whether ``a`` is better than ``b`` by the paired t-test (``a[i]``, ``b[i]`` from the same seed).

    Args:
        a, b: the metric for each seed, in the same seed order; at least two seeds to claim anything.
        higher_is_better: ``False`` for losses, errors, distances.
        comparisons: how many comparisons the claim is one of (Bonferroni level ``0.05 / comparisons``).

    Raises:
        ValueError: unequal lengths, no value, or a NaN.
    """
    d = paired(a, b, alpha=_level(comparisons))
    return d.claim and (d.mean > 0 if higher_is_better else d.mean < 0)


def _sign(value: float, fmt: str) -> str:
    """``value`` with its sign, ``+0.000`` (not ``-0.000``) for a value that rounds to zero."""
    text = f"{value:+{fmt}}"
    return "+" + text[1:] if text.startswith("-") and float(text) == 0 else text


def _rule(comparisons: int) -> str:
    if comparisons == 1:
        return "paired t-test at the 5 % level"
    return f"paired t-test at the {100 * _level(comparisons):.3g} % level (5 % / {comparisons} comparisons, Bonferroni)"


def verdict(a_name: str, a: Sequence[float], b_name: str, b: Sequence[float], *, metric: str,
            higher_is_better: bool = True, fmt: str = ".3f", comparisons: int = 1) -> str:
    """A sentence that compares two contenders paired by seed, and holds on another machine.

    Args:
        a_name, b_name: what is compared ("U-Net", "Otsu").
        a, b: the metric for each seed, in the same seed order.
        metric: the metric's name, for the sentence.
        higher_is_better: ``False`` for losses, errors, distances.
        fmt: number format.
        comparisons: how many comparisons this sentence is one of; the test uses the Bonferroni level
            ``0.05 / comparisons`` and the interval its confidence ``1 - 0.05 / comparisons``.

    Returns:
        "W beats L on metric: mean paired difference (W minus L) ... over n seeds (per seed ...; sd ...;
        95 % CI ...; paired t-test at the 5 % level)." when :func:`beats` holds either way round;
        otherwise the same numbers and "the difference is noise at n seeds"; with one seed, that no
        claim is made.

    Raises:
        ValueError: unequal lengths (naming both contenders), no value, or a NaN.
    """
    va, vb = _pair(a_name, a, b_name, b)
    alpha = _level(comparisons)
    if len(va) < 2:
        return (f"{a_name} {va[0]:{fmt}} vs {b_name} {vb[0]:{fmt}} on {metric}: one seed cannot tell a real "
                f"difference from noise, so no winner is claimed (quick and full mode train several seeds).")
    d = paired(va, vb, alpha=alpha)
    a_wins = d.mean > 0 if higher_is_better else d.mean < 0
    if d.claim and not a_wins:                                  # b wins: state it as b minus a
        a_name, b_name, d = b_name, a_name, paired(vb, va, alpha=alpha)
    direction = "" if higher_is_better else " (lower is better)"
    per_seed = ", ".join(_sign(v, fmt) for v in d.differences)
    numbers = (f"mean paired difference ({a_name} minus {b_name}) {_sign(d.mean, fmt)} over {d.n} seeds (per seed "
               f"{per_seed}; sd {d.sd:{fmt}}; {100 * (1 - alpha):.3g} % CI "
               f"{_sign(d.ci_low, fmt)} to {_sign(d.ci_high, fmt)}")
    if d.claim:
        return f"{a_name} beats {b_name} on {metric}{direction}: {numbers}; {_rule(comparisons)})."
    includes = ", which includes 0" if d.ci_low <= 0 <= d.ci_high else ""
    return (f"{a_name} and {b_name} on {metric}{direction}: {numbers}{includes}): the difference is noise at "
            f"{d.n} seeds, not a ranking ({_rule(comparisons)}).")


@dataclass(frozen=True)
class _Table:
    order: list[str]                    # the reference first
    reference: str
    baseline: bool                      # the reference was given (True) or is the best mean (False)
    diffs: dict[str, PairedDifference]  # name -> name minus reference (not for the reference)
    claims: dict[str, bool]             # name -> Holm rejects "no difference to the reference"
    family: int                         # how many comparisons Holm corrected over


def _compare(results: Mapping[str, Sequence[float]], higher_is_better: bool, baseline: str | None) -> _Table:
    if not results:
        raise ValueError("a seed table needs at least one contender")
    values = {name: _values(name, v) for name, v in results.items()}
    lengths = {name: len(v) for name, v in values.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"a paired comparison needs one value per seed for every contender, in seed order: "
                         f"got {', '.join(f'{n} for {k}' for k, n in lengths.items())}")
    means = {name: sum(v) / len(v) for name, v in values.items()}
    order = sorted(values, key=lambda k: means[k], reverse=higher_is_better)
    if baseline is not None and baseline not in values:
        raise ValueError(f"baseline {baseline!r} is not among the contenders {list(values)}")
    reference = baseline if baseline is not None else order[0]
    order = [reference] + [n for n in order if n != reference]
    others = order[1:]
    diffs = {name: paired(values[name], values[reference]) for name in others}
    n = len(values[reference])
    if n < 2 or not others:
        return _Table(order, reference, baseline is not None, diffs, {k: False for k in others}, len(others))
    if baseline is not None:                   # Holm over the k - 1 comparisons with the fixed baseline
        pairs = [(name, reference) for name in others]
    else:                                      # best chosen from the data: Holm over all k (k - 1) / 2 pairs
        pairs = [(x, y) for i, x in enumerate(order) for y in order[i + 1:]]
    d = np.array([[x - y for x, y in zip(values[p], values[q])] for p, q in pairs])
    rejected = holm(t_test(d)[3])
    claims = {name: bool(rejected[pairs.index((name, reference) if baseline is not None else (reference, name))])
              for name in others}
    return _Table(order, reference, baseline is not None, diffs, claims, len(pairs))


def seed_table(results: Mapping[str, Sequence[float]], *, metric: str, higher_is_better: bool = True,
               fmt: str = ".3f", baseline: str | None = None) -> str:
    """A plain-text table: one row per contender with every seed, the mean, and the paired difference.

    Args:
        results: contender -> the metric for each seed, every list in the same seed order.
        metric: the metric's name, for the header.
        higher_is_better: ``False`` for losses, errors, distances.
        fmt: number format.
        baseline: a contender to compare every other one with (its row first). ``None``: compare with
            the best mean (first row), correcting for that choice (see the module docstring).

    Returns:
        Fixed-width lines: a header, one row per contender (the reference, then best mean first), the
        column "minus R (mean ± sd)" of per-seed differences to the reference ``R``, a tag ("best mean"
        or "baseline"; "behind R (paired, Holm)", "ahead of R (paired, Holm)" or "tied with R within
        noise"), and a last line that states the rule.

    Raises:
        ValueError: lists of unequal lengths (naming them), an empty list, a NaN, an unknown baseline.
    """
    table = _compare(results, higher_is_better, baseline)
    ref = table.reference
    values = {name: _values(name, results[name]) for name in table.order}
    n = len(values[ref])
    width = max(len(name) for name in table.order)
    cells = {}
    for name, d in table.diffs.items():
        cells[name] = _sign(d.mean, fmt) + (f" ± {d.sd:{fmt}}" if n >= 2 else "")
    header = f"minus {ref} (mean ± sd)" if n >= 2 else f"minus {ref}"
    diff_width = max([len(header)] + [len(c) for c in cells.values()])
    seed_cols = "".join(f"{'seed ' + str(i):>11}" for i in range(n))
    lines = [f"{'':{width}}  {seed_cols}{'mean':>9}   {header:>{diff_width}}  {metric}"]
    for name in table.order:
        v = values[name]
        if name == ref:
            tag = "baseline" if table.baseline else "best mean"
        elif n < 2:
            tag = "no claim from one seed"
        elif table.claims[name]:
            ahead = table.diffs[name].mean > 0 if higher_is_better else table.diffs[name].mean < 0
            tag = f"{'ahead of' if ahead else 'behind'} {ref} (paired, Holm)"
        else:
            tag = f"tied with {ref} within noise"
        row = "".join(f"{x:>11{fmt}}" for x in v)
        lines.append(f"{name:{width}}  {row}{sum(v) / n:>9{fmt}}   {cells.get(name, ''):>{diff_width}}  {tag}")
    if n < 2:
        lines.append("one seed: no claim (quick and full mode train several seeds)")
    elif len(table.order) > 1:
        k = len(table.order)
        family = (f"the {table.family} comparison{'s' if table.family > 1 else ''} with the baseline" if table.baseline else
                  f"all {table.family} pairs of the {k} contenders, as the best is chosen from the data")
        lines.append(f"paired t-tests on the per-seed differences, 5 % level, Holm-corrected over {family}")
    return "\n".join(lines)


def tied_with_best(results: Mapping[str, Sequence[float]], *, higher_is_better: bool = True) -> list[str]:
    """The contenders that cannot be told apart from the best mean (the best included), best first.

    Each contender is compared with the best mean by the paired t-test, Holm-corrected over all
    ``k (k - 1) / 2`` pairs because the best is chosen from the data (family-wise false-claim rate
    <= 5 %, measured in the tests). With one seed every contender is tied.

    Raises:
        ValueError: lists of unequal lengths, an empty list, or a NaN.
    """
    table = _compare(results, higher_is_better, None)
    return [table.reference] + [name for name in table.order[1:] if not table.claims[name]]
