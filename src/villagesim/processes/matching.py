"""Process 7: matching requests for help to volunteers.

Reads: ``week.elders``, ``week.asked``, ``week.remaining``, ``week.free_hours``; ``active``, ``availability``,
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

The committee's week runs as one compiled kernel (:func:`_manual`, :mod:`villagesim.jit`):
rounds of tries (at most ``attempts_per_request``, each drawing two uniforms per open
request from the process's stream), first for professional care, then for the rest. The
round as array code is :func:`assign_plain`, next to the kernel; the identity tests check
the kernel against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.jit import formula_of, njit
from villagesim.processes import platform, timebank
from villagesim.processes.base import Output, Process
from villagesim.processes.week import GENERAL_KINDS, PROFESSIONAL, SPEND_SUBSIDIES, Week
from villagesim.rng import substream
from villagesim.state.population import ELDER_AGE, World

NAME = "matching"
MANUAL, PLATFORM = 0, 1


def committee_capacity(scenario: Scenario, n_villages: int) -> np.ndarray:
    """Requests each committee can handle this week."""
    cm = scenario.committee
    hours = cm.staff_hours_per_week * (1.0 - cm.admin_burden)
    return np.full(n_villages, int(np.floor(hours / cm.hours_per_request + 1e-9)), dtype=np.int64)


class PoolArrays(NamedTuple):
    """The pool as the compiled rounds read it (:meth:`Pool.arrays`); ``hours_left`` is
    reduced in place."""

    rows: np.ndarray
    x: np.ndarray
    y: np.ndarray
    hours_left: np.ndarray
    hamlet_start: np.ndarray
    hamlet_count: np.ndarray
    village_start: np.ndarray
    village_count: np.ndarray


class Requests(NamedTuple):
    """The requests of a committee's rounds, in priority order: the elders' person rows,
    hamlets, villages and where they live (km)."""

    rows: np.ndarray
    hamlet: np.ndarray
    village: np.ndarray
    x: np.ndarray
    y: np.ndarray


class Pairs(NamedTuple):
    """The matches of the rounds: request index, pool index and hours of each (filled in
    place)."""

    req: np.ndarray
    pool: np.ndarray
    hours: np.ndarray


class CommitteePersons(NamedTuple):
    """The person and household columns the committee's week reads."""

    village: np.ndarray
    household: np.ndarray
    care_level: np.ndarray
    trained: np.ndarray
    age: np.ndarray
    hamlet: np.ndarray  # per household
    hh_x: np.ndarray
    hh_y: np.ndarray


class CommitteeOut(NamedTuple):
    """What the committee's week updates in place: the elders' remaining need, whether
    handled and matched, their hours met by volunteers and peers; the helpers' served hours."""

    remaining: np.ndarray
    handled: np.ndarray
    matched: np.ndarray
    met_volunteer: np.ndarray
    met_peer: np.ndarray
    served_hours: np.ndarray


@dataclass
class Pool:
    """Active volunteers sorted by hamlet, with hours left, for random draws by hamlet or village."""

    rows: np.ndarray  # person rows, sorted by global hamlet
    hours_left: np.ndarray  # float32
    hamlet_start: np.ndarray
    hamlet_count: np.ndarray
    village_start: np.ndarray
    village_count: np.ndarray
    x: np.ndarray  # float32 km: where each volunteer lives
    y: np.ndarray

    def arrays(self) -> PoolArrays:
        """The pool as the compiled rounds read it."""
        return PoolArrays(
            self.rows,
            self.x,
            self.y,
            self.hours_left,
            self.hamlet_start,
            self.hamlet_count,
            self.village_start,
            self.village_count,
        )

    @classmethod
    def of_active(cls, world: World, free_hours: np.ndarray | None = None) -> Pool:
        """The active volunteers with their hours: ``availability``, at most ``free_hours``
        (the week left after work and family care, :func:`villagesim.processes.family.time_budget`)."""
        p = world.persons
        hh = world.households
        hours = p.availability if free_hours is None else np.minimum(p.availability, free_hours)
        return cls(
            *_active_by_hamlet(
                p.active,
                p.household,
                p.village,
                hours,
                hh.hamlet,
                hh.x,
                hh.y,
                len(world.villages.hamlet_x),
                len(world.villages),
            )
        )


