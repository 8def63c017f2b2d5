"""Running scenarios end to end: files, columns, determinism, errors, atomicity."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SCENARIOS, write
from villagesim.cli.main import main
from villagesim.config.loading import load_scenario
from villagesim.model import VillageModel
from villagesim.outputs.sums import COLUMNS
from villagesim.runs.folder import atomic_folder
from villagesim.runs.runner import run_scenario

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

REQUIRED = (
    "step, replicate, residents, elders, need_hours, met_hours_family, met_hours_volunteer, met_hours_peer, "
    "met_hours_facility, met_hours_ngo, unmet_need_share, elders_with_unmet_need, requests, matched_requests, "
    "active_volunteers, volunteer_hours, mean_trust, mean_awareness, mean_satisfaction, emergencies, deaths"
).split(", ")


def test_cli_run_writes_every_file(tmp_path):
    out = tmp_path / "base"
    assert (
        main(["run", str(SCENARIOS / "baseline.toml"), "--out", str(out), "--steps", "30", "--replicates", "2", "--quiet"]) == 0
    )
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert set(REQUIRED) <= set(ts.columns)
    assert len(ts) == 60 and sorted(ts["replicate"].unique()) == [0, 1]
    vs = pd.read_parquet(out / "villages.parquet")
    assert {"step", "replicate", "village", *REQUIRED} <= set(vs.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 42 and summary["replicates"] == 2 and len(summary["scenario_hash"]) == 64
    assert "villagesim_version" in summary and "unmet_need_share" in summary["outcomes"]
    assert load_scenario(out / "scenario.toml").scenario.run.steps == 30
    for fig in ("unmet_need_share", "met_hours_by_source", "active_volunteers", "mean_trust"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    assert not list(tmp_path.glob(".*partial*"))


def test_same_seed_same_numbers_different_seed_differs(tmp_path):
    args = ["run", str(SCENARIOS / "baseline.toml"), "--steps", "40", "--quiet"]
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert main([*args, "--seed", seed, "--out", str(tmp_path / name)]) == 0
    a, b, c = (pd.read_parquet(tmp_path / n / "timeseries.parquet") for n in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a[COLUMNS].equals(c[COLUMNS])
    assert (a["unmet_need_share"] != c["unmet_need_share"]).any()


def test_replicates_are_independent_of_how_many_are_run():
    s = load_scenario(SCENARIOS / "baseline.toml").scenario
    three = run_scenario(s, replicates=3, steps=15).timeseries
    one = run_scenario(s, replicates=1, steps=15).timeseries
    pd.testing.assert_frame_equal(three[three.replicate == 0].reset_index(drop=True), one)
    r1 = three[three.replicate == 1]["active_volunteers"].to_numpy()
    assert not np.array_equal(r1, one["active_volunteers"].to_numpy())


@pytest.mark.parametrize(
    "text",
    [
        "[run\nsteps = 3\n",
        "[run]\nsteps = 'many'\n",
        "[run]\nsteps = -4\n",
        "[run]\nstesp = 4\n",
        'extends = "missing.toml"\n',
    ],
    ids=["syntax", "type", "range", "unknown-key", "missing-extends"],
)
def test_bad_file_one_line_no_traceback_no_results(tmp_path, text):
    path = write(tmp_path, "bad.toml", text)
    out = tmp_path / "out"
    for cmd in (["check", str(path)], ["run", str(path), "--out", str(out)]):
        proc = subprocess.run([sys.executable, "-m", "villagesim", *cmd], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("villagesim: error: ") and str(path) in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    assert not out.exists() and not any(tmp_path.glob(".out*"))


def test_bad_command_line_value_is_one_line(tmp_path, capsys):
    assert main(["run", str(SCENARIOS / "baseline.toml"), "--steps", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "run.steps" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_failed_run_leaves_nothing(tmp_path):
    target = tmp_path / "res"
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "timeseries.parquet").write_text("half")
        raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_failed_rerun_keeps_previous_result(tmp_path):
    target = tmp_path / "res"
    with atomic_folder(target) as tmp:
        (tmp / "summary.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as tmp:
        raise KeyboardInterrupt
    assert (target / "summary.json").exists() and len(list(tmp_path.iterdir())) == 1


def test_mesa_agents_are_views_on_the_person_table(small):
    model = VillageModel(small)
    model.step()
    elders = model.elders()
    assert len(elders) == model.latest["elders"]
    elder = list(elders)[0]
    elder.trust = 0.123
    assert model.world.persons.trust[elder.row] == pytest.approx(0.123)
    vols = model.volunteers()
    assert len(vols) == model.latest["volunteer_candidates"]
    assert len(model.committees) == 1 and model.committees[0].requests_per_week == 19


def test_intervention_changes_lever_at_its_step(tmp_path):
    path = write(
        tmp_path,
        "i.toml",
        f'extends = "{(SCENARIOS / "baseline.toml").as_posix()}"\n[[intervention]]\nstep = 5\nset = {{ "policy.publicity" = 0.8 }}\n',
    )
    model = VillageModel(path, steps=6)
    for _ in range(4):
        model.step()
    assert model.scenario.policy.publicity == 0.0
    model.step()
    assert model.scenario.policy.publicity == 0.8 and model.applied_interventions == [(5, {"policy.publicity": 0.8})]


@pytest.mark.slow
def test_severe_hollowing_fewer_volunteers_more_unmet_need_at_year_10():
    """Over 12 replicates on common random numbers, the severe scenario at year 10 (mean of
    the last 13 weeks) has fewer active volunteers and a higher unmet need share; the paired
    differences must be positive in at least 10 of 12 replicates."""
    base = load_scenario(SCENARIOS / "baseline.toml").scenario
    severe = load_scenario(SCENARIOS / "hollowing_severe.toml").scenario
    n = 12
    a = run_scenario(base, replicates=n).timeseries
    b = run_scenario(severe, replicates=n).timeseries
    last = a["step"].max() - 13

    def year10(ts, col):
        return ts[ts.step > last].groupby("replicate")[col].mean().to_numpy()

    dv = year10(a, "active_volunteers") - year10(b, "active_volunteers")
    du = year10(b, "unmet_need_share") - year10(a, "unmet_need_share")
    assert (dv > 0).sum() >= 10 and dv.mean() > 0, dv
    assert (du > 0).sum() >= 10 and du.mean() > 0, du
