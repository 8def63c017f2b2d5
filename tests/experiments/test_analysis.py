"""Analysis of sweeps: PRIM on data with a known box, correlation ratios, Sobol and Morris on
designs whose outcome is a known function of the inputs, and ``villagesim analyze`` end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SCENARIOS, write
from villagesim.cli.main import main
from villagesim.experiments.analysis import analyze, correlation_ratio, prim
from villagesim.experiments.design import build_design, load_experiment
from villagesim.experiments.sweep import SweepStore, TaskResult, sweep

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def test_prim_finds_a_known_box():
    """Cases are x0 > 0.6 and x1 < 0.3 (x2 is noise), with 3% of labels flipped. Asking for a
    density of 90%. Tolerances: the box edges within 0.05 of the truth, x2 left free, density
    >= 0.9, coverage at least 95% of the true box's."""
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.uniform(size=(3000, 3)), columns=["x0", "x1", "x2"])
    truth = ((x["x0"] > 0.6) & (x["x1"] < 0.3)).to_numpy()
    y = truth ^ (rng.uniform(size=3000) < 0.03)
    best_coverage = y[truth].sum() / y.sum()  # flipped labels outside the true box cap the coverage (~0.82)
    res = prim(x, y, min_density=0.9)
    lim = res.box.limits
    assert set(lim) == {"x0", "x1"}, res.box.describe()
    assert abs(lim["x0"][0] - 0.6) < 0.05 and not np.isfinite(lim["x0"][1])
    assert abs(lim["x1"][1] - 0.3) < 0.05 and not np.isfinite(lim["x1"][0])
    assert res.box.density >= 0.9 and res.box.coverage >= 0.95 * best_coverage
    assert res.trajectory[0].coverage == 1.0 and res.trajectory[0].mass == 1.0
    assert "x0 >=" in res.box.describe() and "x1 <=" in res.box.describe()


def test_prim_restricts_categories():
    """Cases are allocation 'adaptive' with a guarantee above 0.5 (no noise): the box must say so."""
    rng = np.random.default_rng(2)
    x = pd.DataFrame(
        {
            "allocation": rng.choice(["fixed", "adaptive", "mixed"], 1200),
            "guarantee": rng.uniform(size=1200),
            "enabled": rng.choice([False, True], 1200),
        }
    )
    y = ((x["allocation"] == "adaptive") & (x["guarantee"] > 0.5)).to_numpy()
    res = prim(x, y, min_density=0.95)
    assert res.box.limits["allocation"] == ("adaptive",)
    assert abs(res.box.limits["guarantee"][0] - 0.5) < 0.05
    assert "enabled" not in res.box.limits
    assert res.box.density >= 0.95 and res.box.coverage >= 0.9


def test_correlation_ratio_separates_a_driver_from_noise():
    """eta^2 of y = 3 x + noise on x is near its true 0.9; on an unrelated input it is near 0
    (bias-corrected). Tolerances: 0.8..0.95 and below 0.05."""
    rng = np.random.default_rng(3)
    x = pd.Series(rng.uniform(size=400))
    other = pd.Series(rng.uniform(size=400))
    y = pd.Series(3 * x + rng.normal(0, np.sqrt(0.75 / 9), 400))  # Var(3x) = 0.75, noise var 0.083
    assert 0.8 < correlation_ratio(x, y) < 0.95
    assert correlation_ratio(other, y) < 0.05
    assert correlation_ratio(pd.Series([True, False] * 200), pd.Series([1.0, 0.0] * 200)) == pytest.approx(1.0)


def _synthetic_sweep(tmp_path: Path, kind: str, extra: str, f) -> Path:
    """A sweep store whose outcome is a known function of the design's inputs (no model runs),
    to check that indices come out for the right inputs in the right order."""
    path = write(
        tmp_path,
        f"{kind}.toml",
        f'scenario = "{SCENARIOS / "baseline.toml"}"\nreplicates = 1\nsteps = 5\noutcomes = ["unmet_need_share"]\n'
        '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.0, high = 0.1 }\n'
        '"behaviour.ask_trust" = { low = 0.0, high = 1.0 }\n"committee.admin_burden" = { low = 0.0, high = 1.0 }\n'
        f'[design]\nkind = "{kind}"\n{extra}',
    )
    exp = load_experiment(path)
    design = build_design(exp)
    store = SweepStore(tmp_path / kind)
    store.initialise(exp, design, exp.steps)
    runs = design.runs
    summary = runs.copy()
    summary["unmet_need_share"] = f(
        runs["hollowing_out.outmigration_rate"] / 0.1, runs["behaviour.ask_trust"], runs["committee.admin_burden"]
    )
    store.write(TaskResult(runs["run_id"].tolist(), summary, None, [], 0.0))
    return tmp_path / kind


