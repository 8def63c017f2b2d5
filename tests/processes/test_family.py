"""Family care: only from resident kin, never more than the need."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.processes import family, needs
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import AWAY, ELDER_AGE, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def big(**sections) -> Scenario:
    data = {"population": {"villages": 20, "residents_per_village": 5000}}
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return Scenario.model_validate(data)


def _family_week(world, s):
    week = Week(step=1, n_villages=len(world.villages), n_persons=len(world.persons))
    p = world.persons
    week.household_residents = np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
    needs.run(world, s, None, week)
    family.run(world, s, None, week)
    return week


def test_no_family_care_from_children_who_have_left():
    s = big(care={"spouse_care_hours": 0.0})
    world = build_world(s, Streams(4).named("population"))
    p = world.persons
    with_children = _family_week(world, s).met_of("family").sum()
    assert with_children > 1000
    working_age = (p.age >= 18) & (p.age < ELDER_AGE)
    p.status[working_age] = AWAY
    assert _family_week(world, s).met_of("family").sum() == 0.0


def test_family_never_exceeds_need():
    s = big()
    world = build_world(s, Streams(5).named("population"))
    week = _family_week(world, s)
    assert np.all(week.remaining >= -1e-4)
    assert np.all(week.met_of("family") <= week.need.sum(axis=1) + 1e-3)


TIGHT = {
    "care.paid_work_hours_working_age": 55.0,
    "care.coresident_adult_care_hours": 30.0,
    "care.nearby_child_care_hours": 10.0,
    "care.spouse_care_hours": 100.0,
    "behaviour.availability_hours_working_age": 30.0,
    "behaviour.availability_hours_young_old": 40.0,
    "behaviour.volunteer_intercept": 0.0,
    "population.residents_per_village": 800,
}
"""A week that binds: long working hours, heavy family duties, eager volunteers with many hours."""


def _budget_run(overrides: dict, weeks: int, check) -> None:
    """Three years of the baseline village with ``overrides``; ``check(p, week, s)`` after each week."""
    from conftest import SCENARIOS
    from villagesim.config.loading import load_scenario
    from villagesim.model import VillageModel

    s = load_scenario(SCENARIOS / "baseline.toml").scenario.with_overrides(overrides)
    model = VillageModel(s, steps=weeks)
    for _ in range(weeks):
        model.step()
        check(model.world.persons, model.week, s)


def test_a_carers_week_never_holds_more_than_its_hours():
    """Every week of three years: paid work + family care + volunteering of each resident
    stay within 168 hours less sleep and self-care; an elder at care level 2 or more gives
    no care; the budget binds (some volunteers are capped below their availability)."""
    capped = [0]

    def check(p, week, s):
        c = s.care
        resident = p.status == RESIDENT
        working_age = resident & (p.age >= 18) & (p.age < ELDER_AGE)
        work = np.where(working_age, c.paid_work_hours_working_age, 0.0)
        total = work + week.family_hours + p.served_hours
        assert np.all(total[resident] <= 168.0 - c.sleep_self_care_hours + 1e-3), total[resident].max()
        ill = resident & (p.age >= ELDER_AGE) & (p.care_level >= 2)
        assert np.all(week.family_hours[ill] == 0) and np.all(p.served_hours[ill] == 0)
        assert np.all(week.free_hours >= 0) and np.all(week.family_hours >= 0)
        capped[0] += int(np.sum(p.active & (week.free_hours < p.availability)))

    _budget_run(TIGHT, 156, check)
    assert capped[0] > 0


def test_carer_share_at_level_1_lowers_family_care():
    """A spouse at care level 1 gives ``carer_share_at_level_1`` of the spouse hours: family
    care falls from share 1 to share 0, and at level 2 or more nobody's own hours count."""
    s1 = big(care={"carer_share_at_level_1": 1.0})
    s0 = big(care={"carer_share_at_level_1": 0.0})
    world = build_world(s1, Streams(4).named("population"))
    full = _family_week(world, s1).met_of("family").sum()
    world = build_world(s0, Streams(4).named("population"))
    none = _family_week(world, s0).met_of("family").sum()
    assert none < full
    work, elder, adult, nearby, spouse, spouse_ill = family.carer_hours(s0)
    assert spouse_ill == 0.0 and spouse == s0.care.spouse_care_hours and work == 168.0 - 70.0 - 40.0
