"""Process 9: money and time bank — paying for the week's services.

Reads: the treasury's pools; ``served_hours``, ``active``, ``alarm`` of persons; the
effective levers (``incentive_per_hour``, ``liability_insurance``, ``wearable_alarms``,
``publicity``, ``platform.enabled``); ``[government]`` costs.
Writes: pools (spending), ``institutions.incentive_unpaid``; the time bank (credits,
expiry, trust: :func:`~villagesim.processes.timebank.credit`); outputs
``spend_subsidies``, ``spend_publicity``, ``spend_platform``, ``spend_facility_building``
and, of it, ``building_upgrades`` (booked in the first week of the budget year it was
decided for), ``spend_total``; what the budget of year 0 reported before the first week.

Subsidies pay, in this order, the incentive per volunteer hour, the wearable alarms and
the liability insurance premium (per enrolled volunteer) and its claims (per accident,
``insurance_claim_cost``), from the subsidy pool; what the pool cannot pay is not
paid, and incentives stop until the next budget year (volunteers learn that the money ran
out). Publicity and the platform are paid weekly from their pools; the model switches
them off when their pool cannot pay the next week (see ``effective_scenario``).
Spending never exceeds the pools, so a year's spending never exceeds its budget.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import BUDGET_USES, Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.processes import timebank
from villagesim.processes.base import Output, Process
from villagesim.processes.budget import REALLOCATED
from villagesim.processes.week import SPEND_SUBSIDIES, Week
from villagesim.state.institutions import spend, weekly_cost
from villagesim.state.population import ENROLLED, RESIDENT, World

NAME = "finance"


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    inst = world.institutions
    tr = inst.treasury
    p = world.persons
    pol = scenario.policy
    gov = scenario.government
    n_v = week.n_villages
    if inst.pending_building_spend is not None:
        week.report("spend_facility_building", inst.pending_building_spend)
        inst.pending_building_spend = None
    if inst.pending_upgrade_spend is not None:
        week.report("building_upgrades", inst.pending_upgrade_spend)
        inst.pending_upgrade_spend = None
    for name, values in inst.pending_reports.items():
        week.report(name, values)
    inst.pending_reports.clear()

    # subsidies: incentives for hours served, alarms, insurance
    subsidies = np.zeros(n_v)
    if pol.incentive_per_hour > 0:
        owed = p.served_hours * np.float32(pol.incentive_per_hour)
        total = float(owed.sum(dtype=np.float64))
        paid = spend(tr, "subsidies", total)
        if paid < total - 1e-6:
            inst.incentive_unpaid = True
        if total > 0:
            subsidies += np.bincount(p.village, weights=owed, minlength=n_v) * (paid / total)
    # the premium covers every enrolled (registered) volunteer, active this week or not
    enrolled = (p.enrolment == ENROLLED) & (p.status == RESIDENT) if pol.liability_insurance else None
    for mask, per_year in (
        (p.alarm, gov.alarm_cost_per_year),
        (enrolled if pol.liability_insurance else None, gov.insurance_premium_per_volunteer_year),
    ):
        if mask is None or not mask.any():
            continue
        owed_v = np.bincount(p.village[mask], minlength=n_v) * per_year / WEEKS_PER_YEAR
        total = float(owed_v.sum())
        paid = spend(tr, "subsidies", total)
        subsidies += owed_v * (paid / total if total > 0 else 0.0)
    claims = week.extra.get("insurance_claims")
    if claims is not None and claims.any():
        # the insurer pays the claims; they are booked as the subsidy pool's spending
        owed_v = claims * gov.insurance_claim_cost
        total = float(owed_v.sum())
        paid = spend(tr, "subsidies", total)
        paid_v = owed_v * (paid / total if total > 0 else 0.0)
        subsidies += paid_v
        week.report("insurance_claims_paid", paid_v)
    week.report("spend_subsidies", subsidies)

    # publicity and platform, spread over villages evenly
    for use, cost in weekly_cost(scenario, n_v).items():
        if cost > 0:
            paid = spend(tr, use, cost)
            week.report(f"spend_{use}", np.full(n_v, paid / n_v))

    timebank.credit(world, scenario, week)

    spend_total = sum(week.extra.get(f"spend_{u}", np.zeros(n_v)) for u in BUDGET_USES)
    week.report("spend_total", spend_total)


PROCESS = Process(
    name="finance",
    run=run,
    reads=(
        "institutions.treasury",
        "persons.served_hours",
        "persons.active",
        "persons.alarm",
        "persons.enrolment",
        "persons.status",
        "persons.lineage",
        "scenario.government",
        "scenario.policy",
    ),
    writes=(
        "institutions.treasury",
        "institutions.incentive_unpaid",
        "institutions.pending_building_spend",
        "institutions.pending_upgrade_spend",
        "institutions.pending_reports",
        "institutions.tb_credited",
        "institutions.tb_expired",
        "persons.tb_balance",
        "persons.tb_trust",
    ),
    outputs=(
        Output(
            "spend_facility_building",
            "RMB/week",
            "Spending on building facilities",
            "The year's building money, booked in its first week.",
        ),
        Output(
            "building_upgrades",
            "RMB/week",
            "Spending on upgrades (no new service)",
            "Of the building money: upgrades of existing buildings once every slot is built (count regime).",
        ),
        REALLOCATED,  # the year-0 budget's, reported before the first week
        SPEND_SUBSIDIES,
        Output(
            "insurance_claims_paid",
            "RMB/week",
            "Insurance claims paid",
            "Of the subsidies: what the liability insurance paid for accidents in service.",
        ),
        Output("spend_publicity", "RMB/week", "Spending on publicity", "Publicity and mobilisation paid this week."),
        Output(
            "spend_platform", "RMB/week", "Spending on the platform", "The information platform's running cost paid this week."
        ),
        Output(
            "time_bank_credited",
            "credit-hours/week",
            "Time-bank credit earned",
            "Credit-hours issued to volunteers for hours served.",
        ),
        Output(
            "time_bank_expired",
            "credit-hours/week",
            "Time-bank credit expired",
            "Credit above the account cap, and the balances of the dead.",
        ),
        Output(
            "time_bank_outstanding",
            "credit-hours",
            "Time-bank credit outstanding",
            "Credit held by the living at the end of the week.",
        ),
        Output("spend_total", "RMB/week", "Spending, all uses", "Everything the government paid this week."),
    ),
    section="3.10 paying for the week's services; time-bank credits",
)
