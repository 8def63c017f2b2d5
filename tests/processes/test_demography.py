"""Demography: deaths by the normalised hazard, out-migration and return at their annual rates."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.processes import demography
from villagesim.processes.demography import annual_hazard
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import AWAY, DEAD, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def big(**sections) -> Scenario:
    data = {"population": {"villages": 20, "residents_per_village": 5000}}
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return Scenario.model_validate(data)


def test_deaths_match_the_hazard():
    """Deaths over one year among 100,000 persons equal the sum of weekly hazards (within 4 sd)."""
    s = big(hollowing_out={"outmigration_rate": 0.0, "return_rate": 0.0})
    world = build_world(s, Streams(1).named("population"))
    p = world.persons
    expected = observed = 0.0
    for t in range(1, 53):
        alive = p.status != DEAD
        hazard = annual_hazard(p.age + np.float32(1 / 52), p.female, p.care_level, s)
        expected += float(np.sum(-np.expm1(-hazard / 52.0)[alive]))
        week = Week(step=t, n_villages=20, n_persons=len(p))
        demography.run(world, s, Streams(1).for_step("demography", t), week)
        observed += int(np.count_nonzero(alive & (p.status[: len(alive)] == DEAD)))
    assert expected > 500
    assert abs(observed - expected) < 4 * np.sqrt(expected), (observed, expected)


def test_outmigration_and_return_match_annual_rates():
    rate, back = 0.08, 0.2
    s = big(hollowing_out={"outmigration_rate": rate, "return_rate": back, "initial_away_share": 0.5})
    world = build_world(s, Streams(2).named("population"))
    p = world.persons
    hol = s.hollowing_out
    eligible = (p.status == RESIDENT) & (p.age >= hol.migration_min_age) & (p.age < hol.migration_max_age)
    returners = (p.status == AWAY) & (p.age >= hol.return_min_age)
    p0 = p.age.copy()  # the first rows: births append more
    ever_left = np.zeros(len(p), bool)
    ever_back = np.zeros(len(p), bool)
    for t in range(1, 53):
        week = Week(step=t, n_villages=20, n_persons=len(p))
        demography.run(world, s, Streams(2).for_step("demography", t), week)
        ever_left |= week.left[: len(p0)] & eligible
        ever_back |= week.returned[: len(p0)] & returners
    # share of the cohort that left within the year; a few age out or die, so allow 0.01 below
    left_share = ever_left[eligible].mean()
    back_share = ever_back[returners].mean()
    assert rate - 0.012 < left_share < rate + 0.006, left_share
    assert back - 0.02 < back_share < back + 0.01, back_share
