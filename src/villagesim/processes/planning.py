"""Participatory planning (a part of the budget process): what elders say they need, where.

A helper module, not a process: the budget process imports it to order the facility slots it
may build under ``policy.participatory_planning``.

The **stated need** of a facility slot is, in hours per week, the need of the resident elders
of its village whose home lies within ``facilities.reach_km`` of the slot's site, who could
use that kind (care level at most the kind's limit) and who are not yet within reach of a
built facility of that kind, in the kinds of need the facility serves: daily living, meals
and companionship for a happiness home, companionship for a mutual-aid point, meals for a
canteen (hours by care level from ``[care]``; companionship by living alone). Elders'
needs are asked of them (village assemblies, surveys), so they are the gross hours of the
tables, before family care.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import ELDER_AGE
from villagesim.processes.week import COMPANION, DAILY, MEALS
from villagesim.state.institutions import CANTEEN, HOME, POINT
from villagesim.state.population import RESIDENT, World

# kinds of need (columns of the need table below) each facility kind serves, and the highest
# care level of its users: as the facilities process serves them (a test checks they agree)
SERVES_COLUMNS = {HOME: (DAILY, MEALS, COMPANION), POINT: (COMPANION,), CANTEEN: (MEALS,)}
"""Need columns (daily living, meals, companionship: the first three kinds) each facility kind serves."""
MAX_LEVEL = {HOME: 3, POINT: 3, CANTEEN: 4}
"""Highest care level of elders who can use each facility kind."""


def _pairs(fac_village: np.ndarray, e_start: np.ndarray, e_count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(facility index, elder position) for every elder of each facility's village."""
    lengths = e_count[fac_village]
    total = int(lengths.sum())
    f = np.repeat(np.arange(len(fac_village)), lengths)
    ends = np.cumsum(lengths)
    within = np.arange(total) - np.repeat(ends - lengths, lengths)
    return f, np.repeat(e_start[fac_village], lengths) + within


def stated_need(world: World, scenario: Scenario, candidates: np.ndarray) -> np.ndarray:
    """Stated need (hours per week) of each facility slot in ``candidates``."""
    p = world.persons
    hh = world.households
    fac = world.institutions.facilities
    n_v = len(world.villages)
    care = scenario.care
    reach = scenario.facilities.reach_km
    resident = p.status == RESIDENT
    elders = np.flatnonzero(resident & (p.age >= ELDER_AGE))
    elders = elders[np.argsort(p.village[elders], kind="stable")]
    village = p.village[elders]
    e_count = np.bincount(village, minlength=n_v)
    e_start = np.r_[0, np.cumsum(e_count)[:-1]]
    level = p.care_level[elders].astype(np.int64)
    alone = np.bincount(p.household[resident], minlength=len(hh.x))[p.household[elders]] == 1
    need = np.stack(
        [
            np.asarray(care.daily_living_hours_by_level, dtype=np.float64)[level],
            np.asarray(care.meals_hours_by_level, dtype=np.float64)[level],
            np.where(alone, care.companionship_hours_alone, care.companionship_hours_not_alone),
        ],
        axis=1,
    )
    ex, ey = hh.x[p.household[elders]], hh.y[p.household[elders]]
    # elders already within reach of a built facility, per kind
    built = np.flatnonzero(fac.built)
    covered = np.zeros((len(elders), 3), dtype=bool)
    f, e = _pairs(fac.village[built], e_start, e_count)
    near = np.hypot(ex[e] - fac.x[built][f], ey[e] - fac.y[built][f]) <= reach
    covered[e[near], fac.kind[built][f[near]]] = True
    out = np.zeros(len(candidates))
    f, e = _pairs(fac.village[candidates], e_start, e_count)
    kind = fac.kind[candidates][f].astype(np.int64)
    near = np.hypot(ex[e] - fac.x[candidates][f], ey[e] - fac.y[candidates][f]) <= reach
    max_level = np.array([MAX_LEVEL[k] for k in range(3)])
    ok = near & ~covered[e, kind] & (level[e] <= max_level[kind])
    for k, columns in SERVES_COLUMNS.items():
        pick = ok & (kind == k)
        hours = need[e[pick]][:, list(columns)].sum(axis=1)
        out += np.bincount(f[pick], weights=hours, minlength=len(candidates))
    return out


def participatory_order(world: World, scenario: Scenario, candidates: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The slots elders ask for, most stated need per RMB of building first (slots nobody
    near needs are left out); ties in slot order."""
    need = stated_need(world, scenario, candidates)
    keep = need > 0
    candidates, need = candidates[keep], need[keep]
    return candidates[np.lexsort((candidates, -need / np.maximum(cost[candidates], 1.0)))]
