"""Platform matching (part of process 7): the information platform (互助养老网络信息平台).

Reads: ``week.elders``, ``week.asked``, ``week.remaining``; ``digital``, ``lineage``,
``status``, ``age``, ``lottery`` of persons; the pool of active volunteers;
``policy.platform``.
Returns the matches, which the matching process books with channel ``PLATFORM``; outputs ``platform_requests`` and ``platform_matched_requests``.

A request **reaches** the platform if the elder can use a smartphone, or a resident
working-age member of the family line who can acts as proxy, or — for the others — the
offline channel (information collector, desk) covers them (the first
``offline_channel_coverage`` share of them by a fixed lottery). Reached requests are
matched village-wide (no walking limit: the platform tells volunteers further away) by a
minimum-total-cost assignment (``scipy.optimize.linear_sum_assignment``) on distance in km
plus a penalty when a request needs professional care and the volunteer is untrained;
an untrained volunteer gives only general help. ``rounds`` assignments are made per week
(a volunteer can take one request per round while hours last). Villages are solved one
after the other: a loop over villages with requests, not over persons.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from villagesim.config.schema import Scenario
from villagesim.jit import njit
from villagesim.processes.week import GENERAL_KINDS, PROFESSIONAL, Week
from villagesim.state.population import ELDER_AGE, RESIDENT, World

UNTRAINED_PENALTY_KM = 5.0
"""Cost (in km) of sending an untrained volunteer to a request that needs professional care."""


def digital_access(world: World, week: Week, positions: np.ndarray) -> np.ndarray:
    """Which elders (positions in ``week.elders``) can use a platform: themselves, or through a
    resident working-age member of the family line who can (a proxy)."""
    p = world.persons
    return _digital_access(week.elders[positions], p.status, p.age, p.digital, p.lineage)


@njit
def _digital_access(
    rows: np.ndarray, status: np.ndarray, age: np.ndarray, digital: np.ndarray, lineage: np.ndarray
) -> np.ndarray:
    """Per elder row: digital, or a resident person aged 18-59 of the same family line is."""
    n_lin = lineage.max() + 1 if lineage.shape[0] else 0
    proxy = np.zeros(n_lin, dtype=np.bool_)
    for i in range(status.shape[0]):
        # branch-free: the conditions are unpredictable row by row
        proxy[lineage[i]] |= digital[i] & (status[i] == RESIDENT) & (age[i] >= 18) & (age[i] < ELDER_AGE)
    access = np.empty(rows.shape[0], dtype=np.bool_)
    for j in range(rows.shape[0]):
        access[j] = digital[rows[j]] | proxy[lineage[rows[j]]]
    return access


def reach(world: World, scenario: Scenario, week: Week, positions: np.ndarray, direct: np.ndarray) -> np.ndarray:
    """Which requests (positions in ``week.elders``) reach the platform, given their
    :func:`digital_access` (``direct``)."""
    p = world.persons
    rows = week.elders[positions]
    # a second fixed lottery, independent of the one used for alarms
    offline_draw = (p.lottery[rows] * 7919.0) % 1.0
    offline = offline_draw < scenario.policy.platform.offline_channel_coverage
    return direct | offline


def match(world: World, scenario: Scenario, rng: np.random.Generator, week: Week, positions: np.ndarray, pool) -> list[tuple]:
    """Assign the reached requests at ``positions`` to pool volunteers, village by village.

    Returns the matches to book, professional care first: ``(request index, pool index,
    hours, kinds)`` per group (the matching process books them with the platform channel).
    """
    del rng  # the assignment is deterministic given the requests and the pool
    p = world.persons
    hh = world.households
    if len(positions) == 0 or len(pool.rows) == 0:
        return []
    rows = week.elders[positions]
    village = p.village[rows]
    order = np.argsort(village, kind="stable")
    positions, rows, village = positions[order], rows[order], village[order]
    prof_want = week.remaining[positions][:, PROFESSIONAL].astype(np.float64)
    gen_want = week.remaining[positions][:, GENERAL_KINDS].sum(axis=1).astype(np.float64)
    trained = p.trained[pool.rows]
    pool_x, pool_y = pool.x, pool.y
    req_x, req_y = hh.x[p.household[rows]], hh.y[p.household[rows]]
    starts = np.r_[0, np.flatnonzero(np.diff(village)) + 1]
    ends = np.r_[starts[1:], len(village)]
    pr_req, pr_vol, pr_hours, kind_prof = [], [], [], []
    for s, e in zip(starts, ends, strict=True):
        v = village[s]
        lo, n = pool.village_start[v], pool.village_count[v]
        if n == 0:
            continue
        vols = np.arange(lo, lo + n)
        reqs = np.arange(s, e)
        for _ in range(scenario.policy.platform.rounds):
            open_req = reqs[(prof_want[reqs] + gen_want[reqs]) > 1e-6]
            open_vol = vols[(pool.hours_left[vols] > 1e-6) & ~np.isin(pool.rows[vols], rows[open_req])]
            if len(open_req) == 0 or len(open_vol) == 0:
                break
            cost = np.hypot(req_x[open_req, None] - pool_x[open_vol], req_y[open_req, None] - pool_y[open_vol])
            cost = cost + UNTRAINED_PENALTY_KM * ((prof_want[open_req, None] > 0) & ~trained[open_vol])
            ri, vi = linear_sum_assignment(cost)
            r, vv = open_req[ri], open_vol[vi]
            left = pool.hours_left[vv].astype(np.float64)
            give_prof = np.where(trained[vv], np.minimum(prof_want[r], left), 0.0)
            give_gen = np.minimum(gen_want[r], left - give_prof)
            prof_want[r] -= give_prof
            gen_want[r] -= give_gen
            pool.hours_left[vv] -= (give_prof + give_gen).astype(np.float32)
            for hours, is_prof in ((give_prof, True), (give_gen, False)):
                ok = hours > 0
                pr_req.append(r[ok])
                pr_vol.append(vv[ok])
                pr_hours.append(hours[ok].astype(np.float32))
                kind_prof.append(np.full(int(ok.sum()), is_prof))
    if not pr_req:
        return []
    req_idx = np.concatenate(pr_req)
    vol_idx = np.concatenate(pr_vol)
    hours = np.concatenate(pr_hours)
    is_prof = np.concatenate(kind_prof)
    return [
        (req_idx[mask], vol_idx[mask], hours[mask], kinds)
        for kinds, mask in (([PROFESSIONAL], is_prof), (GENERAL_KINDS, ~is_prof))
    ]
