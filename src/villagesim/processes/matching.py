"""Process 7: matching requests for help to volunteers.

Reads: ``week.elders``, ``week.asked``, ``week.remaining``; ``active``, ``availability``,
``trained``, ``age``, ``household`` and the household map; ``[committee]``.
Writes: ``week.remaining`` (less help given), ``week.met["volunteer"]`` and
``week.met["peer"]`` (help from working-age volunteers and from elders), ``week.handled``,
``week.matched``, ``week.pair_*`` (who helped whom, how many hours), ``served_hours``.

Platform matching first, when the platform runs (:mod:`~villagesim.processes.platform`):
requests that reach it are matched village-wide; the rest go to the committee.
Time-bank redemptions are taken up by the committee before other requests and settled
after matching (:mod:`~villagesim.processes.timebank`).

Manual matching by the village committee (村两委):

* The committee handles at most ``floor(staff_hours_per_week * (1 - admin_burden) /
  hours_per_request)`` requests a week, the most severe first (ties in random order).
* For each handled request it tries up to ``attempts_per_request`` volunteers, each drawn
  from the elder's own hamlet with probability ``local_knowledge`` (else from the whole
  village). A try succeeds only if the volunteer is active, has hours left and lives within
  ``walking_distance_km`` of the elder; professional care needs a trained volunteer.
* When several requests pick the same volunteer in one round, the higher-priority request
  is served first and the volunteer's hours run out in that order.

All tries of one round are made at once over arrays (no loop over persons); the rounds
(at most ``attempts_per_request``) are the only loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from villagesim.population import ELDER_AGE, World
from villagesim.processes import platform, timebank
from villagesim.processes.week import GENERAL_KINDS, PROFESSIONAL, Week, rank_within
from villagesim.rng import substream
from villagesim.schema import Scenario

NAME = "matching"
MANUAL, PLATFORM = 0, 1


def committee_capacity(scenario: Scenario, n_villages: int) -> np.ndarray:
    """Requests each committee can handle this week."""
    cm = scenario.committee
    hours = cm.staff_hours_per_week * (1.0 - cm.admin_burden)
    return np.full(n_villages, int(np.floor(hours / cm.hours_per_request + 1e-9)), dtype=np.int64)


@dataclass
class Pool:
    """Active volunteers sorted by hamlet, with hours left, for random draws by hamlet or village."""

    rows: np.ndarray  # person rows, sorted by global hamlet
    hours_left: np.ndarray  # float32
    hamlet_start: np.ndarray
    hamlet_count: np.ndarray
    village_start: np.ndarray
    village_count: np.ndarray

    @classmethod
    def of_active(cls, world: World) -> Pool:
        p = world.persons
        hh = world.households
        active = np.flatnonzero(p.active)
        hamlet = hh.hamlet[p.household[active]]
        order = np.argsort(hamlet, kind="stable")
        rows = active[order]
        n_hamlets = len(world.villages.hamlet_x)
        h_count = np.bincount(hamlet, minlength=n_hamlets)
        h_start = _starts_of(h_count)
        v_count = np.bincount(p.village[rows], minlength=len(world.villages))
        v_start = _starts_of(v_count)
        return cls(rows, p.availability[rows].astype(np.float32), h_start, h_count, v_start, v_count)

    def draw(self, rng: np.random.Generator, hamlet: np.ndarray, village: np.ndarray, local: np.ndarray) -> np.ndarray:
        """A random pool index per request: in its hamlet where ``local`` (and the hamlet has
        volunteers), else in its village; -1 where the village has none."""
        u = rng.random(len(hamlet))
        use_hamlet = local & (self.hamlet_count[hamlet] > 0)
        start = np.where(use_hamlet, self.hamlet_start[hamlet], self.village_start[village])
        count = np.where(use_hamlet, self.hamlet_count[hamlet], self.village_count[village])
        pick = start + np.floor(u * count).astype(np.int64)
        return np.where(count > 0, pick, -1)


def _starts_of(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive groups of the given sizes (an exclusive cumulative sum)."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _exclusive_groupsum(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For arrays sorted by ``keys``: sum of ``values`` before each element within its key."""
    cs = np.cumsum(values, dtype=np.float64)
    before = cs - values
    n = len(keys)
    if n == 0:
        return before
    # index of the first element of each element's group: the last group start at or before it
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    group_first = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    return before - before[group_first]


