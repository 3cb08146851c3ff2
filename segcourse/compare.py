"""Comparisons that survive another machine: results over several seeds, and verdicts.

Floating-point results of training differ between CPUs, so a run with one seed on one
machine says little about which of two models or losses is better. A lesson that compares
trains each contender with a few seeds, shows mean and range (:func:`seed_table`), and
lets :func:`verdict` decide in code whether the gap is larger than the seed-to-seed spread:

    >>> a = {"U-Net": [0.962, 0.958, 0.965], "Otsu": [0.921, 0.921, 0.921]}
    >>> print(verdict("U-Net", a["U-Net"], "Otsu", a["Otsu"], metric="Dice"))
    U-Net beats Otsu on Dice by 0.041 (mean of 3 seeds each); every seed of U-Net is above every seed of Otsu, so the gap exceeds the seed-to-seed spread (largest range 0.007).
    >>> print(verdict("A", [0.50, 0.55], "B", [0.52, 0.56], metric="IoU"))
    A and B differ on IoU by 0.015 (mean of 2 seeds each), less than the seed-to-seed spread (largest range 0.050): the difference is noise, not a ranking.

The rule is deliberately simple and strict: A beats B only when **every** seed of A is
better than **every** seed of B (the two ranges do not overlap), with at least two seeds
each. With one seed (smoke mode) no claim is made.

:func:`seeds` gives the seeds a lesson uses in the current mode (one in smoke mode, three in
quick mode, five in full mode unless the lesson asks otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .config import pick


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
        """``high - low``: the seed-to-seed spread."""
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


def beats(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool = True) -> bool:
    """Whether every seed of ``a`` is strictly better than every seed of ``b`` (needs >= 2 seeds each)."""
    sa, sb = spread(a), spread(b)
    if sa.n < 2 or sb.n < 2:
        return False
    return sa.low > sb.high if higher_is_better else sa.high < sb.low


def verdict(a_name: str, a: Sequence[float], b_name: str, b: Sequence[float], *, metric: str,
            higher_is_better: bool = True, fmt: str = ".3f") -> str:
    """A sentence that compares two contenders and is true on every machine.

    Args:
        a_name, b_name: what is compared ("U-Net", "Otsu").
        a, b: the metric for each seed.
        metric: the metric's name, for the sentence.
        higher_is_better: ``False`` for losses, errors, distances.
        fmt: number format.

    Returns:
        "A beats B on metric by gap ..." when :func:`beats` holds (either way round), otherwise a
        sentence saying the difference is within the seed-to-seed spread (or that one seed allows no claim).
    """
    sa, sb = spread(a), spread(b)
    gap = abs(sa.mean - sb.mean)
    widest = max(sa.range, sb.range)
    counts = f"mean of {sa.n} seeds each" if sa.n == sb.n else f"means of {sa.n} and {sb.n} seeds"
    if sa.n < 2 or sb.n < 2:
        return (f"{a_name} {sa.mean:{fmt}} vs {b_name} {sb.mean:{fmt}} on {metric}: one seed cannot tell a real "
                f"difference from noise, so no winner is claimed (quick and full mode train several seeds).")
    for (wn, w), (ln, lo) in [((a_name, a), (b_name, b)), ((b_name, b), (a_name, a))]:
        if beats(w, lo, higher_is_better=higher_is_better):
            return (f"{wn} beats {ln} on {metric} by {gap:{fmt}} ({counts}); every seed of {wn} is "
                    f"{'above' if higher_is_better else 'below'} every seed of {ln}, so the gap exceeds the "
                    f"seed-to-seed spread (largest range {widest:{fmt}}).")
    return (f"{a_name} and {b_name} differ on {metric} by {gap:{fmt}} ({counts}), less than the seed-to-seed "
            f"spread (largest range {widest:{fmt}}): the difference is noise, not a ranking.")


def seed_table(results: Mapping[str, Sequence[float]], *, metric: str, higher_is_better: bool = True,
               fmt: str = ".3f") -> str:
    """A plain-text table: one row per contender, best mean first, with every seed, mean and range.

    The last column marks the contenders tied with the best (their range overlaps the best one's,
    or one seed only): what can be claimed on another machine.
    """
    if not results:
        raise ValueError("seed_table needs at least one contender")
    spreads = {name: spread(v) for name, v in results.items()}
    order = sorted(spreads, key=lambda k: spreads[k].mean, reverse=higher_is_better)
    best = order[0]
    width = max(len(n) for n in order)
    n_max = max(s.n for s in spreads.values())
    seed_cols = "".join(f"{'seed ' + str(i):>11}" for i in range(n_max))
    lines = [f"{'':{width}}  {seed_cols}{'mean':>9}{'range':>9}  {metric}"]
    for name in order:
        s = spreads[name]
        cells = "".join(f"{v:>11{fmt}}" for v in s.values) + " " * 11 * (n_max - s.n)
        if name == best:
            tag = "best mean"
        elif beats(results[best], results[name], higher_is_better=higher_is_better):
            tag = f"behind {best} beyond noise"
        else:
            tag = f"tied with {best} within noise"
        lines.append(f"{name:{width}}  {cells}{s.mean:>9{fmt}}{s.range:>9{fmt}}  {tag}")
    return "\n".join(lines)


def tied_with_best(results: Mapping[str, Sequence[float]], *, higher_is_better: bool = True) -> list[str]:
    """The contenders that cannot be told apart from the best mean (the best included), best first."""
    spreads = {name: spread(v) for name, v in results.items()}
    order = sorted(spreads, key=lambda k: spreads[k].mean, reverse=higher_is_better)
    best = order[0]
    return [n for n in order if n == best or not beats(results[best], results[n], higher_is_better=higher_is_better)]
