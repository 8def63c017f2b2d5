"""Validation: the published targets villagesim reproduces and the patterns of MODEL.md §6 it shows.

:func:`validate` runs the baseline scenario and, for each :class:`Pattern`, a baseline and an
intervention arm on the *same* seed and replicate numbers (common random numbers). It
writes a report (``report.md`` with figures, and ``validation.json``) with

* every target of :data:`villagesim.calibration.fitting.TARGETS`: simulated value (pooled over
  replicates) with a 95% interval over replicates, accepted range, pass or fail;
* every pattern: per expected effect, the mean paired difference (intervention minus
  baseline) of the outcome averaged over the last ``window`` weeks, its t-based 95%
  confidence interval, and pass if the interval excludes zero in the expected direction;
* seeds, replicate numbers, versions and the command.

A pattern is a declarative entry of :data:`PATTERNS`: adding one for a new lever is one
entry. An entry whose scenario files or parameters do not exist yet is reported as
"not available" (not a failure) and listed in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from villagesim.calibration.fitting import TARGETS, Observation, observe, observe_job
from villagesim.config.loading import load_scenario
from villagesim.config.schema import leaf_paths
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.errors import VillagesimError
from villagesim.model import VillageModel
from villagesim.runs.backends import Backend, backend_for, borrowed
from villagesim.runs.folder import ResultFolder, write_json
from villagesim.runs.stats import last_weeks, t_half_width, t_interval, window_means
from villagesim.version import __version__

POOLED_ONLY = {"adl_drift_10y"}
"""Targets computed from pooled replicates only (no interval over replicates)."""

DEFAULT_SEED = None
"""``None``: every arm runs on the baseline scenario's own ``run.seed``."""


@dataclass(frozen=True)
class Effect:
    """An expected direction: ``sign`` +1 if the intervention raises ``outcome``, -1 if it lowers it."""

    outcome: str
    sign: int


@dataclass(frozen=True)
class Pattern:
    """A pattern of MODEL.md §6 as a paired experiment.

    Attributes:
        name: short identifier.
        claim: the pattern in words (MODEL.md §6).
        baseline, intervention: scenario files (relative to the scenarios folder).
        effects: expected directions; the pattern passes if every effect does.
        baseline_overrides, intervention_overrides: dotted-path overrides of each arm.
        horizon: weeks each arm runs.
        window: weeks at the end of the run over which each outcome is averaged.
        replicates: paired replicates (replicate numbers 0 .. replicates-1 in both arms).
        requires: parameter paths that must exist (levers of features not yet built).
        measure: ``"timeseries"`` (outcome is a column of the model-wide outcomes) or the
            name of a function of :data:`MEASURES` computed from the per-village outcomes.
        quick_horizon, quick_replicates: horizon and replicates of the reduced version for a
            pattern that needs more than the reduced defaults (``None``: the defaults).
    """

    name: str
    claim: str
    baseline: str
    intervention: str
    effects: tuple[Effect, ...]
    baseline_overrides: dict[str, Any] = field(default_factory=dict)
    intervention_overrides: dict[str, Any] = field(default_factory=dict)
    horizon: int = 520
    window: int = 52
    replicates: int = 20
    requires: tuple[str, ...] = ()
    measure: str = "timeseries"
    quick_horizon: int | None = None
    quick_replicates: int | None = None


def _central_minus_remote(villages: pd.DataFrame, outcome: str, remoteness: np.ndarray) -> float:
    """Mean of ``outcome`` per elder in the nearer half of villages minus the farther half."""
    per_v = villages.groupby("village")[[outcome, "elders"]].sum()
    rate = per_v[outcome] / per_v["elders"].clip(lower=1)
    order = np.argsort(remoteness[per_v.index.to_numpy()])
    half = len(order) // 2
    central = rate.iloc[order[:half]].mean()
    remote = rate.iloc[order[len(order) - half :]].mean()
    return float(central - remote)


MEASURES: dict[str, Callable[[pd.DataFrame, str, np.ndarray], float]] = {
    "central_minus_remote": _central_minus_remote,
}
"""Measures of per-village outcomes (villages data frame of the window, outcome, remoteness by village)."""


