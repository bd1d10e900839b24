"""Trend statistics on synthetic series with a known slope (pure)."""

import numpy as np
import pytest

from analysis.trends import MIN_POINTS, linear_trend, p_text, range_text, success_trend


def noisy_line(slope, n, noise, seed=1):
    rng = np.random.default_rng(seed)
    x = np.arange(1, n + 1, dtype=float)
    return x.tolist(), (100.0 + slope * x + rng.normal(0.0, noise, n)).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_a_known_slope_lies_within_its_interval_and_is_significant(seed):
    x, y = noisy_line(3.0, 12, 1.0, seed)
    trend = linear_trend(x, y, what="server RSS", unit="MB")
    assert trend.n == 12 and trend.significant and trend.p_value < 0.05
    assert trend.ci.low < 3.0 < trend.ci.high
    assert trend.slope == pytest.approx(3.0, abs=0.5)
    assert trend.sentence.startswith(f"server RSS grew {trend.slope:.1f} MB per round, 95 % CI ")
    assert trend.sentence.endswith("(n = 12 rounds)")


def test_the_interval_covers_the_true_slope_about_95_percent_of_the_time():
    intervals = [linear_trend(*noisy_line(-2.0, 6, 3.0, seed), what="y", unit="s").ci for seed in range(200)]
    assert 0.90 <= sum(ci.low < -2.0 < ci.high for ci in intervals) / 200 <= 0.99


def test_a_falling_series_says_fell_with_the_interval_of_the_fall():
    trend = linear_trend([1, 2, 3, 4, 5], [50.0, 40.1, 29.8, 20.2, 10.0], what="queue time", unit="s", decimals=2)
    assert trend.slope < 0 and trend.significant
    assert trend.sentence.startswith("queue time fell 9.99 s per round, 95 % CI ")
    low, high = trend.sentence.split("95 % CI ")[1].split(",")[0].split("–")
    assert 0 < float(low) < 10.0 < float(high)


@pytest.mark.parametrize("seed", [100, 102, 103, 104, 105])  # 101 is one of the 5 % significant by chance
def test_a_flat_noisy_series_is_not_significant(seed):
    x, y = noisy_line(0.0, 8, 5.0, seed)
    trend = linear_trend(x, y, what="status median latency", unit="ms")
    assert not trend.significant and trend.p_value > 0.05
    assert trend.ci.low < 0 < trend.ci.high
    assert trend.sentence.startswith("No significant drift in status median latency (slope ")
    assert " to " in trend.sentence and trend.sentence.endswith(", n = 8 rounds)")


def test_flat_noisy_series_are_called_significant_about_5_percent_of_the_time():
    chance = sum(linear_trend(*noisy_line(0.0, 8, 5.0, seed), what="y", unit="ms").significant for seed in range(400))
    assert 0.02 <= chance / 400 <= 0.09


def test_a_constant_series_has_no_drift_and_no_test_failure():
    trend = linear_trend([1, 2, 3, 4], [7.0, 7.0, 7.0, 7.0], what="tts RSS", unit="MB")
    assert trend.slope == 0 and trend.p_value == 1 and not trend.significant
    assert trend.sentence == "No drift in tts RSS: 7.0 MB in every one of the 4 rounds"


@pytest.mark.parametrize("n", range(MIN_POINTS))
def test_too_few_rounds_for_a_trend(n):
    trend = linear_trend(list(range(1, n + 1)), [1.0 * i for i in range(n)], what="server RSS", unit="MB")
    assert trend.slope is None and trend.ci is None and trend.p_value is None and not trend.significant
    assert trend.sentence == f"server RSS: too few rounds for a trend (n = {n} rounds; a trend needs at least 3)"


def test_missing_values_are_left_out_and_counted_out_of_n():
    trend = linear_trend([1, 2, 3, 4], [1.0, None, float("nan"), 4.0], what="x", unit="s")
    assert trend.n == 2 and trend.slope is None and "too few rounds" in trend.sentence


def test_a_trend_over_time_names_its_unit_and_points():
    trend = linear_trend([0.0, 1.0, 2.0, 3.0], [10.0, 12.0, 14.1, 15.9], what="server RSS", unit="MB", per="hour",
                         points="samples")
    assert "MB per hour" in trend.sentence and trend.sentence.endswith("(n = 4 samples)")


