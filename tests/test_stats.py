"""The statistics every command shares: the t interval of a mean and a run's window mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from villagesim.runs.stats import last_weeks, t_half_width, t_interval, t_multiplier, window_means


def test_the_interval_of_one_to_four_is_the_textbook_value():
    mean, lo, hi = t_interval([1.0, 2.0, 3.0, 4.0])
    # t_{0.975, 3} = 3.182446305..., sd = sqrt(5/3), half = t * sd / 2
    assert mean == 2.5
    assert hi - mean == pytest.approx(2.0542603, abs=1e-7)
    assert mean - lo == pytest.approx(2.0542603, abs=1e-7)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_interval_is_scipys(confidence):
    x = np.random.default_rng(5).normal(2.0, 3.0, size=17)
    mean, lo, hi = t_interval(x, confidence)
    ref = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    assert mean == pytest.approx(x.mean(), rel=1e-15)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-12)
    by_hand = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    assert t_half_width(x, confidence) == by_hand


def test_fewer_than_two_values_have_no_interval():
    mean, lo, hi = t_interval([3.0])
    assert mean == 3.0 and np.isnan(lo) and np.isnan(hi)
    assert np.isnan(t_multiplier(1)) and np.isnan(t_half_width([]))


def test_identical_values_have_an_interval_of_zero_width():
    assert t_interval([0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25)


def test_window_means_average_the_last_weeks():
    ts = pd.DataFrame({"step": np.arange(1, 11), "y": np.arange(1.0, 11.0), "z": np.ones(10)})
    assert window_means(ts, ["y", "z"], 3) == {"y": 9.0, "z": 1.0}
    assert window_means(ts, ["y"], 100) == {"y": 5.5}
    # a horizon given explicitly: every row after horizon - window (here steps 5 to 10)
    assert window_means(ts, ["y"], 2, horizon=6) == {"y": 7.5}
    assert list(last_weeks(ts, 4)["step"]) == [7, 8, 9, 10]
