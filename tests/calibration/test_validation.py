"""Validation: paired confidence intervals, pattern entries, and `villagesim validate --quick` (the CI version)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from conftest import SCENARIOS
from villagesim.calibration import validation
from villagesim.calibration.validation import PATTERNS, Effect, Pattern, ValidationSettings, paired_ci, run_pattern
from villagesim.cli.main import main

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def test_paired_ci_is_the_t_interval_of_the_differences():
    d = np.array([0.5, 1.5, 1.0, 2.0, 0.0])
    mean, lo, hi = paired_ci(d)
    ref = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert mean == pytest.approx(1.0) and (lo, hi) == pytest.approx(ref)


def test_patterns_name_existing_scenarios_and_outcomes():
    from villagesim.outputs.sums import COLUMNS

    for p in PATTERNS:
        assert (SCENARIOS / p.baseline).exists() and (SCENARIOS / p.intervention).exists(), p.name
        assert all(e.outcome in COLUMNS and e.sign in (-1, 1) for e in p.effects), p.name
        assert validation._available(p, SCENARIOS) is None, p.name


def test_missing_files_and_parameters_make_a_pattern_not_available(tmp_path):
    missing = Pattern("x", "claim", "baseline.toml", "nowhere.toml", (Effect("requests", 1),))
    assert "nowhere.toml" in validation._available(missing, SCENARIOS)
    unknown = Pattern(
        "y", "claim", "baseline.toml", "baseline.toml", (Effect("requests", 1),), requires=("policy.no_such_lever",)
    )
    assert "policy.no_such_lever" in validation._available(unknown, SCENARIOS)
    row = run_pattern(unknown, SCENARIOS, ValidationSettings(workers=1), lambda _: None)
    assert row["status"] == "not available" and row["effects"] == []


def test_a_pattern_passes_in_its_direction_and_fails_in_the_other():
    """Admin burden 0.6 -> 0.95 leaves the committee 2 instead of 19 request slots a week:
    over 6 paired replicates of 30 weeks the drop in handled requests is many standard errors."""
    settings = ValidationSettings(pattern_replicates=6, workers=1)
    right = Pattern(
        "burden",
        "claim",
        "baseline.toml",
        "baseline.toml",
        (Effect("handled_requests", -1),),
        intervention_overrides={"committee.admin_burden": 0.95},
        horizon=30,
        window=20,
    )
    wrong = Pattern(**{**right.__dict__, "name": "burden_wrong", "effects": (Effect("handled_requests", +1),)})
    a = run_pattern(right, SCENARIOS, settings, lambda _: None)
    b = run_pattern(wrong, SCENARIOS, settings, lambda _: None)
    assert a["status"] == "pass" and b["status"] == "fail"
    assert a["effects"][0]["effect"] == b["effects"][0]["effect"] < 0  # same runs: common random numbers
    assert a["seed"] == 42 and a["replicates"] == 6 and a["horizon_weeks"] == 30


def test_validate_exits_non_zero_when_a_check_fails(tmp_path, monkeypatch, capsys):
    wrong = Pattern(
        "wrong_way",
        "claim",
        "baseline.toml",
        "baseline.toml",
        (Effect("handled_requests", +1),),
        intervention_overrides={"committee.admin_burden": 0.95},
        horizon=20,
        window=10,
    )
    monkeypatch.setattr(validation, "PATTERNS", [wrong])
    monkeypatch.setattr(
        validation.ValidationSettings,
        "quick",
        classmethod(
            lambda cls: cls(
                target_replicates=2, participation_replicates=2, build_replicates=2, pattern_replicates=3, reduced=True
            )
        ),
    )
    out = tmp_path / "v"
    code = main(["validate", "--quick", "--quiet", "--workers", "1", "--out", str(out)])
    assert code == 1
    assert "wrong_way" in capsys.readouterr().out
    report = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert report["patterns"][0]["status"] == "fail"


@pytest.mark.slow
def test_validate_quick_passes_and_writes_the_report(tmp_path):
    out = tmp_path / "validation"
    assert main(["validate", "--quick", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    text = (out / "report.md").read_text(encoding="utf-8")
    for row in report["targets"]:
        assert row["status"] == "pass" and row["name"] in text and row["quantity"] in text
    available = [p for p in report["patterns"] if p["status"] != "not available"]
    assert len(available) == len(PATTERNS)
    for p in available:
        assert p["status"] == "pass" and p["name"] in text
        for e in p["effects"]:
            assert e["ci95_low"] <= e["effect"] <= e["ci95_high"]
    assert report["seeds"]["targets"] == 42 and report["provenance"]["villagesim_version"]
    for fig in ("adl_prevalence.png", "share_60plus.png", "patterns.png"):
        assert (out / "figures" / fig).stat().st_size > 5000
    assert not list(tmp_path.glob(".*partial*"))
