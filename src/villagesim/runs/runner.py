"""Running a scenario: replicates of :class:`~villagesim.model.VillageModel`, outputs as data frames.

:func:`run_replicate` is the unit of work everywhere (serial runs, comparisons, sweeps on a
cluster): its result depends only on the scenario, the seed and the replicate number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from villagesim.config.schema import Scenario
from villagesim.model import VillageModel
from villagesim.outputs.sums import KEY_OUTCOMES

ProgressHook = Callable[[int], None]
"""Called with the number of steps just completed (for progress bars)."""


@dataclass
class RunResult:
    """Outputs of one or more replicates of a scenario."""

    scenario: Scenario
    timeseries: pd.DataFrame
    villages: pd.DataFrame
    seconds: float

    @property
    def replicates(self) -> int:
        return int(self.timeseries["replicate"].nunique())


def run_replicate(
    scenario: Scenario,
    replicate: int = 0,
    steps: int | None = None,
    progress: ProgressHook | None = None,
    record_villages: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run one replicate; return (timeseries, villages) data frames."""
    model = VillageModel(scenario, replicate=replicate, steps=steps, record_villages=record_villages)
    for _ in range(model.horizon):
        model.step()
        if progress is not None:
            progress(1)
    return model.timeseries(), model.village_outcomes()


def run_scenario(
    scenario: Scenario,
    replicates: int | None = None,
    steps: int | None = None,
    progress: ProgressHook | None = None,
    record_villages: bool = True,
) -> RunResult:
    """Run replicates ``0 .. replicates-1`` of a scenario one after the other."""
    n = replicates if replicates is not None else scenario.run.replicates
    start = time.perf_counter()
    series, villages = [], []
    for r in range(n):
        ts, vs = run_replicate(scenario, r, steps, progress, record_villages)
        series.append(ts)
        villages.append(vs)
    return RunResult(
        scenario=scenario,
        timeseries=pd.concat(series, ignore_index=True),
        villages=pd.concat(villages, ignore_index=True),
        seconds=time.perf_counter() - start,
    )


def summarise(timeseries: pd.DataFrame, outcomes: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Final and time-mean values of key outcomes over replicates, with a 95% interval of the final mean."""
    from scipy import stats

    outcomes = outcomes or KEY_OUTCOMES
    last = timeseries[timeseries["step"] == timeseries["step"].max()]
    n = len(last)
    out: dict[str, dict[str, float]] = {}
    for name in outcomes:
        finals = last[name].to_numpy(dtype=float)
        mean = float(finals.mean())
        sd = float(finals.std(ddof=1)) if n > 1 else 0.0
        half = float(stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)) if n > 1 else float("nan")
        out[name] = {
            "final_mean": mean,
            "final_sd": sd,
            "final_ci95_low": mean - half if n > 1 else float("nan"),
            "final_ci95_high": mean + half if n > 1 else float("nan"),
            "time_mean": float(timeseries[name].mean()),
        }
    return out
