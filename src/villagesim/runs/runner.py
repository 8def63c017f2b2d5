"""Running a scenario: replicates of :class:`~villagesim.model.VillageModel`, outputs as data frames.

:func:`run_replicate` is the unit of work everywhere (serial runs, comparisons, sweeps on a
cluster): its result depends only on the scenario, the seed and the replicate number.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from villagesim.config.limits import check_size
from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.model import VillageModel
from villagesim.outputs.sums import KEY_OUTCOMES
from villagesim.runs.backends import Backend, SerialBackend
from villagesim.runs.stats import t_interval
from villagesim.state.institutions import FUNDED_LEVERS

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
    """Run one replicate.

    Args:
        scenario: the scenario.
        replicate: replicate number (with the scenario's seed, it fixes every random draw).
        steps: horizon in weeks (default: the scenario's ``run.steps``).
        progress: called with 1 after every week.
        record_villages: keep the per-village outcomes.

    Returns:
        ``(timeseries, villages)`` data frames.
    """
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
    backend: Backend | None = None,
    max_memory: int | None = None,
) -> RunResult:
    """Run replicates ``0 .. replicates-1`` of a scenario.

    Args:
        scenario: the scenario.
        replicates: how many (default: the scenario's ``run.replicates``).
        steps: horizon in weeks (default: the scenario's ``run.steps``).
        progress: called with the number of weeks done: every week when the runs are serial,
            a replicate's weeks when it finishes otherwise.
        record_villages: keep the per-village outcomes.
        backend: where the replicates run (default: one after the other in this process); the
            numbers are the same on every backend.
        max_memory: bytes the run may take; above it the run is refused before anything is
            allocated (default :func:`villagesim.config.limits.memory_limit`).

    Returns:
        The replicates' outputs, in replicate order.

    Raises:
        ScenarioError: when the run is predicted to need more than ``max_memory``.
    """
    n = replicates if replicates is not None else scenario.run.replicates
    backend = backend or SerialBackend()
    sized = scenario.with_overrides({"run.replicates": n, **({"run.steps": steps} if steps is not None else {})})
    check_size(sized, limit=max_memory, concurrent=backend.workers, record_villages=record_villages)
    start = time.perf_counter()
    if backend.parallel:
        horizon = steps if steps is not None else scenario.run.steps
        one = functools.partial(run_replicate, scenario, steps=steps, record_villages=record_villages)
        outputs: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}
        for done in backend.as_completed(one, range(n)):
            if not done.ok:
                raise done.error
            outputs[done.task] = done.result
            if progress is not None:
                progress(horizon)
        results = [outputs[r] for r in range(n)]
    else:
        results = [run_replicate(scenario, r, steps, progress, record_villages) for r in range(n)]
    return RunResult(
        scenario=scenario,
        timeseries=pd.concat([ts for ts, _ in results], ignore_index=True),
        villages=pd.concat([vs for _, vs in results], ignore_index=True),
        seconds=time.perf_counter() - start,
    )


def summarise(timeseries: pd.DataFrame, outcomes: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Final and time-mean values of key outcomes over replicates, with a 95% interval of the final mean.

    Args:
        timeseries: weekly outcomes of one or more replicates.
        outcomes: the columns (default :data:`~villagesim.outputs.sums.KEY_OUTCOMES`).

    Returns:
        Per outcome: ``final_mean``, ``final_sd``, ``final_ci95_low``, ``final_ci95_high``, ``time_mean``.
    """
    outcomes = outcomes or KEY_OUTCOMES
    last = timeseries[timeseries["step"] == timeseries["step"].max()]
    n = len(last)
    out: dict[str, dict[str, float]] = {}
    for name in outcomes:
        finals = last[name].to_numpy(dtype=float)
        mean, low, high = t_interval(finals)
        out[name] = {
            "final_mean": mean,
            "final_sd": float(finals.std(ddof=1)) if n > 1 else 0.0,
            "final_ci95_low": low,
            "final_ci95_high": high,
            "time_mean": float(timeseries[name].mean()),
        }
    return out


def lever_funding(timeseries: pd.DataFrame) -> dict[str, dict]:
    """For each lever the budget must pay (:data:`~villagesim.state.institutions.FUNDED_LEVERS`)
    that was set in some week: in how many weeks of each year it was set and in how many the
    budget delivered it in full (means over replicates), and whether it was ever short.

    Returns:
        Per lever name: ``path``, ``label``, ``weeks_set``, ``weeks_paid``, ``unfunded``
        (paid in fewer weeks than set) and ``years``: one ``{"year", "weeks", "weeks_set",
        "weeks_paid"}`` per year of the run (year 1 = weeks 1-52).
    """
    out: dict[str, dict] = {}
    if timeseries.empty:
        return out
    year = (timeseries["step"].to_numpy() - 1) // WEEKS_PER_YEAR + 1
    replicates = max(int(timeseries["replicate"].nunique()), 1)
    for lever in FUNDED_LEVERS:
        set_col, paid_col = f"lever_set_{lever.name}", f"lever_paid_{lever.name}"
        if set_col not in timeseries or not (timeseries[set_col] > 0).any():
            continue
        frame = pd.DataFrame(
            {
                "year": year,
                "week": 1.0,
                "set": (timeseries[set_col] > 0).astype(float),
                "paid": ((timeseries[paid_col] > 0) & (timeseries[paid_col] >= timeseries[set_col])).astype(float),
            }
        )
        per_year = frame.groupby("year").sum() / replicates
        years = [
            {"year": int(y), "weeks": float(r["week"]), "weeks_set": float(r["set"]), "weeks_paid": float(r["paid"])}
            for y, r in per_year.iterrows()
        ]
        weeks_set = float(per_year["set"].sum())
        weeks_paid = float(per_year["paid"].sum())
        out[lever.name] = {
            "path": lever.path,
            "label": lever.label,
            "weeks_set": weeks_set,
            "weeks_paid": weeks_paid,
            "unfunded": weeks_paid < weeks_set,
            "years": years,
        }
    return out


def describe_lever_funding(funding: dict[str, dict]) -> str | None:
    """One line on the levers set but not paid in full: ``None`` when no lever of
    :data:`~villagesim.state.institutions.FUNDED_LEVERS` was set."""
    if not funding:
        return None
    short = {k: v for k, v in funding.items() if v["unfunded"]}
    if not short:
        return "levers set, paid in full every week: " + ", ".join(funding)
    parts = []
    for info in short.values():
        years = ", ".join(
            f"{y['weeks_paid']:g} of {y['weeks_set']:g} weeks in year {y['year']}" for y in info["years"] if y["weeks_set"]
        )
        parts.append(f"{info['path']} ({info['label']}): delivered {years}")
    return "levers set but not paid by the budget: " + "; ".join(parts)
