"""Analysing a sweep: sensitivity indices, the most influential inputs, scenario discovery.

* **Sobol** (``sobol`` designs): first-order (S1) and total (ST) indices with bootstrap 95%
  intervals, from SALib.
* **Morris** (``morris`` designs): mu*, its 95% interval and sigma, from SALib, with the
  factors scaled to the unit interval (so mu* compares factors across their whole ranges).
* **Any design**: the correlation ratio eta^2 = Var(E[Y | X_i]) / Var(Y) of each input (bias
  corrected), with numeric inputs grouped in up to 8 quantile bins: the share of the outcome's
  variance that input alone explains. It ranks inputs where no variance-based design was run.
* **Scenario discovery** with PRIM (Friedman and Fisher 1999), implemented here: which ranges
  of the inputs hold the runs where an outcome crosses a threshold ("where does unmet need
  exceed 20%?"). Peeling removes a share ``alpha`` of the box at a time (or one category of a
  categorical input), choosing the peel that gains the most density per run removed, so a
  large categorical peel must earn its size; pasting then widens the chosen box while the
  density does not fall.

Each run's outcome is averaged over its replicates before analysis (a design point is one
row), so noise between replicates does not masquerade as sensitivity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from villagesim.errors import VillagesimError
from villagesim.experiments.sweep import SweepStore
from villagesim.runs.folder import atomic_folder, write_json

__all__ = ["PrimBox", "PrimResult", "prim", "correlation_ratio", "point_table", "sensitivity", "analyze"]


# --------------------------------------------------------------------- PRIM
@dataclass
class PrimBox:
    """A box in input space and how well it captures the cases of interest.

    Attributes:
        limits: per input, ``(low, high)`` for a numeric input or the tuple of kept values
            for a categorical one; only restricted inputs appear.
        coverage: share of all cases that lie in the box.
        density: share of the runs in the box that are cases.
        mass: share of all runs that lie in the box.
        n: runs in the box.
    """

    limits: dict[str, Any]
    coverage: float
    density: float
    mass: float
    n: int

    def describe(self) -> str:
        """The restrictions in words: ``a >= 0.07 and b in {x, y}``."""
        parts = []
        for name, lim in self.limits.items():
            if isinstance(lim, tuple) and len(lim) == 2 and all(isinstance(v, float) for v in lim):
                lo, hi = lim
                if np.isfinite(lo) and np.isfinite(hi):
                    parts.append(f"{lo:.4g} <= {name} <= {hi:.4g}")
                elif np.isfinite(lo):
                    parts.append(f"{name} >= {lo:.4g}")
                else:
                    parts.append(f"{name} <= {hi:.4g}")
            else:
                parts.append(f"{name} in {{{', '.join(str(v) for v in lim)}}}")
        return " and ".join(parts) if parts else "(the whole input space)"


@dataclass
class PrimResult:
    """The peeling trajectory and the chosen (pasted) box."""

    trajectory: list[PrimBox]
    box: PrimBox
    chosen: int
    cases: int
    total: int
    notes: list[str] = field(default_factory=list)

    def trajectory_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"step": i, "coverage": b.coverage, "density": b.density, "mass": b.mass, "n": b.n, "box": b.describe()}
                for i, b in enumerate(self.trajectory)
            ]
        )


class _Space:
    """Inputs prepared for PRIM: numeric columns as floats, others as category codes."""

    def __init__(self, x: pd.DataFrame) -> None:
        self.names = list(x.columns)
        self.numeric: dict[str, np.ndarray] = {}
        self.categorical: dict[str, tuple[np.ndarray, list[Any]]] = {}
        for name in self.names:
            col = x[name]
            if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
                cats = sorted(col.unique().tolist(), key=str)
                codes = np.array([cats.index(v) for v in col.tolist()])
                self.categorical[name] = (codes, cats)
            else:
                self.numeric[name] = col.to_numpy(dtype=float)

    def full(self) -> dict[str, Any]:
        lim: dict[str, Any] = {n: (-np.inf, np.inf) for n in self.numeric}
        lim.update({n: frozenset(range(len(c))) for n, (_, c) in self.categorical.items()})
        return lim

    def mask(self, lim: dict[str, Any]) -> np.ndarray:
        n = len(next(iter(self.numeric.values()))) if self.numeric else len(next(iter(self.categorical.values()))[0])
        m = np.ones(n, dtype=bool)
        for name, (lo, hi) in ((k, v) for k, v in lim.items() if k in self.numeric):
            v = self.numeric[name]
            m &= (v >= lo) & (v <= hi)
        for name, keep in ((k, v) for k, v in lim.items() if k in self.categorical):
            m &= np.isin(self.categorical[name][0], list(keep))
        return m

    def public(self, lim: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.names:
            if name in self.numeric:
                lo, hi = lim[name]
                if np.isfinite(lo) or np.isfinite(hi):
                    out[name] = (float(lo), float(hi))
            else:
                codes, cats = self.categorical[name]
                if len(lim[name]) < len(cats):
                    out[name] = tuple(cats[i] for i in sorted(lim[name]))
        return out


def prim(
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    alpha: float = 0.05,
    mass_min: float = 0.05,
    min_density: float = 0.8,
) -> PrimResult:
    """Patient Rule Induction: a box of inputs where ``y`` (True = case of interest) is dense.

    Args:
        x: inputs, one column each (numeric, boolean or text).
        y: booleans, one per row of ``x``.
        alpha: share of the box peeled (or pasted) per step.
        mass_min: stop peeling when the box would hold less than this share of all rows.
        min_density: the chosen box is the one of highest coverage with at least this
            density (or, if none reaches it, the densest).

    Raises:
        VillagesimError: when there are no inputs or no cases.
    """
    y = np.asarray(y, dtype=bool)
    if x.shape[1] == 0:
        raise VillagesimError("scenario discovery needs at least one varied input")
    total, cases = len(y), int(y.sum())
    if cases == 0:
        raise VillagesimError("no run meets the threshold: nothing to discover")
    space = _Space(x.reset_index(drop=True))

    def score(lim: dict[str, Any]) -> PrimBox:
        m = space.mask(lim)
        n = int(m.sum())
        hits = int(y[m].sum())
        return PrimBox(space.public(lim), hits / cases, hits / n if n else 0.0, n / total, n)

    lim = space.full()
    trajectory = [score(lim)]
    limits = [dict(lim)]
    while True:
        m = space.mask(lim)
        n_box = int(m.sum())
        current = y[m].mean()
        best: tuple[float, int, dict[str, Any]] | None = None
        for cand in _peels(space, lim, m, alpha):
            cm = space.mask(cand)
            n_new = int(cm.sum())
            if n_new < mass_min * total or n_new >= n_box or n_new == 0:
                continue
            gain = (float(y[cm].mean()) - current) / (n_box - n_new)  # density gained per run peeled off
            key = (gain, n_new)
            if best is None or key > best[:2]:
                best = (key[0], key[1], cand)
        if best is None or best[0] <= 0:
            break
        lim = best[2]
        limits.append(dict(lim))
        trajectory.append(score(lim))
    ok = [i for i, b in enumerate(trajectory) if b.density >= min_density]
    notes = []
    if ok:
        chosen = max(ok, key=lambda i: (trajectory[i].coverage, trajectory[i].density))
    else:
        chosen = max(range(len(trajectory)), key=lambda i: (trajectory[i].density, trajectory[i].coverage))
        notes.append(f"no box reaches density {min_density:.0%}; showing the densest")
    lim = _paste(space, y, limits[chosen], alpha)
    return PrimResult(trajectory, score(lim), chosen, cases, total, notes)


def _peels(space: _Space, lim: dict[str, Any], m: np.ndarray, alpha: float) -> list[dict[str, Any]]:
    out = []
    for name, v_all in space.numeric.items():
        v = v_all[m]
        uniq = np.unique(v)
        if len(uniq) < 2:
            continue
        lo_q, hi_q = np.quantile(v, alpha), np.quantile(v, 1 - alpha)
        new_lo = lo_q if (v < lo_q).any() else uniq[1]  # ties: peel the smallest value
        new_hi = hi_q if (v > hi_q).any() else uniq[-2]
        out.append({**lim, name: (float(new_lo), lim[name][1])})
        out.append({**lim, name: (lim[name][0], float(new_hi))})
    for name, (codes, _) in space.categorical.items():
        present = set(np.unique(codes[m]).tolist()) & set(lim[name])
        if len(present) < 2:
            continue
        for c in present:
            out.append({**lim, name: frozenset(present - {c})})
    return out


def _paste(space: _Space, y: np.ndarray, lim: dict[str, Any], alpha: float) -> dict[str, Any]:
    """Widen a box along one restriction at a time while its density does not fall."""
    lim = dict(lim)
    while True:
        m = space.mask(lim)
        current, n_box = y[m].mean(), int(m.sum())
        step = max(1, int(np.ceil(alpha * n_box)))
        best = None
        for name, v_all in space.numeric.items():
            lo, hi = lim[name]
            others = space.mask({**lim, name: (-np.inf, np.inf)})
            below = np.sort(v_all[others & (v_all < lo)])
            above = np.sort(v_all[others & (v_all > hi)])
            cands = []
            if np.isfinite(lo):
                cands.append({**lim, name: (float(below[-step]) if len(below) >= step else -np.inf, hi)})
            if np.isfinite(hi):
                cands.append({**lim, name: (lo, float(above[step - 1]) if len(above) >= step else np.inf)})
            for cand in cands:
                cm = space.mask(cand)
                if cm.sum() > n_box:
                    key = (float(y[cm].mean()), int(cm.sum()))
                    if key[0] >= current and (best is None or key > best[:2]):
                        best = (*key, cand)
        for name, (_codes, cats) in space.categorical.items():
            for c in set(range(len(cats))) - set(lim[name]):
                cand = {**lim, name: frozenset(set(lim[name]) | {c})}
                cm = space.mask(cand)
                key = (float(y[cm].mean()), int(cm.sum()))
                if key[1] > n_box and key[0] >= current and (best is None or key > best[:2]):
                    best = (*key, cand)
        if best is None:
            return lim
        lim = best[2]


# --------------------------------------------------------------------- importance
def correlation_ratio(x: pd.Series, y: pd.Series, bins: int = 8) -> float:
    """Share of the variance of ``y`` explained by the groups of ``x`` (bias-corrected eta^2).

    Numeric ``x`` with more distinct values than groups is cut into quantile bins, at most
    ``bins`` and about five points per bin. The plain eta^2 grows with the number of groups
    even for an input without effect, so the estimate is corrected as epsilon^2 =
    (SS_between - (k - 1) MS_within) / SS_total and clipped at zero.
    """
    yv = y.to_numpy(dtype=float)
    n = len(yv)
    ss_total = float(((yv - yv.mean()) ** 2).sum())
    if n < 3 or ss_total <= 0:
        return 0.0
    k_max = int(np.clip(n // 5, 2, bins))
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) and x.nunique() > k_max:
        groups = np.asarray(pd.qcut(x.rank(method="first"), k_max, labels=False))
    else:
        groups = np.asarray(x.astype(str))
    means = pd.Series(yv).groupby(groups).transform("mean").to_numpy()
    k = len(np.unique(groups))
    if k < 2 or k >= n:
        return 0.0
    ss_between = float(((means - yv.mean()) ** 2).sum())
    ms_within = (ss_total - ss_between) / (n - k)
    return float(max(0.0, (ss_between - (k - 1) * ms_within) / ss_total))


def point_table(store: SweepStore) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per design point with at least one finished run: inputs, outcome means over replicates."""
    info = store.info()
    summaries = store.summaries()
    if summaries.empty:
        raise VillagesimError(f"{store.folder} holds no finished runs yet; run the sweep first")
    paths = [f["path"] for f in info["factors"]]
    outcomes = info["outcomes"]
    grouped = summaries.groupby("point")
    table = grouped[paths].first() if paths else pd.DataFrame(index=grouped.size().index)
    table = table.join(grouped[outcomes].mean())
    table["replicates"] = grouped.size()
    return table.reset_index(), info


