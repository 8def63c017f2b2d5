"""NGO services: care for elders who asked, in villages the price reaches, paid from the NGO pool."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import Scenario
from villagesim.processes import ngo
from villagesim.processes.week import COMPANION, DAILY, MEALS, PROFESSIONAL

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

FUNDED = {"policy.ngo_purchase_budget": 100000.0, "policy.ngo_price_per_hour": 120.0}


def scenario(**overrides) -> Scenario:
    s = Scenario.model_validate(
        {"population": {"villages": 6, "residents_per_village": 800}, "behaviour": {"ask_intercept": 1.0}}
    )
    return s.with_overrides({**FUNDED, **overrides})


def ngo_week(s: Scenario, weeks: int = 3, empty_pool: bool = False):
    model = stepped(s, weeks)
    week, eff, rng = week_before(model, ngo)
    if empty_pool:
        model.world.institutions.treasury.pools["ngo"] = 0.0
    before = week.remaining.copy()
    pool = model.world.institutions.treasury.pools["ngo"]
    ngo.run(model.world, eff, rng, week)
    return model, week, eff, before, pool


def test_ngo_care_goes_to_askers_where_ngos_enter_and_is_paid_from_the_pool():
    model, week, s, before, pool = ngo_week(scenario())
    world, inst = model.world, model.world.institutions
    gave = week.met["ngo"]
    assert gave.sum() > 10
    village = world.persons.village[week.elders]
    assert np.all(gave[~(week.asked & inst.ngo_enters[village])] == 0)
    # only professional and daily-living hours, never more than was left
    took = before - week.remaining
    np.testing.assert_allclose(took[:, [MEALS, COMPANION]], 0.0)
    np.testing.assert_allclose(took[:, PROFESSIONAL] + took[:, DAILY], gave, rtol=1e-5, atol=1e-4)
    assert np.all(week.remaining >= -1e-4)
    # capacity of the NGOs and what the pool pays for the rest of the year
    weeks_left = 52 - ((week.step - 1) % 52)
    price = s.policy.ngo_price_per_hour
    assert gave.sum() <= min(s.ngo.count * s.ngo.hours_per_week, pool / weeks_left / price) + 1e-3
    spent = pool - inst.treasury.pools["ngo"]
    assert spent == pytest.approx(gave.sum(dtype=np.float64) * price, rel=1e-5)
    assert week.extra["spend_ngo"].sum() == pytest.approx(spent, rel=1e-6)
    assert week.extra["ngo_hours"].sum() == pytest.approx(gave.sum(), rel=1e-5)


def test_with_scarce_hours_the_nearest_villages_are_served_first():
    model, week, _, before, _ = ngo_week(scenario(**{"ngo.count": 1, "ngo.hours_per_week": 20.0}))
    world = model.world
    gave = week.met["ngo"]
    village = world.persons.village[week.elders]
    want = (before[:, PROFESSIONAL] + before[:, DAILY]) * (week.asked & world.institutions.ngo_enters[village])
    remote = world.villages.remoteness_km[village]
    served = gave > 0
    short = (want > 0) & (gave < want - 1e-4)
    assert served.any() and short.any()
    assert remote[served].max() <= remote[short].min()


@pytest.mark.parametrize(
    ("off", "empty_pool"), [({"ngo.count": 0}, False), ({}, True), ({"policy.ngo_price_per_hour": 1.0}, False)]
)
def test_no_ngo_care_without_ngos_money_or_a_price_that_covers_travel(off, empty_pool):
    _, week, _, before, _ = ngo_week(scenario(**off), empty_pool=empty_pool)
    assert week.met["ngo"].sum() == 0
    np.testing.assert_array_equal(week.remaining, before)
