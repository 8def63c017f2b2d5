"""Experiment files and their designs: which runs a sweep makes.

An experiment file (TOML, in ``experiments/``) names a base scenario and says what varies:

.. code-block:: toml

    name = "timebank_under_hollowing"
    scenario = "../scenarios/baseline.toml"   # relative to this file
    seed = 2024                               # root seed of the experiment
    replicates = 5                            # runs per parameter point
    steps = 260                               # horizon in weeks (default: the scenario's)
    outcomes = ["unmet_need_share", "active_volunteers"]

    [set]                                     # fixed changes to the base scenario
    "population.residents_per_village" = 600

    [levers]                                  # what a planner chooses: values or ranges
    "policy.time_bank.enabled" = [false, true]

    [uncertainties]                           # what nobody controls: ranges or distributions
    "hollowing_out.outmigration_rate" = { low = 0.01, high = 0.12 }
    "behaviour.ask_trust" = { distribution = "normal", mean = 2.0, sd = 0.5 }

    [design]
    kind = "lhs"                              # grid | lhs | sobol | morris
    samples = 32

A factor given as a list of values is crossed with everything else (a full factorial). A
factor given as a range or distribution is sampled by the design: ``grid`` takes ``levels``
points of each (evenly spaced for a uniform range, quantiles otherwise), ``lhs`` a Latin
hypercube of ``samples`` points, ``sobol`` Saltelli's scheme (``samples * (D + 2)`` points for D
factors, first and total order indices) and ``morris`` ``samples`` trajectories
(``samples * (D + 1)`` points); the last two use SALib and need every factor to be a range.

Runs are numbered: point ``p``, replicate ``r`` is run ``p * replicates + r``. Every point
gets a seed: the root seed itself when ``common_random_numbers`` is on (the default: two
points differing in a lever are compared on the same random numbers), otherwise a seed
derived from the root seed and the point index. Replicate ``r`` of a run uses
:class:`~villagesim.rng.Streams` ``(seed, r)``.

Every mistake in an experiment file is one :class:`~villagesim.errors.ScenarioError` naming
the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from villagesim.config.loading import apply_overrides, load_scenario, parse_toml, read_text_file
from villagesim.config.schema import Scenario, _suggest
from villagesim.errors import ScenarioError, VillagesimError
from villagesim.outputs.sums import COLUMNS

__all__ = [
    "DESIGNS",
    "DISTRIBUTIONS",
    "DEFAULT_OUTCOMES",
    "Factor",
    "Experiment",
    "Design",
    "load_experiment",
    "build_design",
    "design_size",
    "design_head",
    "check_size",
    "MAX_DESIGN_RUNS",
    "point_seed",
]

DESIGNS = ("grid", "lhs", "sobol", "morris")
"""Design kinds an experiment may name."""

DISTRIBUTIONS = ("uniform", "loguniform", "triangular", "normal")
"""Distributions a range factor may follow."""

MAX_DESIGN_RUNS = 10**6
"""The most runs :func:`build_design` builds unless told otherwise (``--allow-large-design``):
a design is a table in memory, and a typo in ``levels`` can ask for 10^8 rows."""

DEFAULT_OUTCOMES = [
    "unmet_need_share",
    "elders_with_unmet_need",
    "active_volunteers",
    "volunteer_hours",
    "mean_trust",
    "mean_satisfaction",
    "spend_total",
    "cost_per_met_hour",
]
"""Outcomes kept when an experiment does not list its own."""

_TOP_KEYS = {
    "name": "short name of the experiment",
    "description": "the question the experiment answers",
    "scenario": "base scenario file, relative to the experiment file",
    "seed": "root seed (integer >= 0)",
    "replicates": "runs per parameter point (integer >= 1)",
    "steps": "horizon in weeks (integer >= 1)",
    "window": "weeks at the end of a run averaged into its outcome (integer >= 1)",
    "common_random_numbers": "true or false",
    "outcomes": "list of output columns",
    "timeseries": "true or false: keep each run's weekly series",
    "set": "table of fixed parameter changes",
    "levers": "table of levers",
    "uncertainties": "table of uncertain parameters",
    "design": "table with kind, samples, levels, seed",
    "discovery": "table with outcome, threshold, direction",
}
_DESIGN_KEYS = {"kind", "samples", "levels", "seed"}
_DISCOVERY_KEYS = {"outcome", "threshold", "direction"}
_DIST_KEYS = {"distribution", "low", "high", "mode", "mean", "sd"}


# --------------------------------------------------------------------- data
@dataclass(frozen=True)
class Factor:
    """One varied parameter.

    Attributes:
        path: dotted scenario parameter path.
        role: ``"lever"`` or ``"uncertainty"``.
        values: the values of a list factor (``None`` for a range).
        distribution: for a range, one of :data:`DISTRIBUTIONS`.
        low, high: range bounds (the truncation bounds of a normal, if given).
        mode: the mode of a triangular distribution.
        mean, sd: the parameters of a normal distribution.
        kind: the parameter's type (``"float"``, ``"int"``, ``"bool"``, ``"str"``).
    """

    path: str
    role: str
    values: tuple[Any, ...] | None = None
    distribution: str = "uniform"
    low: float | None = None
    high: float | None = None
    mode: float | None = None
    mean: float | None = None
    sd: float | None = None
    kind: str = "float"

    @property
    def is_range(self) -> bool:
        return self.values is None

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Map unit-interval values to parameter values (inverse CDF), rounded for integers."""
        u = np.asarray(u, dtype=float)
        if self.distribution == "uniform":
            x = self.low + u * (self.high - self.low)
        elif self.distribution == "loguniform":
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        elif self.distribution == "triangular":
            width = self.high - self.low
            c = (self.mode - self.low) / width if width > 0 else 0.5
            x = stats.triang.ppf(u, c, loc=self.low, scale=width)
        else:  # normal, truncated to [low, high] where given
            lo = -np.inf if self.low is None else (self.low - self.mean) / self.sd
            hi = np.inf if self.high is None else (self.high - self.mean) / self.sd
            x = stats.truncnorm.ppf(np.clip(u, 1e-12, 1 - 1e-12), lo, hi, loc=self.mean, scale=self.sd)
        if self.kind == "int":
            x = np.rint(x)
        return x

    def describe(self) -> str:
        """Short text: ``[a, b, c]`` or ``uniform 0.01..0.12``."""
        if self.values is not None:
            return "[" + ", ".join(repr(v) for v in self.values) + "]"
        if self.distribution == "normal":
            bounds = f" in {self.low}..{self.high}" if self.low is not None or self.high is not None else ""
            return f"normal(mean {self.mean}, sd {self.sd}){bounds}"
        if self.distribution == "triangular":
            return f"triangular {self.low}..{self.high}, mode {self.mode}"
        return f"{self.distribution} {self.low}..{self.high}"


