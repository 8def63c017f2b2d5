"""All-at-once validation: strict types, finite numbers, the scenario as each week's interventions
leave it, fixed parameters, warnings, a linear check, and the command line's reading and size options."""

from __future__ import annotations

import pytest

from conftest import SCENARIOS, write
from villagesim.cli.main import main
from villagesim.config import schema
from villagesim.config.loading import load_scenario
from villagesim.config.schema import Scenario, check_lever, fixed_paths, lever_paths
from villagesim.errors import ScenarioError


def _refused(tmp_path, text: str, name: str = "bad.toml") -> ScenarioError:
    path = write(tmp_path, name, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "\n" not in str(info.value)
    assert info.value.file is not None and info.value.file.endswith(name)
    return info.value


# --------------------------------------------------------------------- strict types, finite numbers
@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ('[population]\ntrained_share = "0.1"\n', "population.trained_share", "valid number"),
        ("[policy.platform]\nenabled = 1\n", "policy.platform.enabled", "valid boolean"),
        ("[population]\nvillages = 3.0\n", "population.villages", "valid integer"),
        ('[run]\nsteps = "52"\n', "run.steps", "valid integer"),
        ("[care]\ndaily_living_hours_by_level = [0.0, 5.0, inf, 20.0, 50.0]\n", "care.daily_living_hours_by_level.2", "finite"),
        ("[care]\nmeals_hours_by_level = [0.0, 2.0, 3.0, 5.0, 1e308]\n", "care.meals_hours_by_level.4", "less than"),
        ("[facilities]\nbuild_cost = [nan, 1.0, 1.0]\n", "facilities.build_cost.0", "finite"),
        ("[policy]\nbudget = inf\n", "policy.budget", "finite"),
        ("[population]\nage_band_weights = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, inf]\n", None, "finite"),
        ("[health]\nseverity_shares = [0.0, 0.0, 0.0, 0.0]\n", "health", "severity_shares must not all be zero"),
    ],
)
def test_a_value_that_is_not_what_it_should_be_is_one_line(tmp_path, text, field, words):
    err = _refused(tmp_path, text)
    assert err.line is not None
    assert words in err.message
    if field is not None:
        assert err.field == field


def test_integers_count_as_numbers_and_python_callers_may_pass_whole_floats(tmp_path):
    path = write(tmp_path, "ok.toml", "[hollowing_out]\noutmigration_rate = 0\n[policy]\nbudget = 100000\n")
    assert load_scenario(path).scenario.policy.budget == 100000.0
    # a sampler's 8.0 for an integer parameter is accepted from Python (not from a file)
    assert Scenario().with_overrides({"run.steps": 8.0}).run.steps == 8


# --------------------------------------------------------------------- the scenario as interventions leave it
def test_values_invalid_only_together_are_caught_at_load_with_file_line_and_week(tmp_path):
    text = (
        "[run]\nsteps = 600\n\n"
        '[[intervention]]\nstep = 100\nset = { "hollowing_out.migration_max_age" = 30 }\n\n'
        '[[intervention]]\nstep = 200\nset = { "hollowing_out.migration_min_age" = 40 }\n'
    )
    err = _refused(tmp_path, text)
    assert err.line == 10 and err.field == "intervention[1].set.hollowing_out.migration_min_age"
    assert "migration_min_age must not exceed migration_max_age" in err.message and "week 200" in err.message


def test_every_budget_share_zero_at_week_500_is_caught_at_load(tmp_path):
    shares = ", ".join(f'"policy.split.{name}" = 0.0' for name in schema.BUDGET_USES[:-1])
    text = (
        "[run]\nsteps = 520\n[policy.split]\nfacility_building = 0.0\nfacility_running = 0.0\nsubsidies = 0.0\n"
        "ngo = 0.0\npublicity = 0.0\nplatform = 0.2\n\n"
        f"[[intervention]]\nstep = 500\nset = {{ {shares} }}\n\n"
        '[[intervention]]\nstep = 500\nset = { "policy.split.platform" = 0.0 }\n'
    )
    err = _refused(tmp_path, text)
    assert "budget shares must not all be zero" in err.message and "week 500" in err.message
    assert err.field == "intervention[1].set.policy.split.platform" and err.line == 17