def sensitivity(store: SweepStore, table: pd.DataFrame, info: dict[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Indices for every outcome: Sobol or Morris where the design allows, and eta^2 always."""
    notes: list[str] = []
    paths = [f["path"] for f in info["factors"]]
    rows: list[dict[str, Any]] = []
    n_points = int(info["points"])
    complete = len(table) == n_points
    kind = info["design"]
    if kind in ("sobol", "morris") and not complete:
        notes.append(
            f"{kind} indices need every point of the design; {n_points - len(table)} of {n_points} points have no "
            "finished run (a --max-runs sweep or failed runs), so only eta^2 is given"
        )
    if kind in ("sobol", "morris") and complete:
        problem = _unit_problem(info)  # the unit-cube problem the design was sampled in
        for o in info["outcomes"]:
            y = table.sort_values("point")[o].to_numpy(dtype=float)
            if np.ptp(y) == 0:
                notes.append(f"{o} does not vary over the design; no indices")
                continue
            unit = np.load(store.folder / "design_unit.npy") if kind == "morris" else None
            for row in salib_indices(kind, problem, y, int(info["design_seed"]), unit, int(info.get("levels") or 0)):
                rows.append({"outcome": o, "parameter": row["parameter"], "method": kind, **row})
    for o in info["outcomes"]:
        for name in paths:
            rows.append({"outcome": o, "parameter": name, "method": "eta2", "eta2": correlation_ratio(table[name], table[o])})
    return pd.DataFrame(rows), notes


def _unit_problem(info: dict[str, Any]) -> dict[str, Any]:
    return unit_problem([f["path"] for f in info["factors"] if f["range"]])


def unit_problem(names: list[str]) -> dict[str, Any]:
    """SALib's problem of these factors in the unit hypercube (designs are sampled there)."""
    return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}


SALIB_COLUMNS = {
    "sobol": ("S1", "S1_conf", "ST", "ST_conf"),
    "morris": ("mu", "mu_star", "mu_star_conf", "sigma"),
}
"""The indices each SALib method gives per factor, in the order of the tables."""


def salib_indices(
    method: str, problem: dict[str, Any], y: np.ndarray, seed: int, unit: np.ndarray | None = None, levels: int = 0
) -> list[dict[str, Any]]:
    """One row per factor of ``problem`` (``parameter`` and the :data:`SALIB_COLUMNS` of
    ``method``): Sobol S1/ST (first and total order, no second order) or Morris mu, mu*, sigma
    (of the design points ``unit`` on ``levels`` levels), with bootstrap 95% intervals."""
    if method == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, y, calc_second_order=False, conf_level=0.95, seed=seed)
    else:
        from SALib.analyze import morris

        res = morris.analyze(problem, unit, y, conf_level=0.95, num_levels=levels, seed=seed)
    return [
        {"parameter": name, **{k: float(res[k][i]) for k in SALIB_COLUMNS[method]}} for i, name in enumerate(problem["names"])
    ]


