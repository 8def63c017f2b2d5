"""Process 8: facilities — happiness homes (幸福院), mutual-aid points (互助点), canteens (老年食堂).

Reads: ``world.institutions.facilities`` (built, balance, manager), ``week.elders``,
``week.remaining``, ``awareness``, ``care_level``, household map; ``[facilities]``;
levers ``party_mobilisation``, ``evaluation_regime``.
Writes: facilities' ``manager``, ``operating``, ``balance`` (running costs paid),
``hours_served``; ``trust`` of elders near idle facilities; ``week.remaining`` (less what facilities give),
``week.met["facility"]``; outputs ``facilities_built/operating/idle`` and
``spend_facility_running``.

A built facility **operates** in a week only if it has a manager and running funds for
the week; otherwise it stands **idle** (the paper's 重基础设施轻互助服务). A paid manager is
hired on a yearly contract: only when the facility's funds cover running costs and the
wage for a whole year (in practice, the first week of a budget year funded in full), and
stays while they cover the rest of the year; otherwise a volunteer or a party member (more likely under party mobilisation)
takes it on at a yearly rate, faster when the committee is judged on service quality,
and unpaid managers give up at ``manager_quit_rate``.

Idle facilities discourage (消磨了老年人参与互助养老的积极性): resident elders within ``reach_km``
of a built but idle facility of their village lose the share ``idle_discouragement`` of their
trust each week (:func:`discourage`, before the trust process).

Service: each elder uses the nearest operating facility of each kind within ``reach_km``
(same village) with probability equal to their awareness of mutual aid. Happiness homes
give day care (daily living), meals and companionship to elders up to care level 3;
mutual-aid points give companionship; canteens give meals to anyone (delivery). A
facility's weekly capacity is shared among its users in proportion to their need.

Facilities are few and elders many, so a step is a handful of compiled passes
(:mod:`villagesim.jit`): staffing and running costs over the facilities, service over the
elders. The distance from a household to each facility of its village never changes, so it
is worked out once (with ``np.hypot``, as the plain formula does) when the facility first
operates. :func:`serve_plain` is the same service written as whole-array numpy code.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Output, Process
from villagesim.processes.week import COMPANION, DAILY, MEALS, Week, rank_within
from villagesim.state.institutions import CANTEEN, HOME, NO_MANAGER, PAID, PARTY, POINT, VOLUNTEER, Facilities
from villagesim.state.population import Households, World

NAME = "facilities"

SERVES = {HOME: [DAILY, MEALS, COMPANION], POINT: [COMPANION], CANTEEN: [MEALS]}
"""Kinds of need each facility kind serves."""
MAX_LEVEL = {HOME: 3, POINT: 3, CANTEEN: 4}
"""Highest care level of elders who can use each facility kind."""


def _rate(per_year: float) -> float:
    return float(-np.expm1(-per_year / WEEKS_PER_YEAR))


@njit
def _staff_kernel(
    built, balance, manager, running_cost, kind, wage, weeks_left, u_recruit, u_kind, u_quit, found_rate, party_share, quit_rate
):
    """Managers of the week (``manager`` updated in place) and which facilities operate.

    Facility by facility: a paid manager stays while the facility's funds cover running
    costs and the wage for the rest of the year (``balance >= (weekly + wage) * weeks_left
    - 1e-6``) and leaves otherwise; a facility without a paid manager hires one only when
    its funds cover a whole yearly contract (``balance >= (weekly + wage) * WEEKS_PER_YEAR
    - 1e-6``), so money left near the end of a year never replaces a volunteer by a paid
    manager who is dismissed at the new year; an unmanaged one finds a manager when
    ``u_recruit < found_rate`` (a party member when ``u_kind < party_share``, else a
    volunteer); an unpaid manager not found this week quits when ``u_quit < quit_rate``.
    It operates with a manager and ``balance >= weekly - 1e-6``, ``weekly`` being
    ``running_cost[kind] / WEEKS_PER_YEAR`` (float64 throughout).
    """
    n = len(built)
    operating = np.zeros(n, dtype=np.bool_)
    for f in range(n):
        if not built[f]:
            continue
        weekly = running_cost[kind[f]] / WEEKS_PER_YEAR
        if manager[f] == PAID:
            if balance[f] < (weekly + wage) * weeks_left - 1e-6:
                manager[f] = NO_MANAGER
        elif balance[f] >= (weekly + wage) * WEEKS_PER_YEAR - 1e-6:
            manager[f] = PAID
        if manager[f] == NO_MANAGER and u_recruit[f] < found_rate:
            manager[f] = PARTY if u_kind[f] < party_share else VOLUNTEER
        elif (manager[f] == VOLUNTEER or manager[f] == PARTY) and u_quit[f] < quit_rate:
            manager[f] = NO_MANAGER
        operating[f] = manager[f] != NO_MANAGER and balance[f] >= weekly - 1e-6
    return operating


def staff(fac: Facilities, scenario: Scenario, rng: np.random.Generator, step: int) -> None:
    """Hire, recruit and lose managers; decide which facilities operate this week."""
    cfg = scenario.facilities
    pol = scenario.policy
    wage = cfg.manager_wage_per_year / WEEKS_PER_YEAR
    weeks_left = WEEKS_PER_YEAR - ((step - 1) % WEEKS_PER_YEAR)
    u_recruit = rng.random(len(fac))
    u_kind = rng.random(len(fac))
    u_quit = rng.random(len(fac))
    boost = cfg.quality_recruitment_boost if pol.evaluation_regime == "quality" else 1.0
    party_rate = cfg.party_manager_rate * pol.party_mobilisation * boost
    volunteer_rate = cfg.volunteer_manager_rate * boost
    total = party_rate + volunteer_rate
    fac.operating = _staff_kernel(
        fac.built,
        fac.balance,
        fac.manager,
        np.asarray(cfg.running_cost_per_year, dtype=np.float64),
        fac.kind,
        wage,
        weeks_left,
        u_recruit,
        u_kind,
        u_quit,
        _rate(party_rate + volunteer_rate),
        party_rate / total if total > 0 else 0.0,
        _rate(cfg.manager_quit_rate),
    )


class _Distances:
    """Distance from each household to the facilities of its village (km, ``np.hypot``), and
    each household's nearest operating facility of each kind.

    Households and facility slots never move, so a facility's distances are worked out
    once, the first week it operates: one block per facility over the households of its
    village, in the order of ``hh_by_village``. The nearest facilities
    (``nearest``, ``nearest_dist``: kinds in ``SERVES`` order x households; -1 and inf
    where none operates in the village) are brought up to date in the villages where the
    set of operating facilities changed (``operating``: the set they are for).
    """

    def __init__(self, fac: Facilities, hh: Households, n_v: int) -> None:
        self.fac = weakref.ref(fac)
        self.hh = weakref.ref(hh)
        self.n_fac, self.n_hh = len(fac), len(hh)
        by_village = np.argsort(hh.village, kind="stable")
        self.hh_start = np.searchsorted(hh.village[by_village], np.arange(n_v + 1))
        self.hh_by_village = by_village
        self.hh_village = np.ascontiguousarray(hh.village)
        # facilities of village v in increasing row order: fac_order[fac_start[v]:fac_start[v + 1]]
        self.fac_order = np.argsort(fac.village, kind="stable")
        self.fac_start = np.searchsorted(fac.village[self.fac_order], np.arange(n_v + 1))
        self.offset = np.full(len(fac), -1, dtype=np.int64)
        self.dist = np.zeros(0, dtype=np.result_type(hh.x, fac.x))
        self.operating = np.zeros(len(fac), dtype=bool)
        self.nearest = np.full((len(SERVES), len(hh)), -1, dtype=np.int64)
        self.nearest_dist = np.full((len(SERVES), len(hh)), np.inf, dtype=self.dist.dtype)

    def fits(self, fac: Facilities, hh: Households) -> bool:
        return self.fac() is fac and self.hh() is hh and self.n_fac == len(fac) and self.n_hh == len(hh)

    def add(self, fac: Facilities, hh: Households, new: np.ndarray) -> None:
        """Work out the blocks of facilities ``new`` (rows)."""
        v = fac.village[new]
        lengths = self.hh_start[v + 1] - self.hh_start[v]
        ends = np.cumsum(lengths)
        within = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)
        h = self.hh_by_village[np.repeat(self.hh_start[v], lengths) + within]
        f = np.repeat(new, lengths)
        self.offset[new] = len(self.dist) + ends - lengths
        self.dist = np.concatenate([self.dist, np.hypot(hh.x[h] - fac.x[f], hh.y[h] - fac.y[f])])


_DISTANCES: dict[int, _Distances] = {}


def _distances(fac: Facilities, hh: Households, n_v: int) -> _Distances:
    """The distance table of these facilities and households, with every operating facility in it."""
    known = _DISTANCES.get(id(fac))
    if known is None or not known.fits(fac, hh):
        for stale in [k for k, d in _DISTANCES.items() if d.fac() is None or d.hh() is None]:
            del _DISTANCES[stale]
        known = _DISTANCES[id(fac)] = _Distances(fac, hh, n_v)
    new = np.flatnonzero(fac.operating & (known.offset < 0))
    if len(new):
        known.add(fac, hh, new)
    changed = fac.operating != known.operating
    if changed.any():
        _update_nearest(
            np.unique(fac.village[changed]),
            known.hh_by_village,
            known.hh_start,
            known.fac_order,
            known.fac_start,
            fac.kind,
            fac.operating,
            known.offset,
            known.dist,
            _KIND_IDS,
            known.nearest,
            known.nearest_dist,
        )
        known.operating = fac.operating.copy()
    return known


@njit
def _update_nearest(
    villages, hh_by_village, hh_start, fac_order, fac_start, fac_kind, operating, offset, dist, kind_ids, nearest, nearest_dist
):
    """For the households of ``villages``: the first nearest operating facility of each kind
    in their village (``np.argmin`` over the village's facilities in row order, as
    :func:`serve_plain` finds it) and its distance; -1 and inf where none operates."""
    for v in villages:
        for q in range(len(kind_ids)):
            for j in range(hh_start[v], hh_start[v + 1]):
                spot = j - hh_start[v]
                best = -1
                best_dist = np.inf
                for t in range(fac_start[v], fac_start[v + 1]):
                    f = fac_order[t]
                    if operating[f] and fac_kind[f] == kind_ids[q]:
                        d = dist[offset[f] + spot]
                        if d < best_dist:
                            best, best_dist = f, d
                nearest[q, hh_by_village[j]] = best
                nearest_dist[q, hh_by_village[j]] = best_dist


_KIND_IDS = np.array(list(SERVES), dtype=np.int64)


class KindTable(NamedTuple):
    """The facility kinds in ``SERVES`` order: their ids, the need columns each serves (padded
    with -1), how many, and the highest care level of their users."""

    ids: np.ndarray
    columns: np.ndarray
    n_columns: np.ndarray
    max_level: np.ndarray


_KINDS = KindTable(
    ids=_KIND_IDS,
    columns=np.array([cols + [-1] * (3 - len(cols)) for cols in SERVES.values()], dtype=np.int64),
    n_columns=np.array([len(cols) for cols in SERVES.values()], dtype=np.int64),
    max_level=np.array([MAX_LEVEL[k] for k in SERVES], dtype=np.int64),
)


class Users(NamedTuple):
    """The elders who may use a facility: their person rows, the person columns read
    (``village``, ``household``, ``level`` of care, ``awareness``), the week's draw ``u``
    (per person) and ``remaining`` need (elders x kinds, reduced in place)."""

    elders: np.ndarray
    village: np.ndarray
    household: np.ndarray
    level: np.ndarray
    u: np.ndarray
    awareness: np.ndarray
    remaining: np.ndarray


class Supply(NamedTuple):
    """The facilities as the elders reach them: each household's village, each facility's
    kind and whether it operates, each household's nearest operating facility of each kind
    and its distance (``_Distances``), hours of capacity by kind and the reach (km, in the
    distances' dtype)."""

    hh_village: np.ndarray
    fac_kind: np.ndarray
    operating: np.ndarray
    nearest: np.ndarray
    nearest_dist: np.ndarray
    capacity: np.ndarray
    reach: np.floating


@njit
def _serve_kernel(users, supply, kinds, hours_served, given):
    """:func:`serve_plain` after its draw, over the elders (:class:`Users`, :class:`Supply`,
    :class:`KindTable`): ``remaining``, ``hours_served`` and ``given`` (float32 zeros in, hours
    given per elder out) are updated in place.

    For each facility kind in turn (``SERVES`` order): an elder's facility is their
    household's nearest operating one of the kind (``nearest``, ``nearest_dist``, see
    ``_Distances``); they use it when within ``reach`` (cast to the distances' dtype, as
    numpy compares), ``u < awareness`` and their care level allows. ``want`` is the
    float32 left-to-right sum of the remaining hours of the kinds served, times the use
    flag; a facility's demand is the float64 sum of its users' ``want`` in elder order
    (``np.bincount``); each user gets ``float32(min(1, capacity / max(demand, 1e-12)))``
    of their remaining hours of those kinds (float32 products, as numpy broadcasts), and the
    hours given are summed per facility in float64 in elder order. A kind with no operating
    facility or no user changes nothing. Returns False, having changed nothing, when an
    elder's household is not in their village (the nearest facilities are the household's).
    """
    elders, village, household, level, u, awareness, remaining = users
    hh_village, fac_kind, operating, nearest, nearest_dist, capacity, reach = supply
    kind_ids, kind_columns, kind_n_columns, kind_max_level = kinds
    n_e = len(elders)
    n_f = len(fac_kind)
    for i in range(n_e):
        if hh_village[household[elders[i]]] != village[elders[i]]:
            return False
    nearest_of = np.empty(n_e, dtype=np.int64)
    want = np.zeros(n_e, dtype=remaining.dtype)
    demand = np.empty(n_f, dtype=np.float64)
    share = np.empty(n_f, dtype=np.float64)
    served = np.empty(n_f, dtype=np.float64)
    for q in range(len(kind_ids)):
        kind = kind_ids[q]
        columns = kind_columns[q, : kind_n_columns[q]]
        present = False
        for f in range(n_f):
            if operating[f] and fac_kind[f] == kind:
                present = True
                break
        if not present:
            continue
        n_users = 0
        for i in range(n_e):
            row = elders[i]
            h = household[row]
            best = nearest[q, h]
            uses = best >= 0 and nearest_dist[q, h] <= reach and u[row] < awareness[row] and level[row] <= kind_max_level[q]
            total = remaining[i, columns[0]]
            for c in range(1, len(columns)):
                total += remaining[i, columns[c]]
            want[i] = total * np.float32(uses)
            nearest_of[i] = best
            if want[i] > 0:
                n_users += 1
        if n_users == 0:
            continue
        demand[:] = 0.0
        for i in range(n_e):
            if want[i] > 0:
                demand[nearest_of[i]] += np.float64(want[i])
        for f in range(n_f):
            share[f] = 0.0
            if demand[f] > 0:
                share[f] = min(1.0, capacity[fac_kind[f]] / max(demand[f], 1e-12))
        served[:] = 0.0
        for i in range(n_e):
            frac = np.float32(share[nearest_of[i]]) if want[i] > 0 else np.float32(0.0)
            hours = remaining[i, columns[0]] * frac
            remaining[i, columns[0]] -= hours
            for c in range(1, len(columns)):
                got = remaining[i, columns[c]] * frac
                remaining[i, columns[c]] -= got
                hours += got
            given[i] += hours
            if want[i] > 0:
                served[nearest_of[i]] += np.float64(hours)
        for f in range(n_f):
            hours_served[f] += served[f]
    return True


def serve(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> np.ndarray:
    """Give operating facilities' capacity to nearby elders; return hours given per elder."""
    fac = world.institutions.facilities
    p = world.persons
    elders = week.elders
    given_total = np.zeros(len(elders), dtype=np.float32)
    fac.hours_served[:] = 0.0
    if not fac.operating.any() or len(elders) == 0:
        return given_total
    u = rng.random(len(p), dtype=np.float32)
    table = _distances(fac, world.households, len(world.villages))
    users = Users(
        elders=elders,
        village=p.village,
        household=p.household,
        level=p.care_level,
        u=u,
        awareness=p.awareness,
        remaining=week.remaining,
    )
    supply = Supply(
        hh_village=table.hh_village,
        fac_kind=fac.kind,
        operating=fac.operating,
        nearest=table.nearest,
        nearest_dist=table.nearest_dist,
        capacity=np.asarray(scenario.facilities.capacity_hours, dtype=np.float64),
        reach=table.dist.dtype.type(scenario.facilities.reach_km),
    )
    done = _serve_kernel(users, supply, _KINDS, fac.hours_served, given_total)
    if not done:
        given_total = serve_plain(world, scenario, u, week)
    fac.hours_served_year += fac.hours_served
    return given_total


@formula_of("serve", check="facility service")
def serve_plain(world: World, scenario: Scenario, u: np.ndarray, week: Week) -> np.ndarray:
    """:func:`serve` as whole-array numpy code, given the week's draw ``u`` (one per person
    row); ``fac.hours_served`` must be zero. Updates ``week.remaining`` and
    ``fac.hours_served``; returns hours given per elder."""
    fac = world.institutions.facilities
    p = world.persons
    hh = world.households
    cfg = scenario.facilities
    elders = week.elders
    n_e = len(elders)
    given_total = np.zeros(n_e, dtype=np.float32)
    uses = u[elders] < p.awareness[elders]
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
    return given_total


@njit
def _running_costs(village, kind, built, operating, manager, balance, running_cost, wage_per_year, n_v):
    """The week's running cost of each facility, paid from its balance (updated in place),
    and per village (rows of a 4 x villages matrix) the cost and the facilities built,
    operating and idle.

    Equals ``cost = np.minimum((running_cost[kind] / 52 + (manager == PAID) * wage / 52)
    * operating, balance)``, ``balance -= cost`` and ``np.bincount(village, weights=...)``
    of ``cost``, ``built``, ``operating`` and ``built & ~operating`` (float64, row order).
    """
    n = len(village)
    cost = np.empty(n, dtype=np.float64)
    per_village = np.zeros((4, n_v), dtype=np.float64)
    for f in range(n):
        paid = np.float64(manager[f] == PAID)
        c = (running_cost[kind[f]] / WEEKS_PER_YEAR + paid * wage_per_year / WEEKS_PER_YEAR) * np.float64(operating[f])
        c = min(c, balance[f])
        balance[f] -= c
        cost[f] = c
        v = village[f]
        per_village[0, v] += c
        per_village[1, v] += np.float64(built[f])
        per_village[2, v] += np.float64(operating[f])
        per_village[3, v] += np.float64(built[f] and not operating[f])
    return cost, per_village


def discourage(world: World, scenario: Scenario, week: Week) -> None:
    """Idle facilities discourage (消磨了老年人参与互助养老的积极性): each resident elder whose
    home lies within ``reach_km`` of a built but idle facility of their village loses the
    share ``idle_discouragement`` of their trust this week (once, however many idle
    facilities stand near). Runs before the trust process, which then moves trust as usual."""
    rate = scenario.facilities.idle_discouragement
    fac = world.institutions.facilities
    idle = np.flatnonzero(fac.built & ~fac.operating)
    elders = week.elders
    if rate <= 0 or len(idle) == 0 or len(elders) == 0:
        return
    p = world.persons
    hh = world.households
    idle = idle[np.argsort(fac.village[idle], kind="stable")]
    slot = rank_within(fac.village[idle])
    table = np.full((len(world.villages), int(slot.max()) + 1), -1, dtype=np.int64)
    table[fac.village[idle], slot] = idle
    cand = table[p.village[elders]]  # elders x slots
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    home = p.household[elders]
    dist = np.hypot(hh.x[home][:, None] - fac.x[safe], hh.y[home][:, None] - fac.y[safe])
    near = (valid & (dist <= scenario.facilities.reach_km)).any(axis=1)
    hit = elders[near]
    p.trust[hit] = (p.trust[hit] * (1.0 - rate)).astype(p.trust.dtype)


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
    discourage(world, scenario, week)
    # running costs of the week, from each facility's own balance
    cost, per_village = _running_costs(
        fac.village,
        fac.kind,
        fac.built,
        fac.operating,
        fac.manager,
        fac.balance,
        np.asarray(cfg.running_cost_per_year, dtype=np.float64),
        cfg.manager_wage_per_year,
        week.n_villages,
    )
    world.institutions.treasury.spent_year += float(cost.sum())
    for k, name in enumerate(("spend_facility_running", "facilities_built", "facilities_operating", "facilities_idle")):
        week.report(name, per_village[k])


PROCESS = Process(
    name="facilities",
    run=run,
    reads=(
        "institutions.facilities",
        "week.elders",
        "week.remaining",
        "persons.awareness",
        "persons.care_level",
        "persons.household",
        "persons.village",
        "persons.trust",
        "households.x",
        "households.y",
        "scenario.facilities",
    ),
    writes=("institutions.facilities", "institutions.treasury", "week.remaining", "week.met.facility", "persons.trust"),
    outputs=(
        Output("facilities_built", "facilities", "Facilities built", "Happiness homes, mutual-aid points and canteens standing."),
        Output(
            "facilities_operating",
            "facilities",
            "Facilities operating",
            "Built facilities with a manager and running funds this week.",
        ),
        Output(
            "facilities_idle", "facilities", "Facilities idle", "Built facilities without a manager or running funds this week."
        ),
        Output(
            "spend_facility_running",
            "RMB/week",
            "Spending on running facilities",
            "Running costs and wages paid from facilities' balances.",
        ),
    ),
    section="3.9 facilities",
)
