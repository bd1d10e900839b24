"""Trends of a figure over a campaign's rounds (or over time), each with its significance test and in words.

A series (one value per round: a round's median latency, its mean RSS, ...) gets a straight-line fit by
ordinary least squares, its slope's 95 % confidence interval from the t distribution (n − 2 degrees of
freedom) and the two-sided p-value of the same t statistic (scipy.stats.linregress). Least squares rather
than Theil–Sen: a campaign has few rounds (3 to a few dozen), where the t interval is exact for normal
noise and the interval and the p-value come from one statistic, so "significant" and "the interval
excludes 0" never disagree; Theil–Sen's interval is a large-sample approximation from Kendall's tau and
has no p-value of its own (a separate test could contradict it). The price is sensitivity to an outlying
round, which the per-round table beside each trend shows.

Success over rounds (k of n verified per round) gets the Cochran–Armitage test for a trend in
proportions: the score test of a linear (and of a logistic) slope, with the least-squares slope of the
rounds' shares weighted by their n as its size, in percentage points per round. Its p-value is the
normal approximation (two-sided).

A trend needs at least MIN_POINTS points; below that the figure says "too few rounds for a trend".
Significance is at the level that matches the intervals: p < 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from scipy import stats as scipy_stats

from analysis.stats import CONFIDENCE, Interval

MIN_POINTS = 3  # two points always lie on a line: no test of a slope below three
ALPHA = 1 - CONFIDENCE
MAX_DECIMALS = 6


class Trend(BaseModel):
    """The straight-line trend of one figure over rounds (or time): slope per `per`, its 95 % CI, p-value, n."""

    what: str  # "server RSS", "status median latency"
    unit: str  # of the figure: "MB", "ms", "s"
    per: str  # "round" | "hour": the slope is in unit per this
    n: int  # points fitted (rounds with a value)
    x: list[float]  # the points fitted: round numbers (or hours) ...
    y: list[float]  # ... and the figure's value at each
    slope: float | None = None  # None below MIN_POINTS
    ci: Interval | None = None
    p_value: float | None = None
    significant: bool = False  # p < ALPHA (the interval excludes 0)
    # "server RSS grew 3.1 MB per round, 95 % CI 1.2–5.0, p = 0.004 (n = 8 rounds)": it starts with `what` as given
    # (a service's name is not capitalised)
    sentence: str


class SuccessTrend(BaseModel):
    """Verified successes over rounds: the Cochran–Armitage trend test and the slope it tests."""

    what: str  # "success rate"
    rounds: int  # rounds with at least one job that reached an outcome
    k: int  # verified successes over those rounds
    n: int  # jobs that reached an outcome over those rounds
    slope: float | None = None  # change of the share per round (0.02 = 2 percentage points); None below MIN_POINTS
    z: float | None = None
    p_value: float | None = None
    significant: bool = False
    sentence: str


def p_text(p: float) -> str:
    """"p < 0.001", "p = 0.004", "p = 0.048", "p = 0.41": three decimals below 0.1, so one near 0.05 reads on the
    side of it that it is."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def number(value: float, decimals: int) -> str:
    """`value` with `decimals` decimals, a minus sign for a negative one (never "−0.0")."""
    shown = f"{value:.{decimals}f}"
    return shown.lstrip("-") if float(shown) == 0 else shown.replace("-", "−")


def decimals_for(values: Sequence[float], decimals: int) -> int:
    """`decimals`, or more where they would show one of `values` (a slope and its interval's bounds) as 0: enough
    for two significant digits of the smallest, so a sentence reads in one precision."""
    small = [abs(value) for value in values if value != 0 and abs(value) < 0.5 * 10 ** -decimals]
    return min(MAX_DECIMALS, 1 - math.floor(math.log10(min(small)))) if small else decimals


def range_text(low: float, high: float, decimals: int) -> str:
    """"1.2–5.0", "−0.5 to 0.9" (a dash between a minus sign and a number would misread)."""
    joint = " to " if low < 0 or high < 0 else "–"
    return f"{number(low, decimals)}{joint}{number(high, decimals)}"


def _count(n: int, noun: str) -> str:
    return f"n = {n} {noun}"


def too_few(what: str, n: int, points: str) -> str:
    return f"{what}: too few {points} for a trend ({_count(n, points)}; a trend needs at least {MIN_POINTS})"