def test_an_intervention_that_is_fine_after_another_one_passes(tmp_path):
    text = (
        '[[intervention]]\nstep = 10\nset = { "hollowing_out.migration_min_age" = 16 }\n\n'
        '[[intervention]]\nstep = 20\nset = { "hollowing_out.migration_max_age" = 17 }\n'
    )
    assert load_scenario(write(tmp_path, "ok.toml", text)).scenario.intervention[1].step == 20


@pytest.mark.parametrize(
    "path", ["population.villages", "run.steps", "run.seed", "facilities.initial_coverage", "health.severity_shares"]
)
def test_an_intervention_cannot_change_what_is_fixed_when_villages_are_built(tmp_path, path):
    value = {"facilities.initial_coverage": "[0.5, 0.0, 0.0]", "health.severity_shares": "[0.5, 0.3, 0.1, 0.1]"}.get(path, "3")
    err = _refused(tmp_path, f'[[intervention]]\nstep = 10\nset = {{ "{path}" = {value} }}\n')
    assert "fixed when the villages are built" in err.message and err.field == f"intervention[0].set.{path}"
    assert err.line == 3


def test_fixed_and_lever_paths_split_the_parameters():
    assert fixed_paths() | lever_paths() == schema.leaf_paths() and not fixed_paths() & lever_paths()
    assert {"run.steps", "population.villages", "behaviour.neighbour_radius_km"} <= fixed_paths()
    assert {"policy.publicity", "policy.time_bank.enabled", "care.spouse_care_hours"} <= lever_paths()
    with pytest.raises(ScenarioError, match="fixed when the villages are built"):
        check_lever("population.residents_per_village")
    with pytest.raises(ScenarioError, match="did you mean 'policy.publicity'"):
        check_lever("policy.publicty")


def test_a_running_model_refuses_a_fixed_parameter():
    from villagesim.model import VillageModel

    model = VillageModel(Scenario().with_overrides({"population.residents_per_village": 50, "run.steps": 2}))
    with pytest.raises(ScenarioError, match="fixed when the villages are built"):
        model.set_lever("population.villages", 3)
    model.set_lever("policy.publicity", 0.9)
    assert model.scenario.policy.publicity == 0.9


def test_same_week_duplicates_and_late_interventions_are_warned(tmp_path):
    text = (
        "[run]\nsteps = 100\n\n"
        '[[intervention]]\nstep = 50\nset = { "policy.publicity" = 0.2 }\n\n'
        '[[intervention]]\nstep = 50\nset = { "policy.publicity" = 0.4 }\n\n'
        '[[intervention]]\nstep = 101\nset = { "policy.transparency" = 0.4 }\n'
    )
    loaded = load_scenario(write(tmp_path, "w.toml", text))
    assert len(loaded.warnings) == 2
    dup, late = sorted(loaded.warnings, key=lambda w: "after the last step" in w)
    assert "w.toml:10:" in dup and "set again in week 50 (also at line 6)" in dup
    assert "w.toml:13:" in late and "never takes effect" in late


def test_the_check_is_linear_one_validation_per_week(tmp_path, monkeypatch):
    n = 3000
    lines = ["[run]", "steps = 5200"]
    for i in range(n):
        lines += ["[[intervention]]", f"step = {i // 3}", f'set = {{ "policy.publicity" = {(i % 10) / 10} }}']
    path = write(tmp_path, "many.toml", "\n".join(lines) + "\n")
    calls = []
    original = Scenario.model_validate.__func__

    def counting(cls, *args, **kwargs):
        calls.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Scenario, "model_validate", classmethod(counting))
    loaded = load_scenario(path)
    assert len(loaded.scenario.intervention) == n
    assert len(calls) == 1 + n // 3  # the file once, then once per week that has interventions
    assert len(loaded.warnings) == 2 * n // 3  # the 2nd and 3rd of each week set the same lever again


