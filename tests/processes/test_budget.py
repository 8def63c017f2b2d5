"""The government's yearly budget (stream "institutions"): pools, buildings and running funds."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import BUDGET_USES, Scenario
from villagesim.model import VillageModel
from villagesim.processes import budget
from villagesim.processes.week import Week
from villagesim.state.institutions import active_uses

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def scenario(**overrides) -> Scenario:
    s = Scenario.model_validate({"population": {"villages": 5, "residents_per_village": 600}})
    return s.with_overrides(overrides) if overrides else s


def year_end(model: VillageModel, s: Scenario | None = None) -> Week:
    """Run the budget process of the last week of the first budget year on ``model``'s world."""
    world = model.world
    week = Week(step=52, n_villages=len(world.villages), n_persons=len(world.persons))
    budget.run(world, s or model.scenario, model.streams.for_step(budget.NAME, 52), week)
    return week


def test_between_budget_weeks_nothing_is_decided():
    model = stepped(scenario(), 3)
    week, s, rng = week_before(model, budget)
    inst = model.world.institutions
    pools, shares, built = dict(inst.treasury.pools), inst.treasury.shares.copy(), inst.facilities.built.copy()
    budget.run(model.world, s, rng, week)
    assert inst.treasury.pools == pools
    np.testing.assert_array_equal(inst.treasury.shares, shares)
    np.testing.assert_array_equal(inst.facilities.built, built)


def test_the_year_end_allocates_the_budget_and_files_a_report():
    s = scenario(**{"policy.allocation": "fixed", "policy.publicity": 0.5, "policy.ngo_purchase_budget": 5000.0})
    model = VillageModel(s)
    inst = model.world.institutions
    tr, fac = inst.treasury, inst.facilities
    tr.pools["publicity"] = 123.0  # unspent money of the year lapses
    built = fac.built.copy()
    year, reports = tr.year, len(inst.reports)
    year_end(model)
    assert tr.year == year + 1 and len(inst.reports) == reports + 1
    assert tr.shares.sum() == pytest.approx(1.0) and np.all(tr.shares >= 0)
    # fixed allocation: the policy's split, over the uses that have something to pay for
    split = np.asarray(s.policy.split.shares(), dtype=float)
    np.testing.assert_allclose(tr.shares, split / split.sum())
    used = tr.shares * active_uses(s)
    expected = s.policy.budget * used / used.sum()
    for i, use in enumerate(BUDGET_USES):
        if use not in ("facility_building", "facility_running", "ngo"):  # spent or handed out at once
            assert tr.pools[use] == pytest.approx(expected[i]), use
    assert tr.pools["ngo"] == pytest.approx(expected[BUDGET_USES.index("ngo")] + 5000.0)
    assert tr.allocated_year == pytest.approx(s.policy.budget + 5000.0)
    assert all(v >= -1e-6 for v in tr.pools.values())  # rounding of the running funds
    assert tr.pools["facility_building"] == 0.0  # under count: new buildings, or upgrades of existing ones
    new = fac.built & ~built
    assert np.all(fac.built_step[new] == 52)
    cost = np.asarray(s.facilities.build_cost)[fac.kind]
    assert cost[new].sum() <= expected[BUDGET_USES.index("facility_building")] + 1e-6
    assert fac.balance.sum() <= expected[BUDGET_USES.index("facility_running")] + 1e-6


@pytest.mark.parametrize("regime", ["count", "quality"])
def test_a_bigger_budget_builds_at_least_as_much_and_none_builds_nothing(regime):
    s = scenario(**{"policy.evaluation_regime": regime, "policy.allocation": "fixed"})
    base = VillageModel(s)
    built = {}
    for amount in (0.0, 120000.0, 600000.0):
        model = copy.deepcopy(base)
        before = int(model.world.institutions.facilities.built.sum())
        year_end(model, s.with_overrides({"policy.budget": amount}))
        built[amount] = int(model.world.institutions.facilities.built.sum()) - before
        if amount == 0.0:
            assert sum(model.world.institutions.treasury.pools.values()) == 0.0
    assert built[0.0] == 0
    assert built[600000.0] >= built[120000.0] and built[600000.0] > 0, built


@pytest.mark.parametrize("upgrades", [True, False])
def test_upgrades_with_every_slot_built_are_reported_or_left_unspent(upgrades):
    s = scenario(**{"policy.allocation": "fixed", "government.count_upgrades": upgrades})
    model = VillageModel(s)
    inst = model.world.institutions
    inst.facilities.built[:] = True  # nothing left to build
    year_end(model)
    building = inst.treasury.pools["facility_building"]
    spent = inst.pending_upgrade_spend.sum()
    share = inst.treasury.shares[BUDGET_USES.index("facility_building")]
    assert share > 0
    if upgrades:  # spent into existing buildings, and said so
        assert spent == pytest.approx(s.policy.budget * share / inst.treasury.shares[active_uses(s)].sum())
        assert building == 0.0
        np.testing.assert_allclose(inst.pending_building_spend, inst.pending_upgrade_spend)
    else:  # nothing spent: the money stays unspent and is reported at the year's end
        assert spent == 0.0 and building > 0
        week = year_end(model)
        assert week.extra["unspent_facility_building"].sum() == pytest.approx(building)


@pytest.mark.parametrize("rule", ["lapse", "carry_over"])
def test_unspent_money_lapses_or_is_carried_over_and_is_reported_per_use(rule):
    s = scenario(**{"policy.allocation": "fixed", "policy.publicity": 0.5, "policy.unspent_funds": rule})
    model = VillageModel(s)
    tr = model.world.institutions.treasury
    fac = model.world.institutions.facilities
    tr.pools["publicity"] = 123.0
    fac.balance[:] = 0.0
    fac.balance[0] = 77.0
    left = sum(tr.pools.values()) + 77.0
    running = tr.pools["facility_running"] + 77.0  # the pool and the facilities' balances
    week = year_end(model)
    assert week.extra["unspent_publicity"].sum() == pytest.approx(123.0)
    assert week.extra["unspent_facility_running"].sum() == pytest.approx(running)
    total = sum(week.extra[f"unspent_{u}"].sum() for u in BUDGET_USES)
    assert total == pytest.approx(left)
    carried = week.extra["carried_over"].sum()
    lapsed = week.extra["lapsed"].sum()
    assert carried + lapsed == pytest.approx(left)
    assert (carried, lapsed) == ((pytest.approx(left), 0.0) if rule == "carry_over" else (0.0, pytest.approx(left)))
    assert tr.allocated_year == pytest.approx(s.policy.budget + s.policy.ngo_purchase_budget + carried)


@pytest.mark.parametrize("rule", ["resplit", "hold"])
def test_money_of_unused_uses_is_re_split_and_reported_or_held(rule):
    s = scenario(**{"policy.allocation": "fixed", "policy.inactive_uses": rule})  # no subsidy, publicity or platform lever
    model = VillageModel(s)
    tr = model.world.institutions.treasury
    week = year_end(model)
    unused = ~active_uses(s)
    assert unused.any()
    idle_money = s.policy.budget * tr.shares[unused].sum()
    held = sum(tr.pools[u] for u, off in zip(BUDGET_USES, unused, strict=True) if off)
    if rule == "resplit":
        assert week.extra["reallocated"].sum() == pytest.approx(idle_money)
        assert held == 0.0
    else:
        assert "reallocated" not in week.extra
        assert held == pytest.approx(idle_money)