def linear_trend(x: Sequence[float], y: Sequence[float | None], *, what: str, unit: str, per: str = "round",
                 points: str = "rounds", decimals: int = 1, rises: str = "grew", falls: str = "fell") -> Trend:
    """The least-squares trend of `y` over `x` (a point whose y is None or not finite is left out).

    `per` names the x unit in the slope ("per round"), `points` the points in n ("8 rounds"), `rises`/`falls`
    the verbs of a significant slope; `decimals` those of the figure's unit."""
    pairs = [(float(a), float(b)) for a, b in zip(x, y, strict=True) if b is not None and np.isfinite(b)]
    xs, ys = [a for a, _ in pairs], [b for _, b in pairs]
    n = len(pairs)
    base = {"what": what, "unit": unit, "per": per, "n": n, "x": xs, "y": ys}
    if n < MIN_POINTS or len(set(xs)) < 2:
        return Trend(**base, sentence=too_few(what, n, points))
    if len(set(ys)) == 1:  # no variation at all: a slope of 0 that no test can call drift
        return Trend(**base, slope=0.0, ci=Interval(low=0.0, high=0.0), p_value=1.0,
                     sentence=f"No drift in {what}: {number(ys[0], decimals)} {unit} in every one of the "
                              f"{n} {points}")
    fit = scipy_stats.linregress(xs, ys)
    half = float(scipy_stats.t.ppf(1 - ALPHA / 2, n - 2) * fit.stderr)
    slope, p = float(fit.slope), float(fit.pvalue)
    ci = Interval(low=slope - half, high=slope + half)
    significant = p < ALPHA
    counted = _count(n, points)
    decimals = decimals_for([slope, ci.low, ci.high], decimals)
    if significant:
        verb = rises if slope > 0 else falls
        low, high = (ci.low, ci.high) if slope > 0 else (-ci.high, -ci.low)
        sentence = (f"{what} {verb} {number(abs(slope), decimals)} {unit} per {per}, 95 % CI "
                    f"{range_text(low, high, decimals)}, {p_text(p)} ({counted})")
    else:
        sentence = (f"No significant drift in {what} (slope {number(slope, decimals)} {unit} per {per}, 95 % CI "
                    f"{range_text(ci.low, ci.high, decimals)}, {p_text(p)}, {counted})")
    return Trend(**base, slope=slope, ci=ci, p_value=p, significant=significant, sentence=sentence)


def success_trend(rounds: Sequence[int], k: Sequence[int], n: Sequence[int], *, what: str = "success rate",
                  success: str = "delivered a verified video") -> SuccessTrend:
    """Cochran–Armitage trend test of k[i] successes of n[i] over `rounds` (rounds with n = 0 are left out);
    `success` says in words what a success is ("delivered a verified video")."""
    kept = [(float(r), int(ki), int(ni)) for r, ki, ni in zip(rounds, k, n, strict=True) if ni > 0]
    x = np.array([r for r, _, _ in kept])
    ks = np.array([ki for _, ki, _ in kept], dtype=float)
    ns = np.array([ni for _, _, ni in kept], dtype=float)
    total_k, total_n = int(ks.sum()), int(ns.sum())
    base = {"what": what, "rounds": len(kept), "k": total_k, "n": total_n}
    jobs = f"{total_n} jobs over {len(kept)} rounds"
    if len(kept) < MIN_POINTS:
        return SuccessTrend(**base, sentence=too_few(what, len(kept), "rounds"))
    share = total_k / total_n
    if total_k in (0, total_n):  # every round the same share (all or nothing): no variation to test
        every = "every job of every round" if total_k else "no job of any round"
        return SuccessTrend(**base, slope=0.0, p_value=1.0,
                            sentence=f"No trend in the {what}: {every} {success} ({jobs})")
    centred = x - (ns * x).sum() / total_n
    spread = float((ns * centred**2).sum())
    slope = float((ks * centred).sum() / spread)  # weighted least-squares slope of the rounds' shares
    z = slope / float(np.sqrt(share * (1 - share) / spread))
    p = float(2 * scipy_stats.norm.sf(abs(z)))
    significant = p < ALPHA
    shares = ks / ns
    test = f"Cochran–Armitage trend test z = {number(z, 2)}, {p_text(p)}"
    if significant:
        verb = "rose" if slope > 0 else "fell"
        sentence = (f"{what} {verb} {number(abs(slope) * 100, 1)} percentage points per round ({test}; "
                    f"{number(shares[0] * 100, 1)} % in round {int(x[0])}, {number(shares[-1] * 100, 1)} % in round "
                    f"{int(x[-1])}; {total_k} of {jobs} {success})")
    else:
        sentence = f"No significant trend in the {what} ({test}; {total_k} of {jobs} {success})"
    return SuccessTrend(**base, slope=slope, z=z, p_value=p, significant=significant, sentence=sentence)
