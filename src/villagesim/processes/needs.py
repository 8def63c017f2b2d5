"""Process 3: each resident elder's weekly need in hours, by kind.

Reads: ``status``, ``age``, ``care_level``, ``household``; ``week.household_residents``;
``[care]`` hours by care level.
Writes: ``week.elders`` (rows of resident elders), ``week.alone``, ``week.need`` and
``week.remaining`` (elders x kinds: daily living, meals, companionship, professional),
``need_hours``/``unmet_hours`` of the person table (reset for everyone, set for elders).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.week import COMPANION, DAILY, MEALS, PROFESSIONAL, Week, row_total
from villagesim.state.population import ELDER_AGE, RESIDENT, World

NAME = "needs"


@lru_cache(maxsize=64)
def _hours_by_level(daily: tuple[float, ...], meals: tuple[float, ...], professional: tuple[float, ...]) -> tuple:
    """Weekly hours of daily living, meals and professional care by care level (float32)."""
    return tuple(np.asarray(hours, dtype=np.float32) for hours in (daily, meals, professional))


@njit
def _needs_kernel(
    status, age, care_level, household, household_residents, daily, meals, professional, companion_alone,
    companion_with_others, need_hours, unmet_hours,
):  # fmt: skip
    """Rows of the resident elders, who lives alone, and their need by kind.

    Equals ``elders = np.flatnonzero((status == RESIDENT) & (age >= 60))``,
    ``alone = household_residents[household[elders]] == 1``, the float32 need table (hours by
    care level; companionship by ``alone``) and ``need_hours`` zero but for the elders' row
    totals (float32, left to right), ``unmet_hours`` zero. Returns ``(elders, alone, need)``.
    """
    n = len(status)
    rows = np.empty(n, dtype=np.int64)
    n_elders = 0
    need_hours[:] = 0
    unmet_hours[:] = 0
    for i in range(n):  # no branch on the person's data
        rows[n_elders] = i
        n_elders += (status[i] == RESIDENT) & (age[i] >= ELDER_AGE)
    elders = rows[:n_elders].copy()
    alone = np.empty(n_elders, dtype=np.bool_)
    need = np.empty((n_elders, 4), dtype=np.float32)
    for j in range(n_elders):
        i = elders[j]
        level = care_level[i]
        alone[j] = household_residents[household[i]] == 1
        need[j, DAILY] = daily[level]
        need[j, MEALS] = meals[level]
        need[j, COMPANION] = companion_alone if alone[j] else companion_with_others
        need[j, PROFESSIONAL] = professional[level]
        need_hours[i] = need[j, 0] + need[j, 1] + need[j, 2] + need[j, 3]
    return elders, alone, need


@formula_of("run", check="week chain")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """:func:`run` as whole-array numpy formulas, the numbers its kernel must give to the bit.

    The resident elders (``age >= 60``) in row order; ``alone`` where their household has one
    resident; need per elder by kind (float32): daily living, meals and professional care
    from the tables by care level, companionship by ``alone``. ``need_hours`` is the row total
    (kinds left to right) for elders and 0 for everyone else; ``unmet_hours`` is 0.
    """
    del rng  # deterministic
    p = world.persons
    c = scenario.care
    elders = np.flatnonzero((p.status == RESIDENT) & (p.age >= ELDER_AGE))
    level = p.care_level[elders]
    alone = week.household_residents[p.household[elders]] == 1
    need = np.zeros((len(elders), 4), dtype=np.float32)
    need[:, DAILY] = np.asarray(c.daily_living_hours_by_level, dtype=np.float32)[level]
    need[:, MEALS] = np.asarray(c.meals_hours_by_level, dtype=np.float32)[level]
    need[:, COMPANION] = np.where(alone, np.float32(c.companionship_hours_alone), np.float32(c.companionship_hours_not_alone))
    need[:, PROFESSIONAL] = np.asarray(c.professional_hours_by_level, dtype=np.float32)[level]
    week.elders, week.alone, week.need, week.remaining = elders, alone, need, need.copy()
    p.need_hours[:] = 0
    p.unmet_hours[:] = 0
    p.need_hours[elders] = row_total(need)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    p = world.persons
    c = scenario.care
    daily, meals, professional = _hours_by_level(
        tuple(c.daily_living_hours_by_level), tuple(c.meals_hours_by_level), tuple(c.professional_hours_by_level)
    )
    week.elders, week.alone, week.need = _needs_kernel(
        p.status, p.age, p.care_level, p.household, week.household_residents, daily, meals, professional,
        np.float32(c.companionship_hours_alone), np.float32(c.companionship_hours_not_alone), p.need_hours, p.unmet_hours,
    )  # fmt: skip
    week.remaining = week.need.copy()


PROCESS = Process(
    name="needs",
    run=run,
    reads=(
        "persons.status",
        "persons.age",
        "persons.care_level",
        "persons.household",
        "week.household_residents",
        "scenario.care",
    ),
    writes=("week.elders", "week.alone", "week.need", "week.remaining", "persons.need_hours", "persons.unmet_hours"),
    section="3.3 care needs",
)
