"""Process 10: institutions decide — the government's yearly budget.

Reads: ``world.institutions`` (treasury, facilities, yearly reports); ``[policy]``
(budget, allocation, evaluation_regime, split, ngo_purchase_budget, feedback_mechanism),
``[government]``, ``[facilities]``; village sizes.
Writes: the treasury's pools and shares for the next budget year, new facilities
(``built``), facilities' running balances, ``spend_facility_building`` and
``building_upgrades`` (booked by the finance process); yearly reports; outputs
``unspent_<use>``, ``lapsed``, ``carried_over``, ``reallocated``.

Runs in the last week of each budget year (and once at the start, for year 0):

0. **Close the year.** What is left of each use (its pool; for running, also the
   facilities' balances) is reported as ``unspent_<use>``; by ``policy.unspent_funds`` it
   lapses (``lapsed``) or is carried over into next year's money (``carried_over``).
1. **Feedback.** The year's report (facilities built, operating, hours served, unmet
   need) is filed. The government sees reports ``d = round(feedback_delay_max_years *
   (1 - feedback_mechanism))`` years late, and a share ``feedback_loss_max * (1 -
   feedback_mechanism)`` of idle facilities is never reported (互通机制 reduces both).
2. **Split.** ``allocation = "fixed"``: the shares of ``policy.split``. ``"adaptive"``: the
   shares move ``adaptation_rate`` of the way toward the evaluation KPI's target:
   *count* (facilities counted) puts ``count_building_share`` into building;
   *quality* (service delivered) first funds running costs of the facilities it knows of,
   puts ``quality_building_share`` into building while there is something left to build,
   and gives the rest to services. Uses with nothing to pay for under the current levers:
   under ``policy.inactive_uses = "resplit"`` their money is re-split over the others in
   proportion to their shares (``reallocated``); under ``"hold"`` it stays with them, unspent.
3. **Building.** The building pool buys facilities: under *count* the cheapest first (more
   facilities to count) and, once every slot is built, upgrades of existing buildings
   (money into infrastructure, no new service; ``building_upgrades``; not with
   ``government.count_upgrades = false``); under *quality* happiness homes first in the
   villages with most elders, skipping what the pool cannot pay, and only what 80% of the
   budget can also run next year. The rest of the pool stays unspent until the year's end.
4. **Running funds.** Under *count* spread over all built facilities in proportion to
   their yearly cost (a little for each); under *quality* each known facility is funded in
   full, the most used first, until the pool runs out.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.processes import planning
from villagesim.processes.base import Output, Process
from villagesim.processes.week import Week
from villagesim.state.institutions import BUDGET_USES, active_uses
from villagesim.state.population import World

NAME = "institutions"

REALLOCATED = Output(
    "reallocated",
    "RMB/week",
    "Money re-split from unused uses",
    "Money of uses with nothing to pay for, re-split over the others (policy.inactive_uses).",
)
UNSPENT_OUTPUTS: tuple[Output, ...] = (
    *(
        Output(
            f"unspent_{u}",
            "RMB/week",
            f"Unspent: {u.replace('_', ' ')}",
            f"Money of {u.replace('_', ' ')} left at the budget year's end (booked in its last week).",
        )
        for u in BUDGET_USES
    ),
    Output(
        "lapsed",
        "RMB/week",
        "Money lapsed",
        "Money left at the budget year's end that lapses (policy.unspent_funds = lapse).",
    ),
    Output(
        "carried_over",
        "RMB/week",
        "Money carried over",
        "Money left at the budget year's end carried into next year's budget (policy.unspent_funds = carry_over).",
    ),
    REALLOCATED,
)
"""Money not spent, and money re-split: booked in the week it happens."""


def _feedback(scenario: Scenario) -> tuple[int, float]:
    gov = scenario.government
    fm = scenario.policy.feedback_mechanism
    return int(round(gov.feedback_delay_max_years * (1.0 - fm))), gov.feedback_loss_max * (1.0 - fm)


def target_shares(world: World, scenario: Scenario, rng: np.random.Generator, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The split the regime steers toward, and which facilities the government knows of."""
    pol = scenario.policy
    gov = scenario.government
    inst = world.institutions
    fac = inst.facilities
    base = np.asarray(pol.split.shares(), dtype=float)
    base = base / base.sum()
    b, r = BUDGET_USES.index("facility_building"), BUDGET_USES.index("facility_running")
    delay, loss = _feedback(scenario)
    known = fac.built & (fac.built_step <= step - delay * WEEKS_PER_YEAR)
    idle_last_year = fac.built & (fac.hours_served_year <= 0)
    lost = idle_last_year & (rng.random(len(fac)) < loss)
    known &= ~lost
    if pol.allocation == "fixed":
        return base, known
    if pol.evaluation_regime == "count":
        target = base.copy()
        target[b] = 0.0
        rest = target / target.sum() if target.sum() > 0 else target
        target = rest * (1.0 - gov.count_building_share)
        target[b] = gov.count_building_share  # when every slot is built, the money goes into upgrades
        return target, known
    others = base.copy()
    others[[b, r]] = 0.0
    yearly_cost = _yearly_cost(scenario, fac.kind)
    need = float(yearly_cost[known].sum())
    running = min(need / pol.budget, 0.8) if pol.budget > 0 else 0.0
    building = gov.quality_building_share if not fac.built.all() else 0.0
    target = others / others.sum() * max(0.0, 1.0 - running - building) if others.sum() > 0 else others
    target[b] = building
    target[r] = running
    return target, known


