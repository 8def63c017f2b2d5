"""Asking: an elder with unmet need asks with the logistic probability of the docstring."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.processes import asking, needs
from villagesim.processes.asking import logistic
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # runs the asking kernel


def asking_week(s: Scenario, seed: int, step: int = 1):
    world = build_world(s, Streams(seed).named("population"))
    p = world.persons
    week = Week(step=step, n_villages=len(world.villages), n_persons=len(p))
    week.household_residents = np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
    needs.run(world, s, None, week)
    asking.run(world, s, Streams(seed).for_step("asking", step), week)
    return world, week


def test_asked_share_is_the_logistic_probability_and_requests_are_the_unmet_hours():
    s = Scenario.model_validate({"population": {"villages": 10, "residents_per_village": 3000}})
    world, week = asking_week(s, 31)
    p, b = world.persons, s.behaviour
    e = week.elders
    hours = week.remaining.sum(axis=1)
    prob = logistic(b.ask_intercept + b.ask_awareness * p.awareness[e] + b.ask_trust * p.trust[e] + b.ask_need * np.log1p(hours))
    prob = np.where(hours > 0, prob, 0.0)
    n = len(e)
    assert n > 5000
    expected = prob.sum()
    sd = np.sqrt((prob * (1 - prob)).sum())
    assert abs(week.asked.sum() - expected) < 4 * sd, (week.asked.sum(), expected, sd)
    assert not week.asked[hours <= 0].any()  # no need, no request
    assert np.all(week.requested_hours[~week.asked] == 0)
    assert np.all(week.requested_hours[week.asked] > 0)
    assert np.all(week.requested_hours <= hours + 1e-4)


def test_trust_raises_asking():
    """The same elders with full trust ask more often than with none (common random numbers)."""
    s = Scenario.model_validate({"population": {"villages": 6, "residents_per_village": 2000}})
    asked = []
    for trust in (0.0, 1.0):
        world = build_world(s, Streams(32).named("population"))
        p = world.persons
        p.trust[:] = trust
        week = Week(step=1, n_villages=len(world.villages), n_persons=len(p))
        week.household_residents = np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
        needs.run(world, s, None, week)
        asking.run(world, s, Streams(32).for_step("asking", 1), week)
        asked.append(int(week.asked.sum()))
    assert s.behaviour.ask_trust > 0
    assert asked[1] > asked[0] * 1.1, asked
