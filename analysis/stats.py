"""Summary statistics every figure shares, with the rules that say which figure a sample supports.

Rules (stated in every report and in the README):
- every figure carries its n;
- p95 only from n >= 20 and p99 only from n >= 100 (fewer values cannot place a tail: below that the
  figure is min / median / max);
- from n >= 5 a figure carries a 95 % confidence interval: a percentile bootstrap (scipy) of its headline
  statistic (p95 where shown, else the median) with a fixed seed, so a report rendered twice reads the
  same; a rate's interval is the Wilson score interval (a bootstrap of 10 successes out of 10 would claim
  [100 %, 100 %]).
Quantiles are numpy's (linear interpolation, the same as Great Expectations' "linear").
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel
from scipy import stats as scipy_stats

P95_MIN_N = 20
P99_MIN_N = 100
CI_MIN_N = 5
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 7  # fixed: the same run renders the same intervals every time

RULE = (f"p95 is shown from n ≥ {P95_MIN_N} values and p99 from n ≥ {P99_MIN_N}; below that min / median / max. "
        f"From n ≥ {CI_MIN_N} a figure carries a {CONFIDENCE * 100:.0f} % confidence interval (percentile bootstrap "
        f"of the p95 where shown, else of the median, {BOOTSTRAP_RESAMPLES} resamples, fixed seed; for a rate the "
        f"Wilson score interval).")


class Interval(BaseModel):
    low: float
    high: float


class Distribution(BaseModel):
    """A sample of one quantity (seconds, ms, ...): what its n supports, nothing more."""

    unit: str
    n: int
    min: float | None = None
    median: float | None = None
    mean: float | None = None
    max: float | None = None
    p95: float | None = None  # None below P95_MIN_N values
    p99: float | None = None  # None below P99_MIN_N values
    ci_of: str | None = None  # "p95" | "median": the statistic the interval is for
    ci: Interval | None = None  # None below CI_MIN_N values

    @property
    def headline(self) -> tuple[str, float | None]:
        """("p95", value) where n supports a p95, else ("median", value)."""
        return ("p95", self.p95) if self.p95 is not None else ("median", self.median)


class Rate(BaseModel):
    """k of n, its share, and (from n >= CI_MIN_N) a Wilson interval of the share."""

    k: int
    n: int
    value: float | None = None  # None when n == 0: nothing attempted is neither 0 % nor 100 %
    ci: Interval | None = None


def clean(values: Iterable[float | None]) -> np.ndarray:
    """The finite values, as an array (None and NaN are not measurements)."""
    array = np.array([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0..100), numpy's linear interpolation; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    sample = clean(values)
    return float(np.percentile(sample, q)) if sample.size else None


def bootstrap_interval(sample: np.ndarray, q: float) -> Interval | None:
    """95 % percentile-bootstrap interval of the q-quantile (0..1); None below CI_MIN_N values."""
    if sample.size < CI_MIN_N:
        return None
    if np.all(sample == sample[0]):
        return Interval(low=float(sample[0]), high=float(sample[0]))
    result = scipy_stats.bootstrap(
        (sample,), lambda x, axis: np.quantile(x, q, axis=axis), vectorized=True, confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return Interval(low=float(result.confidence_interval.low), high=float(result.confidence_interval.high))


def distribution(values: Iterable[float | None], unit: str) -> Distribution:
    sample = clean(values)
    n = int(sample.size)
    if not n:
        return Distribution(unit=unit, n=0)
    p95 = float(np.quantile(sample, 0.95)) if n >= P95_MIN_N else None
    ci_of, q = ("p95", 0.95) if p95 is not None else ("median", 0.5)
    ci = bootstrap_interval(sample, q)
    return Distribution(
        unit=unit, n=n, min=float(sample.min()), median=float(np.median(sample)), mean=float(sample.mean()),
        max=float(sample.max()), p95=p95, p99=float(np.quantile(sample, 0.99)) if n >= P99_MIN_N else None,
        ci_of=ci_of if ci is not None else None, ci=ci,
    )


def rate(k: int, n: int) -> Rate:
    if not n:
        return Rate(k=k, n=n)
    ci = None
    if n >= CI_MIN_N:
        low, high = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
        ci = Interval(low=float(low), high=float(high))
    return Rate(k=k, n=n, value=k / n, ci=ci)
