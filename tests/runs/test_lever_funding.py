"""Levers the budget cannot pay are reported: per week in the outputs, per year in the run's
summary and console line, and by ``villagesim check`` when the scenario alone says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SCENARIOS, write
from villagesim.cli.main import main
from villagesim.config.schema import Scenario
from villagesim.model import VillageModel
from villagesim.runs.runner import describe_lever_funding, lever_funding, run_scenario

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def incentives(budget: float, **policy) -> Scenario:
    return Scenario.model_validate(
        {
            "run": {"steps": 104},
            "population": {"villages": 2, "residents_per_village": 600},
            "policy": {"budget": budget, "incentive_per_hour": 25.0, "publicity": 0.5, **policy},
        }
    )


def test_the_weeks_a_lever_is_paid_are_the_weeks_the_processes_see_it():
    s = incentives(40000.0)
    model = VillageModel(s)
    seen = []
    for _ in range(s.run.steps):
        model.step()
        seen.append(model.effective.policy.incentive_per_hour == 25.0)
    ts = model.timeseries()
    n_v = s.population.villages
    np.testing.assert_allclose(ts["lever_set_incentive_per_hour"], n_v)
    np.testing.assert_allclose(ts["lever_paid_incentive_per_hour"], n_v * np.asarray(seen, dtype=float))
    np.testing.assert_allclose(ts["lever_set_platform"], 0.0)  # not set: neither set nor paid
    np.testing.assert_allclose(ts["lever_paid_platform"], 0.0)
    funding = lever_funding(ts)
    assert set(funding) == {"incentive_per_hour", "publicity"}
    inc = funding["incentive_per_hour"]
    assert inc["unfunded"] and inc["weeks_set"] == 104
    assert [y["weeks_paid"] for y in inc["years"]] == [sum(seen[:52]), sum(seen[52:])]
    assert 0 < inc["weeks_paid"] < 104  # the subsidy pool runs dry part of each year
    line = describe_lever_funding(funding)
    assert line.startswith("levers set but not paid by the budget: policy.incentive_per_hour")
    assert f"delivered {sum(seen[:52]):g} of 52 weeks in year 1" in line


def test_a_lever_the_budget_pays_in_full_is_not_reported_as_unfunded():
    result = run_scenario(incentives(1e8), replicates=2)
    funding = lever_funding(result.timeseries)
    assert not funding["incentive_per_hour"]["unfunded"]
    assert funding["incentive_per_hour"]["weeks_paid"] == 104
    assert describe_lever_funding(funding).startswith("levers set, paid in full every week")


def test_run_summary_and_console_name_the_unfunded_lever(tmp_path, capsys):
    text = (
        f'extends = "{(SCENARIOS / "baseline.toml").as_posix()}"\n'
        '[policy]\nincentive_per_hour = 25.0\nallocation = "fixed"\n[policy.split]\nsubsidies = 0.0\n'
    )
    path = write(tmp_path, "unfunded.toml", text)
    assert main(["check", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "unfunded:    policy.incentive_per_hour is set but the budget can never pay it" in out
    assert "policy.split.subsidies is 0" in out
    folder = tmp_path / "out"
    assert main(["run", str(path), "--steps", "60", "--out", str(folder), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert "policy.incentive_per_hour (Incentive per hour): delivered 0 of 52 weeks in year 1, 0 of 8 weeks in year 2" in out
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["unfunded_levers"] == ["incentive_per_hour"]
    assert summary["lever_funding"]["incentive_per_hour"]["weeks_paid"] == 0


def test_check_says_the_run_reports_funding_when_it_cannot_be_predicted(tmp_path, capsys):
    text = f'extends = "{(SCENARIOS / "baseline.toml").as_posix()}"\n[policy]\nincentive_per_hour = 25.0\n'
    assert main(["check", str(write(tmp_path, "maybe.toml", text))]) == 0
    out, _ = capsys.readouterr()
    assert "unfunded:" not in out
    assert "is reported by the run (summary.json: lever_funding)" in out