def ranking(indices: pd.DataFrame, outcome: str) -> list[str]:
    """Inputs ordered by influence on ``outcome``: ST (Sobol), mu* (Morris), else eta^2."""
    sub = indices[indices["outcome"] == outcome]
    for method, col in (("sobol", "ST"), ("morris", "mu_star"), ("eta2", "eta2")):
        part = sub[sub["method"] == method]
        if len(part):
            return part.sort_values(col, ascending=False)["parameter"].tolist()
    return []


# --------------------------------------------------------------------- the command
@dataclass
class Analysis:
    """What :func:`analyze` wrote and found."""

    folder: Path
    indices: pd.DataFrame
    top: list[str]
    outcome: str
    discovery: PrimResult | None
    threshold: float | None
    direction: str
    notes: list[str]
    points: int
    runs: int
    failed: int


def analyze(
    folder: str | Path,
    *,
    outcome: str | None = None,
    threshold: float | None = None,
    direction: str | None = None,
    min_density: float = 0.8,
) -> Analysis:
    """Analyse a sweep folder; write ``analysis/`` inside it (replaced atomically)."""
    store = SweepStore(folder)
    table, info = point_table(store)
    outcomes = info["outcomes"]
    disc = info.get("discovery") or {}
    outcome = outcome or disc.get("outcome") or outcomes[0]
    if outcome not in outcomes:
        raise VillagesimError(f"outcome {outcome!r} was not kept by this sweep; it kept: {', '.join(outcomes)}")
    if threshold is None and disc.get("outcome") == outcome:
        threshold = disc.get("threshold")
    direction = direction or disc.get("direction") or "above"
    if direction not in ("above", "below"):
        raise VillagesimError("--direction must be 'above' or 'below'")
    indices, notes = sensitivity(store, table, info)
    paths = [f["path"] for f in info["factors"] if table[f["path"]].nunique() > 1]  # constant in a quick look: not an input
    top = [p for p in ranking(indices, outcome) if p in paths]
    result = None
    if threshold is not None and paths:
        y = (table[outcome] > threshold) if direction == "above" else (table[outcome] < threshold)
        if y.any():
            result = prim(table[paths], y.to_numpy(), min_density=min_density)
            notes.extend(result.notes)
        else:
            notes.append(f"no design point has {outcome} {direction} {threshold}: nothing to discover")
    elif threshold is not None:
        notes.append("no input varies over the finished runs: nothing to discover")
    n_failed = len(store.failed_ids())
    out = store.folder / "analysis"
    with atomic_folder(out, kind="analysis") as tmp:
        indices.to_csv(tmp / "sensitivity.csv", index=False)
        table.to_csv(tmp / "points.csv", index=False)
        figs = tmp / "figures"
        figs.mkdir()
        if top:
            _influence_figures(table, top[:2], outcome, figs)
        if result is not None:
            result.trajectory_frame().to_csv(tmp / "discovery_trajectory.csv", index=False)
            _box_frame(result).to_csv(tmp / "discovery_box.csv", index=False)
            _tradeoff_figure(result, figs / "discovery_tradeoff.png", f"{outcome} {direction} {threshold}")
        write_json(
            {
                "outcome": outcome,
                "threshold": threshold,
                "direction": direction,
                "top_inputs": top,
                "notes": notes,
                "points": len(table),
                "design_points": info["points"],
                "failed_runs": n_failed,
                "box": None
                if result is None
                else {
                    "restrictions": result.box.describe(),
                    "coverage": result.box.coverage,
                    "density": result.box.density,
                    "mass": result.box.mass,
                    "runs": result.box.n,
                },
            },
            tmp / "analysis.json",
        )
    return Analysis(
        out, indices, top, outcome, result, threshold, direction, notes, len(table), int(table["replicates"].sum()), n_failed
    )


