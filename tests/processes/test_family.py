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
