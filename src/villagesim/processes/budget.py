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
1. **Feedback.** Each village committee files the year's report: facilities standing and
   operating (what *count* reads), the share of elders' need hours met over the year, the
   mean satisfaction of elders with need and the hours each facility served (what *quality*
   reads). A report reaches the government ``d = round(feedback_delay_max_years * (1 -
   feedback_mechanism))`` years late, is lost with probability ``feedback_loss_max * (1 -
   feedback_mechanism)`` and its quality measures carry a relative error of sd
   ``feedback_noise_max * (1 - feedback_mechanism)`` (互通机制 reduces all three). The
   government keeps the last report received from each village; before any, it knows the
   facilities standing at the start and nothing of their use. A facility is *known* once a
   received report was filed after it was built (or the government built it this year).
2. **Split.** ``allocation = "fixed"``: the shares of ``policy.split``. ``"adaptive"``: the
   shares move ``adaptation_rate`` of the way toward the evaluation KPI's target:
   *count* (facilities counted) puts ``count_building_share`` into building;
   *quality* (service delivered) first funds running costs of the facilities it knows of,
   puts ``quality_building_share`` times the reported unmet share of need into building
   while there is something left to build,
   and gives the rest to services. Uses with nothing to pay for under the current levers:
   under ``policy.inactive_uses = "resplit"`` their money is re-split over the others in
   proportion to their shares (``reallocated``); under ``"hold"`` it stays with them, unspent.
3. **Building.** The building pool buys facilities: under *count* the cheapest first (more
   facilities to count) and, once every slot is built, upgrades of existing buildings
   (money into infrastructure, no new service; ``building_upgrades``; not with
   ``government.count_upgrades = false``); under *quality* happiness homes first in the
   villages with most reported unmet need (elders times reported unmet share), skipping what the pool cannot pay, and only what 80% of the
   budget can also run next year. The rest of the pool stays unspent until the year's end.
4. **Running funds.** Under *count* spread over the known facilities in proportion to
   their yearly cost (a little for each); under *quality* each known facility is funded in
   full, the best value by the reports first (hours served per RMB times the village's
   reported satisfaction), until the pool runs out.
5. **Leftover.** Running money left (and under *quality* building money no facility could
   use) is not left to lapse because reports are missing: it goes to the built facilities
   the government has no report of, in proportion to their unfunded yearly cost; what is
   still left is re-split over the other active uses (``reallocated``), or else stays.

Reports are accumulated each week (elders' need and unmet hours per village, after all
services of the week) and filed in the budget's week.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.processes import planning
from villagesim.processes.base import Output, Process
from villagesim.processes.week import Week
from villagesim.state.institutions import BUDGET_USES, VillageReports, active_uses
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


def _feedback(scenario: Scenario) -> tuple[int, float, float]:
    """Delay (years), loss probability and noise (sd) of the village reports."""
    gov = scenario.government
    off = 1.0 - scenario.policy.feedback_mechanism
    return int(round(gov.feedback_delay_max_years * off)), gov.feedback_loss_max * off, gov.feedback_noise_max * off


def prior_reports(n_villages: int, n_facilities: int) -> VillageReports:
    """What the government knows before any report: the facilities standing at the start
    (its inventory, ``step`` 0), nothing of their use, met need or satisfaction (NaN)."""
    nan_v = np.full(n_villages, np.nan)
    return VillageReports(
        step=np.zeros(n_villages, np.int64),
        facilities_built=nan_v.copy(),
        facilities_operating=nan_v.copy(),
        met_share=nan_v.copy(),
        satisfaction=nan_v.copy(),
        use_per_facility=np.full(n_facilities, np.nan),
    )


def _accumulate(world: World, week: Week) -> None:
    """Each week: elders' need and unmet hours per village (what the year's report says)."""
    inst = world.institutions
    n_v = len(world.villages)
    if inst.year_need is None:
        inst.year_need, inst.year_unmet = np.zeros(n_v), np.zeros(n_v)
    if week.remaining is None or len(week.elders) == 0:
        return
    v = world.persons.village[week.elders]
    inst.year_need += np.bincount(v, weights=week.need.sum(axis=1), minlength=n_v)
    inst.year_unmet += np.bincount(v, weights=week.remaining.sum(axis=1), minlength=n_v)


