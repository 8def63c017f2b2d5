"""Scenario files: shipped ones validate; every kind of bad file gives one clear line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SCENARIOS, write
from villagesim.config.loading import apply_overrides, load_scenario, scenario_to_toml
from villagesim.config.schema import Scenario
from villagesim.errors import ScenarioError


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_validate(path):
    loaded = load_scenario(path)
    assert loaded.scenario.name == path.stem


def test_extends_merges_and_child_wins():
    s = load_scenario(SCENARIOS / "hollowing_severe.toml").scenario
    base = load_scenario(SCENARIOS / "baseline.toml").scenario
    assert s.hollowing_out.outmigration_rate > base.hollowing_out.outmigration_rate
    assert s.population == base.population


def _error(tmp_path, text, name="bad.toml", extra=None):
    for other, body in (extra or {}).items():
        write(tmp_path, other, body)
    path = write(tmp_path, name, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "\n" not in msg
    return info.value, msg


def test_syntax_error_names_file_and_line(tmp_path):
    err, msg = _error(tmp_path, 'name = "x"\n[run]\nsteps = = 3\n')
    assert err.line == 3 and msg.startswith(str(tmp_path / "bad.toml") + ":3:")
    assert "syntax" in msg


def test_wrong_type_names_field_line_and_expectation(tmp_path):
    err, msg = _error(tmp_path, '[run]\nsteps = 10\n\n[hollowing_out]\noutmigration_rate = "fast"\n')
    assert err.field == "hollowing_out.outmigration_rate"
    assert err.line == 5
    assert "number" in msg and "per year" in msg


def test_out_of_range_value(tmp_path):
    err, msg = _error(tmp_path, "[committee]\nadmin_burden = 1.5\n")
    assert err.field == "committee.admin_burden" and err.line == 2
    assert "less than or equal to 1" in msg


def test_unknown_key_suggests(tmp_path):
    err, msg = _error(tmp_path, "[policy]\npublicty = 0.5\n")
    assert err.field == "policy.publicty" and err.line == 2
    assert "did you mean 'publicity'" in msg


def test_unknown_section(tmp_path):
    err, msg = _error(tmp_path, "[polcy]\npublicity = 0.5\n")
    assert err.field == "polcy" and err.line == 1


def test_missing_extends_target(tmp_path):
    err, msg = _error(tmp_path, 'name = "x"\nextends = "nowhere.toml"\n')
    assert err.field == "extends" and err.line == 2 and "does not exist" in msg


def test_extends_cycle(tmp_path):
    err, msg = _error(tmp_path, 'extends = "b.toml"\n', name="a.toml", extra={"b.toml": 'extends = "a.toml"\n'})
    assert "cycle" in msg and err.field == "extends"


def test_error_in_parent_points_to_parent(tmp_path):
    write(tmp_path, "parent.toml", "[behaviour]\nask_trust = 99\n")
    err, msg = _error(tmp_path, 'extends = "parent.toml"\n', name="child.toml")
    assert err.file == str(tmp_path / "parent.toml") and err.line == 2


def test_missing_file():
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("no/such/file.toml")


def test_unknown_lever_in_intervention(tmp_path):
    text = 'extends = "{}"\n\n[[intervention]]\nstep = 10\nset = {{ "policy.platfrom.enabled" = true }}\n'.format(
        (SCENARIOS / "baseline.toml").as_posix()
    )
    err, msg = _error(tmp_path, text)
    assert err.line == 5  # the line of the set, inside the [[intervention]] at line 3
    assert "intervention[0].set.policy.platfrom.enabled" in msg and "did you mean 'policy.platform.enabled'" in msg


def test_bad_value_in_intervention(tmp_path):
    err, msg = _error(
        tmp_path, '[[intervention]]\nstep = 1\nset = { "policy.publicity" = 2.0 }\n\n[[intervention]]\nstep = 2\nset = {}\n'
    )
    assert err.line == 3 and "intervention[0].set.policy.publicity" in msg


def test_cross_field_check(tmp_path):
    err, msg = _error(tmp_path, "[population]\nremoteness_km_min = 20\nremoteness_km_max = 5\n")
    assert err.field == "population" and "remoteness_km_min" in msg and err.line in (1, 2, 3)


def test_interventions_concatenate_over_extends(tmp_path):
    write(tmp_path, "p.toml", '[[intervention]]\nstep = 5\nset = { "policy.publicity" = 0.5 }\n')
    path = write(tmp_path, "c.toml", 'extends = "p.toml"\n[[intervention]]\nstep = 9\nset = { "policy.publicity" = 1.0 }\n')
    s = load_scenario(path).scenario
    assert [i.step for i in s.intervention] == [5, 9]


def test_overrides_validate():
    s = Scenario()
    assert apply_overrides(s, {"policy.publicity": 0.4}).policy.publicity == 0.4
    with pytest.raises(ScenarioError, match=r"policy\.publicity"):
        apply_overrides(s, {"policy.publicity": -1})
    with pytest.raises(ScenarioError, match="unknown"):
        apply_overrides(s, {"policy.nothing": 1})


def test_every_parameter_has_unit_and_source():
    rows = Scenario.parameter_table()
    assert len(rows) > 80
    for row in rows:
        assert row["unit"] and row["source"] and row["description"], row["path"]
    import csv

    from conftest import ROOT

    known = (
        {r["quantity"] for r in csv.DictReader(open(ROOT.parent / "shared/data/calibration_targets.csv"))}
        if (ROOT.parent / "shared/data/calibration_targets.csv").exists()
        else None
    )
    if known:
        for row in rows:
            for src in re.split(r";\s*", row["source"]):
                assert src == "assumption" or src in known, (row["path"], src)


def test_resolved_toml_round_trips(tmp_path):
    s = load_scenario(SCENARIOS / "county.toml").scenario
    path = write(tmp_path, "resolved.toml", scenario_to_toml(s))
    assert load_scenario(path).scenario == s


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(
        st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=3)
    )
)
def test_any_value_is_accepted_or_explained(tmp_path_factory, value):
    """Whatever a planner types for a lever, loading either succeeds or raises ScenarioError."""
    import tomli_w

    tmp = tmp_path_factory.mktemp("h")
    try:
        text = tomli_w.dumps({"policy": {"publicity": value}})
    except Exception:  # noqa: BLE001 - not representable in TOML
        return
    path = write(tmp, "h.toml", text)
    try:
        s = load_scenario(path).scenario
        assert 0.0 <= s.policy.publicity <= 1.0
    except ScenarioError as exc:
        assert exc.field == "policy.publicity" and exc.line == 2
