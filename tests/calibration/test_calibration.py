"""Calibration: the fitting machinery on known answers, the shipped fit, and `villagesim calibrate --quick`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT, SCENARIOS
from villagesim.calibration.fitting import (
    BEHAVIOUR_PRIORS,
    PARTICIPATION_SD,
    TARGET_BY_KEY,
    _brentq_on,
    _expit,
    _features,
    _map_on_surrogate,
    participation_at,
    scale_old_bands,
)
from villagesim.cli.main import main
from villagesim.config.loading import load_scenario

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

FITTED = ROOT / "docs" / "calibration" / "fitted.json"


def test_map_on_a_linear_surrogate_moves_along_the_gradient_and_leaves_other_directions_at_the_prior():
    # logit(participation) = logit(0.2) + 0.8 z1 + 0.1 z2 + 0 z3: the target 0.30 is reached mostly through z1
    beta = np.array([np.log(0.2 / 0.8), 0.8, 0.1, 0.0])
    z, cov = _map_on_surrogate(beta, quadratic=False, target=0.30, z0=np.zeros(3))
    p = float(_expit(_features(z, False) @ beta)[0])
    assert abs(p - 0.30) < PARTICIPATION_SD  # the likelihood dominates a unit prior
    assert z[0] > 0.5 and abs(z[1] / z[0] - 0.1 / 0.8) < 0.02 and abs(z[2]) < 1e-4  # prior x likelihood mode
    sd = np.sqrt(np.diag(cov))
    assert sd[0] < 0.3 and sd[2] == pytest.approx(1.0, abs=1e-3)  # the unidentified direction keeps its prior sd


def test_brentq_finds_a_root_and_falls_back_to_the_nearer_end():
    assert _brentq_on(lambda x: x - 0.3, 0.0, 1.0, 1e-6) == pytest.approx(0.3, abs=1e-5)
    assert _brentq_on(lambda x: x + 2.0, 0.0, 1.0, 1e-6) == 0.0
    assert _brentq_on(lambda x: x - 2.0, 0.0, 1.0, 1e-6) == 1.0


def test_scale_old_bands_only_touches_the_60plus_bands():
    w = list(range(1, 19))
    out = scale_old_bands(w, 0.5)
    assert out[:12] == w[:12] and out[12:] == [v * 0.5 for v in w[12:]]


def test_the_baseline_uses_the_shipped_fitted_values():
    fit = json.loads(FITTED.read_text(encoding="utf-8"))
    s = load_scenario(SCENARIOS / "baseline.toml").scenario
    assert set(fit["fitted"]) >= {p.path for p in BEHAVIOUR_PRIORS}
    for path, value in fit["fitted"].items():
        assert s.get(path) == pytest.approx(value), path
    assert fit["diagnostics"]["behaviour"]["check"]["within_tolerance"]
    # the participation target informs the volunteering intercept; the others keep (almost) their prior spread
    assert fit["uncertainty"]["behaviour.volunteer_intercept"]["sd_ratio"] < 0.5


@pytest.mark.slow
def test_fitted_participation_is_near_the_target_on_fresh_replicates():
    """8 replicates never used by the fit (numbers 500-507), ~1,600 elders x 13 windows:
    the standard error of the pooled share is about 1.5 points; accepted: within 5 points."""
    s = load_scenario(SCENARIOS / "baseline.toml").scenario
    pooled, per_rep = participation_at(s, {}, range(500, 508), workers=2)
    t = TARGET_BY_KEY["participation_year1"]
    assert t.low <= pooled <= t.high, (pooled, per_rep)


@pytest.mark.slow
def test_calibrate_quick_writes_values_uncertainty_and_diagnostics(tmp_path, capsys):
    out = tmp_path / "cal"
    assert main(["calibrate", str(SCENARIOS / "baseline.toml"), "--quick", "--quiet", "--out", str(out)]) == 0
    fit = json.loads((out / "fitted.json").read_text(encoding="utf-8"))
    expected = {
        "population.age_band_weights",
        "population.coresidence_share",
        "hollowing_out.outmigration_rate",
        "health.onset_rate_by_band",
        "health.recovery_rate",
        *(p.path for p in BEHAVIOUR_PRIORS),
    }
    assert set(fit["fitted"]) == expected
    s = load_scenario(SCENARIOS / "baseline.toml").scenario.with_overrides(fit["fitted"])  # values are valid
    assert s.behaviour.volunteer_intercept == fit["fitted"]["behaviour.volunteer_intercept"]
    beh = fit["diagnostics"]["behaviour"]
    assert len(beh["rounds"]) == 2 and beh["rounds"][-1]["r_squared"] > 0.9
    assert beh["check"]["within_tolerance"], beh["check"]
    health = fit["diagnostics"]["health"]["final"]
    assert abs(health["adl_80plus_10y"] - 0.47) < 0.03
    assert "participation at the fitted values" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*partial*"))
