"""The published sensitivity analysis: a Morris screen over every uncertain parameter, then
Sobol indices on the strongest, for four answers of the model (``villagesim sensitivity``).

What is varied (:func:`screen_factors`): every numeric scenario parameter (``int``, ``float``
or a list of numbers) except the run settings and the size of the village (set by the
:class:`Setting`), structural ones (``fixed``, used when the village is built) included,
since every run builds a fresh village. A list parameter is one factor: its elements are
scaled together by one multiplier. The range of a factor follows one rule:

* centre: the parameter's value in ``scenarios/baseline.toml`` (its documented default, or
  the calibrated value written there);
* an ``"assumption"`` parameter: centre x (1 +- ``rel_assumption``, default 0.5); a sourced
  one (its ``source`` is a quantity of calibration_targets.csv): centre x (1 +-
  ``rel_sourced``, default 0.2);
* clipped to the parameter's bounds (probabilities and shares stay within [0, 1]); an
  integer parameter is rounded to the nearest whole number;
* a parameter whose centre is 0 (a lever that is off, a rate of nothing) has no relative
  range and stays at 0; so does one whose range collapses after clipping and rounding.

The answers (:data:`ANSWERS`), each the mean over the last ``window`` weeks of a run:
unmet need share and matched requests in the baseline, and the effect of two policies,
the time bank (``scenarios/time_bank.toml``) and the platform (``scenarios/platform.toml``),
as paired differences: the policy arm and the baseline arm of a parameter point run on the
same seed and replicate, and the answer is policy minus baseline in unmet need share. A
policy's ``[[intervention]]`` entries take effect from the first week (so the effect is
measured in the same window for any horizon), and a parameter the policy file sets keeps
the policy's value in the policy arm (it is the policy's design, not an uncertainty).

Every run of the analysis uses the same seed and replicate 0 (common random numbers), so
an elementary effect is the effect of the parameter change alone; same seed, same numbers.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from villagesim.config.loading import apply_overrides, load_scenario, parse_toml, read_text_file
from villagesim.config.schema import Scenario
from villagesim.errors import VillagesimError
from villagesim.experiments.analysis import salib_indices, unit_problem
from villagesim.experiments.sweep import RunSpec, run_task

__all__ = [
    "ANSWERS",
    "SETTINGS",
    "Setting",
    "SensFactor",
    "SensitivityResult",
    "screen_factors",
    "run_sensitivity",
    "write_report",
]

ANSWERS: dict[str, str] = {
    "unmet_need_share": "unmet need share (baseline)",
    "matched_requests": "matched requests per week (baseline)",
    "time_bank_effect": "time bank effect on unmet need share (time bank - baseline)",
    "platform_effect": "platform effect on unmet need share (platform - baseline)",
}
"""The answers screened, with their labels."""

POLICIES = {"time_bank": "time_bank.toml", "platform": "platform.toml"}
"""Policy arms and their scenario files (in the scenarios folder)."""

OUTCOMES = ["unmet_need_share", "matched_requests"]
"""Output columns each run keeps."""

_SIZE_PATHS = {"population.villages", "population.residents_per_village"}


@dataclass(frozen=True)
class Setting:
    """The size of a sensitivity analysis.

    Attributes:
        villages, residents: the village(s) every run builds.
        steps: weeks per run; window: weeks at the end averaged into an answer.
        trajectories: Morris trajectories (``trajectories * (D + 1)`` points for D factors).
        levels: Morris grid levels.
        sobol_n: Saltelli base sample (``sobol_n * (k + 2)`` points for k factors).
        sobol_top: how many factors (the strongest by mu*) get Sobol indices.
    """

    name: str
    villages: int
    residents: int
    steps: int
    window: int
    trajectories: int
    levels: int
    sobol_n: int
    sobol_top: int
    rel_sourced: float = 0.2
    noise_replicates: int = 5

    def describe(self) -> str:
        return (
            f"{self.villages} village of ~{self.residents} registered residents, {self.steps} weeks "
            f"(answers averaged over the last {self.window}), Morris r = {self.trajectories} trajectories "
            f"on {self.levels} levels, Sobol N = {self.sobol_n} on the top {self.sobol_top} factors"
        )


SETTINGS = {
    "full": Setting("full", 1, 1000, 104, 52, 8, 4, 32, 10),  # the baseline village, 2 years
    # the test's: sourced parameters stay at their values (fewer factors, a run of a minute)
    "quick": Setting("quick", 1, 100, 52, 26, 2, 4, 4, 3, rel_sourced=0.0, noise_replicates=3),
}
"""The published size and the quick one (the test's)."""


@dataclass(frozen=True)
class SensFactor:
    """One factor of the screen: a parameter and its range.

    For a scalar, ``low``/``high`` are the parameter's range; for a list, the range of the
    multiplier applied to every element (then clipped to ``elem_bounds`` and rounded for
    integer elements).
    """

    path: str
    kind: str  # "float", "int" or "list"
    center: Any
    low: float
    high: float
    source: str
    fixed: bool
    unit: str
    description: str
    elem_int: bool = False
    elem_bounds: tuple[float, float] = (-math.inf, math.inf)

    @property
    def assumption(self) -> bool:
        return self.source == "assumption"

    @property
    def role(self) -> str:
        """``structural`` (used when the village is built), ``policy`` (a lever of the policy section) or ``process``."""
        if self.fixed:
            return "structural"
        if self.path.startswith("policy."):
            return "policy"
        return "process"

    def value(self, u: float) -> Any:
        """The parameter's value at ``u`` in [0, 1] of its range."""
        x = self.low + float(u) * (self.high - self.low)
        if self.kind == "int":
            return int(math.floor(x + 0.5))
        if self.kind == "float":
            return float(x)
        lo, hi = self.elem_bounds
        out = []
        for c in self.center:
            v = min(max(c * x, lo), hi)
            out.append(int(math.floor(v + 0.5)) if self.elem_int else float(v))
        return out

    def describe(self) -> str:
        if self.kind == "list":
            return f"x {self.low:g}..{self.high:g} (all elements)"
        return f"{self.low:g}..{self.high:g}"


def _bounds(row: dict[str, Any]) -> tuple[float, float]:
    lo = row.get("ge", row.get("gt", -math.inf))
    hi = row.get("le", row.get("lt", math.inf))
    return float(lo), float(hi)


def _list_element(path: str) -> tuple[bool, tuple[float, float]]:
    """Whether a list parameter's elements are integers, and their bounds."""
    model: Any = Scenario
    parts = path.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    ann = model.model_fields[parts[-1]].annotation
    (elem,) = typing.get_args(ann) or (float,)
    lo, hi = -math.inf, math.inf
    base = elem
    if typing.get_origin(elem) is typing.Annotated:
        base, *meta = typing.get_args(elem)
        for m in meta:
            for c in getattr(m, "metadata", [m]):
                for key in ("ge", "gt"):
                    if getattr(c, key, None) is not None:
                        lo = float(getattr(c, key))
                for key in ("le", "lt"):
                    if getattr(c, key, None) is not None:
                        hi = float(getattr(c, key))
    return base is int, (lo, hi)


def screen_factors(
    base: Scenario, rel_assumption: float = 0.5, rel_sourced: float = 0.2
) -> tuple[list[SensFactor], list[dict[str, Any]]]:
    """The factors of the screen (see the module's rule), and the parameters left out with why.

    Args:
        base: the baseline scenario (the centre of every range).
        rel_assumption: relative half-width of an ``"assumption"`` parameter's range.
        rel_sourced: relative half-width of a sourced parameter's range (0: sourced ones are not varied).
    """
    factors: list[SensFactor] = []
    left: list[dict[str, Any]] = []
    for row in Scenario.parameter_table():
        path, ptype = row["path"], row["type"]
        if path.startswith("run.") or path.startswith("intervention") or path in _SIZE_PATHS:
            continue
        if ptype not in ("int", "float", "list"):
            continue  # switches and categories are levers, not uncertain quantities
        center = _get(base, path)
        assumption = row["source"] == "assumption"
        rel = rel_assumption if assumption else rel_sourced
        common = {
            "path": path,
            "center": center,
            "source": row["source"],
            "fixed": bool(row["fixed"]),
            "unit": row["unit"],
            "description": row["description"],
        }
        if rel <= 0:
            left.append({"path": path, "why": "sourced; not varied (rel_sourced = 0)"})
            continue
        if ptype == "list":
            if not isinstance(center, list) or not center or not all(isinstance(v, int | float) for v in center):
                continue
            if not any(center):
                left.append({"path": path, "why": "all elements 0: no relative range"})
                continue
            is_int, eb = _list_element(path)
            f = SensFactor(kind="list", low=1 - rel, high=1 + rel, elem_int=is_int, elem_bounds=eb, **common)
            if f.value(0.0) == f.value(1.0):
                left.append({"path": path, "why": "range collapses after clipping and rounding"})
                continue
            factors.append(f)
            continue
        if center == 0:
            left.append({"path": path, "why": "centre 0 (off or none): no relative range"})
            continue
        lo, hi = sorted((center * (1 - rel), center * (1 + rel)))
        blo, bhi = _bounds(row)
        lo, hi = max(lo, blo), min(hi, bhi)
        if ptype == "int":
            lo, hi = math.floor(lo + 0.5), math.floor(hi + 0.5)
        f = SensFactor(kind=ptype, low=float(lo), high=float(hi), **common)
        if f.value(0.0) == f.value(1.0):
            left.append({"path": path, "why": "range collapses after clipping and rounding"})
            continue
        factors.append(f)
    return factors, left


def _get(scenario: Scenario, path: str) -> Any:
    obj: Any = scenario
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _leaf_values(scenario: Scenario) -> dict[str, Any]:
    return {row["path"]: _get(scenario, row["path"]) for row in Scenario.parameter_table()}


def _fold_interventions(scenario: Scenario) -> Scenario:
    """The scenario with its ``[[intervention]]`` changes applied from the first week."""
    sets: dict[str, Any] = {}
    for iv in sorted(scenario.intervention, key=lambda i: i.step):
        sets.update(iv.set)
    data = scenario.model_dump()
    data["intervention"] = []
    plain = Scenario.model_validate(data)
    return apply_overrides(plain, sets) if sets else plain


@dataclass
class Arms:
    """The baseline and the policy arms, sized by a setting, and what each policy pins."""

    baseline: Scenario
    policies: dict[str, Scenario]
    pinned: dict[str, set[str]]


def load_arms(scenarios: Path, setting: Setting, seed: int | None = None) -> Arms:
    """Load the baseline and the policy scenarios of :data:`POLICIES` from ``scenarios``.

    Raises:
        VillagesimError: a scenario file is missing (one line).
    """
    paths = {"baseline": scenarios / "baseline.toml"} | {k: scenarios / v for k, v in POLICIES.items()}
    for p in paths.values():
        if not p.is_file():
            raise VillagesimError(f"scenario not found: {p} (give the scenarios folder with --scenarios)")
    size: dict[str, Any] = {
        "population.villages": setting.villages,
        "population.residents_per_village": setting.residents,
        "run.steps": setting.steps,
        "run.replicates": 1,
    }
    loaded = {k: _fold_interventions(load_scenario(p).scenario) for k, p in paths.items()}
    base_seed = loaded["baseline"].run.seed if seed is None else int(seed)
    size["run.seed"] = base_seed
    arms = {k: apply_overrides(s, size) for k, s in loaded.items()}
    base_values = _leaf_values(arms["baseline"])
    pinned = {}
    for k in POLICIES:
        vals = _leaf_values(arms[k])
        # what the policy file writes (even a default) or changes is the policy's design
        pinned[k] = {p for p, v in vals.items() if v != base_values[p]} | (_written(paths[k]) & set(vals))
    return Arms(arms["baseline"], {k: arms[k] for k in POLICIES}, pinned)


def _written(path: Path) -> set[str]:
    """The parameter paths a scenario file writes itself (its tables and its interventions' ``set``)."""
    raw = parse_toml(read_text_file(path, what="scenario file"), str(path))
    out: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            p = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(value, p)
            else:
                out.add(p)

    walk({k: v for k, v in raw.items() if k != "intervention"}, "")
    for iv in raw.get("intervention", []) or []:
        if isinstance(iv, dict) and isinstance(iv.get("set"), dict):
            out.update(iv["set"])
    return out


def evaluate(
    arms: Arms,
    factors: list[SensFactor],
    unit: np.ndarray,
    setting: Setting,
    workers: int = 1,
    progress: Callable[[int], Any] | None = None,
) -> pd.DataFrame:
    """Run every point of ``unit`` (points x factors in [0, 1]) in every arm; one row of answers per point.

    Raises:
        VillagesimError: a run failed (the first failure, one line).
    """
    seed = int(arms.baseline.run.seed)
    points = [{f.path: f.value(u) for f, u in zip(factors, row, strict=True)} for row in unit]
    jobs = []
    chunk = 16
    for arm, scen in [("baseline", arms.baseline), *arms.policies.items()]:
        pin = arms.pinned.get(arm, set())
        specs = [
            RunSpec(run_id=i, point=i, replicate=0, seed=seed, overrides={k: v for k, v in pt.items() if k not in pin})
            for i, pt in enumerate(points)
        ]
        for s in range(0, len(specs), chunk):
            jobs.append((arm, scen, specs[s : s + chunk]))
    results: dict[str, list[pd.DataFrame]] = {"baseline": [], **{k: [] for k in arms.policies}}

    def collect(arm: str, res: Any) -> None:
        if res.failed:
            f = res.failed[0]
            raise VillagesimError(f"a {arm} run at point {f['point']} failed: {f['error_type']}: {f['error']}")
        results[arm].append(res.summary)
        if progress is not None:
            progress(len(res.run_ids))

    if workers <= 1:
        for arm, scen, specs in jobs:
            collect(arm, run_task(scen, specs, setting.steps, OUTCOMES, setting.window, False))
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = [
                (arm, pool.submit(run_task, scen, specs, setting.steps, OUTCOMES, setting.window, False))
                for arm, scen, specs in jobs
            ]
            for arm, fut in futs:
                collect(arm, fut.result())
    frames = {k: pd.concat(v, ignore_index=True).sort_values("point").set_index("point") for k, v in results.items()}
    b = frames["baseline"]
    out = pd.DataFrame(
        {
            "unmet_need_share": b["unmet_need_share"],
            "matched_requests": b["matched_requests"],
            "time_bank_effect": frames["time_bank"]["unmet_need_share"] - b["unmet_need_share"],
            "platform_effect": frames["platform"]["unmet_need_share"] - b["unmet_need_share"],
        }
    )
    return out.reset_index(drop=True)


@dataclass
class SensitivityResult:
    """What :func:`run_sensitivity` found."""

    setting: Setting
    seed: int
    factors: list[SensFactor]
    left_out: list[dict[str, Any]]
    morris: pd.DataFrame  # answer, parameter, mu, mu_star, mu_star_conf, sigma
    sobol: pd.DataFrame  # answer, parameter, S1, S1_conf, ST, ST_conf
    top: list[str]
    morris_answers: pd.DataFrame
    sobol_answers: pd.DataFrame
    pinned: dict[str, set[str]]
    runs: int
    rel_assumption: float
    rel_sourced: float
    noise: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def factor(self, path: str) -> SensFactor:
        return next(f for f in self.factors if f.path == path)


def _noise(arms: Arms, setting: Setting) -> dict[str, float]:
    """Standard deviation of each answer over replicates at the centre (what one run's chance moves)."""
    n = setting.noise_replicates
    if n < 2:
        return {}
    seed = int(arms.baseline.run.seed)
    specs = [RunSpec(run_id=r, point=0, replicate=r, seed=seed, overrides={}) for r in range(n)]
    res = {}
    for arm, scen in [("baseline", arms.baseline), *arms.policies.items()]:
        out = run_task(scen, specs, setting.steps, OUTCOMES, setting.window, False)
        if out.failed:
            f = out.failed[0]
            raise VillagesimError(f"a {arm} run at the centre failed: {f['error_type']}: {f['error']}")
        res[arm] = out.summary.sort_values("replicate").reset_index(drop=True)
    b = res["baseline"]
    ys = {
        "unmet_need_share": b["unmet_need_share"],
        "matched_requests": b["matched_requests"],
        "time_bank_effect": res["time_bank"]["unmet_need_share"] - b["unmet_need_share"],
        "platform_effect": res["platform"]["unmet_need_share"] - b["unmet_need_share"],
    }
    return {k: float(np.std(v.to_numpy(dtype=float), ddof=1)) for k, v in ys.items()} | {
        f"{k}_mean": float(np.mean(v.to_numpy(dtype=float))) for k, v in ys.items()
    }


def run_sensitivity(
    scenarios: str | Path = "scenarios",
    setting: Setting | str = "full",
    seed: int | None = None,
    workers: int = 1,
    rel_assumption: float = 0.5,
    rel_sourced: float | None = None,
    only: list[str] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> SensitivityResult:
    """The Morris screen, then Sobol indices on the ``setting.sobol_top`` strongest factors.

    Args:
        scenarios: folder holding baseline.toml, time_bank.toml and platform.toml.
        setting: a :class:`Setting` or a key of :data:`SETTINGS`.
        seed: root seed of every run and of the designs (default: the baseline's ``run.seed``).
        workers: processes running the runs (1: serial).
        rel_assumption, rel_sourced: relative half-widths of the ranges (module docstring);
            ``rel_sourced`` defaults to the setting's.
        only: screen only these parameter paths (a smaller screen, for tests).
        progress: called with the number of runs finished.
    """
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    if isinstance(setting, str):
        setting = SETTINGS[setting]
    if rel_sourced is None:
        rel_sourced = setting.rel_sourced
    arms = load_arms(Path(scenarios), setting, seed)
    seed = int(arms.baseline.run.seed)
    design_seed = seed % (2**32)
    factors, left = screen_factors(arms.baseline, rel_assumption, rel_sourced)
    if only is not None:
        unknown = set(only) - {f.path for f in factors}
        if unknown:
            raise VillagesimError(f"not a factor of the screen: {', '.join(sorted(unknown))}")
        factors = [f for f in factors if f.path in only]
    names = [f.path for f in factors]
    notes: list[str] = []

    # ---- the noise floor: replicates at the centre (every factor at its centre, other seeds' streams)
    noise = _noise(arms, setting)

    # ---- Morris over every factor
    problem = unit_problem(names)
    unit = morris_sample.sample(problem, setting.trajectories, num_levels=setting.levels, seed=design_seed)
    ym = evaluate(arms, factors, unit, setting, workers, progress)
    rows = []
    for answer in ANSWERS:
        y = ym[answer].to_numpy(dtype=float)
        if np.ptp(y) == 0:
            notes.append(f"{answer} does not vary over the Morris design: every index is 0")
            for n in names:
                rows.append({"answer": answer, "parameter": n, "mu": 0.0, "mu_star": 0.0, "mu_star_conf": 0.0, "sigma": 0.0})
            continue
        rows += [{"answer": answer, **row} for row in salib_indices("morris", problem, y, design_seed, unit, setting.levels)]
    morris = pd.DataFrame(rows)

    # ---- the strongest factors: mu* relative to the answer's largest, the best over the answers
    rel = morris.assign(score=morris["mu_star"] / morris.groupby("answer")["mu_star"].transform("max").replace(0.0, np.nan))
    score = rel.groupby("parameter")["score"].max().fillna(0.0)
    order = sorted(names, key=lambda n: (-score[n], names.index(n)))
    top = [n for n in order if score[n] > 0][: setting.sobol_top]

    # ---- Sobol on the top factors, the others at their centre
    srows = []
    ys = pd.DataFrame(columns=list(ANSWERS))
    if len(top) >= 2:
        tfac = [next(f for f in factors if f.path == n) for n in top]
        sp = unit_problem(top)
        su = sobol_sample.sample(sp, setting.sobol_n, calc_second_order=False, seed=design_seed)
        ys = evaluate(arms, tfac, su, setting, workers, progress)
        for answer in ANSWERS:
            y = ys[answer].to_numpy(dtype=float)
            if np.ptp(y) == 0:
                notes.append(f"{answer} does not vary over the Sobol design: every index is 0")
                for n in top:
                    srows.append({"answer": answer, "parameter": n, "S1": 0.0, "S1_conf": 0.0, "ST": 0.0, "ST_conf": 0.0})
                continue
            srows += [{"answer": answer, **row} for row in salib_indices("sobol", sp, y, design_seed)]
    else:
        notes.append("fewer than two factors have an effect: no Sobol indices")
    sobol = pd.DataFrame(srows, columns=["answer", "parameter", "S1", "S1_conf", "ST", "ST_conf"])
    return SensitivityResult(
        setting=setting,
        seed=seed,
        factors=factors,
        left_out=left,
        morris=morris,
        sobol=sobol,
        top=top,
        morris_answers=ym,
        sobol_answers=ys,
        pinned=arms.pinned,
        runs=3 * (len(ym) + len(ys) + setting.noise_replicates),
        noise=noise,
        rel_assumption=rel_assumption,
        rel_sourced=rel_sourced,
        notes=notes,
    )


# --------------------------------------------------------------------- the report
def drivers(result: SensitivityResult, answer: str, n: int = 5, share: float = 0.1) -> pd.DataFrame:
    """The parameters that drive an answer: the ``n`` largest mu*, each at least ``share`` of the largest."""
    m = result.morris[result.morris["answer"] == answer].sort_values(["mu_star", "parameter"], ascending=[False, True])
    top = float(m["mu_star"].max()) if len(m) else 0.0
    if top <= 0:
        return m.head(0)
    return m[m["mu_star"] >= share * top].head(n)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _figures(result: SensitivityResult, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    by_path = {f.path: f for f in result.factors}
    for answer, label in ANSWERS.items():
        m = result.morris[result.morris["answer"] == answer]
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        colours = ["tab:red" if by_path[p].assumption else "tab:blue" for p in m["parameter"]]
        ax.scatter(m["mu_star"], m["sigma"], c=colours, s=18, alpha=0.8)
        for _, row in m.sort_values("mu_star", ascending=False).head(6).iterrows():
            if row["mu_star"] > 0:
                ax.annotate(
                    row["parameter"], (row["mu_star"], row["sigma"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
        ax.set_xlabel("mu* (mean |elementary effect| over the full range)")
        ax.set_ylabel("sigma (spread of elementary effects)")
        ax.set_title(f"Morris screen: {label}", fontsize=10)
        ax.scatter([], [], c="tab:red", s=18, label="assumption")
        ax.scatter([], [], c="tab:blue", s=18, label="sourced")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = folder / f"sensitivity_morris_{answer}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
        s = result.sobol[result.sobol["answer"] == answer]
        if s.empty:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(s) + 1.8))
        y = np.arange(len(s))
        ax.barh(y - 0.2, s["S1"], 0.4, xerr=s["S1_conf"], label="S1 (first order)", color="tab:orange", capsize=2)
        ax.barh(y + 0.2, s["ST"], 0.4, xerr=s["ST_conf"], label="ST (total)", color="tab:purple", capsize=2)
        ax.set_yticks(y, s["parameter"], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("Sobol index (bars: 95% bootstrap interval)")
        ax.set_title(f"Sobol indices: {label}", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="x")
        fig.tight_layout()
        path = folder / f"sensitivity_sobol_{answer}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


def write_report(result: SensitivityResult, out: str | Path, command: str) -> Path:
    """Write ``OUT/sensitivity.md``, ``OUT/figures/sensitivity_*.png`` and ``OUT/sensitivity/*.csv``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = _figures(result, out / "figures")
    data = out / "sensitivity"
    data.mkdir(exist_ok=True)
    ftab = pd.DataFrame(
        [
            {
                "parameter": f.path,
                "role": f.role,
                "source": f.source,
                "unit": f.unit,
                "centre": f.center,
                "range": f.describe(),
            }
            for f in result.factors
        ]
    )
    ftab.to_csv(data / "factors.csv", index=False)
    result.morris.to_csv(data / "morris.csv", index=False, float_format="%.6g")
    result.sobol.to_csv(data / "sobol.csv", index=False, float_format="%.6g")
    result.morris_answers.rename_axis("point").to_csv(data / "morris_points.csv")  # the answers of every Morris point
    by_path = {f.path: f for f in result.factors}
    s = result.setting
    n_struct = sum(f.role == "structural" for f in result.factors)
    n_ass = sum(f.assumption for f in result.factors)
    L: list[str] = []
    L += [
        "# Sensitivity analysis",
        "",
        f"Regenerate with one command: `{command}` (seed {result.seed}; same seed, same numbers).",
        "",
        "Which uncertain parameters drive the model's answers? A Morris screen (elementary effects) over",
        f"every uncertain parameter - {len(result.factors)} factors, {n_struct} of them structural (used when the",
        f"village is built) and {n_ass} of them assumptions - then Sobol first-order (S1) and total (ST) indices on",
        f"the {len(result.top)} strongest by mu*. Size: {s.describe()}; {result.runs} runs in all.",
        "",
        "## Answers",
        "",
    ]
    for answer, label in ANSWERS.items():
        L.append(f"- `{answer}`: {label}.")
    L += [
        "",
        "Each answer is the mean over the last weeks of a run. The policy effects are paired differences: at",
        "every parameter point the policy arm (scenarios/time_bank.toml, scenarios/platform.toml) and the baseline",
        "arm (scenarios/baseline.toml) run on the same seed and replicate, and the answer is policy minus baseline",
        "(negative: the policy lowers unmet need). A policy's `[[intervention]]` entries take effect from the first",
        "week, so the effect is measured over the same window whatever the horizon. A parameter the policy file",
        "sets keeps the policy's value in the policy arm (it is the policy's design):",
        "",
    ]
    for k, paths in result.pinned.items():
        L.append(f"- {k}: {', '.join(f'`{p}`' for p in sorted(paths)) or 'none'}")
    L += [
        "",
        "## Ranges: the rule",
        "",
        "- Centre: the parameter's value in scenarios/baseline.toml (its documented default, or the calibrated value",
        "  written there).",
        f'- A parameter whose `source` is "assumption": centre x (1 +- {result.rel_assumption:g}); a sourced one (its',
        "  source is a quantity of calibration_targets.csv): "
        + (f"centre x (1 +- {result.rel_sourced:g})." if result.rel_sourced > 0 else "not varied at this size."),
        "- Clipped to the parameter's bounds (probabilities and shares stay within [0, 1]); integers rounded to the",
        "  nearest whole number. A list parameter (a value per age band or care level) is one factor: all its",
        "  elements are multiplied by the same factor, then clipped and rounded element by element.",
        "- Not varied: the run settings and the village size (set above), switches and categories (levers, not",
        "  uncertain quantities), and a parameter whose centre is 0 (a lever that is off) or whose range collapses",
        "  after clipping and rounding.",
        "",
        "mu* is in the answer's units per move over the full range of a factor; sigma large against mu* means",
        "the effect depends on the other factors (interactions or non-linearity).",
        "",
        "## Reading the numbers: the noise floor",
        "",
        "Every point runs once, on the same seed (common random numbers). A factor that changes nothing in a run",
        "(a time bank parameter in the baseline, a list that is normalised before use) therefore gets mu* = 0",
        "exactly. A factor that changes anything shifts later random draws, and a structural factor builds a",
        "different village, so its elementary effects include the chance variation of one run. That variation,",
        f"the standard deviation over {s.noise_replicates} replicates at the centre (every factor at its centre), is the",
        "floor below which a mu* is not distinguishable from chance:",
        "",
        "| answer | mean at the centre | sd of one run |",
        "|---|---|---|",
        *[f"| {a} | {_fmt(result.noise.get(a + '_mean', math.nan))} | {_fmt(result.noise.get(a, math.nan))} |" for a in ANSWERS],
        "",
        "## Drivers",
        "",
        "The parameters that drive each answer: the largest mu* (up to five, each at least a tenth of the",
        "largest), with the Sobol total index where the factor was among the Sobol set. *Source* says whether the",
        "value is an assumption or sourced from a published figure; *role*: structural (fixed when the village is",
        "built), process (a rule's parameter) or policy (a lever's setting).",
        "",
        "| answer | parameter | mu* [95% CI] | sigma | ST [95% CI] | source | role |",
        "|---|---|---|---|---|---|---|",
    ]
    for answer in ANSWERS:
        d = drivers(result, answer)
        if d.empty:
            L.append(f"| {answer} | (no parameter moves it) | | | | | |")
            continue
        for _, row in d.iterrows():
            f = by_path[row["parameter"]]
            st = result.sobol[(result.sobol["answer"] == answer) & (result.sobol["parameter"] == f.path)]
            st_txt = f"{_fmt(st['ST'].iloc[0])} +- {_fmt(st['ST_conf'].iloc[0])}" if len(st) else "-"
            L.append(
                f"| {answer} | `{f.path}` | {_fmt(row['mu_star'])} +- {_fmt(row['mu_star_conf'])} | {_fmt(row['sigma'])} | "
                f"{st_txt} | {'assumption' if f.assumption else 'sourced: ' + f.source} | {f.role} |"
            )
    ass_drivers = []
    for answer in ANSWERS:
        for p in drivers(result, answer)["parameter"]:
            if by_path[p].assumption and p not in ass_drivers:
                ass_drivers.append(p)
    L += [
        "",
        f"Assumption drivers (in the table above): {', '.join(f'`{p}`' for p in ass_drivers) or 'none'}.",
        "",
        "## Morris screen",
        "",
    ]
    for answer, label in ANSWERS.items():
        L += [f"![Morris screen: {label}](figures/sensitivity_morris_{answer}.png)", ""]
    L += [
        "## Sobol indices",
        "",
        f"On the {len(result.top)} strongest factors by mu* (relative to each answer's largest mu*, the best over",
        f"the answers): {', '.join(f'`{p}`' for p in result.top)}. The other factors stay at their centre. Bars",
        "show 95% bootstrap intervals; with a small base sample the intervals are wide and an index may come out",
        "slightly negative (read it as 0).",
        "",
    ]
    for answer, label in ANSWERS.items():
        if (result.sobol["answer"] == answer).any():
            L += [f"![Sobol indices: {label}](figures/sensitivity_sobol_{answer}.png)", ""]
    L += [
        "| answer | parameter | S1 [95% CI] | ST [95% CI] |",
        "|---|---|---|---|",
    ]
    for _, row in result.sobol.iterrows():
        L.append(
            f"| {row['answer']} | `{row['parameter']}` | {_fmt(row['S1'])} +- {_fmt(row['S1_conf'])} | "
            f"{_fmt(row['ST'])} +- {_fmt(row['ST_conf'])} |"
        )
    L += [
        "",
        "## Every factor tested",
        "",
        "mu* of each answer; `unmet`, `matched`, `time bank`, `platform` are the four answers above.",
        "",
        "| parameter | role | source | centre | range | mu* unmet | mu* matched | mu* time bank | mu* platform |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    piv = result.morris.pivot(index="parameter", columns="answer", values="mu_star")
    for f in result.factors:
        c = f.center if f.kind != "list" else "[" + ", ".join(f"{v:g}" for v in f.center) + "]"
        vals = " | ".join(_fmt(float(piv.loc[f.path, a])) for a in ANSWERS)
        L.append(f"| `{f.path}` | {f.role} | {f.source} | {c} | {f.describe()} | {vals} |")
    if result.left_out:
        L += ["", "Numeric parameters not varied, and why:", ""]
        for row in result.left_out:
            L.append(f"- `{row['path']}`: {row['why']}")
    if result.notes:
        L += ["", "Notes:", ""] + [f"- {n}" for n in result.notes]
    L += [
        "",
        "Data: sensitivity/factors.csv, sensitivity/morris.csv, sensitivity/sobol.csv and the answers of every",
        "Morris point, sensitivity/morris_points.csv (beside this file).",
        "",
    ]
    doc = out / "sensitivity.md"
    doc.write_text("\n".join(L), encoding="utf-8")
    del figs
    return doc
