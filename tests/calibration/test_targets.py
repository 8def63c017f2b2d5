"""Grounded defaults: the baseline reproduces the published figures of calibration_targets.csv.

Each statistical check pools several replicates; the tolerances are the accepted ranges
of :data:`villagesim.calibration.fitting.TARGETS` (the published range, or 3-5 points around a
point figure), which are several standard errors of the pooled estimate wide.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import ROOT, SCENARIOS
from villagesim.calibration.fitting import TARGET_BY_KEY, TARGETS, Observation, build_statistics, observe, observe_many
from villagesim.config.loading import load_scenario
from villagesim.config.schema import Scenario

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

CSV = ROOT.parent / "shared/data/calibration_targets.csv"


def _baseline() -> Scenario:
    return load_scenario(SCENARIOS / "baseline.toml").scenario


@pytest.mark.skipif(not CSV.exists(), reason="calibration_targets.csv is kept outside the package")
def test_targets_carry_the_published_values_of_their_rows():
    rows = {r["quantity"]: r for r in csv.DictReader(open(CSV, encoding="utf-8"))}
    for t in TARGETS:
        for quantity in t.quantity.split("; "):
            assert quantity in rows, t.key
        if "; " in t.quantity:
            continue
        row = rows[t.quantity]
        # percent as shares, deaths per 1000 person-years per person-year, years as they are
        scale = {"deaths per 1000 person-years": 1000.0, "years": 1.0}.get(row["unit"], 100.0)
        if t.key.startswith("death_rate_"):
            # the other bands of a sex are in the source text of its 60-64 row
            band = t.key.rsplit("_", 2)
            published = row["value"] if t.key == t.quantity else row["source"].split(f"{band[-2]}-{band[-1]} ")[1].split(";")[0]
            assert t.value == pytest.approx(float(published) / scale), t.key
        else:
            assert t.value == pytest.approx(float(row["value"]) / scale), t.key
        if row["low"] and t.key != "share_60plus_10y":  # that one is a plausibility bound below the township figure
            # a published range is the accepted range
            assert (t.low, t.high) == (pytest.approx(float(row["low"]) / scale), pytest.approx(float(row["high"]) / scale)), t.key
        assert t.low <= t.value <= t.high, t.key
    change = rows["rural_population_change_2021"]
    assert TARGET_BY_KEY["resident_change_per_year"].low == pytest.approx(float(change["low"]) / 100)
    assert TARGET_BY_KEY["resident_change_per_year"].high == pytest.approx(float(change["high"]) / 100)


def test_grounded_defaults_cite_their_rows():
    table = {row["path"]: row for row in Scenario.parameter_table()}
    cited = {
        "population.age_band_weights": "share_60plus_rural",
        "population.coresidence_share": "rural_elders_alone_or_spouse_only",
        "hollowing_out.outmigration_rate": "rural_population_change_2021",
        "health.adl_prevalence_by_band": "disability_adl_age_60_69",
        "health.onset_rate_by_band": "adl_incidence_65plus",
        "behaviour.volunteer_intercept": "rural_elders_participating_in_mutual_aid",
    }
    for path, quantity in cited.items():
        assert quantity in table[path]["source"], path


def test_start_of_run_matches_the_published_structure():
    """60 builds of the baseline village (~13,000 resident elders): the pooled shares have
    standard errors under 0.5 points, far inside the accepted ranges."""
    stats = build_statistics(_baseline(), range(60))
    for key in (
        "share_60plus_start",
        "share_65plus_start",
        "adl_60_69_start",
        "adl_70_79_start",
        "adl_80plus_start",
        "alone_or_spouse_start",
    ):
        t = TARGET_BY_KEY[key]
        assert t.low <= stats[key] <= t.high, (key, stats[key])


@pytest.mark.slow
def test_disability_stays_plausible_and_population_declines_at_the_published_rate():
    """Demography and health over 10 years, 6 replicates x 10 villages (~100,000 elder-years
    per band): prevalence within 3 points of each band's figure on average and within 6 in
    every year, incidence and population change within the published ranges."""
    s = _baseline().with_overrides({"population.villages": 10})
    stats = observe_many(s, range(6), 520, care=False).statistics()
    for key in (
        "adl_60_69_10y",
        "adl_70_79_10y",
        "adl_80plus_10y",
        "adl_drift_10y",
        "adl_incidence_65plus",
        "resident_change_per_year",
    ):
        t = TARGET_BY_KEY[key]
        assert t.low <= stats[key] <= t.high, (key, stats[key])


def test_health_only_observation_equals_the_whole_model():
    """Demography and health draw from their own streams and do not depend on care, so the
    cheap observation gives exactly the counts of the whole model."""
    s = _baseline()
    a = observe(s, 3, 60, care=False)
    b = observe(s, 3, 60, care=True)
    np.testing.assert_array_equal(a.band_disabled, b.band_disabled)
    np.testing.assert_array_equal(a.residents, b.residents)
    assert a.onset_events == b.onset_events and a.at_risk_weeks == b.at_risk_weeks


def test_observation_statistics_from_counts():
    o = Observation(
        years=1,
        residents=np.array([100.0, 90.0]),
        elders=np.array([25.0, 27.0]),
        elders_65=np.array([15.0, 16.0]),
        band_elders=np.array([[10.0, 10.0, 5.0], [10.0, 10.0, 7.0]]),
        band_disabled=np.array([[1.0, 2.0, 2.0], [2.0, 2.0, 3.0]]),
        alone_or_spouse=10.0,
        onset_events=2.0,
        at_risk_weeks=52.0 * 40,
        part_num=np.array([3.0, 6.0]),
        part_den=np.array([30.0, 30.0]),
    )
    s = o.statistics()
    assert s["share_60plus_start"] == 0.25 and s["alone_or_spouse_start"] == 0.4
    assert s["adl_80plus_start"] == 0.4 and s["adl_60_69_10y"] == 0.2
    assert s["adl_incidence_65plus"] == pytest.approx(0.05)
    assert s["resident_change_per_year"] == pytest.approx(-0.1)
    assert s["participation_year1"] == pytest.approx(0.15)
    assert "death_rate_male_60_64" in s and s["death_rate_male_60_64"] == 0.0  # nobody lived in the band
    o.person_weeks = np.full(16, 52.0 * 100)
    o.deaths = np.full(16, 2.0)
    s = o.statistics()
    assert s["death_rate_female_85_89"] == pytest.approx(0.02)
    # constant rate 0.02 from 60 on: life expectancy 1 / 0.02
    assert s["life_expectancy_60"] == pytest.approx(50.0)
    both = Observation.pooled([o, o])
    assert both.replicates == 2 and both.statistics()["share_60plus_start"] == 0.25