def _file(world: World, scenario: Scenario, rng: np.random.Generator, week: Week | None, step: int) -> None:
    """The village committees file the year's reports; each is lost with the channel's
    loss probability and its quality measures carry the channel's noise."""
    inst = world.institutions
    fac = inst.facilities
    p = world.persons
    n_v = len(world.villages)
    _, loss, noise = _feedback(scenario)
    need = inst.year_need if inst.year_need is not None else np.zeros(n_v)
    unmet = inst.year_unmet if inst.year_unmet is not None else np.zeros(n_v)
    with np.errstate(divide="ignore", invalid="ignore"):
        met = np.where(need > 0, np.clip(1.0 - unmet / np.maximum(need, 1e-12), 0.0, 1.0), np.nan)
    served = np.zeros(0, np.int64) if week is None else week.elders[p.need_hours[week.elders] > 0]
    cnt = np.bincount(p.village[served], minlength=n_v)
    sat_sum = np.bincount(p.village[served], weights=p.satisfaction[served], minlength=n_v)
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = np.where(cnt > 0, sat_sum / np.maximum(cnt, 1), np.nan)
    lost = rng.random(n_v) < loss
    err = np.clip(1.0 + noise * rng.standard_normal(n_v), 0.0, None)
    inst.in_transit.append(
        VillageReports(
            step=np.full(n_v, step, np.int64),
            facilities_built=np.bincount(fac.village[fac.built], minlength=n_v).astype(np.float64),
            facilities_operating=np.bincount(fac.village[fac.hours_served_year > 0], minlength=n_v).astype(np.float64),
            met_share=np.clip(met * err, 0.0, 1.0),
            satisfaction=np.clip(sat * err, 0.0, 1.0),
            use_per_facility=np.where(fac.built, fac.hours_served_year, np.nan) * err[fac.village],
            lost=lost,
        )
    )
    inst.year_need, inst.year_unmet = np.zeros(n_v), np.zeros(n_v)


def _deliver(world: World, scenario: Scenario, step: int) -> None:
    """Reports filed ``delay`` years ago or earlier reach the government, oldest first;
    a lost one never does (the government keeps the last report it received)."""
    inst = world.institutions
    fac = inst.facilities
    if inst.received is None:
        inst.received = prior_reports(len(world.villages), len(fac))
    delay, _, _ = _feedback(scenario)
    rec = inst.received
    waiting = []
    for r in inst.in_transit:
        if r.step.max() > step - delay * WEEKS_PER_YEAR:
            waiting.append(r)
            continue
        ok = ~r.lost
        for name in ("step", "facilities_built", "facilities_operating", "met_share", "satisfaction"):
            getattr(rec, name)[ok] = getattr(r, name)[ok]
        ok_f = ok[fac.village]
        rec.use_per_facility[ok_f] = r.use_per_facility[ok_f]
    inst.in_transit = waiting


def known_facilities(world: World, step: int) -> np.ndarray:
    """Facilities the government knows of: standing when their village's last received
    report was filed, or built by it this year."""
    inst = world.institutions
    fac = inst.facilities
    rec = inst.received
    reported = fac.built_step <= rec.step[fac.village] if rec is not None else fac.built_step <= 0
    return fac.built & (reported | (fac.built_step == step))


def reported_unmet(world: World) -> tuple[float, np.ndarray]:
    """The elders' unmet share of need by the received reports: overall (elder-weighted;
    1 where nothing is reported: the government assumes the need is unmet) and per
    village (villages without a report take the overall share)."""
    rec = world.institutions.received
    n_v = len(world.villages)
    elders = np.bincount(world.persons.village[world.persons.age >= 60], minlength=n_v).astype(np.float64)
    unmet = 1.0 - rec.met_share if rec is not None else np.full(n_v, np.nan)
    seen = ~np.isnan(unmet)
    overall = float(np.average(unmet[seen], weights=elders[seen] + 1e-12)) if seen.any() else 1.0
    return overall, np.where(seen, unmet, overall)