def assign(
    rng: np.random.Generator,
    world: World,
    pool: Pool,
    req_rows: np.ndarray,
    demand: np.ndarray,
    eligible: np.ndarray,
    attempts: int,
    local_knowledge: float,
    walking_km: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy randomised matching of requests (in priority order) to pool volunteers.

    Args:
        req_rows: person rows of the requesting elders, highest priority first.
        demand: hours wanted per request.
        eligible: per pool index, whether the volunteer may serve this kind of need.

    Returns:
        ``(given, pair_req, pair_pool, pair_hours)``: hours given per request, and the
        matches as request index, pool index and hours. ``pool.hours_left`` is reduced.
    """
    p = world.persons
    hh = world.households
    given = np.zeros(len(req_rows), dtype=np.float32)
    pairs_r, pairs_v, pairs_h = [], [], []
    req_hh = p.household[req_rows]
    req_hamlet = hh.hamlet[req_hh]
    req_village = p.village[req_rows]
    req_x, req_y = hh.x[req_hh], hh.y[req_hh]
    pool_hh = p.household[pool.rows]
    pool_x, pool_y = hh.x[pool_hh], hh.y[pool_hh]
    for _ in range(attempts):
        idx = np.flatnonzero(demand - given > 1e-6)
        if len(idx) == 0 or len(pool.rows) == 0:
            break
        local = rng.random(len(idx)) < local_knowledge
        cand = pool.draw(rng, req_hamlet[idx], req_village[idx], local)
        ok = cand >= 0
        idx, cand = idx[ok], cand[ok]
        dist = np.hypot(req_x[idx] - pool_x[cand], req_y[idx] - pool_y[cand])
        ok = eligible[cand] & (pool.hours_left[cand] > 0) & (pool.rows[cand] != req_rows[idx]) & (dist <= walking_km)
        idx, cand = idx[ok], cand[ok]
        if len(idx) == 0:
            continue
        order = np.lexsort((idx, cand))
        idx, cand = idx[order], cand[order]
        want = (demand[idx] - given[idx]).astype(np.float64)
        before = _exclusive_groupsum(cand, want)
        give = np.clip(pool.hours_left[cand] - before, 0.0, want).astype(np.float32)
        ok = give > 0
        idx, cand, give = idx[ok], cand[ok], give[ok]
        given[idx] += give
        pool.hours_left -= np.bincount(cand, weights=give, minlength=len(pool.rows)).astype(np.float32)
        np.maximum(pool.hours_left, 0, out=pool.hours_left)
        pairs_r.append(idx)
        pairs_v.append(cand)
        pairs_h.append(give)
    if pairs_r:
        return given, np.concatenate(pairs_r), np.concatenate(pairs_v), np.concatenate(pairs_h)
    empty = np.zeros(0, dtype=np.int64)
    return given, empty, empty, np.zeros(0, dtype=np.float32)


def credit_matches(
    world: World,
    week: Week,
    positions: np.ndarray,
    pool: Pool,
    pair_req: np.ndarray,
    pair_pool: np.ndarray,
    pair_hours: np.ndarray,
    kinds: list[int],
    channel: int,
) -> None:
    """Book matched hours: reduce the elders' remaining need of ``kinds`` (in proportion), add
    to volunteer/peer met hours, served hours and the week's list of pairs.

    Args:
        positions: per request, its position in ``week.elders``.
    """
    p = world.persons
    n_e = len(week.elders)
    helper_rows = pool.rows[pair_pool]
    elder_pos = positions[pair_req]
    is_peer = p.age[helper_rows] >= ELDER_AGE
    peer = np.bincount(elder_pos, weights=pair_hours * is_peer, minlength=n_e).astype(np.float32)
    vol = np.bincount(elder_pos, weights=pair_hours * ~is_peer, minlength=n_e).astype(np.float32)
    total = peer + vol
    rem = week.remaining[:, kinds]
    rem_sum = rem.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(rem_sum > 0, np.minimum(total / np.maximum(rem_sum, 1e-12), 1.0), 0.0).astype(np.float32)
    week.remaining[:, kinds] = rem * (1 - frac)[:, None]
    week.add_met("volunteer", vol)
    week.add_met("peer", peer)
    np.add.at(p.served_hours, helper_rows, pair_hours)
    week.matched[elder_pos] = True
    week.pair_elder = np.concatenate((week.pair_elder, week.elders[elder_pos]))
    week.pair_helper = np.concatenate((week.pair_helper, helper_rows))
    week.pair_hours = np.concatenate((week.pair_hours, pair_hours))
    week.pair_channel = np.concatenate((week.pair_channel, np.full(len(pair_hours), channel, dtype=np.int8)))


def manual_match(
    world: World,
    scenario: Scenario,
    rng: np.random.Generator,
    week: Week,
    positions: np.ndarray,
    pool: Pool,
    first: np.ndarray | None = None,
) -> None:
    """The committee's manual matching of the requests at ``positions`` (in ``week.elders``).

    Args:
        first: per elder, requests the committee takes up before all others (time-bank redemptions).
    """
    p = world.persons
    cm = scenario.committee
    rows = week.elders[positions]
    village = p.village[rows]
    capacity = committee_capacity(scenario, week.n_villages)
    later = ~first[positions] if first is not None else np.zeros(len(rows), dtype=bool)
    u = rng.random(len(rows))
    # by village, then redemptions first, then the most severe first, ties in random order:
    # the three integer keys in one (same order, one sorting pass fewer)
    care = p.care_level[rows].astype(np.int64)
    top = int(care.max()) if len(care) else 0
    span = top - (int(care.min()) if len(care) else 0) + 1
    key = (village.astype(np.int64) * 2 + later) * span + (top - care)
    order = np.lexsort((u, key))
    rank = rank_within(village[order])
    chosen = order[rank < capacity[village[order]]]
    # sorted by village and, within a village, most severe first: the order conflicts are settled in
    positions = positions[chosen]
    week.handled[positions] = True
    req_rows = week.elders[positions]
    for kinds, eligible in (
        ([PROFESSIONAL], p.trained[pool.rows]),
        (GENERAL_KINDS, np.ones(len(pool.rows), dtype=bool)),
    ):
        demand = week.remaining[positions][:, kinds].sum(axis=1)
        given, pr, pv, ph = assign(
            rng, world, pool, req_rows, demand, eligible, cm.attempts_per_request, cm.local_knowledge, cm.walking_distance_km
        )
        credit_matches(world, week, positions, pool, pr, pv, ph, kinds, MANUAL)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    n_e = len(week.elders)
    week.handled = np.zeros(n_e, dtype=bool)
    week.matched = np.zeros(n_e, dtype=bool)
    week.add_met("volunteer", np.zeros(n_e, dtype=np.float32))
    week.add_met("peer", np.zeros(n_e, dtype=np.float32))
    pool = Pool.of_active(world)
    asked = np.flatnonzero(week.asked)
    village = world.persons.village[week.elders[asked]]
    n_v = week.n_villages
    # elders who can use a platform on their own or through family (the digital divide)
    access = platform.digital_access(world, week, asked)
    requests = asked
    redemptions = timebank.redeeming(world, scenario, week)
    if scenario.policy.platform.enabled:
        reached = platform.reach(world, scenario, week, asked, access)
        platform.match(world, scenario, substream(rng, 1), week, asked[reached], pool)
        week.report("platform_requests", np.bincount(village, weights=reached, minlength=n_v))
        week.report("platform_matched_requests", np.bincount(village, weights=reached & week.matched[asked], minlength=n_v))
        requests = asked[~reached | ~week.matched[asked]]  # the rest go to the committee
    manual_match(world, scenario, rng, week, requests, pool, first=redemptions)
    if redemptions.any():
        timebank.settle(world, scenario, substream(rng, 2), week, redemptions)
    else:  # nothing to settle: no child stream to build (it draws nothing then)
        week.add_met("time_bank", np.zeros(n_e, dtype=np.float32))
    no_digital = ~access
    week.report("requests_no_digital", np.bincount(village, weights=no_digital, minlength=n_v))
    matched = no_digital & week.matched[asked]
    week.report("matched_requests_no_digital", np.bincount(village, weights=matched, minlength=n_v))