PATTERNS: list[Pattern] = [
    Pattern(
        name="hollowing_out",
        claim="Faster out-migration -> fewer volunteers, less family care, more unmet need.",
        baseline="baseline.toml",
        intervention="hollowing_severe.toml",
        effects=(Effect("active_volunteers", -1), Effect("met_hours_family", -1), Effect("unmet_need_share", +1)),
        quick_horizon=260,
    ),
    Pattern(
        name="publicity_help_seeking",
        claim="Publicity raises help-seeking: hidden need falls, recorded demand rises.",
        baseline="baseline.toml",
        intervention="publicity.toml",
        effects=(Effect("requests", +1), Effect("hidden_need_hours", -1)),
        horizon=156,
        window=52,
    ),
    Pattern(
        name="trust_help_seeking",
        claim="Trust raises help-seeking: hidden need falls, recorded demand rises.",
        baseline="baseline.toml",
        intervention="baseline.toml",
        intervention_overrides={"population.initial_trust_mean": 0.8},
        effects=(Effect("requests", +1), Effect("hidden_need_hours", -1)),
        horizon=104,
        window=52,
        # idle facilities wear trust down in both arms, so the gap in hidden need narrows:
        # 8 pairs gave a CI of (-3.4, +0.08); 16 resolve it
        quick_replicates=16,
    ),
    Pattern(
        name="admin_burden",
        claim="Higher administrative burden on the committee lowers manual matching.",
        baseline="baseline.toml",
        intervention="baseline.toml",
        intervention_overrides={"committee.admin_burden": 0.9},
        effects=(Effect("handled_requests", -1), Effect("matched_requests", -1)),
        horizon=156,
        window=52,
        replicates=12,
    ),
    Pattern(
        name="count_vs_quality_kpi",
        claim="Count-KPI evaluation -> more facilities built, more of them idle, less service than the quality regime "
        "at the same budget (a township of 10 villages sharing the budget).",
        baseline="quality_kpi.toml",
        intervention="quality_kpi.toml",
        baseline_overrides={"population.villages": 10},
        intervention_overrides={"policy.evaluation_regime": "count", "population.villages": 10},
        effects=(
            Effect("facilities_built", +1),
            Effect("facilities_idle", +1),
            Effect("met_hours_facility", -1),
            Effect("unmet_hours", +1),
        ),
        requires=("policy.evaluation_regime", "facilities.build_cost"),
        replicates=12,
        window=156,
        quick_horizon=520,
        quick_replicates=4,
    ),
    Pattern(
        name="time_bank_trusted",
        claim="A time bank raises volunteering while redemption is trusted.",
        baseline="baseline.toml",
        intervention="time_bank.toml",
        effects=(Effect("active_volunteers", +1),),
        requires=("policy.time_bank.honour_rate",),
        horizon=260,
        replicates=12,
    ),
    Pattern(
        name="time_bank_failing",
        claim="Failed redemptions erode the time bank's effect on volunteering.",
        baseline="time_bank.toml",
        intervention="time_bank_untrusted.toml",
        effects=(Effect("active_volunteers", -1),),
        requires=("policy.time_bank.honour_rate",),
        horizon=260,
        replicates=12,
    ),
    Pattern(
        name="platform_matching",
        claim="Platform matching raises matched requests (budget split fixed in both arms, so the platform stays funded).",
        baseline="baseline.toml",
        intervention="platform.toml",
        baseline_overrides={"policy.allocation": "fixed"},
        intervention_overrides={"policy.allocation": "fixed"},
        effects=(Effect("matched_requests", +1),),
        requires=("policy.platform.rounds",),
        horizon=260,
        replicates=12,
        # the reduced version sees only the platform's first year: 8 pairs gave a CI of
        # (-0.5, +7.1) around +3.3 matched requests a week; 16 resolve it
        quick_replicates=16,
    ),
    Pattern(
        name="platform_offline_channel",
        claim="The platform helps elders without digital access little unless the offline channel covers them.",
        baseline="baseline.toml",
        intervention="baseline.toml",
        baseline_overrides={
            "policy.allocation": "fixed",
            "policy.platform.enabled": True,
            "policy.platform.offline_channel_coverage": 0.0,
        },
        intervention_overrides={
            "policy.allocation": "fixed",
            "policy.platform.enabled": True,
            "policy.platform.offline_channel_coverage": 0.8,
        },
        effects=(Effect("platform_requests", +1), Effect("matched_requests", +1), Effect("match_rate_no_digital", +1)),
        requires=("policy.platform.rounds",),
        horizon=260,
        replicates=12,
        # the reduced version sees only the platform's first year: 8 pairs gave a CI of
        # (-0.5, +7.1) around +3.3 matched requests a week; 16 resolve it
        quick_replicates=16,
    ),
    Pattern(
        name="ngo_central_first",
        claim="NGO purchase reaches central villages before remote ones at the same price.",
        baseline="ngo_purchase.toml",
        intervention="ngo_purchase.toml",
        baseline_overrides={"policy.ngo_purchase_budget": 0.0, "population.villages": 8},
        intervention_overrides={"population.villages": 8},
        effects=(Effect("met_hours_ngo", +1),),
        horizon=104,
        replicates=10,
        requires=("ngo.cost_per_hour",),
        measure="central_minus_remote",
    ),
]
"""The patterns of MODEL.md §6. For ``ngo_central_first`` the effect is on the central-minus-remote
difference of NGO hours per elder (with purchase minus without)."""


