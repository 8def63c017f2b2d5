"""Comparing a baseline and an intervention on common random numbers.

Both arms run the same replicates ``0 .. n-1`` with the same root seed and horizon, so
replicate ``r`` of each arm draws the same random numbers in every process
(:mod:`villagesim.rng`): what differs between the arms is the policy, not the luck. The
effect of the intervention is estimated from the *paired* differences of each replicate's
outcome, with a t interval; pairing removes most of the between-replicate noise, so the
interval is much narrower than that of two independent samples of the same size.

A run's outcome is the mean of the weekly value over the last ``window`` weeks (default 52:
the final year), which is steadier than the value of the last week alone.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from villagesim.config.limits import check_size
from villagesim.config.loading import apply_overrides
from villagesim.config.schema import Scenario
from villagesim.errors import VillagesimError
from villagesim.outputs.sums import KEY_OUTCOMES
from villagesim.runs.backends import Backend, SerialBackend
from villagesim.runs.runner import run_replicate
from villagesim.runs.stats import t_interval, t_multiplier, window_means

__all__ = ["Comparison", "compare", "paired_table", "without_interventions", "COMPARISON_COLUMNS"]

COMPARISON_COLUMNS = ["outcome", "baseline_mean", "intervention_mean", "difference", "ci_low", "ci_high", "replicates"]
"""Columns of ``comparison.csv``."""

HEADLINE = ["unmet_need_share", "elders_with_unmet_need", "active_volunteers", "volunteer_hours", "mean_trust", "spend_total"]
"""Outcomes always shown in the terminal summary."""


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes:
        baseline, intervention: the scenarios as run (same seed and horizon).
        timeseries: weekly outcomes of both arms (``arm`` = ``baseline`` / ``intervention``).
        values: one row per arm and replicate: the window means of the outcomes.
        table: the paired comparison (:data:`COMPARISON_COLUMNS`).
        window: weeks averaged into a run's outcome.
        seconds: wall time of the runs.
    """

    baseline: Scenario
    intervention: Scenario
    timeseries: pd.DataFrame
    values: pd.DataFrame
    table: pd.DataFrame
    window: int
    seconds: float

    @property
    def replicates(self) -> int:
        return int(self.values["replicate"].nunique())


def without_interventions(scenario: Scenario) -> Scenario:
    """The same scenario with its ``[[intervention]]`` entries removed (its own baseline)."""
    data = scenario.model_dump()
    data["intervention"] = []
    data["name"] = f"{scenario.name} (without interventions)"
    return Scenario.model_validate(data)


