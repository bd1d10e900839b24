"""Which figures a sample supports: percentiles by n, intervals from n >= 5, rates with Wilson intervals."""

import math

import numpy as np
import pytest

from analysis.stats import distribution, percentile, rate


def test_percentile_is_numpys_and_none_when_empty():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5 and math.isclose(percentile(values, 95), np.percentile(values, 95))
    assert percentile([None, float("nan")], 50) is None and percentile([], 95) is None
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)


def test_below_five_values_min_median_max_and_no_interval():
    figure = distribution([3.0, 1.0, None, 2.0], "s")
    assert (figure.n, figure.min, figure.median, figure.max) == (3, 1.0, 2.0, 3.0)
    assert figure.p95 is None and figure.p99 is None and figure.ci is None
    assert figure.headline == ("median", 2.0)


def test_from_five_values_the_median_carries_a_bootstrap_interval_reproducibly():
    values = [10.0, 12.0, 11.0, 14.0, 30.0, 9.0]
    figure = distribution(values, "s")
    assert figure.p95 is None and figure.ci_of == "median"
    assert figure.ci.low <= figure.median <= figure.ci.high and figure.min <= figure.ci.low
    assert distribution(values, "s").ci == figure.ci  # fixed seed


def test_p95_from_twenty_p99_from_a_hundred():
    assert distribution(range(19), "ms").p95 is None
    twenty = distribution(range(20), "ms")
    assert twenty.p95 == pytest.approx(18.05) and twenty.p99 is None and twenty.ci_of == "p95"
    assert twenty.headline == ("p95", twenty.p95)
    assert distribution(range(100), "ms").p99 == pytest.approx(98.01)


def test_identical_values_have_a_point_interval():
    figure = distribution([5.0] * 8, "ms")
    assert (figure.ci.low, figure.ci.high) == (5.0, 5.0)


def test_rate_is_none_when_nothing_was_attempted_and_has_a_wilson_interval_from_five():
    assert rate(0, 0).value is None and rate(0, 0).ci is None
    assert rate(3, 4).value == 0.75 and rate(3, 4).ci is None
    all_good = rate(10, 10)
    assert all_good.value == 1.0 and all_good.ci.high == 1.0 and 0.6 < all_good.ci.low < 0.8