def _yearly_cost(scenario: Scenario, kind: np.ndarray) -> np.ndarray:
    fac = scenario.facilities
    return np.asarray(fac.running_cost_per_year)[kind] + fac.manager_wage_per_year


def book(world: World, week: Week | None, name: str, per_village: np.ndarray) -> None:
    """Report ``name`` this week, or, before the first week (the budget of year 0), in the
    first week (booked by the finance process)."""
    if week is not None:
        week.report(name, per_village)
        return
    pending = world.institutions.pending_reports
    pending[name] = pending[name] + per_village if name in pending else np.asarray(per_village, dtype=np.float64).copy()


def _close_year(world: World, scenario: Scenario, week: Week | None) -> float:
    """What is left of each use at the year's end (pools and facilities' balances) is
    reported as ``unspent_<use>``; it lapses, or is carried over (returned)."""
    inst = world.institutions
    tr = inst.treasury
    fac = inst.facilities
    n_v = len(world.villages)
    total = 0.0
    for u in BUDGET_USES:
        left = np.full(n_v, tr.pools[u] / n_v)
        if u == "facility_running":
            left += np.bincount(fac.village, weights=fac.balance, minlength=n_v)
        book(world, week, f"unspent_{u}", left)
        total += float(left.sum())
        tr.pools[u] = 0.0
    fac.balance[:] = 0.0
    carried = total if scenario.policy.unspent_funds == "carry_over" else 0.0
    book(world, week, "carried_over", np.full(n_v, carried / n_v))
    book(world, week, "lapsed", np.full(n_v, (total - carried) / n_v))
    return carried


def decide_year(world: World, scenario: Scenario, rng: np.random.Generator, week: Week | None, step: int) -> None:
    """Close the budget year (report; unspent money lapses or is carried over) and set the
    next year's pools, buildings and funds."""
    inst = world.institutions
    tr = inst.treasury
    fac = inst.facilities
    pol = scenario.policy
    n_v = len(world.villages)
    carried = 0.0
    if step > 0:
        inst.reports.append(
            {
                "year": tr.year,
                "facilities_built": float(fac.built.sum()),
                "facilities_used": float((fac.hours_served_year > 0).sum()),
                "facility_hours": float(fac.hours_served_year.sum()),
                "spent": tr.spent_year,
            }
        )
        tr.year += 1
        carried = _close_year(world, scenario, week)
    target, known = target_shares(world, scenario, rng, step)
    if pol.allocation == "adaptive" and step > 0:
        shares = (1.0 - scenario.government.adaptation_rate) * tr.shares + scenario.government.adaptation_rate * target
    else:
        shares = target
    tr.shares = shares / shares.sum() if shares.sum() > 0 else shares
    money = pol.budget + carried
    active = active_uses(scenario)
    effective = tr.shares * active
    if pol.inactive_uses == "resplit" and effective.sum() > 0:
        # re-split over the uses that have something to pay for, in proportion to their shares
        moved = money * float(tr.shares[~active].sum())
        effective = effective / effective.sum()
        book(world, week, "reallocated", np.full(n_v, moved / n_v))
    else:
        # the money of a use with nothing to pay for stays with it, unspent
        effective = tr.shares.copy()
    tr.pools = {u: float(money * effective[i]) for i, u in enumerate(BUDGET_USES)}
    tr.pools["ngo"] += pol.ngo_purchase_budget
    tr.allocated_year = sum(tr.pools.values())
    tr.spent_year = 0.0
    fac.hours_served_year[:] = 0.0
    inst.incentive_unpaid = False
    _build(world, scenario, step)
    _fund_running(world, scenario, known | (fac.built_step == step))