@dataclass
class Experiment:
    """A validated experiment file."""

    name: str
    description: str
    path: Path
    scenario_path: Path
    base: Scenario
    seed: int
    replicates: int
    steps: int
    window: int
    common_random_numbers: bool
    outcomes: list[str]
    timeseries: bool
    fixed: dict[str, Any]
    factors: list[Factor]
    design_kind: str
    samples: int
    levels: int
    design_seed: int
    discovery: dict[str, Any] | None = None
    text: str = ""

    @property
    def levers(self) -> list[Factor]:
        return [f for f in self.factors if f.role == "lever"]

    @property
    def uncertainties(self) -> list[Factor]:
        return [f for f in self.factors if f.role == "uncertainty"]

    def identity(self) -> dict[str, Any]:
        """What determines the runs and their results (for checking a resumed sweep)."""
        return {
            "base": self.base.model_dump(mode="json"),
            "seed": self.seed,
            "replicates": self.replicates,
            "window": self.window,
            "common_random_numbers": self.common_random_numbers,
            "outcomes": self.outcomes,
            "timeseries": self.timeseries,
            "factors": [f.__dict__ | {"values": list(f.values) if f.values is not None else None} for f in self.factors],
            "design": [self.design_kind, self.samples, self.levels, self.design_seed],
        }

    def digest(self, steps: int) -> str:
        """A stable hash of :meth:`identity` and the horizon actually run."""
        blob = json.dumps(self.identity() | {"steps": steps}, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Design:
    """The points and runs of an experiment.

    Attributes:
        points: one row per parameter point: ``point``, ``seed`` and one column per factor path.
        unit: for ``sobol``/``morris``, the points in the unit hypercube (points x factors).
        runs: one row per run: ``run_id``, ``point``, ``replicate``, ``seed`` and the factor columns.
    """

    experiment: Experiment
    points: pd.DataFrame
    unit: np.ndarray | None
    runs: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        reps = self.experiment.replicates
        idx = np.repeat(np.arange(len(self.points)), reps)
        runs = self.points.iloc[idx].reset_index(drop=True)
        runs.insert(0, "replicate", np.tile(np.arange(reps, dtype=np.int64), len(self.points)))
        runs.insert(0, "run_id", np.arange(len(runs), dtype=np.int64))
        order = ["run_id", "point", "replicate", "seed"] + [
            c for c in runs.columns if c not in ("run_id", "point", "replicate", "seed")
        ]
        self.runs = runs[order]

    @property
    def factor_paths(self) -> list[str]:
        return [f.path for f in self.experiment.factors]

    def overrides(self, row: pd.Series | dict[str, Any]) -> dict[str, Any]:
        """Parameter overrides of a point or run row (plain Python values)."""
        out = {}
        for path in self.factor_paths:
            value = row[path]
            out[path] = value.item() if isinstance(value, np.generic) else value
        return out


def point_seed(root: int, point: int) -> int:
    """The seed of design point ``point`` when points do not share random numbers."""
    return int(np.random.SeedSequence(int(root), spawn_key=(int(point),)).generate_state(1)[0])


# --------------------------------------------------------------------- loading
def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file.

    Raises:
        ScenarioError: naming file, line and field for any mistake, including a base
            scenario that does not validate and factor values outside a parameter's bounds.
    """
    path = Path(path)
    # the same safe reading as scenario files: a regular file, bounded, a BOM accepted, nesting limited
    text = read_text_file(path, what="experiment file")
    raw = parse_toml(text, str(path))
    ctx = _Ctx(path, text)

    for key in raw:
        if key not in _TOP_KEYS:
            ctx.fail(f"unknown key{_suggest(key, set(_TOP_KEYS))}", key)
    if "scenario" not in raw:
        ctx.fail('an experiment needs a base scenario: scenario = "../scenarios/baseline.toml"', None)
    name = ctx.string(raw, "name", default=path.stem)
    description = ctx.string(raw, "description", default="")
    scen_rel = ctx.string(raw, "scenario", default="")
    scenario_path = (path.parent / scen_rel).resolve()
    if not scenario_path.exists():
        ctx.fail(f"base scenario not found: {scen_rel} (looked for {scenario_path})", "scenario")
    base = load_scenario(scenario_path).scenario  # its own errors name its own file
    seed = ctx.integer(raw, "seed", default=base.run.seed, lo=0, hi=2**63 - 1)
    replicates = ctx.integer(raw, "replicates", default=base.run.replicates, lo=1, hi=100000)
    steps = ctx.integer(raw, "steps", default=base.run.steps, lo=1, hi=5200)
    window = ctx.integer(raw, "window", default=52, lo=1, hi=5200)
    crn = ctx.boolean(raw, "common_random_numbers", default=True)
    keep_ts = ctx.boolean(raw, "timeseries", default=True)
    outcomes = raw.get("outcomes", DEFAULT_OUTCOMES)
    if not isinstance(outcomes, list) or not outcomes or not all(isinstance(o, str) for o in outcomes):
        ctx.fail("expected a non-empty list of output column names", "outcomes")
    for o in outcomes:
        if o not in COLUMNS:
            ctx.fail(f"unknown outcome{_suggest(o, set(COLUMNS))}", "outcomes")
    if len(set(outcomes)) != len(outcomes):
        ctx.fail("an outcome is listed twice", "outcomes")

    fixed = ctx.flat(raw.get("set", {}), "set", leaf=lambda v: not isinstance(v, dict))
    try:
        base = apply_overrides(base, {k: v for k, v in fixed.items()})
    except ScenarioError as exc:
        ctx.fail(exc.message, f"set.{exc.field}" if exc.field else "set", key_path=("set", exc.field or ""))
    base = apply_overrides(base, {"run.steps": steps, "run.seed": seed})

    table = {row["path"]: row for row in Scenario.parameter_table()}
    factors: list[Factor] = []
    seen: dict[str, str] = {}
    for role, section in (("lever", "levers"), ("uncertainty", "uncertainties")):
        flat = ctx.flat(raw.get(section, {}), section, leaf=lambda v: not isinstance(v, dict) or bool(_DIST_KEYS & set(v)))
        for fpath, spec in flat.items():
            where = (section, fpath)
            if fpath in seen:
                ctx.fail(f"is already a factor in [{seen[fpath]}]", f"{section}.{fpath}", key_path=where)
            if fpath in fixed:
                ctx.fail("is also fixed in [set]; a parameter is either fixed or varied", f"{section}.{fpath}", key_path=where)
            if fpath.startswith("run."):
                ctx.fail(
                    "run settings are not factors; use seed, replicates and steps of the experiment",
                    f"{section}.{fpath}",
                    key_path=where,
                )
            if fpath not in table:
                ctx.fail(f"unknown parameter{_suggest(fpath, set(table))}", f"{section}.{fpath}", key_path=where)
            seen[fpath] = section
            factor = ctx.factor(fpath, role, spec, table[fpath], section)
            for value in _probe_values(factor):
                try:
                    apply_overrides(base, {fpath: value})
                except ScenarioError as exc:
                    ctx.fail(exc.message, f"{section}.{fpath}", key_path=where)
            factors.append(factor)

    dsg = raw.get("design", {})
    if not isinstance(dsg, dict):
        ctx.fail("expected a table: [design] with kind, samples, levels", "design")
    for key in dsg:
        if key not in _DESIGN_KEYS:
            ctx.fail(f"unknown key{_suggest(key, _DESIGN_KEYS)}", f"design.{key}", key_path=("design", key))
    kind = dsg.get("kind", "grid")
    if kind not in DESIGNS:
        ctx.fail(f"unknown design {kind!r}; expected one of: {', '.join(DESIGNS)}", "design.kind", key_path=("design", "kind"))
    samples = ctx.integer(dsg, "samples", default=16, lo=1, hi=10**6, prefix="design")
    levels = ctx.integer(dsg, "levels", default=3 if kind == "grid" else 4, lo=2, hi=1000, prefix="design")
    design_seed = ctx.integer(dsg, "seed", default=seed, lo=0, hi=2**32 - 1, prefix="design")
    if kind in ("sobol", "morris"):
        listed = [f for f in factors if not f.is_range]
        if listed:
            f = listed[0]
            section = "levers" if f.role == "lever" else "uncertainties"
            ctx.fail(
                f"a {kind} design needs every factor as a range or distribution; fix this one in [set] or use design kind 'lhs' or 'grid'",
                f"{section}.{f.path}",
                key_path=(section, f.path),
            )
        if not factors:
            ctx.fail(
                f"a {kind} design needs at least one uncertainty or lever given as a range",
                "design.kind",
                key_path=("design", "kind"),
            )
        if kind == "morris" and levels % 2:
            ctx.fail("Morris needs an even number of levels", "design.levels", key_path=("design", "levels"))
    if kind == "lhs" and "samples" not in dsg and any(f.is_range for f in factors):
        ctx.fail("a Latin hypercube needs its number of samples: samples = 32", "design", key_path=("design",))

    discovery = None
    if "discovery" in raw:
        d = raw["discovery"]
        if not isinstance(d, dict):
            ctx.fail("expected a table with outcome, threshold, direction", "discovery")
        for key in d:
            if key not in _DISCOVERY_KEYS:
                ctx.fail(f"unknown key{_suggest(key, _DISCOVERY_KEYS)}", f"discovery.{key}", key_path=("discovery", key))
        outcome = d.get("outcome", outcomes[0])
        if outcome not in outcomes:
            ctx.fail(
                f"{outcome!r} is not among the experiment's outcomes", "discovery.outcome", key_path=("discovery", "outcome")
            )
        threshold = d.get("threshold")
        if not isinstance(threshold, int | float) or isinstance(threshold, bool):
            ctx.fail(
                "expected a number: the outcome value that defines the cases of interest",
                "discovery.threshold",
                key_path=("discovery", "threshold"),
            )
        direction = d.get("direction", "above")
        if direction not in ("above", "below"):
            ctx.fail("expected 'above' or 'below'", "discovery.direction", key_path=("discovery", "direction"))
        discovery = {"outcome": outcome, "threshold": float(threshold), "direction": direction}

    return Experiment(
        name=name,
        description=description,
        path=path,
        scenario_path=scenario_path,
        base=base,
        seed=seed,
        replicates=replicates,
        steps=steps,
        window=window,
        common_random_numbers=crn,
        outcomes=list(outcomes),
        timeseries=keep_ts,
        fixed=fixed,
        factors=factors,
        design_kind=kind,
        samples=samples,
        levels=levels,
        design_seed=design_seed,
        discovery=discovery,
        text=text,
    )


def _probe_values(f: Factor) -> list[Any]:
    """Values to validate a factor with: every listed value, or a range's ends."""
    if f.values is not None:
        return list(f.values)
    ends = f.ppf(np.array([0.0, 1.0])) if f.distribution != "normal" else f.ppf(np.array([1e-6, 1 - 1e-6]))
    return [int(v) if f.kind == "int" else float(v) for v in ends]


class _Ctx:
    """Error reporting for one experiment file."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key_path: tuple[str, ...]) -> int | None:
        target = ".".join(key_path)
        table = ""
        best = None
        best_len = -1
        for number, line in enumerate(self.lines, start=1):
            stripped = line.split("#", 1)[0].strip() if not line.strip().startswith(("'", '"')) else line.strip()
            m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", stripped)
            if m:
                table = _norm_key(m.group(1))
                full = table
            else:
                k = re.match(
                    r"""^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""", stripped
                )
                if not k:
                    continue
                full = ".".join(p for p in (table, _norm_key(k.group(1))) if p)
            if target == full or target.startswith(full + "."):
                if len(full) > best_len:
                    best, best_len = number, len(full)
        return best

    def fail(self, message: str, fld: str | None, key_path: tuple[str, ...] | None = None) -> None:
        kp = key_path if key_path is not None else ((fld,) if fld else ())
        raise ScenarioError(message, file=self.path, line=self.line_of(kp) if kp else None, field=fld)

    def string(self, raw: dict, key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            self.fail(f"expected text (got {value!r})", key)
        return value

    def integer(self, raw: dict, key: str, default: int, lo: int, hi: int, prefix: str = "") -> int:
        value = raw.get(key, default)
        fld = f"{prefix}.{key}" if prefix else key
        kp = (prefix, key) if prefix else (key,)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"expected a whole number (got {value!r})", fld, key_path=kp)
        if not lo <= value <= hi:
            self.fail(f"expected a value from {lo} to {hi} (got {value!r})", fld, key_path=kp)
        return int(value)

    def boolean(self, raw: dict, key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"expected true or false (got {value!r})", key)
        return value

    def flat(self, table: Any, section: str, leaf: Any) -> dict[str, Any]:
        if not isinstance(table, dict):
            self.fail(f"expected a table [{section}] of parameter paths", section)
        out: dict[str, Any] = {}

        def walk(node: dict, prefix: str) -> None:
            for key, value in node.items():
                p = f"{prefix}.{key}" if prefix else key
                if leaf(value):
                    out[p] = value
                else:
                    walk(value, p)

        walk(table, "")
        return out

    def factor(self, fpath: str, role: str, spec: Any, row: dict[str, Any], section: str) -> Factor:
        where = (section, fpath)
        fld = f"{section}.{fpath}"
        ptype = row["type"]
        kind = {"float": "float", "int": "int", "bool": "bool", "str": "str"}.get(ptype, "str" if "Literal" in ptype else ptype)
        if kind == "list":
            self.fail(
                "list-valued parameters cannot be varied in an experiment; set them in the base scenario", fld, key_path=where
            )
        if isinstance(spec, list):
            if not spec:
                self.fail("expected at least one value", fld, key_path=where)
            if len({json.dumps(v, sort_keys=True) for v in spec}) != len(spec):
                self.fail("a value is listed twice", fld, key_path=where)
            return Factor(fpath, role, values=tuple(spec), kind=kind)
        if not isinstance(spec, dict):
            self.fail(
                "expected a list of values ([0.0, 0.5]) or a range ({ low = 0.0, high = 1.0 })",
                fld,
                key_path=where,
            )
        if kind not in ("float", "int"):
            self.fail(f"a {kind} parameter takes a list of values, not a range", fld, key_path=where)
        for key in spec:
            if key not in _DIST_KEYS:
                self.fail(f"unknown key{_suggest(key, _DIST_KEYS)} in the range", fld, key_path=where)
        dist = spec.get("distribution", "normal" if "mean" in spec else "uniform")
        if dist not in DISTRIBUTIONS:
            self.fail(f"unknown distribution {dist!r}; expected one of: {', '.join(DISTRIBUTIONS)}", fld, key_path=where)
        nums = {}
        for key in ("low", "high", "mode", "mean", "sd"):
            if key in spec:
                v = spec[key]
                if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                    self.fail(f"{key} must be a number (got {v!r})", fld, key_path=where)
                nums[key] = float(v)
        need = {
            "uniform": ("low", "high"),
            "loguniform": ("low", "high"),
            "triangular": ("low", "mode", "high"),
            "normal": ("mean", "sd"),
        }[dist]
        missing = [k for k in need if k not in nums]
        if missing:
            self.fail(f"a {dist} range needs {', '.join(need)}; missing {', '.join(missing)}", fld, key_path=where)
        lo, hi = nums.get("low"), nums.get("high")
        if lo is not None and hi is not None and not lo < hi:
            self.fail(f"low must be below high (got low {lo}, high {hi})", fld, key_path=where)
        if dist == "loguniform" and lo <= 0:
            self.fail("a loguniform range needs low > 0", fld, key_path=where)
        if dist == "triangular" and not lo <= nums["mode"] <= hi:
            self.fail("the mode must lie between low and high", fld, key_path=where)
        if dist == "normal" and nums["sd"] <= 0:
            self.fail("sd must be positive", fld, key_path=where)
        return Factor(fpath, role, None, dist, lo, hi, nums.get("mode"), nums.get("mean"), nums.get("sd"), kind)


def _norm_key(key: str) -> str:
    parts = re.findall(r""""[^"]*"|'[^']*'|[A-Za-z0-9_\-]+""", key)
    return ".".join(p.strip("\"'") for p in parts)


