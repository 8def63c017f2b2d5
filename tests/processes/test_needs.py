"""Needs: each resident elder's weekly hours by kind, from the care level and living alone."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.constants import ELDER_AGE
from villagesim.processes import needs
from villagesim.processes.week import COMPANION, DAILY, MEALS, PROFESSIONAL, Week
from villagesim.rng import Streams
from villagesim.state.population import AWAY, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # runs the needs kernel


def needs_week(world, s) -> Week:
    p = world.persons
    week = Week(step=1, n_villages=len(world.villages), n_persons=len(p))
    week.household_residents = np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
    needs.run(world, s, None, week)
    return week


def test_need_is_the_hours_of_the_care_level_and_of_living_alone():
    s = Scenario.model_validate({"population": {"villages": 3}, "hollowing_out": {"initial_away_share": 0.3}})
    world = build_world(s, Streams(21).named("population"))
    p = world.persons
    p.need_hours[:] = 99.0  # stale values of last week are reset for everyone
    week = needs_week(world, s)
    c = s.care
    elders = np.flatnonzero((p.status == RESIDENT) & (p.age >= ELDER_AGE))
    np.testing.assert_array_equal(np.sort(week.elders), elders)
    e = week.elders
    level = p.care_level[e]
    alone = week.household_residents[p.household[e]] == 1
    np.testing.assert_array_equal(week.alone, alone)
    np.testing.assert_allclose(week.need[:, DAILY], np.asarray(c.daily_living_hours_by_level)[level], rtol=1e-6)
    np.testing.assert_allclose(week.need[:, MEALS], np.asarray(c.meals_hours_by_level)[level], rtol=1e-6)
    np.testing.assert_allclose(week.need[:, PROFESSIONAL], np.asarray(c.professional_hours_by_level)[level], rtol=1e-6)
    companion = np.where(alone, c.companionship_hours_alone, c.companionship_hours_not_alone)
    np.testing.assert_allclose(week.need[:, COMPANION], companion, rtol=1e-6)
    np.testing.assert_array_equal(week.remaining, week.need)
    assert np.all(week.need >= 0)
    np.testing.assert_allclose(p.need_hours[e], week.need.sum(axis=1), rtol=1e-5)
    others = np.ones(len(p), bool)
    others[e] = False
    assert np.all(p.need_hours[others] == 0) and np.all(p.unmet_hours[others] == 0)
    assert (p.status[others] == AWAY).any()  # elders away need nothing here


def test_more_hours_per_level_means_more_need():
    s = Scenario.model_validate({"population": {"villages": 3}})
    world = build_world(s, Streams(22).named("population"))
    base = needs_week(world, s).need.sum()
    doubled = s.with_overrides({"care.daily_living_hours_by_level": [2 * h for h in s.care.daily_living_hours_by_level]})
    more = needs_week(world, doubled).need
    assert more.sum() > base
    assert more[:, DAILY].sum() == pytest.approx(2 * needs_week(world, s).need[:, DAILY].sum(), rel=1e-5)