def _build(world: World, scenario: Scenario, step: int) -> None:
    inst = world.institutions
    fac = inst.facilities
    tr = inst.treasury
    cost = np.asarray(scenario.facilities.build_cost)[fac.kind]
    pool = tr.pools["facility_building"]
    if pool <= 0:
        return
    n_v = len(world.villages)
    candidates = np.flatnonzero(~fac.built)
    elders = np.bincount(world.persons.village[world.persons.age >= 60], minlength=n_v)
    count = scenario.policy.evaluation_regime == "count"
    if scenario.policy.participatory_planning:  # what elders say they need, where (planning.py)
        candidates = planning.participatory_order(world, scenario, candidates, cost)
    elif count:  # more facilities to count: the cheapest first
        candidates = candidates[np.lexsort((-elders[fac.village[candidates]], cost[candidates]))]
    else:  # happiness homes first, where most elders live
        candidates = candidates[np.lexsort((-elders[fac.village[candidates]], fac.kind[candidates]))]
    if count:
        new = candidates[np.cumsum(cost[candidates]) <= pool]
    else:
        # in priority order, each facility the pool affords and the budget can also run next
        # year (a loop over facility slots, once a year)
        yearly = _yearly_cost(scenario, fac.kind)
        money, room = pool, 0.8 * scenario.policy.budget - float(yearly[fac.built].sum())
        chosen = []
        for f in candidates:
            if cost[f] <= money and yearly[f] <= room:
                chosen.append(f)
                money -= cost[f]
                room -= yearly[f]
        new = np.asarray(chosen, dtype=np.int64)
    fac.built[new] = True
    fac.built_step[new] = step
    spent = np.bincount(fac.village[new], weights=cost[new], minlength=n_v).astype(np.float64)
    left = pool - float(spent.sum())
    upgrades = np.zeros(n_v)
    if count and scenario.government.count_upgrades and left > 0 and fac.built.any():
        # judged on buildings, the rest goes into upgrading the existing ones (no new service)
        upgrades = left * np.bincount(fac.village[fac.built], minlength=n_v) / fac.built.sum()
    spent += upgrades
    # what is not spent stays in the pool, unspent, until the year's end
    tr.pools["facility_building"] = max(pool - float(spent.sum()), 0.0)
    tr.spent_year += float(spent.sum())
    # booked in the first week of the new budget year (see the finance process)
    inst.pending_building_spend = spent
    inst.pending_upgrade_spend = upgrades


def _fund_running(world: World, scenario: Scenario, known: np.ndarray) -> None:
    inst = world.institutions
    fac = inst.facilities
    tr = inst.treasury
    pool = tr.pools["facility_running"]
    need = _yearly_cost(scenario, fac.kind) * fac.built
    if pool <= 0 or need.sum() <= 0:
        return
    if scenario.policy.evaluation_regime == "count":
        grant = need * min(1.0, pool / need.sum())
    else:
        target = np.flatnonzero(known & fac.built)
        target = target[np.argsort(-fac.hours_served_year[target], kind="stable")]
        fits = np.cumsum(need[target]) <= pool
        grant = np.zeros(len(fac))
        grant[target[fits]] = need[target[fits]]
    fac.balance += grant
    tr.pools["facility_running"] = pool - float(grant.sum())


def init(world: World, scenario: Scenario, rng: np.random.Generator) -> None:
    """The budget of year 0, decided when the model is built."""
    decide_year(world, scenario, rng, None, 0)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    # the budget is decided on the levers as intended (``levers="intended"``), not as funded
    # this week: a lever whose money ran out this year is funded again next year
    if week.step % WEEKS_PER_YEAR == 0:
        decide_year(world, scenario, rng, week, week.step)


PROCESS = Process(
    name="budget",
    run=run,
    init=init,
    levers="intended",
    stream="institutions",  # the stream key of this process since the first release: keeps its draws
    reads=(
        "institutions.treasury",
        "institutions.facilities",
        "institutions.reports",
        "persons.village",
        "persons.age",
        "scenario.policy",
        "scenario.government",
        "scenario.facilities",
    ),
    writes=(
        "institutions.treasury",
        "institutions.facilities",
        "institutions.reports",
        "institutions.incentive_unpaid",
        "institutions.pending_building_spend",
        "institutions.pending_upgrade_spend",
        "institutions.pending_reports",
    ),
    outputs=UNSPENT_OUTPUTS,
    section="3.11 the government's yearly budget",
)