# --------------------------------------------------------------------- designs
def design_size(exp: Experiment) -> tuple[int, int]:
    """``(points, runs)`` of an experiment's design, counted without building it.

    Lists are crossed with the sampled points: ``grid`` takes ``levels ** D`` points for D
    ranges, ``lhs`` ``samples``, ``sobol`` ``samples * (D + 2)``, ``morris`` ``samples * (D + 1)``;
    every point runs ``replicates`` times.
    """
    combos = math.prod(len(f.values) for f in exp.factors if not f.is_range)
    d = sum(1 for f in exp.factors if f.is_range)
    if d == 0:
        sampled = 1
    elif exp.design_kind == "grid":
        sampled = exp.levels**d
    elif exp.design_kind == "lhs":
        sampled = exp.samples
    elif exp.design_kind == "sobol":
        sampled = exp.samples * (d + 2)
    else:
        sampled = exp.samples * (d + 1)
    points = combos * sampled
    return points, points * exp.replicates


def check_size(exp: Experiment, max_runs: int | None = MAX_DESIGN_RUNS) -> None:
    """Refuse, before anything is allocated, a design of more than ``max_runs`` runs (``None``: no limit).

    Raises:
        VillagesimError: one line with the design's size and what to do.
    """
    if max_runs is None:
        return
    points, runs = design_size(exp)
    if runs > max_runs:
        raise VillagesimError(
            f"{exp.path}: the design has {runs:,} runs ({points:,} points x {exp.replicates} replicates), "
            f"more than the limit of {max_runs:,}; make it smaller (fewer levels, samples or values) "
            "or pass --allow-large-design if you mean it"
        )


