"""Volunteering: who can volunteer, the levers of the logit, and the incentive over weeks."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.constants import ELDER_AGE
from villagesim.model import VillageModel
from villagesim.processes import volunteering
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import ENROLLED, QUIT, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def test_incentive_raises_volunteering_on_common_random_numbers(small):
    base = VillageModel(small)
    paid = VillageModel(small, policy__incentive_per_hour=30.0)
    for _ in range(10):
        base.step()
        paid.step()
    assert paid.timeseries()["active_volunteers"].sum() > 1.3 * base.timeseries()["active_volunteers"].sum()


def volunteering_week(s: Scenario, seed: int, **state):
    world = build_world(s, Streams(seed).named("population"))
    p = world.persons
    for name, value in state.items():
        getattr(p, name)[:] = value
    p.served_hours[:] = 5.0  # last week's hours are reset
    week = Week(step=1, n_villages=len(world.villages), n_persons=len(p))
    volunteering.run(world, s, Streams(seed).for_step("volunteering", 1), week)
    return world, week


def test_only_candidates_volunteer_and_served_hours_are_reset():
    s = Scenario.model_validate({"population": {"villages": 6, "residents_per_village": 2000}})
    world, week = volunteering_week(s, 41)
    p = world.persons
    # healthy young-old elders, up to the birthday after young_old_max_age
    young_old = (p.age >= ELDER_AGE) & (p.age < s.behaviour.young_old_max_age + 1) & (p.care_level == 0)
    expected = (p.status == RESIDENT) & (((p.age >= 18) & (p.age < ELDER_AGE)) | young_old)
    np.testing.assert_array_equal(week.candidates, expected)
    assert p.active.any()
    assert np.all(expected[p.active])
    assert np.all(p.served_hours == 0)


@pytest.mark.parametrize(
    "lever",
    [
        {"policy.incentive_per_hour": 30.0},
        {"policy.party_mobilisation": 1.0},
        {"policy.publicity": 1.0},
        {"policy.liability_insurance": True},
        {"policy.time_bank.enabled": True},
    ],
    ids=lambda d: next(iter(d)),
)
def test_each_lever_of_the_logit_raises_volunteering_on_the_same_draws(lever):
    """Same world, same uniform draws: a lever that adds to the logit can only add volunteers,
    and adds at least 1% of the candidates."""
    s = Scenario.model_validate({"population": {"villages": 6, "residents_per_village": 2000}})
    base_world, base = volunteering_week(s, 42, tb_trust=1.0, party=True)
    world, _ = volunteering_week(s.with_overrides(lever), 42, tb_trust=1.0, party=True)
    before, after = base_world.persons.active, world.persons.active
    assert np.all(after[before])
    assert after.sum() - before.sum() > 0.01 * base.candidates.sum(), (before.sum(), after.sum())


@pytest.mark.parametrize("insured", [False, True])
def test_accidents_become_disputes_quits_and_fear_only_without_insurance(insured):
    """Everyone served 5 hours last week; with accidents at 0.05 per hour about 22% had one.
    Uninsured: each is a dispute, the volunteer quits and never volunteers, and the
    neighbourhood fears blame; insured: claims, no quits, no fear."""
    s = Scenario.model_validate(
        {
            "population": {"villages": 2, "residents_per_village": 1000},
            "behaviour": {"accident_rate_per_hour": 0.05},
            "policy": {"liability_insurance": insured},
        }
    )
    world, week = volunteering_week(s, 43, enrolment=ENROLLED)
    p = world.persons
    accidents = week.extra["volunteer_accidents"].sum()
    assert 0.15 * len(p) < accidents < 0.3 * len(p)
    quit = p.enrolment == QUIT
    if insured:
        assert week.extra["insurance_claims"].sum() == accidents
        assert "volunteer_disputes" not in week.extra and not quit.any() and not p.fear.any()
    else:
        assert week.extra["volunteer_disputes"].sum() == accidents == week.extra["volunteer_quits"].sum() == quit.sum()
        assert not p.active[quit].any()
        assert (p.fear > 0).mean() > 0.5 and p.fear.max() <= 1.0


def test_no_accidents_by_default_and_fear_fades():
    s = Scenario.model_validate({"population": {"villages": 2, "residents_per_village": 500}})
    world, week = volunteering_week(s, 44, fear=0.5)
    assert "volunteer_accidents" not in week.extra
    np.testing.assert_allclose(world.persons.fear, 0.5 * (1 - s.behaviour.fear_decay), rtol=1e-6)