def target_shares(world: World, scenario: Scenario, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The split the regime steers toward (read from the received reports), and which
    facilities the government knows of."""
    pol = scenario.policy
    gov = scenario.government
    inst = world.institutions
    fac = inst.facilities
    base = np.asarray(pol.split.shares(), dtype=float)
    base = base / base.sum()
    b, r = BUDGET_USES.index("facility_building"), BUDGET_USES.index("facility_running")
    known = known_facilities(world, step)
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
    # build while there is something left to build, as far as the reports show need unmet
    unmet, _ = reported_unmet(world)
    building = gov.quality_building_share * unmet if not fac.built.all() else 0.0
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
        _file(world, scenario, rng, week, step)
    _deliver(world, scenario, step)
    target, known = target_shares(world, scenario, step)
    if pol.allocation == "adaptive" and step > 0:
        shares = (1.0 - scenario.government.adaptation_rate) * tr.shares + scenario.government.adaptation_rate * target
    else:
        shares = target
    tr.shares = shares / shares.sum() if shares.sum() > 0 else shares
    money = pol.budget + carried
    active = active_uses(scenario)
    # NGO money buys nothing where no NGO would enter at the contract price
    active[BUDGET_USES.index("ngo")] &= bool(inst.ngo_enters.any())
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
    _fund_running(world, scenario, known_facilities(world, step))
    _place_leftover(world, scenario, week, active)


def _place_leftover(world: World, scenario: Scenario, week: Week | None, active: np.ndarray) -> None:
    """Money the reports gave no use for does not wait to lapse: running money left once
    the known facilities are funded (and, under *quality*, building money no facility could
    use) goes to the villages' facilities the government has no report of yet, in
    proportion to their unfunded yearly cost (the village committees know them); what is
    still left is re-split over the other active uses in proportion to their shares
    (``reallocated``), or else stays, unspent."""
    inst = world.institutions
    tr = inst.treasury
    fac = inst.facilities
    n_v = len(world.villages)
    money = tr.pools["facility_running"]
    tr.pools["facility_running"] = 0.0
    if scenario.policy.evaluation_regime == "quality":
        money += tr.pools["facility_building"]
        tr.pools["facility_building"] = 0.0
    gap = np.maximum(_yearly_cost(scenario, fac.kind) * fac.built - fac.balance, 0.0)
    if money > 0 and gap.sum() > 0:
        grant = gap * min(1.0, money / gap.sum())
        fac.balance += grant
        money -= float(grant.sum())
    others = np.array([u not in ("facility_building", "facility_running") for u in BUDGET_USES]) & active
    weights = tr.shares * others
    if money > 1e-9 and weights.sum() > 0:
        for i, u in enumerate(BUDGET_USES):
            tr.pools[u] += money * weights[i] / weights.sum()
        book(world, week, "reallocated", np.full(n_v, money / n_v))
        money = 0.0
    tr.pools["facility_running"] += money


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
    else:
        if count:  # more facilities to count: the cheapest first
            order = np.lexsort((-elders[fac.village[candidates]], cost[candidates]))
        else:  # the kind the reports show most used per RMB first, where they show most unmet need
            _, unmet = reported_unmet(world)
            rank = _kind_rank(world, scenario)
            order = np.lexsort((-(elders * unmet)[fac.village[candidates]], rank[fac.kind[candidates]]))
        candidates = candidates[order]
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


def _kind_rank(world: World, scenario: Scenario) -> np.ndarray:
    """Order of the facility kinds for a government judged on quality: by the received
    reports' hours served per RMB of a facility's yearly cost, highest first (kinds with no
    report of their use keep the prior order: happiness homes, points, canteens, after the
    reported ones that were used)."""
    fac = world.institutions.facilities
    rec = world.institutions.received
    n_k = len(scenario.facilities.build_cost)
    value = np.full(n_k, -1.0)
    if rec is not None:
        use = rec.use_per_facility
        seen = ~np.isnan(use)
        yearly = _yearly_cost(scenario, fac.kind)
        hours = np.bincount(fac.kind[seen], weights=use[seen], minlength=n_k)
        cost = np.bincount(fac.kind[seen], weights=yearly[seen], minlength=n_k)
        value = np.where(cost > 0, hours / np.maximum(cost, 1e-9), -1.0)
    # rank 0 = first; ties (and unreported kinds) in the prior order
    order = np.lexsort((np.arange(n_k), -value))
    rank = np.empty(n_k, np.int64)
    rank[order] = np.arange(n_k)
    return rank


def _fund_running(world: World, scenario: Scenario, known: np.ndarray) -> None:
    inst = world.institutions
    fac = inst.facilities
    tr = inst.treasury
    pool = tr.pools["facility_running"]
    need = _yearly_cost(scenario, fac.kind) * fac.built
    if pool <= 0 or need.sum() <= 0:
        return
    if scenario.policy.evaluation_regime == "count":
        # a little for each facility it knows of
        need = need * known
        if need.sum() <= 0:
            return
        grant = need * min(1.0, pool / need.sum())
    else:
        # in full, the best value by the received reports first: hours served per RMB times
        # the reported satisfaction of the village's elders (new ones, with no report of
        # their use yet, first of all)
        target = np.flatnonzero(known & fac.built)
        sat = inst.received.satisfaction[fac.village[target]]
        use = inst.received.use_per_facility[target] / np.maximum(need[target], 1e-9) * np.where(np.isnan(sat), 1.0, sat)
        target = target[np.argsort(-np.where(np.isnan(use), np.inf, use), kind="stable")]
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
    _accumulate(world, week)
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
        "institutions.year_need",
        "institutions.year_unmet",
        "institutions.in_transit",
        "institutions.received",
        "institutions.ngo_enters",
        "persons.village",
        "persons.age",
        "persons.need_hours",
        "persons.satisfaction",
        "week.elders",
        "week.need",
        "week.remaining",
        "scenario.policy",
        "scenario.government",
        "scenario.facilities",
    ),
    writes=(
        "institutions.treasury",
        "institutions.facilities",
        "institutions.reports",
        "institutions.year_need",
        "institutions.year_unmet",
        "institutions.in_transit",
        "institutions.received",
        "institutions.incentive_unpaid",
        "institutions.pending_building_spend",
        "institutions.pending_upgrade_spend",
        "institutions.pending_reports",
    ),
    outputs=UNSPENT_OUTPUTS,
    section="3.11 the government's yearly budget",
)
