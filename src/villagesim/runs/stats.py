"""Statistics of replicated runs: the t interval of a mean, and a run's outcome over its last weeks.

Every command that reports an interval (``run``, ``compare``, ``validate``, ``calibrate``)
and every command that reduces a run to one number per outcome (``compare``, ``sweep``,
``validate``) uses these functions, so that they agree on what an interval and an outcome are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["t_multiplier", "t_interval", "t_half_width", "last_weeks", "window_means"]


def t_multiplier(n: int, confidence: float = 0.95) -> float:
    """The t quantile that multiplies the standard error of a mean of ``n`` values.

    Args:
        n: values (replicates); at least 2.
        confidence: level of the interval.

    Returns:
        ``t_{(1+confidence)/2, n-1}``; NaN when ``n < 2``.
    """
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def t_half_width(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half the width of the t interval of the mean of ``values``.

    Args:
        values: one value per replicate (for a paired comparison, the differences).
        confidence: level of the interval.

    Returns:
        ``t_{(1+confidence)/2, n-1} * sd / sqrt(n)``; NaN with fewer than 2 values.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return float("nan")
    return float(t_multiplier(n, confidence) * x.std(ddof=1) / np.sqrt(n))


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its t interval.

    Args:
        values: one value per replicate (for a paired comparison, the differences).
        confidence: level of the interval.

    Returns:
        ``(mean, low, high)``; the bounds are NaN with fewer than 2 values.
    """
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    half = t_half_width(x, confidence)
    return mean, mean - half, mean + half


def last_weeks(frame: pd.DataFrame, window: int, horizon: int | None = None) -> pd.DataFrame:
    """The rows of the last ``window`` weeks of a run (``step > horizon - window``).

    Args:
        frame: rows with a ``step`` column (a time series or per-village outcomes).
        window: weeks to keep.
        horizon: the run's last step (default: the largest ``step`` in ``frame``).
    """
    end = int(frame["step"].max()) if horizon is None else int(horizon)
    return frame[frame["step"] > end - window]


def window_means(frame: pd.DataFrame, outcomes: Sequence[str], window: int, horizon: int | None = None) -> dict[str, float]:
    """A run's outcomes: the mean of each column over its last ``window`` weeks.

    Args:
        frame: one run's weekly time series.
        outcomes: the columns to average.
        window: weeks at the end of the run averaged.
        horizon: the run's last step (default: the largest ``step`` in ``frame``).
    """
    tail = last_weeks(frame, window, horizon)
    return {o: float(tail[o].mean()) for o in outcomes}
