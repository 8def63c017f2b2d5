"""Experiment files: validation errors that name file, line and field; the designs they make."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SCENARIOS, write
from villagesim.cli.main import main
from villagesim.errors import ScenarioError
from villagesim.experiments.design import build_design, load_experiment, point_seed

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

EXPERIMENTS = ROOT / "experiments"
HEAD = f'name = "t"\nscenario = "{SCENARIOS / "baseline.toml"}"\nreplicates = 2\nsteps = 10\n'


def load(tmp_path: Path, body: str):
    return load_experiment(write(tmp_path, "exp.toml", HEAD + body))


def error(tmp_path: Path, body: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, body)
    return info.value


@pytest.mark.parametrize("name", ["timebank_under_hollowing", "sobol_baseline", "budget_split"])
def test_shipped_experiments_validate_and_have_the_stated_size(name):
    exp = load_experiment(EXPERIMENTS / f"{name}.toml")
    design = build_design(exp)
    expected = {"timebank_under_hollowing": 24, "sobol_baseline": 256 * (8 + 2), "budget_split": 3 * 2 * 2 * 16}[name]
    assert len(design.points) == expected
    assert len(design.runs) == expected * exp.replicates
    assert exp.discovery is not None and exp.discovery["outcome"] in exp.outcomes
    # every run has a distinct (point, replicate) and run ids are 0..n-1 in order
    assert design.runs["run_id"].tolist() == list(range(len(design.runs)))
    assert not design.runs.duplicated(["point", "replicate"]).any()


def test_grid_crosses_lists_with_levels_of_ranges(tmp_path):
    exp = load(
        tmp_path,
        '[levers]\n"policy.time_bank.enabled" = [false, true]\n'
        '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.0, high = 0.1 }\n'
        '"committee.attempts_per_request" = { low = 1, high = 7 }\n'
        '[design]\nkind = "grid"\nlevels = 3\n',
    )
    pts = build_design(exp).points
    assert len(pts) == 2 * 3 * 3
    assert sorted(pts["hollowing_out.outmigration_rate"].unique()) == pytest.approx([0.0, 0.05, 0.1])
    assert sorted(pts["committee.attempts_per_request"].unique()) == [1, 4, 7]
    assert pts["committee.attempts_per_request"].dtype == np.int64
    assert len(pts.drop(columns=["point", "seed"]).drop_duplicates()) == 18


def test_lhs_strata_and_distributions(tmp_path):
    exp = load(
        tmp_path,
        '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.0, high = 0.1 }\n'
        '"behaviour.ask_trust" = { distribution = "normal", mean = 2.0, sd = 0.5, low = 1.0, high = 3.0 }\n'
        '"behaviour.ask_awareness" = { distribution = "triangular", low = 1.0, mode = 1.5, high = 4.0 }\n'
        '[design]\nkind = "lhs"\nsamples = 50\n',
    )
    pts = build_design(exp).points
    assert len(pts) == 50
    # a Latin hypercube puts exactly one point in each of the 50 equal strata of a uniform range
    strata = np.floor(pts["hollowing_out.outmigration_rate"] / 0.1 * 50).astype(int).clip(0, 49)
    assert sorted(strata) == list(range(50))
    trust = pts["behaviour.ask_trust"]
    assert trust.between(1.0, 3.0).all() and abs(trust.median() - 2.0) < 0.1
    assert pts["behaviour.ask_awareness"].between(1.0, 4.0).all()
    # the design is a function of the file: building it twice gives the same points
    assert build_design(exp).points.equals(pts)


def test_sobol_and_morris_sizes(tmp_path):
    ranges = '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.0, high = 0.1 }\n"behaviour.ask_trust" = { low = 0.5, high = 3.5 }\n"committee.admin_burden" = { low = 0.2, high = 0.9 }\n'
    sob = load(tmp_path, ranges + '[design]\nkind = "sobol"\nsamples = 16\n')
    d = build_design(sob)
    assert len(d.points) == 16 * (3 + 2) and d.unit.shape == (80, 3)
    mor = load(tmp_path, ranges + '[design]\nkind = "morris"\nsamples = 6\nlevels = 4\n')
    d = build_design(mor)
    assert len(d.points) == 6 * (3 + 1)
    assert d.points["committee.admin_burden"].between(0.2, 0.9).all()


def test_seeds_shared_or_derived_per_point(tmp_path):
    body = '[levers]\n"policy.publicity" = [0.0, 0.5, 1.0]\n'
    shared = build_design(load(tmp_path, "seed = 9\n" + body)).runs
    assert set(shared["seed"]) == {9}
    own = build_design(load(tmp_path, "seed = 9\ncommon_random_numbers = false\n" + body)).runs
    assert own.groupby("point")["seed"].nunique().eq(1).all()
    assert own.drop_duplicates("point")["seed"].tolist() == [point_seed(9, p) for p in range(3)]
    assert own["seed"].nunique() == 3


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        ("replicats = 3\n", 5, "replicats", "did you mean 'replicates'"),
        ('[levers]\n"policy.publicty" = [0.0, 1.0]\n', 6, "levers.policy.publicty", "did you mean 'policy.publicity'"),
        ('[levers]\n"policy.publicity" = [0.0, 1.5]\n', 6, "levers.policy.publicity", "less than or equal to 1"),
        (
            "[uncertainties]\nhollowing_out.outmigration_rate = { low = 0.2, high = 0.1 }\n",
            6,
            "uncertainties.hollowing_out.outmigration_rate",
            "low must be below high",
        ),
        (
            '[uncertainties]\n"behaviour.ask_trust" = { distribution = "beta", low = 0, high = 1 }\n',
            6,
            "uncertainties.behaviour.ask_trust",
            "unknown distribution",
        ),
        (
            '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.0, high = 2.0 }\n',
            6,
            "uncertainties.hollowing_out.outmigration_rate",
            "0.9",
        ),
        (
            '[levers]\n"policy.publicity" = [0.0, 1.0]\n[design]\nkind = "sobol"\n',
            6,
            "levers.policy.publicity",
            "range or distribution",
        ),
        ('[design]\nkind = "factorial"\n', 6, "design.kind", "grid, lhs, sobol, morris"),
        ('outcomes = ["unmet_need_shares"]\n', 5, "outcomes", "did you mean 'unmet_need_share'"),
        ('[set]\n"policy.publicity" = "lots"\n', 6, "set.policy.publicity", "valid number"),
        (
            '[levers]\n"policy.time_bank.enabled" = { low = 0, high = 1 }\n',
            6,
            "levers.policy.time_bank.enabled",
            "list of values",
        ),
        ('[discovery]\noutcome = "unmet_need_share"\nthreshold = "high"\n', 7, "discovery.threshold", "expected a number"),
        (
            '[levers]\n"policy.publicity" = [0.0, 1.0]\n[uncertainties]\n"policy.publicity" = { low = 0.0, high = 1.0 }\n',
            8,
            "uncertainties.policy.publicity",
            "already a factor",
        ),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, body, line, field, words):
    err = error(tmp_path, body)
    assert err.file and err.file.endswith("exp.toml")
    assert err.line == line, str(err)
    assert err.field == field, str(err)
    assert words in str(err)
    assert "\n" not in str(err)


def test_missing_base_scenario_and_toml_syntax(tmp_path):
    path = write(tmp_path, "e.toml", 'scenario = "nowhere.toml"\n')
    with pytest.raises(ScenarioError, match="base scenario not found") as info:
        load_experiment(path)
    assert info.value.line == 1
    path = write(tmp_path, "f.toml", HEAD + "[levers\n")
    with pytest.raises(ScenarioError, match="TOML syntax error") as info:
        load_experiment(path)
    assert info.value.line == 5


def test_cli_reports_experiment_errors_on_one_line(tmp_path, capsys):
    path = write(tmp_path, "exp.toml", HEAD + '[levers]\n"policy.publicity" = [0.0, 7.0]\n')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("villagesim: error: ") and f"{path}:6: levers.policy.publicity:" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_dry_run_prints_the_design_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["sweep", str(EXPERIMENTS / "sobol_baseline.toml"), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "design:        sobol, 2560 point(s) x 2 replicate(s) = 5120 runs of 260 weeks" in text
    assert "uncertainty  behaviour.ask_trust = triangular 0.5..3.5, mode 2.0" in text
    assert not out.exists()
