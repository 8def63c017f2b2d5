"""``villagesim sensitivity --quick``: the published sensitivity analysis at its smallest size.

One run of the command (about a minute on one core) is checked for what the full-size report
must show: the structural parameters are among the factors, every index is finite, levers that
are off have no effect at all where they are off (mu* exactly 0 under common random numbers)
and do have one where their policy is on, a care-hours or hazard parameter outranks them, and
the same seed gives the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SCENARIOS
from villagesim.cli.main import main

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

STRUCTURAL = ["population.hamlets_per_village", "population.married_share_by_band", "population.children_households_mean"]
OFF_TIME_BANK = "policy.time_bank.trust_rate"  # the time bank is off in the baseline and in the platform arm
OFF_PLATFORM = "policy.platform.rounds"  # the platform is off in the baseline and in the time bank arm


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sensitivity")
    assert main(["sensitivity", "--quick", "--quiet", "--out", str(out), "--scenarios", str(SCENARIOS)]) == 0
    return out


def _mu(morris: pd.DataFrame, answer: str, parameter: str) -> float:
    row = morris[(morris["answer"] == answer) & (morris["parameter"] == parameter)]
    assert len(row) == 1, f"{parameter} is not a factor for {answer}"
    return float(row["mu_star"].iloc[0])


def test_report_lists_structural_parameters_and_regenerating_command(report: Path):
    doc = (report / "sensitivity.md").read_text(encoding="utf-8")
    assert "villagesim sensitivity --quick" in doc.splitlines()[2]
    tested = doc.split("## Every factor tested", 1)[1]
    for p in STRUCTURAL:
        assert f"| `{p}` | structural |" in tested
    factors = pd.read_csv(report / "sensitivity" / "factors.csv")
    assert (factors["role"] == "structural").sum() >= 10
    assert (factors["source"] == "assumption").all()  # quick: sourced parameters stay at their values
    for answer in ("unmet_need_share", "matched_requests", "time_bank_effect", "platform_effect"):
        assert (report / "figures" / f"sensitivity_morris_{answer}.png").stat().st_size > 0
        assert (report / "figures" / f"sensitivity_sobol_{answer}.png").stat().st_size > 0


def test_indices_are_finite(report: Path):
    morris = pd.read_csv(report / "sensitivity" / "morris.csv")
    sobol = pd.read_csv(report / "sensitivity" / "sobol.csv")
    assert len(morris) == 4 * len(pd.read_csv(report / "sensitivity" / "factors.csv"))
    assert np.isfinite(morris[["mu", "mu_star", "mu_star_conf", "sigma"]].to_numpy()).all()
    assert len(sobol) == 4 * 3  # four answers x the quick setting's top 3
    assert np.isfinite(sobol[["S1", "S1_conf", "ST", "ST_conf"]].to_numpy()).all()


def test_levers_that_are_off_cannot_matter_and_real_drivers_outrank_them(report: Path):
    """Exact, not statistical: every point runs on the same seed, so a parameter read by no
    process gives identical runs and mu* = 0.0. The time bank's trust rate, in the arm where the
    time bank is on, must move its effect (mu* > 0: the factor reaches the policy arm), and the
    largest mu* of unmet need share over the care-hours and hazard parameters must be above
    the off levers' (and a positive share of the answer's largest)."""
    morris = pd.read_csv(report / "sensitivity" / "morris.csv")
    for answer in ("unmet_need_share", "matched_requests", "platform_effect"):
        assert _mu(morris, answer, OFF_TIME_BANK) == 0.0
    for answer in ("unmet_need_share", "matched_requests", "time_bank_effect"):
        assert _mu(morris, answer, OFF_PLATFORM) == 0.0
    assert _mu(morris, "time_bank_effect", OFF_TIME_BANK) > 0.0
    unmet = morris[morris["answer"] == "unmet_need_share"]
    strong = unmet[unmet["parameter"].str.match(r"care\..*_hours|health\.(gompertz_slope|rural_mortality|mortality_multiplier)")]
    assert len(strong) >= 5
    best = float(strong["mu_star"].max())
    assert best > _mu(morris, "unmet_need_share", OFF_TIME_BANK)
    assert best > _mu(morris, "unmet_need_share", OFF_PLATFORM)
    assert best >= 0.05 * float(unmet["mu_star"].max())


def test_same_seed_same_numbers(report: Path):
    """The first Morris points, drawn and run again from the same seed, give the stored answers."""
    from SALib.sample import morris as morris_sample

    from villagesim.experiments.analysis import unit_problem
    from villagesim.experiments.sensitivity import SETTINGS, evaluate, load_arms, screen_factors

    setting = SETTINGS["quick"]
    arms = load_arms(SCENARIOS, setting)
    factors, _ = screen_factors(arms.baseline, rel_sourced=setting.rel_sourced)
    unit = morris_sample.sample(
        unit_problem([f.path for f in factors]), setting.trajectories, num_levels=setting.levels, seed=arms.baseline.run.seed
    )
    again = evaluate(arms, factors, unit[:2], setting)
    stored = pd.read_csv(report / "sensitivity" / "morris_points.csv").head(2)
    for col in again.columns:
        for a, b in zip(again[col], stored[col], strict=True):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), col
