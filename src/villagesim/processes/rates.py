"""Arithmetic the processes share: annual rates as weekly probabilities, the logistic.

A helper module, not a process: processes import it (and :mod:`.week`, :mod:`.base`),
never each other.
"""

from __future__ import annotations

import numpy as np

from villagesim.constants import WEEKS_PER_YEAR


def weekly_probability(annual: float | np.ndarray) -> float | np.ndarray:
    """Weekly probability equivalent to an annual probability: ``1 - (1 - annual) ** (1/52)``."""
    return 1.0 - (1.0 - np.asarray(annual, dtype=np.float64)) ** (1.0 / WEEKS_PER_YEAR)


def logistic(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))`` (``x`` clipped to ±40), in float32."""
    return (1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))).astype(np.float32)