def _grid_axes(exp: Experiment, ranged: list[Factor]) -> list[np.ndarray]:
    """The unit-interval levels of each range of a grid."""
    axes = []
    for f in ranged:
        if f.distribution == "uniform":
            axes.append(np.linspace(0.0, 1.0, exp.levels))
        else:
            axes.append((np.arange(exp.levels) + 0.5) / exp.levels)
    return axes


def design_head(exp: Experiment, n: int = 5, max_runs: int | None = MAX_DESIGN_RUNS) -> pd.DataFrame | None:
    """The first ``n`` runs of the design, as :attr:`Design.runs` would list them.

    A grid (or a design without ranges) is decoded run by run from the run number, so a design
    of any size costs nothing; a sampled design is built when it is within ``max_runs`` and
    gives ``None`` above it.
    """
    points, runs = design_size(exp)
    n = min(int(n), runs)
    ranged = [f for f in exp.factors if f.is_range]
    if ranged and exp.design_kind != "grid":
        if max_runs is not None and runs > max_runs:
            return None
        return build_design(exp, max_runs=None).runs.head(n).reset_index(drop=True)
    listed = [f for f in exp.factors if not f.is_range]
    axes = _grid_axes(exp, ranged)
    radices = [len(f.values) for f in listed] + [len(a) for a in axes]
    rows = []
    for rid in range(n):
        point, rep = divmod(rid, exp.replicates)
        digits, rest = [], point
        for radix in reversed(radices):  # the last factor varies fastest, as in itertools.product
            rest, digit = divmod(rest, radix)
            digits.append(digit)
        digits.reverse()
        value: dict[str, Any] = {}
        for f, digit in zip(listed, digits[: len(listed)], strict=True):
            value[f.path] = f.values[digit]
        for f, axis, digit in zip(ranged, axes, digits[len(listed) :], strict=True):
            x = f.ppf(np.array([axis[digit]]))[0]
            value[f.path] = int(x) if f.kind == "int" else float(x)
        seed = exp.seed if exp.common_random_numbers else point_seed(exp.seed, point)
        rows.append(
            {"run_id": rid, "point": point, "replicate": rep, "seed": seed} | {f.path: value[f.path] for f in exp.factors}
        )
    head = pd.DataFrame(rows, columns=["run_id", "point", "replicate", "seed", *[f.path for f in exp.factors]])
    for col in ("run_id", "point", "replicate"):
        head[col] = head[col].astype("int64")
    head["seed"] = head["seed"].astype("uint64")
    for f in exp.factors:
        head[f.path] = head[f.path].astype(_dtype(f))
    return head