def test_a_model_applies_one_week_of_interventions_at_once():
    from villagesim.model import VillageModel

    s = Scenario.model_validate(
        {
            "run": {"steps": 3},
            "population": {"residents_per_village": 50},
            "intervention": [
                {"step": 2, "set": {"policy.publicity": 0.3}},
                {"step": 2, "set": {"policy.publicity": 0.7, "policy.transparency": 0.9}},
            ],
        }
    )
    model = VillageModel(s)
    for _ in range(3):
        model.step()
    assert model.scenario.policy.publicity == 0.7 and model.scenario.policy.transparency == 0.9
    assert len(model.scenario.intervention) == 2


# --------------------------------------------------------------------- the command line
def test_check_prints_the_predicted_size_and_warnings(tmp_path, capsys):
    text = f'extends = "{(SCENARIOS / "baseline.toml").as_posix()}"\n[[intervention]]\nstep = 600\nset = {{}}\n'
    assert main(["check", str(write(tmp_path, "late.toml", text))]) == 0
    out, err = capsys.readouterr()
    assert "size:" in out and "persons per replicate" in out and "of memory" in out
    assert "villagesim: warning:" in err and "never takes effect" in err


def test_max_memory_refuses_a_run_before_any_folder_is_touched(tmp_path, capsys):
    out = tmp_path / "results" / "x"
    rc = main(["run", str(SCENARIOS / "baseline.toml"), "--out", str(out), "--max-memory", "0.01", "--quiet"])
    assert rc == 2 and not out.exists() and not (tmp_path / "results").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than the 10 MiB allowed" in err and "--max-memory" in err
    assert main(["check", str(SCENARIOS / "baseline.toml"), "--max-memory", "0.01"]) == 0
    assert "too large:" in capsys.readouterr().out
    assert main(["run", str(SCENARIOS / "baseline.toml"), "--out", str(out), "--max-memory", "-1"]) == 2
    assert "positive number of GiB" in capsys.readouterr().err


def test_compare_refuses_above_max_memory(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", str(SCENARIOS / "platform.toml"), "--out", str(out), "--max-memory", "0.01", "--quiet"])
    assert rc == 2 and not out.exists()
    assert "of memory" in capsys.readouterr().err


def test_confine_lets_extends_name_only_files_beside_the_scenario(tmp_path, capsys):
    (tmp_path / "secret").mkdir()
    (tmp_path / "mine").mkdir()
    write(tmp_path / "secret", "s.toml", 'description = "someone else\'s"\n')
    write(tmp_path, "base.toml", 'name = "base"\n')
    near = write(tmp_path / "mine", "near.toml", 'extends = "base"\n')
    write(tmp_path / "mine", "base.toml", 'name = "mine-base"\n')
    far = write(tmp_path / "mine", "far.toml", 'extends = "../secret/s.toml"\n')
    absolute = write(tmp_path / "mine", "abs.toml", f'extends = "{(tmp_path / "base.toml").as_posix()}"\n')
    assert main(["check", "--confine", str(near)]) == 0
    assert "mine-base" not in capsys.readouterr().err
    for path in (far, absolute):
        assert main(["check", "--confine", str(path)]) == 2
        err = capsys.readouterr().err
        assert "not a path" in err and "someone else" not in err and err.count("\n") == 1
    assert main(["check", str(far)]) == 0  # unconfined, a relative path is the planner's own business
    capsys.readouterr()


def test_a_disk_error_is_one_line(monkeypatch, capsys):
    import sys

    cli = sys.modules["villagesim.cli.main"]

    def full(args):
        raise OSError(28, "No space left on device", "/results/x/timeseries.parquet")

    monkeypatch.setattr(cli, "_cmd_check", full)
    assert main(["check", "whatever.toml"]) == 2
    err = capsys.readouterr().err
    assert err == "villagesim: error: No space left on device: /results/x/timeseries.parquet\n"
