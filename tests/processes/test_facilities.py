"""Facilities: built ones operate only with a manager and funds; service is bounded by need."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import Scenario
from villagesim.processes import facilities
from villagesim.state.institutions import NO_MANAGER, VOLUNTEER

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def scenario(**overrides) -> Scenario:
    s = Scenario.model_validate({"population": {"villages": 6, "residents_per_village": 800}})
    return s.with_overrides({"policy.budget": 400000.0, "facilities.manager_quit_rate": 0.0, **overrides})


def staffed(model):
    """Every built facility has a volunteer manager (take-up is slow; the rule tested is
    what a staffed facility does)."""
    fac = model.world.institutions.facilities
    fac.manager[fac.built] = VOLUNTEER
    return model


def facility_week(model, awareness: float | None = None):
    week, s, rng = week_before(model, facilities)
    if awareness is not None:
        model.world.persons.awareness[:] = awareness
    fac = model.world.institutions.facilities
    balance = fac.balance.copy()
    before = week.remaining.copy()
    facilities.run(model.world, s, rng, week)
    return week, before, balance


def test_only_built_staffed_funded_facilities_operate_and_hours_are_conserved():
    model = staffed(stepped(scenario(), 8))
    week, before, balance = facility_week(model)
    fac = model.world.institutions.facilities
    assert fac.built.any() and fac.operating.any()
    assert np.all(fac.built[fac.operating])
    assert np.all(fac.manager[fac.operating] != NO_MANAGER)
    assert np.all(fac.hours_served[~fac.operating] == 0)
    assert np.all(fac.balance >= -1e-6) and np.all(fac.balance <= balance + 1e-6)
    gave = week.met["facility"]
    assert gave.sum() > 0
    assert gave.sum() == pytest.approx(fac.hours_served.sum(), rel=1e-4)
    np.testing.assert_allclose((before - week.remaining).sum(axis=1), gave, rtol=1e-4, atol=1e-3)
    assert np.all(week.remaining >= -1e-4)
    assert np.all(before - week.remaining >= -1e-4)
    assert week.extra["facilities_operating"].sum() == fac.operating.sum()


def test_no_one_uses_a_facility_they_do_not_know_of():
    """Elders use a facility with probability equal to their awareness: none at 0, more at 1."""
    model = staffed(stepped(scenario(), 8))
    aware = copy.deepcopy(model)
    none, _, _ = facility_week(model, awareness=0.0)
    full, _, _ = facility_week(aware, awareness=1.0)
    assert none.met["facility"].sum() == 0
    assert full.met["facility"].sum() > 0


def test_without_running_funds_nothing_operates():
    model = staffed(stepped(scenario(), 8))
    model.world.institutions.facilities.balance[:] = 0.0
    model.world.institutions.treasury.pools["facility_running"] = 0.0
    week, _, _ = facility_week(model)
    fac = model.world.institutions.facilities
    assert fac.built.any()
    assert not fac.operating.any()
    assert week.met["facility"].sum() == 0
