"""Facilities: built ones operate only with a manager and funds; service is bounded by need."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import Scenario
from villagesim.processes import facilities
from villagesim.state.institutions import NO_MANAGER, PAID, VOLUNTEER

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


def test_a_paid_manager_is_hired_only_for_a_whole_yearly_contract():
    """Money left near a year's end does not replace volunteer managers by paid ones who
    would be dismissed at the new year: hiring needs funds for 52 weeks, staying only for
    the rest of the year."""
    s = scenario()
    cfg = s.facilities
    n = 4
    kind = np.zeros(n, dtype=np.int8)
    yearly = cfg.running_cost_per_year[0] + cfg.manager_wage_per_year
    weekly = yearly / 52
    # volunteer-run, with the rest of the year funded (2 weeks left) / a whole year funded /
    # paid, with the rest of the year funded / paid, short of it
    balance = np.array([weekly * 2, yearly, weekly * 2, weekly * 1.5])
    manager = np.array([VOLUNTEER, VOLUNTEER, PAID, PAID], dtype=np.int8)
    never = np.ones(n)  # no recruitment, no quitting
    facilities._staff_kernel(
        np.ones(n, dtype=bool),
        balance,
        manager,
        np.asarray(cfg.running_cost_per_year, dtype=np.float64),
        kind,
        cfg.manager_wage_per_year / 52,
        2,
        never,
        never,
        never,
        0.0,
        0.0,
        0.0,
    )
    assert list(manager) == [VOLUNTEER, PAID, PAID, NO_MANAGER]


def test_no_year_end_swap_of_managers():
    """Over two year ends of a funded county, facilities operating in the last week of a year
    still operate in the first week of the next (no paid stand-ins dismissed at the new year)."""
    model = stepped(scenario(), 52 * 2 + 1)
    op = model.timeseries()["facilities_operating"].to_numpy()
    for end in (52, 104):
        assert op[end] >= op[end - 1] - 1, (end, op[end - 4 : end + 4])


def test_an_idle_facility_lowers_the_trust_of_elders_near_it_and_an_operating_one_does_not():
    """The same week twice (common random numbers): every built facility idle (no manager)
    or operating (staffed); with ``idle_discouragement`` at 0.1 elders within reach of an idle
    facility lose a tenth of their trust, others keep it; next to operating facilities no one
    loses any."""
    s = scenario(**{"facilities.idle_discouragement": 0.1})
    model = stepped(s, 8)
    operating = staffed(copy.deepcopy(model))
    idle = model
    idle.world.institutions.facilities.manager[:] = NO_MANAGER
    results = []
    for m in (idle, operating):
        week, lv, rng = week_before(m, facilities)
        before = m.world.persons.trust.copy()
        facilities.run(m.world, lv.with_overrides({"facilities.volunteer_manager_rate": 0.0}), rng, week)
        results.append((m, week, before))
    (m_idle, w_idle, t_idle), (m_op, w_op, t_op) = results
    fac = m_idle.world.institutions.facilities
    assert fac.built.any() and not fac.operating.any()
    assert m_op.world.institutions.facilities.operating.any()
    p, hh = m_idle.world.persons, m_idle.world.households
    elders = w_idle.elders
    built = np.flatnonzero(fac.built)
    home = p.household[elders]
    dist = np.hypot(hh.x[home][:, None] - fac.x[built], hh.y[home][:, None] - fac.y[built])
    near = ((dist <= s.facilities.reach_km) & (p.village[elders][:, None] == fac.village[built])).any(axis=1)
    assert near.any() and (~near).any()
    after = p.trust[elders]
    np.testing.assert_allclose(after[near], (t_idle[elders][near] * np.float32(0.9)), rtol=1e-6)
    np.testing.assert_array_equal(after[~near], t_idle[elders][~near])
    op = m_op.world.institutions.facilities
    if not (op.built & ~op.operating).any():
        np.testing.assert_array_equal(m_op.world.persons.trust, t_op)
    assert after.mean() < m_op.world.persons.trust[w_op.elders].mean()


def test_participatory_planning_reads_the_kinds_facilities_serve():
    """Stated need counts the kinds of need and care levels each kind of facility serves."""
    from villagesim.processes import planning

    assert {k: list(v) for k, v in planning.SERVES_COLUMNS.items()} == facilities.SERVES
    assert planning.MAX_LEVEL == facilities.MAX_LEVEL


def test_stated_need_is_nil_where_a_facility_of_the_kind_already_serves_everyone_near():
    """A slot's stated need: positive for an unbuilt slot with elders near, zero for the
    same kind once a built facility at the same site covers them."""
    from villagesim.processes import planning

    model = stepped(scenario(), 1)
    fac = model.world.institutions.facilities
    fac.built[:] = False
    slots = np.arange(len(fac))
    need = planning.stated_need(model.world, model.scenario, slots)
    assert (need > 0).any() and (need >= 0).all()
    first = int(np.argmax(need))
    fac.built[first] = True
    after = planning.stated_need(model.world, model.scenario, slots)
    same_site = (fac.kind == fac.kind[first]) & (fac.x == fac.x[first]) & (fac.y == fac.y[first])
    assert (after[same_site] == 0).all()
    assert (after <= need + 1e-9).all()