def test_sobol_indices_of_a_known_function(tmp_path):
    """y = 4 a + 2 b (+ 0 c) on uniform inputs: S1 = ST = 16/20, 4/20, 0. Tolerance 0.1 each,
    and the interval of each total index covers its true value within 0.1."""
    folder = _synthetic_sweep(tmp_path, "sobol", "samples = 512\n", lambda a, b, c: 4 * a + 2 * b + 0 * c)
    result = analyze(folder)
    s = result.indices[result.indices["method"] == "sobol"].set_index("parameter")
    truth = {"hollowing_out.outmigration_rate": 0.8, "behaviour.ask_trust": 0.2, "committee.admin_burden": 0.0}
    for name, value in truth.items():
        assert s.loc[name, "S1"] == pytest.approx(value, abs=0.1)
        assert s.loc[name, "ST"] == pytest.approx(value, abs=0.1)
        assert s.loc[name, "ST_conf"] < 0.1
    assert result.top[:2] == ["hollowing_out.outmigration_rate", "behaviour.ask_trust"]


def test_morris_ranks_a_known_function(tmp_path):
    """y = 5 a + b^2 on unit-scaled inputs: mu* of a is 5 (exact: linear), b is next, c is 0."""
    folder = _synthetic_sweep(tmp_path, "morris", "samples = 20\nlevels = 4\n", lambda a, b, c: 5 * a + b**2)
    result = analyze(folder)
    m = result.indices[result.indices["method"] == "morris"].set_index("parameter")
    assert m.loc["hollowing_out.outmigration_rate", "mu_star"] == pytest.approx(5.0, rel=1e-6)
    assert 0 < m.loc["behaviour.ask_trust", "mu_star"] < 2
    assert m.loc["committee.admin_burden", "mu_star"] == pytest.approx(0.0, abs=1e-9)
    assert result.top[0] == "hollowing_out.outmigration_rate"


def test_incomplete_sobol_sweep_falls_back_to_eta2(tmp_path):
    folder = _synthetic_sweep(tmp_path, "sobol", "samples = 8\n", lambda a, b, c: a)
    store = SweepStore(folder)
    kept = store.summaries().iloc[:20]
    for p in [*(folder / "runs").glob("part-*.parquet"), *(folder / "manifests").glob("part-*.json")]:
        p.unlink()  # the task's summaries and its manifest (the mark that it is done)
    store = SweepStore(folder)
    store.write(TaskResult(kept["run_id"].tolist(), kept, None, [], 0.0))
    result = analyze(folder)
    assert set(result.indices["method"]) == {"eta2"}
    assert any("need every point" in n for n in result.notes)


def test_analyze_command_on_a_real_sweep(tmp_path, capsys):
    write(tmp_path, "village.toml", 'name = "v"\n[run]\nsteps = 16\n[population]\nresidents_per_village = 300\n')
    path = write(
        tmp_path,
        "exp.toml",
        'scenario = "village.toml"\nreplicates = 2\nwindow = 8\noutcomes = ["unmet_need_share", "requests"]\n'
        '[levers]\n"policy.publicity" = [0.0, 1.0]\n'
        '[uncertainties]\n"behaviour.ask_trust" = { low = 0.0, high = 4.0 }\n"committee.admin_burden" = { low = 0.3, high = 0.9 }\n'
        '[design]\nkind = "lhs"\nsamples = 8\n[discovery]\noutcome = "requests"\nthreshold = 3.0\n',
    )
    sweep(load_experiment(path), tmp_path / "s", progress=False)
    assert main(["analyze", str(tmp_path / "s")]) == 0
    text = capsys.readouterr().out
    assert "eta2 indices for requests" in text and "where is requests above 3?" in text
    out = tmp_path / "s" / "analysis"
    sens = pd.read_csv(out / "sensitivity.csv")
    assert set(sens["parameter"]) == {"policy.publicity", "behaviour.ask_trust", "committee.admin_burden"}
    for fig in ("scatter_requests", "heatmap_requests", "discovery_tradeoff"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    points = pd.read_csv(out / "points.csv")
    assert len(points) == 16 and (points["replicates"] == 2).all()
    box = pd.read_csv(out / "discovery_box.csv")
    assert list(box.columns) == ["parameter", "low", "high", "values"]
    # the threshold can be given on the command line, for another outcome
    assert main(["analyze", str(tmp_path / "s"), "--outcome", "unmet_need_share", "--threshold", "0.0"]) == 0
    assert main(["analyze", str(tmp_path / "s"), "--outcome", "deaths"]) == 2
    assert "was not kept by this sweep" in capsys.readouterr().err