def paired_table(values: pd.DataFrame, outcomes: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """Mean of each arm, mean paired difference (intervention - baseline) and its t interval.

    Args:
        values: rows per ``arm`` and ``replicate`` with one column per outcome.
        outcomes: the outcome columns to compare.
        confidence: level of the interval.
    """
    base = values[values["arm"] == "baseline"].set_index("replicate").sort_index()
    inter = values[values["arm"] == "intervention"].set_index("replicate").sort_index()
    if not base.index.equals(inter.index):
        raise VillagesimError("the arms do not have the same replicates; cannot pair them")
    n = len(base)
    rows = []
    for name in outcomes:
        mean, low, high = t_interval(inter[name].to_numpy(float) - base[name].to_numpy(float), confidence)
        rows.append(
            {
                "outcome": name,
                "baseline_mean": float(base[name].mean()),
                "intervention_mean": float(inter[name].mean()),
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "replicates": n,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def compare(
    baseline: Scenario,
    intervention: Scenario,
    *,
    replicates: int = 10,
    steps: int | None = None,
    seed: int | None = None,
    window: int = 52,
    outcomes: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
    max_memory: int | None = None,
) -> Comparison:
    """Run both arms on common random numbers and compare them replicate by replicate.

    Args:
        baseline: the reference scenario.
        intervention: the scenario with the policy under test.
        replicates: paired replicates (at least 2 for an interval).
        steps: horizon in weeks (default: the baseline's ``run.steps``), used for both arms.
        seed: root seed for both arms (default: the baseline's ``run.seed``).
        window: weeks at the end of a run averaged into its outcome.
        outcomes: outcome columns (default :data:`~villagesim.outputs.sums.KEY_OUTCOMES`).
        progress: called with the number of steps done (for a progress bar): every week when
            the runs are serial, a run's weeks when it finishes otherwise.
        backend: where the replicates run (default: serially in this process); the numbers
            are the same on every backend.
        max_memory: bytes the comparison may take; above it it is refused before anything
            is allocated (default :func:`villagesim.config.limits.memory_limit`).
    """
    if replicates < 2:
        raise VillagesimError("a comparison needs at least 2 replicates for a confidence interval (--replicates)")
    outcomes = outcomes or list(KEY_OUTCOMES)
    steps = int(steps if steps is not None else baseline.run.steps)
    seed = int(seed if seed is not None else baseline.run.seed)
    window = max(1, min(int(window), steps))
    common = {"run.seed": seed, "run.steps": steps, "run.replicates": replicates}
    baseline = apply_overrides(baseline, common, file="command line")
    intervention = apply_overrides(intervention, common, file="command line")
    backend = backend or SerialBackend()
    # both arms' weekly series are kept: count the larger arm twice
    check_size(
        apply_overrides(intervention, {"run.replicates": 2 * replicates}),
        limit=max_memory,
        concurrent=backend.workers,
        record_villages=False,
    )
    start = time.perf_counter()
    jobs = [
        (arm, scenario, r)
        for r in range(replicates)
        for arm, scenario in (("baseline", baseline), ("intervention", intervention))
    ]
    arm_run = functools.partial(_arm_run, steps=steps, window=window, outcomes=tuple(outcomes))
    if backend.parallel:
        results = []
        for done in backend.as_completed(arm_run, jobs):
            if not done.ok:
                raise done.error
            results.append(done.result)
            if progress is not None:
                progress(steps)
        results.sort(key=lambda res: (res[1]["replicate"], res[1]["arm"] != "baseline"))
    else:
        results = [_arm_run(job, steps, window, tuple(outcomes), progress) for job in jobs]
    series = [ts for ts, _ in results]
    rows = [row for _, row in results]
    values = pd.DataFrame(rows)
    return Comparison(
        baseline=baseline,
        intervention=intervention,
        timeseries=pd.concat(series, ignore_index=True),
        values=values,
        table=paired_table(values, outcomes),
        window=window,
        seconds=time.perf_counter() - start,
    )


def _arm_run(
    job: tuple[str, Scenario, int],
    steps: int,
    window: int,
    outcomes: tuple[str, ...],
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One replicate of one arm: its weekly series (with ``arm``) and its window means."""
    arm, scenario, r = job
    ts, _ = run_replicate(scenario, r, steps=steps, progress=progress, record_villages=False)
    ts.insert(0, "arm", arm)
    return ts, {"arm": arm, "replicate": r, **window_means(ts, outcomes, window, horizon=steps)}


def summary_lines(c: Comparison, limit: list[str] | None = None) -> list[str]:
    """A short human-readable summary: headline outcomes, then every other clear difference."""
    t = c.table.set_index("outcome")
    n = c.replicates
    lines = [
        f"{c.intervention.name} vs {c.baseline.name}: {n} paired replicates x {c.baseline.run.steps} weeks "
        f"on common random numbers (seed {c.baseline.run.seed}); outcomes averaged over the last {c.window} weeks",
        f"  {'outcome':<26}{'baseline':>12}{'intervention':>14}{'difference':>12}   95% CI",
    ]
    shown = [o for o in (limit or HEADLINE) if o in t.index]
    others = [o for o in t.index if o not in shown and _clear(t.loc[o])]
    for o in shown + others:
        row = t.loc[o]
        lines.append(
            f"  {o:<26}{_fmt(row.baseline_mean):>12}{_fmt(row.intervention_mean):>14}{_fmt(row.difference, True):>12}"
            f"   [{_fmt(row.ci_low, True)}, {_fmt(row.ci_high, True)}]{'  *' if _clear(row) else ''}"
        )
    lines.append("  * the 95% interval of the paired difference excludes zero")
    return lines


def _clear(row: Any) -> bool:
    return bool(np.isfinite(row.ci_low) and (row.ci_low > 0 or row.ci_high < 0))


def _fmt(x: float, signed: bool = False) -> str:
    if not np.isfinite(x):
        return "n/a"
    mag = abs(x)
    body = f"{x:+.3g}" if signed else f"{x:.3g}"
    if mag >= 1000:
        body = f"{x:+,.0f}" if signed else f"{x:,.0f}"
    return body


# --------------------------------------------------------------------- figures
def comparison_figures(c: Comparison, folder: Path) -> list[Path]:
    """Trajectories of both arms with 95% bands, and the paired differences with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    ts = c.timeseries
    panels = [o for o in ("unmet_need_share", "active_volunteers", "mean_trust", "elders_with_unmet_need") if o in ts.columns]
    n = c.replicates
    tq = t_multiplier(n)
    colours = {"baseline": "#4c72b0", "intervention": "#dd8452"}

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, o in zip(axes.flat, panels, strict=False):
        for arm, name in (("baseline", c.baseline.name), ("intervention", c.intervention.name)):
            g = ts[ts["arm"] == arm].groupby("step")[o]
            mean, sem = g.mean(), g.std(ddof=1) / np.sqrt(n)
            years = mean.index / 52.0
            ax.plot(years, mean.values, color=colours[arm], label=name)
            ax.fill_between(years, (mean - tq * sem).values, (mean + tq * sem).values, color=colours[arm], alpha=0.2, lw=0)
        ax.set_title(o.replace("_", " "))
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("years")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Both arms: mean and 95% interval of the mean over {n} replicates")
    fig.tight_layout()
    paths = [folder / "trajectories.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1.1, 1]})
    base = ts[ts["arm"] == "baseline"].set_index(["replicate", "step"])["unmet_need_share"]
    inter = ts[ts["arm"] == "intervention"].set_index(["replicate", "step"])["unmet_need_share"]
    diff = (inter - base).groupby(level="step")
    mean, sem = diff.mean(), diff.std(ddof=1) / np.sqrt(n)
    years = mean.index / 52.0
    ax1.axhline(0, color="grey", lw=0.8)
    ax1.plot(years, mean.values, color="#c44e52")
    ax1.fill_between(years, (mean - tq * sem).values, (mean + tq * sem).values, color="#c44e52", alpha=0.25, lw=0)
    ax1.set_title("Unmet need share: intervention - baseline (paired, 95% CI)")
    ax1.set_xlabel("years")
    ax1.grid(alpha=0.3)

    t = c.table.copy()
    scale = t["baseline_mean"].abs().replace(0, np.nan)
    rel = 100 * t["difference"] / scale
    lo = 100 * t["ci_low"] / scale
    hi = 100 * t["ci_high"] / scale
    keep = rel.notna()
    y = np.arange(int(keep.sum()))
    ax2.axvline(0, color="grey", lw=0.8)
    ax2.errorbar(rel[keep], y, xerr=[(rel - lo)[keep].fillna(0), (hi - rel)[keep].fillna(0)], fmt="o", color="#c44e52", capsize=3)
    ax2.set_yticks(y, t["outcome"][keep])
    ax2.invert_yaxis()
    ax2.set_xlabel("difference, % of the baseline mean (95% CI)")
    ax2.set_title(f"Final {c.window} weeks")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(folder / "differences.png")
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
