"""Health: care-level transitions, emergencies answered in time or late, wearable alarms."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.constants import ELDER_AGE
from villagesim.processes import health
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import DEAD, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # runs the health kernel


FROZEN = {  # levels do not move this week, so the level drawn on is the level before
    "health.onset_rate_by_band": [0.0] * 3,
    "health.progression_rate_by_band": [0.0] * 3,
    "health.recovery_rate": 0.0,
    "health.unanswered_worsen_prob": 0.0,
}


def world_of(seed: int, **health_and_policy):
    s = Scenario.model_validate({"population": {"villages": 20, "residents_per_village": 5000}}).with_overrides(health_and_policy)
    return s, build_world(s, Streams(seed).named("population"))


def one_week(world, s, seed: int, step: int = 1) -> Week:
    week = Week(step=step, n_villages=len(world.villages), n_persons=len(world.persons))
    health.run(world, s, Streams(seed).for_step("health", step), week)
    return week


def test_levels_stay_in_range_and_deaths_come_only_from_late_emergencies():
    s, world = world_of(11, **{"health.emergency_rate_by_level": [0.05] * 5})
    p = world.persons
    for step in range(1, 6):
        alive_before = p.status != DEAD
        level_before = p.care_level.copy()
        week = one_week(world, s, 11, step)
        assert p.care_level.min() >= 0 and p.care_level.max() <= 4
        # a level moves by at most one step a week (onset, progression, recovery, worsening)
        changed = alive_before & (p.status != DEAD)
        assert np.all(np.abs(p.care_level[changed].astype(int) - level_before[changed]) <= 1)
        assert np.all(week.late <= week.emergency)
        died = alive_before & (p.status == DEAD)
        assert died.sum() > 0 and np.all(week.late[died]) and np.all(week.died[died])
        assert np.all(week.answer_hours[~week.emergency] == 0)
        # the household count the later processes use is that of residents after health
        np.testing.assert_array_equal(
            week.household_residents, np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
        )


def test_emergency_rate_and_late_share_match_the_probabilities():
    """Emergencies per level and the late share of elders with others, within 4 binomial sd."""
    rates = [0.02, 0.04, 0.06, 0.08, 0.1]
    s, world = world_of(12, **{"health.emergency_rate_by_level": rates}, **FROZEN)
    p = world.persons
    elder = (p.status == RESIDENT) & (p.age >= ELDER_AGE)
    level = p.care_level.copy()
    week = one_week(world, s, 12)
    for lv, rate in enumerate(rates):
        group = elder & (level == lv)
        n = int(group.sum())
        assert n > 100
        share = week.emergency[group].mean()
        assert abs(share - rate) < 4 * np.sqrt(rate * (1 - rate) / n), (lv, share, rate)
    assert not week.emergency[~elder].any()
    with_others = elder & (week.household_residents[p.household] > 1) & week.emergency
    late = week.late[with_others].mean()
    q = 1 - s.health.answer_prob_with_others
    assert abs(late - q) < 4 * np.sqrt(q * (1 - q) / with_others.sum()) + 0.01, late


def test_wearable_alarms_are_worn_by_the_eligible_and_cut_late_answers():
    """With every eligible elder wearing an alarm, their late share is 1 - answer_prob_alarm
    (within 4 sd), far below that of the same world without alarms."""
    high = {"health.emergency_rate_by_level": [1.0] * 5}  # every elder has one
    late_share = {}
    for alarms in (0.0, 1.0):
        s, world = world_of(13, **high, **FROZEN, **{"policy.wearable_alarms": alarms})
        p = world.persons
        elder = (p.status == RESIDENT) & (p.age >= ELDER_AGE)
        residents = np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
        eligible = elder & ((residents[p.household] == 1) | (p.care_level >= 2))
        week = one_week(world, s, 13)
        if alarms == 0.0:
            assert not p.alarm.any()
        else:
            np.testing.assert_array_equal(p.alarm[elder], eligible[elder])
        hit = eligible & week.emergency
        assert hit.sum() > 1000
        late_share[alarms] = week.late[hit].mean()
    q = 1 - 0.95
    assert abs(late_share[1.0] - q) < 4 * np.sqrt(q * (1 - q) / 1000), late_share
    assert late_share[0.0] > late_share[1.0] + 0.1, late_share