def build_design(exp: Experiment, max_runs: int | None = MAX_DESIGN_RUNS) -> Design:
    """The points of an experiment's design (deterministic for a given file).

    Args:
        exp: a loaded experiment.
        max_runs: refuse (before allocating anything) a design of more runs than this;
            ``None`` for no limit.

    Raises:
        VillagesimError: the design has more than ``max_runs`` runs.
    """
    check_size(exp, max_runs)
    listed = [f for f in exp.factors if not f.is_range]
    ranged = [f for f in exp.factors if f.is_range]
    combos = list(itertools.product(*[f.values for f in listed])) if listed else [()]
    unit: np.ndarray | None = None
    d = len(ranged)
    if not ranged:
        u = np.zeros((1, 0))
    elif exp.design_kind == "grid":
        u = np.array(list(itertools.product(*_grid_axes(exp, ranged))), dtype=float).reshape(-1, d)
    elif exp.design_kind == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=d, seed=np.random.default_rng(exp.design_seed)).random(exp.samples)
    else:
        problem = _unit_problem(ranged)
        if exp.design_kind == "sobol":
            from SALib.sample import sobol

            u = sobol.sample(problem, exp.samples, calc_second_order=False, seed=exp.design_seed)
        else:
            from SALib.sample import morris

            u = morris.sample(problem, exp.samples, num_levels=exp.levels, seed=exp.design_seed)
        unit = u
    columns: dict[str, list[Any]] = {f.path: [] for f in exp.factors}
    ranged_values = [f.ppf(u[:, j]) for j, f in enumerate(ranged)]
    for combo in combos:
        for f, v in zip(listed, combo, strict=True):
            columns[f.path].extend([v] * len(u))
        for f, vals in zip(ranged, ranged_values, strict=True):
            columns[f.path].extend(vals.astype(int).tolist() if f.kind == "int" else vals.tolist())
    n = len(combos) * len(u)
    points = pd.DataFrame({"point": np.arange(n, dtype=np.int64)})
    if exp.common_random_numbers:
        points["seed"] = np.full(n, exp.seed, dtype=np.uint64)
    else:
        points["seed"] = np.array([point_seed(exp.seed, p) for p in range(n)], dtype=np.uint64)
    for f in exp.factors:
        points[f.path] = pd.Series(columns[f.path], dtype=_dtype(f))
    return Design(exp, points, unit)


def _dtype(f: Factor) -> str:
    if f.kind == "int":
        return "int64"
    if f.kind == "bool":
        return "bool"
    if f.kind == "float":
        return "float64"
    return "object"


def _unit_problem(ranged: list[Factor]) -> dict[str, Any]:
    return {"num_vars": len(ranged), "names": [f.path for f in ranged], "bounds": [[0.0, 1.0]] * len(ranged)}


def describe(exp: Experiment, design: Design | None = None) -> list[str]:
    """Lines describing an experiment and its size (for ``villagesim sweep`` and ``check``).

    The size is counted (:func:`design_size`), so describing a design does not build it.
    """
    lines = [f"{exp.path}: {exp.name}", f"  base scenario: {exp.scenario_path}"]
    if exp.description:
        lines.append(f"  question:      {exp.description}")
    for f in exp.factors:
        lines.append(f"  {f.role:<12} {f.path} = {f.describe()}")
    n_points, n_runs = design_size(exp) if design is None else (len(design.points), len(design.runs))
    lines.append(
        f"  design:        {exp.design_kind}, {n_points} point(s) x {exp.replicates} replicate(s) = {n_runs} runs"
        f" of {exp.steps} weeks"
    )
    return lines
