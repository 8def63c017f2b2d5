"""Process 8: facilities — happiness homes (幸福院), mutual-aid points (互助点), canteens (老年食堂).

Reads: ``world.institutions.facilities`` (built, balance, manager), ``week.elders``,
``week.remaining``, ``awareness``, ``care_level``, household map; ``[facilities]``;
levers ``party_mobilisation``, ``evaluation_regime``.
Writes: facilities' ``manager``, ``operating``, ``balance`` (running costs paid),
``hours_served``; ``week.remaining`` (less what facilities give),
``week.met["facility"]``; outputs ``facilities_built/operating/idle`` and
``spend_facility_running``.

A built facility **operates** in a week only if it has a manager and running funds for
the week; otherwise it stands **idle** (the paper's 重基础设施轻互助服务). A paid manager is
hired while the facility's funds cover running costs and the wage for the rest of the
year; otherwise a volunteer or a party member (more likely under party mobilisation)
takes it on at a yearly rate, faster when the committee is judged on service quality,
and unpaid managers give up at ``manager_quit_rate``.

Service: each elder uses the nearest operating facility of each kind within ``reach_km``
(same village) with probability equal to their awareness of mutual aid. Happiness homes
give day care (daily living), meals and companionship to elders up to care level 3;
mutual-aid points give companionship; canteens give meals to anyone (delivery). A
facility's weekly capacity is shared among its users in proportion to their need.
"""

from __future__ import annotations

import numpy as np

from villagesim.institutions import CANTEEN, HOME, NO_MANAGER, PAID, PARTY, POINT, VOLUNTEER, WEEKS_PER_YEAR
from villagesim.population import World
from villagesim.processes.week import COMPANION, DAILY, MEALS, Week, rank_within
from villagesim.schema import Scenario

NAME = "facilities"

SERVES = {HOME: [DAILY, MEALS, COMPANION], POINT: [COMPANION], CANTEEN: [MEALS]}
"""Kinds of need each facility kind serves."""
MAX_LEVEL = {HOME: 3, POINT: 3, CANTEEN: 4}
"""Highest care level of elders who can use each facility kind."""


def _rate(per_year: float) -> float:
    return float(-np.expm1(-per_year / WEEKS_PER_YEAR))


def staff(fac, scenario: Scenario, rng: np.random.Generator, step: int) -> None:
    """Hire, recruit and lose managers; decide which facilities operate this week."""
    cfg = scenario.facilities
    pol = scenario.policy
    weekly = (np.asarray(cfg.running_cost_per_year)[fac.kind]) / WEEKS_PER_YEAR
    wage = cfg.manager_wage_per_year / WEEKS_PER_YEAR
    weeks_left = WEEKS_PER_YEAR - ((step - 1) % WEEKS_PER_YEAR)
    u_recruit = rng.random(len(fac))
    u_kind = rng.random(len(fac))
    u_quit = rng.random(len(fac))
    can_pay = fac.built & (fac.balance >= (weekly + wage) * weeks_left - 1e-6)
    fac.manager[fac.built & can_pay] = PAID
    fac.manager[fac.built & ~can_pay & (fac.manager == PAID)] = NO_MANAGER
    boost = cfg.quality_recruitment_boost if pol.evaluation_regime == "quality" else 1.0
    party_rate = cfg.party_manager_rate * pol.party_mobilisation * boost
    volunteer_rate = cfg.volunteer_manager_rate * boost
    unmanaged = fac.built & (fac.manager == NO_MANAGER)
    found = unmanaged & (u_recruit < _rate(party_rate + volunteer_rate))
    total = party_rate + volunteer_rate
    is_party = u_kind < (party_rate / total if total > 0 else 0.0)
    fac.manager[found & is_party] = PARTY
    fac.manager[found & ~is_party] = VOLUNTEER
    unpaid = fac.built & ((fac.manager == VOLUNTEER) | (fac.manager == PARTY)) & ~found
    fac.manager[unpaid & (u_quit < _rate(cfg.manager_quit_rate))] = NO_MANAGER
    fac.operating = fac.built & (fac.manager != NO_MANAGER) & (fac.balance >= weekly - 1e-6)