def _box_frame(result: PrimResult) -> pd.DataFrame:
    rows = []
    for name, lim in result.box.limits.items():
        if isinstance(lim, tuple) and len(lim) == 2 and all(isinstance(v, float) for v in lim):
            rows.append({"parameter": name, "low": lim[0], "high": lim[1], "values": ""})
        else:
            rows.append({"parameter": name, "low": np.nan, "high": np.nan, "values": ", ".join(str(v) for v in lim)})
    return pd.DataFrame(rows, columns=["parameter", "low", "high", "values"])


def _numeric(s: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float), None
    cats = sorted(s.astype(str).unique().tolist())
    return np.array([cats.index(v) for v in s.astype(str)], dtype=float), cats


def _influence_figures(table: pd.DataFrame, top: list[str], outcome: str, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = table[outcome].to_numpy(dtype=float)
    x1, c1 = _numeric(table[top[0]])
    if len(top) == 1:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        ax.scatter(x1, y, s=14, alpha=0.7)
        ax.set_xlabel(top[0])
        ax.set_ylabel(outcome)
        if c1:
            ax.set_xticks(range(len(c1)), c1)
        ax.set_title(f"{outcome} over the most influential input")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(folder / f"scatter_{outcome}.png", dpi=110)
        plt.close(fig)
        return
    x2, c2 = _numeric(table[top[1]])
    rng = np.random.default_rng(0)  # jitter for the figure only: discrete values would overlap
    j1 = (
        (rng.uniform(-0.15, 0.15, len(x1)) * (np.ptp(x1) / max(1, len(np.unique(x1)) - 1) or 1))
        if len(np.unique(x1)) <= 12
        else 0
    )
    j2 = (
        (rng.uniform(-0.15, 0.15, len(x2)) * (np.ptp(x2) / max(1, len(np.unique(x2)) - 1) or 1))
        if len(np.unique(x2)) <= 12
        else 0
    )
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sc = ax.scatter(x1 + j1, x2 + j2, c=y, s=18, cmap="viridis")
    fig.colorbar(sc, ax=ax, label=outcome)
    ax.set_xlabel(top[0])
    ax.set_ylabel(top[1])
    if c1:
        ax.set_xticks(range(len(c1)), c1)
    if c2:
        ax.set_yticks(range(len(c2)), c2)
    ax.set_title(f"{outcome} over the two most influential inputs")
    fig.tight_layout()
    fig.savefig(folder / f"scatter_{outcome}.png", dpi=110)
    plt.close(fig)

    def edges(x: np.ndarray) -> np.ndarray:
        u = np.unique(x)
        if len(u) <= 10:
            mids = (u[1:] + u[:-1]) / 2 if len(u) > 1 else np.array([])
            return np.r_[
                u[0] - 0.5 if len(u) == 1 else u[0] - (mids[0] - u[0]),
                mids,
                u[-1] + (u[-1] - mids[-1]) if len(u) > 1 else u[0] + 0.5,
            ]
        return np.quantile(x, np.linspace(0, 1, 9))

    e1, e2 = edges(x1), edges(x2)
    i1 = np.clip(np.searchsorted(e1, x1, side="right") - 1, 0, len(e1) - 2)
    i2 = np.clip(np.searchsorted(e2, x2, side="right") - 1, 0, len(e2) - 2)
    grid = np.full((len(e2) - 1, len(e1) - 1), np.nan)
    frame = pd.DataFrame({"i1": i1, "i2": i2, "y": y}).groupby(["i2", "i1"])["y"].mean()
    for (a, b), v in frame.items():
        grid[a, b] = v
    fig, ax = plt.subplots(figsize=(6.5, 5))
    mesh = ax.pcolormesh(e1, e2, grid, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label=f"mean {outcome}")
    ax.set_xlabel(top[0])
    ax.set_ylabel(top[1])
    if c1:
        ax.set_xticks(range(len(c1)), c1)
    if c2:
        ax.set_yticks(range(len(c2)), c2)
    ax.set_title(f"Mean {outcome} by the two most influential inputs")
    fig.tight_layout()
    fig.savefig(folder / f"heatmap_{outcome}.png", dpi=110)
    plt.close(fig)


def _tradeoff_figure(result: PrimResult, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.trajectory_frame()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    sc = ax.scatter(t["coverage"], t["density"], c=t["step"], cmap="viridis", s=20)
    ax.scatter([result.box.coverage], [result.box.density], marker="*", s=200, color="#c44e52", label="chosen box (pasted)")
    fig.colorbar(sc, ax=ax, label="peeling step")
    ax.set_xlabel("coverage (share of cases in the box)")
    ax.set_ylabel("density (share of the box that are cases)")
    ax.set_title(f"PRIM: {title}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
