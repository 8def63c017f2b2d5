"""Finance: the week's services are paid from their pools, never beyond them; time-bank credit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import BUDGET_USES, Scenario
from villagesim.processes import finance
from villagesim.state.population import ENROLLED, RESIDENT

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def scenario(**overrides) -> Scenario:
    s = Scenario.model_validate(
        {
            "population": {"villages": 4, "residents_per_village": 800},
            "behaviour": {"volunteer_intercept": 0.0, "ask_intercept": 1.0},
            "committee": {"admin_burden": 0.0},
        }
    )
    return s.with_overrides(
        {
            "policy.incentive_per_hour": 20.0,
            "policy.wearable_alarms": 0.5,
            "policy.publicity": 0.5,
            # enough money that no pool runs dry in the first weeks
            "policy.allocation": "fixed",
            "policy.budget": 2e6,
            **overrides,
        }
    )


def finance_week(model, subsidies: float | None = None):
    week, s, rng = week_before(model, finance)
    tr = model.world.institutions.treasury
    if subsidies is not None:
        tr.pools["subsidies"] = subsidies
    pools = dict(tr.pools)
    finance.run(model.world, s, rng, week)
    return week, s, pools


def test_spending_is_drawn_from_the_pools_and_reported():
    model = stepped(scenario(), 4)
    week, s, pools = finance_week(model)
    tr, p = model.world.institutions.treasury, model.world.persons
    drop = {u: pools[u] - tr.pools[u] for u in BUDGET_USES}
    assert all(d >= -1e-9 for d in drop.values()) and all(tr.pools[u] >= 0 for u in BUDGET_USES)
    owed = float(p.served_hours.sum(dtype=np.float64)) * s.policy.incentive_per_hour
    assert owed > 0
    assert week.extra["spend_subsidies"].sum() == pytest.approx(drop["subsidies"], rel=1e-6)
    assert drop["subsidies"] >= owed * (1 - 1e-6)  # incentives plus alarms
    assert week.extra["spend_publicity"].sum() == pytest.approx(drop["publicity"], rel=1e-6)
    parts = sum(week.extra.get(f"spend_{u}", np.zeros(week.n_villages)) for u in BUDGET_USES)
    np.testing.assert_allclose(week.extra["spend_total"], parts)
    assert not model.world.institutions.incentive_unpaid


def test_a_pool_that_cannot_pay_pays_what_it_has_and_incentives_stop():
    model = stepped(scenario(), 4)
    week, _, _ = finance_week(model, subsidies=1.0)
    inst = model.world.institutions
    assert inst.treasury.pools["subsidies"] == pytest.approx(0.0, abs=1e-9)
    assert week.extra["spend_subsidies"].sum() == pytest.approx(1.0, rel=1e-6)
    assert inst.incentive_unpaid
    assert finance.weekly_cost(scenario(), 4)["publicity"] > 0


def test_time_bank_credit_is_the_hours_served_and_is_conserved():
    s = scenario(**{"policy.time_bank.enabled": True, "policy.time_bank.credit_per_hour": 2.0})
    model = stepped(s, 6)
    inst, p = model.world.institutions, model.world.persons
    credited, expired = inst.tb_credited, inst.tb_expired
    week, s, _ = finance_week(model)
    served = float(p.served_hours.sum(dtype=np.float64))
    assert served > 0
    assert inst.tb_credited - credited == pytest.approx(2.0 * served, rel=1e-4)
    assert inst.tb_credited == pytest.approx(
        inst.tb_redeemed + float(p.tb_balance.sum(dtype=np.float64)) + inst.tb_expired, rel=1e-4
    )
    assert inst.tb_expired >= expired
    assert np.all(p.tb_balance <= s.policy.time_bank.account_cap_hours + 1e-3)


def test_insurance_premium_is_per_enrolled_volunteer_and_claims_are_paid():
    """The premium covers every enrolled resident, active this week or not; each claim costs
    ``insurance_claim_cost``, booked as subsidy spending."""
    s = scenario(**{"policy.incentive_per_hour": 0.0, "policy.wearable_alarms": 0.0, "policy.liability_insurance": True})
    model = stepped(s, 4)
    week, s, pools = finance_week(model)
    p = model.world.persons
    enrolled = int(((p.enrolment == ENROLLED) & (p.status == RESIDENT)).sum())
    assert enrolled > p.active.sum()  # some enrolled volunteers are not active this week
    premium = enrolled * s.government.insurance_premium_per_volunteer_year / 52
    assert week.extra["spend_subsidies"].sum() == pytest.approx(premium, rel=1e-6)
    claims = np.zeros(week.n_villages)
    claims[0] = 3.0
    week, s, rng = week_before(model, finance)
    week.report("insurance_claims", claims)
    enrolled = int(((p.enrolment == ENROLLED) & (p.status == RESIDENT)).sum())
    premium = enrolled * s.government.insurance_premium_per_volunteer_year / 52
    finance.run(model.world, s, rng, week)
    cost = 3 * s.government.insurance_claim_cost
    assert week.extra["insurance_claims_paid"].sum() == pytest.approx(cost)
    assert week.extra["spend_subsidies"].sum() == pytest.approx(premium + cost, rel=1e-6)
