"""Summary statistics the reports and thresholds share, so every figure is computed one way."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default).

    None for no values: an empty sample has no percentile, and a report must say so rather than show 0.
    """
    ordered = sorted(v for v in values if v is not None and not math.isnan(v))
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    count: int
    min: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


def summarize(values: Iterable[float]) -> Summary:
    sample = [v for v in values if v is not None and not math.isnan(v)]
    if not sample:
        return Summary(0, None, None, None, None, None, None)
    return Summary(
        count=len(sample),
        min=min(sample),
        mean=sum(sample) / len(sample),
        p50=percentile(sample, 50),
        p95=percentile(sample, 95),
        p99=percentile(sample, 99),
        max=max(sample),
    )


def rate(successes: int, total: int) -> float | None:
    """Share of successes; None when nothing was attempted (not 0 %, not 100 %)."""
    return successes / total if total else None
