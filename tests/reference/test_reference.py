"""Unit checks of the per-agent reference engine (its rules one by one, and its contract)."""

from __future__ import annotations

import math

import pytest

from villagesim.config.schema import Scenario
from villagesim.errors import VillagesimError
from villagesim.outputs.sums import COLUMNS
from villagesim.reference import REFERENCE_COLUMNS, ReferenceModel, governance_inert
from villagesim.reference.agents import AWAY, RESIDENT, Committee, Person

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def village(**sections) -> Scenario:
    data = {"run": {"steps": 10}, "population": {"residents_per_village": 300}}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return governance_inert(Scenario.model_validate(data))


def test_columns_are_a_subset_of_the_core_outputs() -> None:
    assert set(REFERENCE_COLUMNS) <= set(COLUMNS)


def test_refuses_levers_it_does_not_model() -> None:
    s = village().with_overrides({"policy.time_bank.enabled": True})
    with pytest.raises(VillagesimError, match="time_bank"):
        ReferenceModel(s)
    # money and institutions that act (facilities at the start) are refused too
    with pytest.raises(VillagesimError, match="reference engine does not model"):
        ReferenceModel(Scenario.model_validate({"population": {"residents_per_village": 100}}))


def test_one_agent_per_registered_person_and_the_core_world() -> None:
    from villagesim.model import VillageModel

    s = village()
    ref, core = ReferenceModel(s, replicate=2), VillageModel(s, replicate=2)
    persons = list(ref.agents_by_type[Person])
    assert len(persons) == len(core.world.persons) == ref.n_persons
    ages = sorted(round(a.age, 3) for a in persons)
    assert ages == sorted(round(float(x), 3) for x in core.world.persons.age)
    assert len(ref.agents_by_type[Committee]) == s.population.villages


def test_no_migration_when_rates_are_zero() -> None:
    s = village(hollowing_out={"outmigration_rate": 0.0, "return_rate": 0.0})
    m = ReferenceModel(s, steps=10)
    for _ in range(10):
        m.step()
    ts = m.timeseries()
    assert ts["outmigrations"].sum() == 0 and ts["returns"].sum() == 0
    assert ts["away"].nunique() == 1


def test_committee_capacity_and_handled_requests() -> None:
    s = village(committee={"staff_hours_per_week": 3.0, "admin_burden": 0.5, "hours_per_request": 0.5})
    m = ReferenceModel(s, steps=8)
    assert m.committees[0].capacity() == 3
    for _ in range(8):
        m.step()
    ts = m.timeseries()
    assert (ts["handled_requests"] == ts["requests"].clip(upper=3)).all()
    assert (ts["matched_requests"] <= ts["handled_requests"]).all()


def test_no_committee_time_means_no_matches() -> None:
    m = ReferenceModel(village(committee={"admin_burden": 1.0}), steps=6)
    for _ in range(6):
        m.step()
    ts = m.timeseries()
    assert ts["handled_requests"].sum() == 0 and ts["volunteer_hours"].sum() == 0


def test_hours_add_up_per_elder() -> None:
    m = ReferenceModel(village(policy={"incentive_per_hour": 20.0}, committee={"admin_burden": 0.0}), steps=6)
    for _ in range(6):
        m.step()
    for e in m.elders():
        met = e.met["family"] + e.met["volunteer"] + e.met["peer"]
        assert math.isclose(sum(e.need), met + sum(e.remaining), rel_tol=1e-9, abs_tol=1e-9)
    ts = m.timeseries()
    assert ts["volunteer_hours"].sum() == pytest.approx((ts["met_hours_volunteer"] + ts["met_hours_peer"]).sum())


def test_interventions_change_the_lever_at_their_step() -> None:
    s = village().model_copy(update={"intervention": []})
    s = Scenario.model_validate(
        {**s.model_dump(), "intervention": [{"step": 3, "set": {"hollowing_out.outmigration_rate": 0.0}}]}
    )
    m = ReferenceModel(s, steps=5)
    for _ in range(5):
        m.step()
    assert m.scenario.hollowing_out.outmigration_rate == 0.0


def test_statuses_are_consistent() -> None:
    m = ReferenceModel(village(hollowing_out={"outmigration_rate": 0.5}), steps=10)
    for _ in range(10):
        m.step()
    people = list(m.agents_by_type[Person])
    assert all(a.status in (RESIDENT, AWAY) for a in people)  # the dead have left the model
    assert not any(a.active for a in people if a.status == AWAY)
    for hh in m.households:
        assert all(a.household is hh for a in hh.members)