@dataclass(frozen=True)
class ValidationSettings:
    """How much simulation the report spends.

    Attributes:
        target_replicates: baseline replicates for the targets (demography and health).
        build_replicates: builds of the baseline for the targets at the start of a run.
        participation_replicates: baseline replicates of year 1 for participation.
        pattern_replicates: paired replicates per pattern (``None``: each pattern's own).
        horizon_cap: longest horizon of a pattern in weeks (``None``: each pattern's own).
        window_cap: longest averaging window (``None``: each pattern's own).
        seed: root seed of every run (``None``: the baseline scenario's ``run.seed``).
        workers: processes.
        reduced: whether this is the reduced (CI) version.
    """

    target_replicates: int = 100
    participation_replicates: int = 20
    build_replicates: int = 400
    pattern_replicates: int | None = None
    horizon_cap: int | None = None
    window_cap: int | None = None
    seed: int | None = DEFAULT_SEED
    workers: int = 2
    reduced: bool = False

    @classmethod
    def quick(cls) -> ValidationSettings:
        """The reduced version run in CI."""
        return cls(
            target_replicates=40,
            participation_replicates=8,
            build_replicates=200,
            pattern_replicates=8,
            horizon_cap=104,
            window_cap=52,
            reduced=True,
        )


# ---------------------------------------------------------------------------- running
def _arm_value(args: tuple[Any, int, int, int, str, str]) -> float:
    """One replicate of one arm: the outcome averaged over the last ``window`` weeks."""
    scenario, replicate, horizon, window, outcome, measure = args
    record = measure != "timeseries"
    model = VillageModel(scenario, replicate=replicate, steps=horizon, record_villages=record)
    for _ in range(horizon):
        model.step()
    if measure == "timeseries":
        return window_means(model.timeseries(), [outcome], window, horizon)[outcome]
    vs = last_weeks(model.village_outcomes(), window, horizon)
    return MEASURES[measure](vs, outcome, np.asarray(model.world.villages.remoteness_km))


def _arm_values(args: tuple[Any, int, int, int, tuple[str, ...], str]) -> list[float]:
    scenario, replicate, horizon, window, outcomes, measure = args
    if measure != "timeseries":
        return [_arm_value((scenario, replicate, horizon, window, o, measure)) for o in outcomes]
    model = VillageModel(scenario, replicate=replicate, steps=horizon, record_villages=False)
    for _ in range(horizon):
        model.step()
    return list(window_means(model.timeseries(), outcomes, window, horizon).values())