def serve(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> np.ndarray:
    """Give operating facilities' capacity to nearby elders; return hours given per elder."""
    fac = world.institutions.facilities
    p = world.persons
    hh = world.households
    cfg = scenario.facilities
    elders = week.elders
    n_e = len(elders)
    given_total = np.zeros(n_e, dtype=np.float32)
    fac.hours_served[:] = 0.0
    if not fac.operating.any() or n_e == 0:
        return given_total
    uses = rng.random(len(p), dtype=np.float32)[elders] < p.awareness[elders]
    ex, ey = hh.x[p.household[elders]], hh.y[p.household[elders]]
    village = p.village[elders]
    level = p.care_level[elders]
    capacity = np.asarray(cfg.capacity_hours, dtype=float)[fac.kind]
    n_v = len(world.villages)
    for kind, kinds in SERVES.items():
        ids = np.flatnonzero(fac.operating & (fac.kind == kind))
        if len(ids) == 0:
            continue
        # nearest operating facility of this kind in the elder's village, within reach
        order = np.argsort(fac.village[ids], kind="stable")
        ids = ids[order]
        slot = rank_within(fac.village[ids])
        table = np.full((n_v, int(slot.max()) + 1), -1, dtype=np.int64)
        table[fac.village[ids], slot] = ids
        cand = table[village]  # elders x slots
        valid = cand >= 0
        safe = np.where(valid, cand, 0)
        dist = np.hypot(ex[:, None] - fac.x[safe], ey[:, None] - fac.y[safe])
        dist = np.where(valid, dist, np.inf)
        best = np.argmin(dist, axis=1)
        nearest = cand[np.arange(n_e), best]
        ok = (dist[np.arange(n_e), best] <= cfg.reach_km) & uses & (level <= MAX_LEVEL[kind])
        want = week.remaining[:, kinds].sum(axis=1) * ok
        users = np.flatnonzero(want > 0)
        if len(users) == 0:
            continue
        demand = np.bincount(nearest[users], weights=want[users], minlength=len(fac))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(demand > 0, np.minimum(1.0, capacity / np.maximum(demand, 1e-12)), 0.0)
        frac = np.zeros(n_e, dtype=np.float32)
        frac[users] = share[nearest[users]]
        got = week.remaining[:, kinds] * frac[:, None]
        week.remaining[:, kinds] -= got
        hours = got.sum(axis=1)
        given_total += hours
        fac.hours_served += np.bincount(nearest[users], weights=hours[users], minlength=len(fac))
    fac.hours_served_year += fac.hours_served
    return given_total


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    fac = world.institutions.facilities
    cfg = scenario.facilities
    if not fac.built.any():
        # nothing built: no manager to hire, nothing operates, serves or costs anything
        # (this step's draws of the facilities' stream would go unused)
        fac.operating = np.zeros(len(fac), dtype=bool)
        fac.hours_served[:] = 0.0
        week.add_met("facility", np.zeros(len(week.elders), dtype=np.float32))
        zeros = np.zeros(week.n_villages)
        for name in ("spend_facility_running", "facilities_built", "facilities_operating", "facilities_idle"):
            week.report(name, zeros)
        return
    staff(fac, scenario, rng, week.step)
    week.add_met("facility", serve(world, scenario, rng, week))
    # running costs of the week, from each facility's own balance
    weekly = np.asarray(cfg.running_cost_per_year)[fac.kind] / WEEKS_PER_YEAR
    cost = (weekly + (fac.manager == PAID) * cfg.manager_wage_per_year / WEEKS_PER_YEAR) * fac.operating
    cost = np.minimum(cost, fac.balance)
    fac.balance -= cost
    world.institutions.treasury.spent_year += float(cost.sum())
    n_v = week.n_villages
    week.report("spend_facility_running", np.bincount(fac.village, weights=cost, minlength=n_v))
    week.report("facilities_built", np.bincount(fac.village, weights=fac.built, minlength=n_v))
    week.report("facilities_operating", np.bincount(fac.village, weights=fac.operating, minlength=n_v))
    week.report("facilities_idle", np.bincount(fac.village, weights=fac.built & ~fac.operating, minlength=n_v))
