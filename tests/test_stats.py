import math

import pytest

from analysis.stats import percentile, rate, summarize


def test_percentile_interpolates_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert math.isclose(percentile(values, 95), 3.85)


def test_percentile_ignores_missing_and_is_none_when_empty():
    assert percentile([None, float("nan")], 50) is None
    assert percentile([], 95) is None
    assert percentile([5.0, None], 99) == 5.0


def test_percentile_rejects_out_of_range_q():
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)


def test_summarize_and_rate():
    summary = summarize([3.0, 1.0, 2.0])
    assert (summary.count, summary.min, summary.mean, summary.p50, summary.max) == (3, 1.0, 2.0, 2.0, 3.0)
    assert summarize([]).p95 is None
    assert rate(3, 4) == 0.75
    assert rate(0, 0) is None