@njit
def _active_by_hamlet(active, household, village, availability, hamlet, x, y, n_hamlets, n_villages):
    """The fields of a :class:`Pool`: active persons' rows in order of hamlet (rows in
    increasing order within a hamlet, as a stable sort gives), with their hours, the start
    and size of each hamlet's and each village's block, and where they live."""
    # the active rows first, without branches (who is active is unpredictable row by row)
    active_rows = np.empty(active.shape[0], dtype=np.int64)
    n = 0
    for i in range(active.shape[0]):
        active_rows[n] = i
        n += active[i]
    h_count = np.zeros(n_hamlets, dtype=np.int64)
    v_count = np.zeros(n_villages, dtype=np.int64)
    for k in range(n):
        i = active_rows[k]
        h_count[hamlet[household[i]]] += 1
        v_count[village[i]] += 1
    h_start = np.zeros(n_hamlets, dtype=np.int64)
    v_start = np.zeros(n_villages, dtype=np.int64)
    for h in range(1, n_hamlets):
        h_start[h] = h_start[h - 1] + h_count[h - 1]
    for v in range(1, n_villages):
        v_start[v] = v_start[v - 1] + v_count[v - 1]
    rows = np.empty(n, dtype=np.int64)
    hours = np.empty(n, dtype=np.float32)
    px = np.empty(n, dtype=x.dtype)
    py = np.empty(n, dtype=y.dtype)
    at = h_start.copy()
    for j in range(n):
        i = active_rows[j]
        home = household[i]
        k = at[hamlet[home]]
        at[hamlet[home]] += 1
        rows[k] = i
        hours[k] = availability[i]
        px[k] = x[home]
        py[k] = y[home]
    return rows, hours, h_start, h_count, v_start, v_count, px, py


_PROFESSIONAL = np.array([PROFESSIONAL], dtype=np.int64)
_GENERAL = np.array(GENERAL_KINDS, dtype=np.int64)
"""The kinds of need of the committee's two passes: professional care, then the rest."""
_OPEN = np.float32(1e-6)
"""Hours still wanted above which a request stays open for another round."""


@njit
def _open_requests(demand: np.ndarray, given: np.ndarray) -> int:
    """Number of requests still wanting hours (``demand - given > 1e-6``, in float32)."""
    n = 0
    for i in range(demand.shape[0]):
        if demand[i] - given[i] > _OPEN:
            n += 1
    return n