def paired_ci(diffs: np.ndarray) -> tuple[float, float, float]:
    """Mean of paired differences and its t-based 95% confidence interval (:func:`~villagesim.runs.stats.t_interval`).

    Args:
        diffs: intervention minus baseline, one per replicate.

    Returns:
        ``(mean, low, high)``; the bounds are NaN with fewer than 2 differences.
    """
    return t_interval(diffs)


def _available(pattern: Pattern, folder: Path) -> str | None:
    """Why a pattern cannot run yet (missing file or parameter), or None."""
    for name in {pattern.baseline, pattern.intervention}:
        if not (folder / name).exists():
            return f"scenario file {name} not present"
    known = leaf_paths()
    for path in (*pattern.requires, *pattern.baseline_overrides, *pattern.intervention_overrides):
        if path not in known:
            return f"parameter {path} not in this version"
    return None


def run_pattern(
    pattern: Pattern,
    folder: Path,
    settings: ValidationSettings,
    log: Callable[[str], None],
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Run both arms of a pattern on common random numbers; one row per effect plus the verdict.

    Args:
        pattern: the pattern.
        folder: folder of the scenario files.
        settings: replicates and horizons.
        log: progress lines.
        backend: where the runs execute (default: a backend of ``settings.workers`` processes).
    """
    why = _available(pattern, folder)
    row: dict[str, Any] = {
        "name": pattern.name,
        "claim": pattern.claim,
        "baseline": pattern.baseline,
        "intervention": pattern.intervention,
    }
    if why:
        log(f"pattern {pattern.name}: not available ({why})")
        return {**row, "status": "not available", "reason": why, "effects": []}
    base = load_scenario(folder / pattern.baseline).scenario.with_overrides(pattern.baseline_overrides)
    arm = load_scenario(folder / pattern.intervention).scenario.with_overrides(pattern.intervention_overrides)
    seed = settings.seed if settings.seed is not None else load_scenario(folder / "baseline.toml").scenario.run.seed
    base = base.with_overrides({"run.seed": seed})
    arm = arm.with_overrides({"run.seed": seed})
    n = settings.pattern_replicates or pattern.replicates
    horizon = min(pattern.horizon, settings.horizon_cap or pattern.horizon)
    if settings.reduced:
        n = pattern.quick_replicates or n
        horizon = min(pattern.horizon, pattern.quick_horizon or horizon)
    window = (
        min(pattern.window, horizon)
        if settings.reduced and pattern.quick_horizon
        else min(pattern.window, settings.window_cap or pattern.window, horizon)
    )
    outcomes = tuple(e.outcome for e in pattern.effects)
    start = time.perf_counter()
    jobs = [(s, r, horizon, window, outcomes, pattern.measure) for s in (base, arm) for r in range(n)]
    with borrowed(backend, settings.workers) as b:
        values = np.array(b.map(_arm_values, jobs))  # (2n, outcomes)
    b, a = values[:n], values[n:]
    effects = []
    for k, eff in enumerate(pattern.effects):
        mean, lo, hi = paired_ci(a[:, k] - b[:, k])
        ok = bool(np.isfinite(lo) and (lo > 0 if eff.sign > 0 else hi < 0))
        base_mean = float(b[:, k].mean())
        effects.append(
            {
                "outcome": eff.outcome,
                "expected": "up" if eff.sign > 0 else "down",
                "baseline_mean": base_mean,
                "intervention_mean": float(a[:, k].mean()),
                "effect": mean,
                "ci95_low": lo,
                "ci95_high": hi,
                "relative_effect": mean / base_mean if base_mean else float("nan"),
                "status": "pass" if ok else "fail",
            }
        )
    status = "pass" if all(e["status"] == "pass" for e in effects) else "fail"
    log(f"pattern {pattern.name}: {status} ({n} pairs x {horizon} weeks, {time.perf_counter() - start:.1f} s)")
    return {
        **row,
        "status": status,
        "seed": seed,
        "replicates": n,
        "horizon_weeks": horizon,
        "window_weeks": window,
        "measure": pattern.measure,
        "baseline_overrides": pattern.baseline_overrides,
        "intervention_overrides": pattern.intervention_overrides,
        "effects": effects,
    }


def run_targets(
    folder: Path, settings: ValidationSettings, log: Callable[[str], None], backend: Backend | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Simulate the baseline and compare every target; also return series for the figures.

    Args:
        folder: folder of the scenario files (``baseline.toml``).
        settings: replicates.
        log: progress lines.
        backend: where the runs execute (default: a backend of ``settings.workers`` processes).
    """
    path = folder / "baseline.toml"
    if not path.exists():
        raise VillagesimError(f"no baseline scenario in {folder} (run from the repository root or pass --scenarios)")
    scenario = load_scenario(path).scenario
    if settings.seed is not None:
        scenario = scenario.with_overrides({"run.seed": settings.seed})
    start = time.perf_counter()
    reps = list(range(settings.target_replicates))
    preps = list(range(settings.participation_replicates))
    with borrowed(backend, settings.workers) as b:
        demo = b.map(observe_job, [(scenario, r, 520, False) for r in reps])
        part = b.map(observe_job, [(scenario, r, WEEKS_PER_YEAR, True) for r in preps])
    builds = [observe(scenario, r, 0, care=False) for r in range(settings.build_replicates)]
    pooled = Observation.pooled(demo).statistics()
    pooled["participation_year1"] = Observation.pooled(part).statistics()["participation_year1"]
    per_rep = [o.statistics() for o in demo]
    per_rep_part = [o.statistics()["participation_year1"] for o in part]
    # the start of a run needs only the build: many more replicates for the same cost
    start_pooled = Observation.pooled(builds).statistics()
    start_per_rep = [o.statistics() for o in builds]
    for key in start_pooled:
        pooled[key] = start_pooled[key]
        for row, b in zip(per_rep, start_per_rep, strict=False):
            row[key] = b[key]
    per_rep_start = {key: [b[key] for b in start_per_rep] for key in start_pooled}
    rows = []
    for t in TARGETS:
        if t.key == "participation_year1":
            values = np.array(per_rep_part)
        elif t.key in per_rep_start:
            values = np.array(per_rep_start[t.key])
        else:
            values = np.array([s[t.key] for s in per_rep])
        sim = pooled[t.key]
        n = len(values)
        half = t_half_width(values)
        if t.key in POOLED_ONLY:  # a maximum over years of pooled values: one replicate's value is not comparable
            half = float("nan")
        ok = t.low <= sim <= t.high
        rows.append(
            {
                "name": t.key,
                "quantity": t.quantity,
                "published": t.value,
                "low": t.low,
                "high": t.high,
                "simulated": sim,
                "ci95_low": float(values.mean() - half),
                "ci95_high": float(values.mean() + half),
                "replicates": n,
                "unit": t.unit,
                "definition": t.note,
                "status": "pass" if ok else "fail",
            }
        )
    series = {
        "prevalence": Observation.pooled(demo).prevalence().tolist(),
        "share_60plus": Observation.pooled(demo).share_60plus().tolist(),
        "share_60plus_end": pooled["share_60plus_end"],
        "participation_windows": (Observation.pooled(part).part_num / np.maximum(Observation.pooled(part).part_den, 1)).tolist(),
        "seed": scenario.run.seed,
        "target_replicates": reps[-1] + 1,
        "build_replicates": settings.build_replicates,
        "participation_replicates": preps[-1] + 1,
    }
    log(f"targets: {sum(r['status'] == 'pass' for r in rows)} of {len(rows)} pass ({time.perf_counter() - start:.1f} s)")
    return rows, series


# ---------------------------------------------------------------------------- report
def _figures(folder: Path, targets: list[dict[str, Any]], series: dict[str, Any], patterns: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    prev = np.array(series["prevalence"])
    years = np.arange(len(prev))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for k, (label, target) in enumerate(zip(("60-69", "70-79", "80+"), (0.108, 0.212, 0.470), strict=True)):
        line = ax.plot(years, prev[:, k] * 100, marker="o", label=f"{label} simulated")[0]
        ax.axhspan((target - 0.03) * 100, (target + 0.03) * 100, color=line.get_color(), alpha=0.12)
        ax.axhline(target * 100, color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_xlabel("years")
    ax.set_ylabel("ADL disability, % of resident elders")
    ax.set_title("ADL prevalence by age band (band: published +/- 3 points)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "adl_prevalence.png", dpi=110)
    plt.close(fig)
    names.append("adl_prevalence.png")

    share = np.array(series["share_60plus"]) * 100
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(np.arange(len(share)), share, marker="o", label="simulated")
    ax.axhspan(20, 24, color="tab:green", alpha=0.15, label="published rural range (2020)")
    ax.set_xlabel("years")
    ax.set_ylabel("% of residents aged 60+")
    ax.set_title("Resident 60+ share of the baseline village")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "share_60plus.png", dpi=110)
    plt.close(fig)
    names.append("share_60plus.png")

    rows = [(p["name"], e) for p in patterns for e in p["effects"]]
    if rows:
        fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(rows) + 1.2))
        for i, (_name, e) in enumerate(rows):
            base = abs(e["baseline_mean"]) or 1.0
            lo, mid, hi = (100 * e[k] / base for k in ("ci95_low", "effect", "ci95_high"))
            color = "tab:green" if e["status"] == "pass" else "tab:red"
            ax.errorbar(mid, i, xerr=[[mid - lo], [hi - mid]], fmt="o", color=color, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{n}: {e['outcome']} ({e['expected']})" for n, e in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("paired effect, % of baseline mean (95% CI)")
        ax.set_title("Patterns of MODEL.md §6")
        fig.tight_layout()
        fig.savefig(folder / "patterns.png", dpi=110)
        plt.close(fig)
        names.append("patterns.png")
    return names


def _fmt(value: float, unit: str) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    if "share" in unit or "per" in unit:
        return f"{100 * value:.1f}%"
    return f"{value:.3g}"


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# villagesim validation report",
        "",
        f"villagesim {report['villagesim_version']}, created {report['created']}; "
        f"{'reduced (--quick)' if report['quick'] else 'full'} version; command `{report['command']}`; "
        f"runtime {report['runtime_seconds']} s on {report['workers']} process(es).",
        "",
        f"**{report['passed']} of {report['checked']} checks pass.** Regenerate with `villagesim validate"
        f"{' --quick' if report['quick'] else ''}` from the repository root.",
        "",
        "## Published targets",
        "",
        f"Baseline scenario `{report['baseline']}`, seed {report['seeds']['targets']}, replicates "
        f"0..{report['target_replicates'] - 1} (demography and health, 10 years), 0..{report['participation_replicates'] - 1} "
        f"(whole model, year 1, for participation) and 0..{report['build_replicates'] - 1} (builds, for the start of a run). "
        "Simulated: pooled over replicates; 95% CI: over replicates.",
        "",
        "| target | row of calibration_targets.csv | published | accepted | simulated | 95% CI | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["targets"]:
        u = r["unit"]
        accepted = f"{_fmt(r['low'], u)} to {_fmt(r['high'], u)}"
        lines.append(
            f"| {r['name']} | {r['quantity']} | {_fmt(r['published'], u)} | {accepted} | {_fmt(r['simulated'], u)} | "
            f"{_fmt(r['ci95_low'], u)} to {_fmt(r['ci95_high'], u)} | **{r['status']}** |"
        )
    lines += ["", "Definitions:", ""]
    lines += [f"- `{r['name']}`: {r['definition']}" for r in report["targets"]]
    lines += [
        "",
        "![ADL prevalence](figures/adl_prevalence.png)",
        "",
        "![60+ share](figures/share_60plus.png)",
        "",
        "## Patterns of MODEL.md §6",
        "",
        "Each pattern runs a baseline and an intervention arm on the same seed and replicate numbers "
        "(common random numbers). The effect is the mean over replicates of the paired difference "
        "(intervention minus baseline) of the outcome averaged over the last weeks of the run; it passes "
        "if the t-based 95% confidence interval excludes zero in the expected direction.",
        "",
        "| pattern | arms | outcome | expected | baseline | effect | 95% CI | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in report["patterns"]:
        if p["status"] == "not available":
            lines.append(f"| {p['name']} | {p['baseline']} vs {p['intervention']} | | | | | {p['reason']} | not available |")
            continue
        arms = f"{p['baseline']}{_ov(p['baseline_overrides'])} vs {p['intervention']}{_ov(p['intervention_overrides'])}"
        arms += f"; {p['replicates']} pairs x {p['horizon_weeks']} weeks, last {p['window_weeks']} weeks, seed {p['seed']}"
        for e in p["effects"]:
            lines.append(
                f"| {p['name']} | {arms} | {e['outcome']} | {e['expected']} | {e['baseline_mean']:.4g} | "
                f"{e['effect']:+.4g} ({100 * e['relative_effect']:+.1f}%) | {e['ci95_low']:+.4g} to {e['ci95_high']:+.4g} | **{e['status']}** |"
            )
            arms = ""
    lines += ["", "Claims:", ""]
    lines += [f"- `{p['name']}`: {p['claim']}" for p in report["patterns"]]
    if any(p["effects"] for p in report["patterns"]):
        lines += ["", "![patterns](figures/patterns.png)"]
    lines += ["", "## Provenance", "", "```", *[f"{k}: {v}" for k, v in report["provenance"].items()], "```", ""]
    return "\n".join(lines)


def _ov(overrides: dict[str, Any]) -> str:
    if not overrides:
        return ""
    return " (" + ", ".join(f"{k} = {v}" for k, v in overrides.items()) + ")"


def validate(
    scenarios: Path,
    out: Path,
    settings: ValidationSettings | None = None,
    log: Callable[[str], None] = print,
    patterns: list[Pattern] | None = None,
    command: str = "villagesim validate",
) -> dict[str, Any]:
    """Run the targets and patterns and write ``report.md``, ``validation.json`` and figures to ``out``.

    Args:
        scenarios: folder of the scenario files (``baseline.toml`` and the patterns' files).
        out: report folder (replaced atomically; claimed before the first run, so that a folder
            that may not be replaced is refused at once).
        settings: replicates and horizons (default: the full version).
        log: progress lines.
        patterns: the patterns to check (default: :data:`PATTERNS`).
        command: the command line recorded in the report.

    Returns:
        The report as a dict (also written as ``validation.json``).
    """
    import mesa

    settings = settings or ValidationSettings()
    with ResultFolder.claim(out, kind="validation") as folder:
        start = time.perf_counter()
        with backend_for(settings.workers) as backend:  # one set of workers for every run of the report
            targets, series = run_targets(scenarios, settings, log, backend)
            pattern_rows = [
                run_pattern(p, scenarios, settings, log, backend) for p in (patterns if patterns is not None else PATTERNS)
            ]
        checked = [r for r in targets + pattern_rows if r["status"] in ("pass", "fail")]
        baseline = load_scenario(scenarios / "baseline.toml").scenario
        report = {
            "villagesim_version": __version__,
            "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "command": command + (" --quick" if settings.reduced and "--quick" not in command else ""),
            "quick": settings.reduced,
            "workers": settings.workers,
            "baseline": str(scenarios / "baseline.toml"),
            "seeds": {"targets": series["seed"], "patterns": sorted({p["seed"] for p in pattern_rows if "seed" in p})},
            "target_replicates": series["target_replicates"],
            "participation_replicates": series["participation_replicates"],
            "build_replicates": series["build_replicates"],
            "checked": len(checked),
            "passed": sum(r["status"] == "pass" for r in checked),
            "targets": targets,
            "patterns": pattern_rows,
            "series": series,
            "provenance": {
                "villagesim_version": __version__,
                "mesa_version": mesa.__version__,
                "numpy_version": np.__version__,
                "baseline_seed": baseline.run.seed,
                "git_commit": _git_commit(),
            },
        }
        report["runtime_seconds"] = round(time.perf_counter() - start, 1)
        with folder.writing() as tmp:
            _figures(tmp / "figures", targets, series, pattern_rows)
            write_json(report, tmp / "validation.json")
            (tmp / "report.md").write_text(_markdown(report), encoding="utf-8")
    return report


def _git_commit() -> str:
    import subprocess

    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() or "unknown"
