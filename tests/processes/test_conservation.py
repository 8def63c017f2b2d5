"""Conservation identities, asserted every week of long runs.

* **Money.** Each budget year, the money in (the budget, the earmarked NGO budget and what
  the last year carried over) equals what was spent (all uses) plus what was left at the
  year's end (``unspent_*``, which lapsed or was carried over); what was spent by any week
  of the year never exceeds the money in; no pool and no facility balance goes negative.
* **Credit-hours.** Cumulative credit issued = redeemed + outstanding + expired, in the
  outputs and in the bank's own totals; every hour of paid care the guarantee buys is
  redeemed from credit.
* **Hours per helper.** No one serves more hours in a week than they offered.

The runs are a small county (varied village sizes, migrants who may die away) with a time
bank whose guarantee is backed by the subsidy pool, incentives, publicity and wearable
alarms; four arms cross fixed/adaptive allocation, count/quality evaluation, lapse/carry-over
of unspent money and re-split/hold of unused uses' money.
"""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import BUDGET_USES, Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.model import VillageModel

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps models

YEARS = 6

ARMS = {
    "fixed-count-lapse": {"allocation": "fixed", "evaluation_regime": "count", "unspent_funds": "lapse"},
    "adaptive-count-carry": {"allocation": "adaptive", "evaluation_regime": "count", "unspent_funds": "carry_over"},
    "adaptive-quality-lapse-hold": {
        "allocation": "adaptive",
        "evaluation_regime": "quality",
        "unspent_funds": "lapse",
        "inactive_uses": "hold",
    },
    "fixed-quality-carry": {"allocation": "fixed", "evaluation_regime": "quality", "unspent_funds": "carry_over"},
}


def county(**policy) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "conservation",
            "run": {"steps": YEARS * WEEKS_PER_YEAR, "seed": 7},
            "population": {"villages": 5, "residents_per_village": 500, "village_size_sigma": 0.5},
            "behaviour": {"ask_intercept": 0.0},
            # volunteers up to 70 leave (and some die away, credit in hand) and seldom return
            "hollowing_out": {
                "initial_away_share": 0.5,
                "outmigration_rate": 0.3,
                "migration_max_age": 70,
                "return_min_age": 80,
                "return_rate": 0.01,
            },
            "policy": {
                "budget": 150000.0,
                "ngo_purchase_budget": 20000.0,
                "incentive_per_hour": 5.0,
                "publicity": 0.5,
                "wearable_alarms": 0.3,
                "digital_training": 100.0,  # paid from the platform pool
                "time_bank": {"enabled": True, "redemption_guarantee": 1.0, "account_cap_hours": 40.0},
                **policy,
            },
        }
    )


def check_week(model: VillageModel, year: dict, totals: dict) -> None:
    """Assert the identities of the week just stepped (``year``, ``totals``: running sums)."""
    t = model.steps
    out = model.latest
    inst = model.world.institutions
    p = model.world.persons
    pol = model.scenario.policy
    # money
    assert all(v >= -1e-6 for v in inst.treasury.pools.values()), inst.treasury.pools
    assert np.all(inst.facilities.balance >= -1e-6)
    year["spent"] += out["spend_total"]
    assert year["spent"] <= year["in"] * (1 + 1e-9) + 1e-6, (t, year)
    unspent = sum(out[f"unspent_{u}"] for u in BUDGET_USES)
    assert out["lapsed"] + out["carried_over"] == pytest.approx(unspent, rel=1e-9, abs=1e-6)
    if t % WEEKS_PER_YEAR == 0:  # the year closes
        assert year["spent"] + unspent == pytest.approx(year["in"], rel=1e-9, abs=1e-3), (t, year, unspent)
        if pol.unspent_funds == "lapse":
            assert out["carried_over"] == 0.0
        year["in"] = pol.budget + pol.ngo_purchase_budget + out["carried_over"]
        year["spent"] = 0.0
    else:
        assert unspent == 0.0
    # credit-hours
    for name in ("credited", "redeemed", "expired"):
        totals[name] += out[f"time_bank_{name}"]
    outstanding = out["time_bank_outstanding"]
    scale = max(totals["credited"], 1.0)
    assert totals["credited"] == pytest.approx(totals["redeemed"] + outstanding + totals["expired"], abs=1e-4 * scale), t
    held = float(p.tb_balance.sum(dtype=np.float64))
    assert inst.tb_credited == pytest.approx(inst.tb_redeemed + held + inst.tb_expired, abs=1e-4 * scale), t
    assert held == pytest.approx(outstanding, abs=1e-4 * scale), t  # only the living hold credit
    assert out["time_bank_guaranteed"] <= out["time_bank_redeemed"] + 1e-3, t
    totals["guaranteed"] += out["time_bank_guaranteed"]
    # hours per helper
    assert np.all(p.served_hours <= p.availability + 1e-4), t


@pytest.mark.parametrize("arm", list(ARMS))
def test_money_credit_and_hours_are_conserved_every_week(arm):
    s = county(**ARMS[arm])
    model = VillageModel(s)
    pol = s.policy
    year = {"in": pol.budget + pol.ngo_purchase_budget, "spent": 0.0}
    totals = {"credited": 0.0, "redeemed": 0.0, "expired": 0.0, "guaranteed": 0.0}
    closed = {"lapsed": 0.0, "carried_over": 0.0}
    for _ in range(s.run.steps):
        model.step()
        check_week(model, year, totals)
        for k in closed:
            closed[k] += model.latest[k]
    # the identities were exercised, not vacuous
    assert totals["credited"] > 100 and totals["redeemed"] > 10 and totals["expired"] > 0
    assert totals["guaranteed"] > 0
    if pol.unspent_funds == "carry_over":
        assert closed["carried_over"] > 0 and closed["lapsed"] == 0
    else:
        assert closed["lapsed"] > 0 and closed["carried_over"] == 0