def test_p_values_and_ranges_in_words():
    assert p_text(0.0004) == "p < 0.001" and p_text(0.004) == "p = 0.004" and p_text(0.41) == "p = 0.41"
    assert p_text(0.0504) == "p = 0.050" and p_text(0.0496) == "p = 0.050" and p_text(0.046) == "p = 0.046"
    assert range_text(1.2, 5.0, 1) == "1.2–5.0" and range_text(-0.5, 0.9, 1) == "−0.5 to 0.9"
    assert range_text(0.0001, 0.0003, 4) == "0.0001–0.0003" and range_text(-0.04, 0.1, 1) == "0.0 to 0.1"


def test_a_slope_or_bound_too_small_for_the_figures_decimals_gets_two_significant_digits_and_the_rest_as_many():
    trend = linear_trend([1, 2, 3, 4], [10.0, 10.05, 10.09, 10.14], what="llm RSS", unit="MB")
    assert trend.sentence.startswith("llm RSS grew 0.046 MB per round, 95 % CI 0.040–0.052, p < 0.001")
    low, high = trend.sentence.split("95 % CI ")[1].split(",")[0].split("–")
    assert len(low.split(".")[1]) == len(high.split(".")[1]) == 3
    flat = linear_trend([1, 2, 3], [4.6, 4.6, 4.7], what="redis RSS", unit="MB")  # one decimal shows each
    assert "(slope 0.1 MB per round, 95 % CI −0.3 to 0.4, p = 0.33" in flat.sentence
    tiny = linear_trend([1, 2, 3], [4.60, 4.68, 4.74], what="redis RSS", unit="MB")  # the CI's low bound −0.0034
    assert "(slope 0.0700 MB per round, 95 % CI −0.0034 to 0.1434, p = 0.052, n = 3 rounds)" in tiny.sentence


# ---- success over rounds (Cochran–Armitage) -------------------------------------------------------

def test_a_falling_success_rate_is_a_significant_trend():
    rounds = [1, 2, 3, 4, 5]
    trend = success_trend(rounds, k=[20, 19, 16, 13, 10], n=[20] * 5)
    assert trend.significant and trend.p_value < 0.001 and trend.slope < 0
    assert trend.slope == pytest.approx(-0.13, abs=0.01)  # 100 % → 50 % over 4 rounds
    assert trend.sentence.startswith("success rate fell 13.0 percentage points per round (Cochran–Armitage trend test")
    assert "100.0 % in round 1, 50.0 % in round 5; 78 of 100 jobs over 5 rounds delivered a verified video" \
           in trend.sentence


def test_the_cochran_armitage_statistic_matches_its_textbook_form():
    # T = Σ k_i (x_i − x̄), Var T = p̄(1 − p̄) Σ n_i (x_i − x̄)², x̄ weighted by n
    x, k, n = np.array([1.0, 2, 3, 4]), np.array([9.0, 7, 8, 4]), np.array([10.0, 10, 12, 8])
    centred = x - (n * x).sum() / n.sum()
    share = k.sum() / n.sum()
    z = (k * centred).sum() / np.sqrt(share * (1 - share) * (n * centred**2).sum())
    assert success_trend(x.tolist(), k.tolist(), n.tolist()).z == pytest.approx(z)


def test_a_steady_success_rate_is_not_a_trend():
    trend = success_trend([1, 2, 3, 4, 5, 6], k=[9, 8, 9, 9, 8, 9], n=[10] * 6)
    assert not trend.significant and trend.p_value > 0.05
    assert trend.sentence.startswith("No significant trend in the success rate (Cochran–Armitage trend test z = ")
    assert trend.sentence.endswith("52 of 60 jobs over 6 rounds delivered a verified video)")


def test_all_successes_is_no_trend_and_rounds_without_jobs_are_left_out():
    trend = success_trend([1, 2, 3, 4], k=[5, 0, 5, 5], n=[5, 0, 5, 5])
    assert trend.rounds == 3 and trend.n == 15 and trend.p_value == 1 and not trend.significant
    assert trend.sentence == ("No trend in the success rate: every job of every round delivered a verified video "
                              "(15 jobs over 3 rounds)")


def test_two_rounds_are_too_few_for_a_success_trend():
    trend = success_trend([1, 2], k=[5, 1], n=[5, 5])
    assert trend.p_value is None and trend.sentence.startswith("success rate: too few rounds for a trend (n = 2 rounds")