@njit
def _stable_order(values: np.ndarray, n_values: int) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` for integers in ``[0, n_values)``: a counting sort."""
    at = np.zeros(n_values + 1, dtype=np.int64)
    for v in values:
        at[v + 1] += 1
    for k in range(n_values):
        at[k + 1] += at[k]
    order = np.empty(values.shape[0], dtype=np.int64)
    for i in range(values.shape[0]):
        order[at[values[i]]] = i
        at[values[i]] += 1
    return order


@njit
def _assign_rounds(
    g: np.random.Generator,
    demand: np.ndarray,
    given: np.ndarray,
    req: Requests,
    pool: PoolArrays,
    eligible: np.ndarray,
    attempts: int,
    local_knowledge: float,
    walking_km: np.float32,
    pairs: Pairs,
    n_pairs: int,
) -> int:
    """Greedy randomised matching of requests (in priority order) to pool volunteers.

    Up to ``attempts`` rounds. In each, every open request (``demand - given > 1e-6``) draws
    one volunteer; the round's draws are two uniforms per open request from ``g`` (the
    numbers of two calls of ``g.random(open)``: numba draws from a numpy ``Generator`` the
    numbers numpy would, and advances its state): first whether the committee looks in the
    elder's hamlet (``< local_knowledge``), then which volunteer (a uniform index into the
    hamlet's or the village's volunteers). A try counts if the volunteer may give this kind
    of care (``eligible``), has hours left, is not the elder and lives within
    ``walking_km``. Volunteers picked by several requests serve them in priority order until
    their hours run out: a request gets ``clip(hours_left - wanted by earlier requests, 0,
    wanted)``, worked out in float64 as an exclusive cumulative sum over the round's tries
    sorted by volunteer.

    Args:
        req: the requests (:class:`Requests`).
        pool: :meth:`Pool.arrays`; its ``hours_left`` is reduced in place.
        pairs: the matches (:class:`Pairs`: request index, pool index, hours) appended from
            ``n_pairs`` on, round by round.

    ``given`` (hours per request) is updated in place. Returns the number of pairs.
    """
    req_rows, req_hamlet, req_village, req_x, req_y = req
    pool_rows, pool_x, pool_y, hours_left, hamlet_start, hamlet_count, village_start, village_count = pool
    pair_req, pair_pool, pair_hours = pairs
    n_open = _open_requests(demand, given)
    for _ in range(attempts):
        if n_open == 0 or pool_rows.shape[0] == 0:
            break
        u = g.random(2 * n_open)
        idx = np.empty(n_open, dtype=np.int64)
        cand = np.empty(n_open, dtype=np.int64)
        n_try = 0
        k = 0
        for i in range(demand.shape[0]):
            if not demand[i] - given[i] > _OPEN:
                continue
            local = u[k] < local_knowledge
            h = req_hamlet[i]
            v = req_village[i]
            if local and hamlet_count[h] > 0:
                start, count = hamlet_start[h], hamlet_count[h]
            else:
                start, count = village_start[v], village_count[v]
            draw = u[n_open + k]
            k += 1
            if count == 0:
                continue
            c = start + np.int64(np.floor(draw * count))
            if not (eligible[c] and hours_left[c] > 0 and pool_rows[c] != req_rows[i]):
                continue
            dist = np.float32(math.hypot(req_x[i] - pool_x[c], req_y[i] - pool_y[c]))
            if dist <= walking_km:
                idx[n_try] = i
                cand[n_try] = c
                n_try += 1
        if n_try > 0:
            idx = idx[:n_try]
            cand = cand[:n_try]
            order = _stable_order(cand, pool_rows.shape[0])  # by volunteer, then priority
            cum = 0.0
            group_before = 0.0
            delta = 0.0
            for j in range(n_try):
                i = idx[order[j]]
                c = cand[order[j]]
                want = np.float64(demand[i] - given[i])
                before = cum  # cumulative sum of the wanted hours before this try (float64)
                cum += want
                first = j == 0 or cand[order[j - 1]] != c
                if first:
                    group_before = before
                    delta = 0.0
                give = np.float32(min(max(hours_left[c] - (before - group_before), 0.0), want))
                if give > 0:
                    given[i] += give
                    delta += np.float64(give)
                    pair_req[n_pairs] = i
                    pair_pool[n_pairs] = c
                    pair_hours[n_pairs] = give
                    n_pairs += 1
                last = j == n_try - 1 or cand[order[j + 1]] != c
                if last and delta != 0.0:
                    hours_left[c] -= np.float32(delta)
            for c in range(hours_left.shape[0]):
                hours_left[c] = max(hours_left[c], np.float32(0.0))
        n_open = _open_requests(demand, given)
    return n_pairs


@formula_of("_assign_rounds", check="committee rounds")
def assign_plain(
    rng: np.random.Generator,
    demand: np.ndarray,
    req: Requests,
    pool: Pool,
    eligible: np.ndarray,
    attempts: int,
    local_knowledge: float,
    walking_km: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rounds of :func:`_assign_rounds` as whole-array numpy operations, round by round:
    the numbers the kernel must give to the bit.

    ``req`` is the requests (:class:`Requests`); ``pool.hours_left`` is
    reduced in place. In each round, the open requests (``demand - given > 1e-6``) draw
    ``local = u1 < local_knowledge`` and ``u2``: the volunteer ``start + floor(u2 * count)`` of
    the elder's hamlet (if local and the hamlet has volunteers) or village. The tries that
    count (eligible, hours left, not the elder, ``hypot(dx, dy) <= walking_km``) are sorted by
    volunteer, then priority; with ``want = demand - given`` (float64) and ``before`` the
    wanted hours of the volunteer's earlier tries, a request gets ``clip(hours_left - before,
    0, want)`` (float32) and the volunteer's hours fall by what it gave (at least 0).

    Returns ``(given, pair_req, pair_pool, pair_hours)``: hours per request and the matches
    (request index, pool index, hours), round by round.
    """
    req_rows, req_hamlet, req_village, req_x, req_y = req
    given = np.zeros(len(req_rows), dtype=np.float32)
    pairs_r, pairs_v, pairs_h = [], [], []
    for _ in range(attempts):
        idx = np.flatnonzero(demand - given > 1e-6)
        if len(idx) == 0 or len(pool.rows) == 0:
            break
        local = rng.random(len(idx)) < local_knowledge
        u = rng.random(len(idx))
        hamlet, village = req_hamlet[idx], req_village[idx]
        use_hamlet = local & (pool.hamlet_count[hamlet] > 0)
        start = np.where(use_hamlet, pool.hamlet_start[hamlet], pool.village_start[village])
        count = np.where(use_hamlet, pool.hamlet_count[hamlet], pool.village_count[village])
        cand = np.where(count > 0, start + np.floor(u * count).astype(np.int64), -1)
        ok = cand >= 0
        idx, cand = idx[ok], cand[ok]
        dist = np.hypot(req_x[idx] - pool.x[cand], req_y[idx] - pool.y[cand])
        ok = eligible[cand] & (pool.hours_left[cand] > 0) & (pool.rows[cand] != req_rows[idx]) & (dist <= walking_km)
        idx, cand = idx[ok], cand[ok]
        if len(idx) == 0:
            continue
        order = np.lexsort((idx, cand))
        idx, cand = idx[order], cand[order]
        want = (demand[idx] - given[idx]).astype(np.float64)
        before = np.cumsum(want) - want
        first = np.maximum.accumulate(np.where(np.r_[True, cand[1:] != cand[:-1]], np.arange(len(cand)), 0))
        before = before - before[first]
        give = np.clip(pool.hours_left[cand] - before, 0.0, want).astype(np.float32)
        ok = give > 0
        idx, cand, give = idx[ok], cand[ok], give[ok]
        given[idx] += give
        pool.hours_left -= np.bincount(cand, weights=give, minlength=len(pool.rows)).astype(np.float32)
        np.maximum(pool.hours_left, 0, out=pool.hours_left)
        pairs_r.append(idx)
        pairs_v.append(cand)
        pairs_h.append(give)
    if not pairs_r:
        return given, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return given, np.concatenate(pairs_r), np.concatenate(pairs_v), np.concatenate(pairs_h)


def _generator(rng) -> np.random.Generator:
    """The numpy ``Generator`` behind ``rng`` (a stream built on first use stands in for it)."""
    return getattr(rng, "generator", rng)


@njit
def _credit(
    elder_pos: np.ndarray,
    helper_rows: np.ndarray,
    hours: np.ndarray,
    age: np.ndarray,
    remaining: np.ndarray,
    kinds: np.ndarray,
    met_volunteer: np.ndarray,
    met_peer: np.ndarray,
    served_hours: np.ndarray,
    matched: np.ndarray,
) -> None:
    """Book matched hours in place, elder by elder (only elders with a match change).

    Per elder: hours from peers (helpers aged 60+) and from other volunteers, each summed
    in float64 in the order of the pairs and stored as float32; the elder's remaining need
    of ``kinds`` shrinks in proportion, by ``1 - min(helped / remaining, 1)`` (float32).
    Helpers' served hours grow pair by pair.
    """
    n_e = remaining.shape[0]
    peer = np.zeros(n_e, dtype=np.float64)
    vol = np.zeros(n_e, dtype=np.float64)
    for j in range(elder_pos.shape[0]):
        h = helper_rows[j]
        if age[h] >= ELDER_AGE:
            peer[elder_pos[j]] += np.float64(hours[j])
        else:
            vol[elder_pos[j]] += np.float64(hours[j])
        served_hours[h] += hours[j]
    booked = np.zeros(n_e, dtype=np.bool_)
    for j in range(elder_pos.shape[0]):
        e = elder_pos[j]
        if booked[e]:
            continue
        booked[e] = True
        peer_e = np.float32(peer[e])
        vol_e = np.float32(vol[e])
        total = peer_e + vol_e
        rem_sum = remaining[e, kinds[0]]
        for k in range(1, kinds.shape[0]):
            rem_sum += remaining[e, kinds[k]]
        frac = np.float32(0.0)
        if rem_sum > 0:
            frac = min(total / max(rem_sum, np.float32(1e-12)), np.float32(1.0))
        keep = np.float32(1.0) - frac
        for k in range(kinds.shape[0]):
            remaining[e, kinds[k]] = remaining[e, kinds[k]] * keep
        met_volunteer[e] += vol_e
        met_peer[e] += peer_e
        matched[e] = True


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
    helper_rows = pool.rows[pair_pool]
    elder_pos = positions[pair_req]
    _credit(
        elder_pos,
        helper_rows,
        pair_hours,
        p.age,
        week.remaining,
        np.asarray(kinds, dtype=np.int64),
        week.met["volunteer"],
        week.met["peer"],
        p.served_hours,
        week.matched,
    )
    week.pair_elder = np.concatenate((week.pair_elder, week.elders[elder_pos]))
    week.pair_helper = np.concatenate((week.pair_helper, helper_rows))
    week.pair_hours = np.concatenate((week.pair_hours, pair_hours))
    week.pair_channel = np.concatenate((week.pair_channel, np.full(len(pair_hours), channel, dtype=np.int8)))


@njit
def _committee_order(u: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``np.lexsort((u, key))``: by ``key``, then ``u``, then position (a stable sort by ``u``,
    then a stable counting sort by the small integer ``key``)."""
    by_u = np.argsort(u, kind="mergesort")
    n_keys = key.max() + 1 if key.shape[0] else 0
    return by_u[_stable_order(key[by_u], n_keys)]


@njit
def _manual(
    g: np.random.Generator,
    positions: np.ndarray,
    first: np.ndarray,
    capacity: np.ndarray,
    elders: np.ndarray,
    persons: CommitteePersons,
    pool: PoolArrays,
    attempts: int,
    local_knowledge: float,
    walking_km: np.float32,
    out: CommitteeOut,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The committee's week (see :func:`manual_match`) in one compiled call.

    Draws from ``g``, in order: one uniform per request (ties in the committee's order),
    then the rounds of the professional pass, then those of the general pass. Updates
    ``handled``, ``remaining``, ``matched``, the met hours and ``served_hours`` in place and
    returns ``(positions handled, pair_req, pair_pool, pair_hours)`` (pairs index the handled
    positions and the pool; professional pairs first).
    """
    village, household, care_level, trained, age, hamlet, hh_x, hh_y = persons
    remaining, handled, matched, met_volunteer, met_peer, served_hours = out
    n = positions.shape[0]
    u = g.random(n)
    # by village, then redemptions first, then the most severe first, ties in random order:
    # the three integer keys in one
    care = np.empty(n, dtype=np.int64)
    for i in range(n):
        care[i] = care_level[elders[positions[i]]]
    top = care.max() if n else 0
    span = top - (care.min() if n else 0) + 1
    key = np.empty(n, dtype=np.int64)
    for i in range(n):
        later = 0 if first[positions[i]] else 1
        key[i] = (np.int64(village[elders[positions[i]]]) * 2 + later) * span + (top - care[i])
    order = _committee_order(u, key)
    # each committee takes up to its capacity, in that order
    chosen = np.empty(n, dtype=np.int64)
    m = 0
    rank = 0
    for j in range(n):
        i = order[j]
        v = village[elders[positions[i]]]
        if j > 0 and village[elders[positions[order[j - 1]]]] != v:
            rank = 0
        if rank < capacity[v]:
            chosen[m] = positions[i]
            m += 1
        rank += 1
    chosen = chosen[:m]
    req_rows = np.empty(m, dtype=np.int64)
    req_hamlet = np.empty(m, dtype=hamlet.dtype)
    req_village = np.empty(m, dtype=village.dtype)
    req_x = np.empty(m, dtype=hh_x.dtype)
    req_y = np.empty(m, dtype=hh_y.dtype)
    for i in range(m):
        handled[chosen[i]] = True
        r = elders[chosen[i]]
        req_rows[i] = r
        req_hamlet[i] = hamlet[household[r]]
        req_village[i] = village[r]
        req_x[i] = hh_x[household[r]]
        req_y[i] = hh_y[household[r]]
    req = Requests(req_rows, req_hamlet, req_village, req_x, req_y)
    pool_rows = pool[0]
    pair_req = np.empty(2 * m * attempts, dtype=np.int64)
    pair_pool = np.empty(2 * m * attempts, dtype=np.int64)
    pair_hours = np.empty(2 * m * attempts, dtype=np.float32)
    pairs = Pairs(pair_req, pair_pool, pair_hours)
    n_pairs = 0
    for professional in (True, False):
        kinds = _PROFESSIONAL if professional else _GENERAL
        eligible = np.ones(pool_rows.shape[0], dtype=np.bool_)
        if professional:
            for c in range(pool_rows.shape[0]):
                eligible[c] = trained[pool_rows[c]]
        demand = np.empty(m, dtype=np.float32)
        for i in range(m):
            total = remaining[chosen[i], kinds[0]]
            for k in range(1, kinds.shape[0]):
                total += remaining[chosen[i], kinds[k]]
            demand[i] = total
        given = np.zeros(m, dtype=np.float32)
        start = n_pairs
        n_pairs = _assign_rounds(g, demand, given, req, pool, eligible, attempts, local_knowledge, walking_km, pairs, n_pairs)
        elder_pos = np.empty(n_pairs - start, dtype=np.int64)
        helper_rows = np.empty(n_pairs - start, dtype=np.int64)
        for j in range(start, n_pairs):
            elder_pos[j - start] = chosen[pair_req[j]]
            helper_rows[j - start] = pool_rows[pair_pool[j]]
        _credit(
            elder_pos,
            helper_rows,
            pair_hours[start:n_pairs],
            age,
            remaining,
            kinds,
            met_volunteer,
            met_peer,
            served_hours,
            matched,
        )
    return chosen, pair_req[:n_pairs], pair_pool[:n_pairs], pair_hours[:n_pairs]


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

    The committees take up requests in order (by village, time-bank redemptions first, the
    most severe first, ties at random) up to their capacity; then professional needs are
    matched to trained volunteers, then general needs to any volunteer (:func:`_assign_rounds`'s
    rounds, in :func:`_manual`).

    Args:
        first: per elder, requests the committee takes up before all others (time-bank redemptions).
    """
    p = world.persons
    hh = world.households
    cm = scenario.committee
    if first is None:
        first = np.zeros(len(week.elders), dtype=bool)
    chosen, pair_req, pair_pool, pair_hours = _manual(
        _generator(rng),
        positions,
        first,
        committee_capacity(scenario, week.n_villages),
        week.elders,
        CommitteePersons(p.village, p.household, p.care_level, p.trained, p.age, hh.hamlet, hh.x, hh.y),
        pool.arrays(),
        cm.attempts_per_request,
        float(cm.local_knowledge),
        np.float32(cm.walking_distance_km),
        CommitteeOut(week.remaining, week.handled, week.matched, week.met["volunteer"], week.met["peer"], p.served_hours),
    )
    week.pair_elder = np.concatenate((week.pair_elder, week.elders[chosen[pair_req]]))
    week.pair_helper = np.concatenate((week.pair_helper, pool.rows[pair_pool]))
    week.pair_hours = np.concatenate((week.pair_hours, pair_hours))
    week.pair_channel = np.concatenate((week.pair_channel, np.full(len(pair_hours), MANUAL, dtype=np.int8)))


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    n_e = len(week.elders)
    week.handled = np.zeros(n_e, dtype=bool)
    week.matched = np.zeros(n_e, dtype=bool)
    week.add_met("volunteer", np.zeros(n_e, dtype=np.float32))
    week.add_met("peer", np.zeros(n_e, dtype=np.float32))
    pool = Pool.of_active(world, week.free_hours)
    asked = np.flatnonzero(week.asked)
    village = world.persons.village[week.elders[asked]]
    n_v = week.n_villages
    # elders who can use a platform on their own or through family (the digital divide)
    access = platform.digital_access(world, week, asked)
    requests = asked
    redemptions = timebank.redeeming(world, scenario, week)
    if scenario.policy.platform.enabled:
        reached = platform.reach(world, scenario, week, asked, access)
        for req_idx, vol_idx, hours, kinds in platform.match(world, scenario, substream(rng, 1), week, asked[reached], pool):
            credit_matches(world, week, asked[reached], pool, req_idx, vol_idx, hours, kinds, PLATFORM)
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


PROCESS = Process(
    name="matching",
    run=run,
    reads=(
        "week.elders",
        "week.asked",
        "week.requested_hours",
        "week.remaining",
        "week.free_hours",
        "persons.active",
        "persons.availability",
        "persons.trained",
        "persons.age",
        "persons.household",
        "persons.digital",
        "persons.lineage",
        "persons.tb_balance",
        "persons.tb_trust",
        "households.x",
        "households.y",
        "institutions.treasury",
        "scenario.committee",
        "scenario.policy",
    ),
    writes=(
        "week.remaining",
        "week.met.volunteer",
        "week.met.peer",
        "week.met.time_bank",
        "week.handled",
        "week.matched",
        "week.pair_elder",
        "week.pair_helper",
        "week.pair_hours",
        "week.pair_channel",
        "persons.served_hours",
        "persons.tb_balance",
        "persons.tb_trust",
        "institutions.treasury",
        "institutions.tb_village_success",
        "institutions.tb_redeemed",
    ),
    outputs=(
        Output(
            "platform_requests",
            "requests/week",
            "Requests reaching the platform",
            "Requests that reached the information platform (directly, by a family proxy or offline).",
        ),
        Output(
            "platform_matched_requests",
            "requests/week",
            "Requests matched by the platform",
            "Requests that reached the platform and were matched.",
        ),
        Output(
            "requests_no_digital",
            "requests/week",
            "Requests of elders without digital access",
            "Requests of elders who cannot use a smartphone, alone or through family.",
        ),
        Output(
            "matched_requests_no_digital",
            "requests/week",
            "Matched requests of elders without digital access",
            "Of those, requests that were matched.",
        ),
        Output(
            "time_bank_redeemed",
            "credit-hours/week",
            "Time-bank credit redeemed",
            "Credit-hours taken from family accounts for help received.",
        ),
        Output(
            "time_bank_guaranteed",
            "hours/week",
            "Paid care bought by the guarantee",
            "Hours of paid care the time-bank guarantee bought, each redeemed from family credit.",
        ),
        Output("redemptions", "requests/week", "Time-bank redemptions", "Requests made against time-bank credit."),
        Output(
            "redemptions_failed",
            "requests/week",
            "Failed redemptions",
            "Redemptions that brought no help and no guaranteed paid care.",
        ),
        Output("_redemptions_ok", "requests/week", "Successful redemptions", "Feeds redemption_success_rate."),
        SPEND_SUBSIDIES,
    ),
    section="3.7 matching (committee, platform, time-bank redemptions)",
)
