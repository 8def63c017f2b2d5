"""Process 4: family care first.

Reads: ``status``, ``age``, ``care_level``, ``household``, ``lineage``; ``week.elders``,
``week.remaining``; ``[care]`` family hours.
Writes: ``week.remaining`` (less what family covers), ``week.met["family"]``,
``week.family_hours`` and ``week.free_hours`` (each person's time budget).

Carers have a time budget: a resident's week is 168 hours less ``sleep_self_care_hours``,
less ``paid_work_hours_working_age`` for a working-age adult; family care is drawn from it
first and volunteering (matching) gets at most what is left (:func:`time_budget`).
Only *resident* relatives give care: a co-resident spouse at care level 0
(``spouse_care_hours``) or 1 (that times ``carer_share_at_level_1``; at level 2 or more an
elder gives none), each co-resident working-age adult
(``coresident_adult_care_hours``) and each working-age adult of the same family line living
in another household of the village (``nearby_child_care_hours``). Children who have left
give none (this is where hollowing-out bites). A household's (family line's) capacity is
shared among its elders in proportion to their need; an elder's own capacity never serves
itself. Family gives daily-living help, meals and companionship, not professional care.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import HOURS_PER_WEEK
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.week import GENERAL_KINDS, Week, row_total
from villagesim.state.population import ELDER_AGE, RESIDENT, World

NAME = "family"
_GENERAL = np.asarray(GENERAL_KINDS, dtype=np.int64)


def carer_hours(scenario: Scenario) -> tuple[float, float, float, float, float, float]:
    """The week of a carer: ``(work_budget, elder_budget, adult, nearby, spouse, spouse_ill)``.

    A resident's week is ``168 - sleep_self_care_hours`` free hours, less
    ``paid_work_hours_working_age`` for a working-age adult (18-59), at least 0 (the
    budgets). Family care is drawn from it first: a working-age adult gives
    ``coresident_adult_care_hours`` (at most the budget) and ``nearby_child_care_hours`` (at
    most what is left); an elder at care level 0 ``spouse_care_hours`` and at level 1 that
    times ``carer_share_at_level_1`` (at most the elder budget); an elder at level 2 or more
    gives none.
    """
    c = scenario.care
    week = HOURS_PER_WEEK - c.sleep_self_care_hours
    work_budget = max(week - c.paid_work_hours_working_age, 0.0)
    elder_budget = max(week, 0.0)
    adult = min(c.coresident_adult_care_hours, work_budget)
    nearby = min(c.nearby_child_care_hours, work_budget - adult)
    spouse = min(c.spouse_care_hours, elder_budget)
    spouse_ill = min(c.spouse_care_hours * c.carer_share_at_level_1, elder_budget)
    return work_budget, elder_budget, adult, nearby, spouse, spouse_ill


@njit
def _budget_kernel(status, age, care_level, household, lineage, elders, given, hours, n_households):
    """:func:`time_budget` in one pass per table: the same sums in the same order (float64,
    rows in order), ``(family_hours, free_hours)`` as float32. ``hours``: the six numbers of
    :func:`carer_hours`."""
    work_budget, elder_budget, adult, nearby, spouse, spouse_ill = hours[0], hours[1], hours[2], hours[3], hours[4], hours[5]
    n = len(status)
    n_lines = 0
    for i in range(n):
        n_lines = max(n_lines, lineage[i] + 1)
    own = np.empty(n, dtype=np.float64)
    capacity = np.zeros(n_households, dtype=np.float64)
    for i in range(n):
        resident = status[i] == RESIDENT
        elder = age[i] >= ELDER_AGE
        working_age = resident & ~elder & (age[i] >= 18.0)
        healthy_elder = resident & elder & (care_level[i] <= 1)
        own[i] = adult if working_age else ((spouse if care_level[i] == 0 else spouse_ill) if healthy_elder else 0.0)
        capacity[household[i]] += own[i]
    received = np.zeros(n_households, dtype=np.float64)
    household_elders = np.zeros(n_households, dtype=np.int64)
    line_elders = np.zeros(n_lines, dtype=np.int64)
    for j in range(len(elders)):
        i = elders[j]
        received[household[i]] += np.float64(given[j])
        household_elders[household[i]] += 1
        line_elders[lineage[i]] += 1
    family = np.empty(n, dtype=np.float32)
    free = np.empty(n, dtype=np.float32)
    for i in range(n):
        h = household[i]
        resident = status[i] == RESIDENT
        working_age = resident & (age[i] < ELDER_AGE) & (age[i] >= 18.0)
        used = min(received[h] / capacity[h], 1.0) if capacity[h] > 0 else 0.0
        elsewhere = line_elders[lineage[i]] - household_elders[h] > 0
        f = own[i] * used + (nearby if working_age & elsewhere else 0.0)
        budget = work_budget if working_age else elder_budget
        family[i] = np.float32(f)
        free[i] = np.float32(max(budget - f, 0.0)) if resident else np.float32(0.0)
    return family, free


def time_budget(world: World, scenario: Scenario, week: Week, given: np.ndarray) -> None:
    """Each person's family hours this week and the hours left to volunteer.

    ``week.family_hours`` (per person): a carer's co-resident hours times the share of their
    household's family capacity used (the family hours its elders received over the
    capacity, at most 1; the hours of children living nearby are counted in, so this is an
    upper bound), plus, for a working-age adult, their nearby hours where their family line
    has an elder in another household. ``week.free_hours``: the budget of
    :func:`carer_hours` less the family hours, at least 0; volunteering (matching) gives at
    most these hours. ``given``: the family hours per elder.
    """
    p = world.persons
    work_budget, elder_budget, adult, nearby, spouse, spouse_ill = carer_hours(scenario)
    resident = p.status == RESIDENT
    is_elder = p.age >= ELDER_AGE
    working_age = resident & ~is_elder & (p.age >= 18)
    healthy_elder = resident & is_elder & (p.care_level <= 1)
    own = np.where(working_age, adult, np.where(healthy_elder, np.where(p.care_level == 0, spouse, spouse_ill), 0.0))
    n_hh = len(world.households)
    capacity = np.bincount(p.household, weights=own, minlength=n_hh)
    elders = week.elders
    received = np.bincount(p.household[elders], weights=given.astype(np.float64), minlength=n_hh)
    with np.errstate(divide="ignore", invalid="ignore"):
        used = np.where(capacity > 0, np.minimum(received / capacity, 1.0), 0.0)
    n_lin = int(p.lineage.max()) + 1 if len(p) else 0
    line_elders = np.bincount(p.lineage[elders], minlength=n_lin)
    household_elders = np.bincount(p.household[elders], minlength=n_hh)
    elsewhere = line_elders[p.lineage] - household_elders[p.household] > 0
    family = own * used[p.household] + np.where(working_age & elsewhere, nearby, 0.0)
    budget = np.where(working_age, work_budget, elder_budget)
    week.family_hours = family.astype(np.float32)
    week.free_hours = np.where(resident, np.maximum(budget - family, 0.0), 0.0).astype(np.float32)


@njit
def _family_kernel(
    status, age, care_level, household, lineage, elders, remaining, general,
    adult_hours, spouse_hours, spouse_hours_ill, nearby_hours, n_households,
):  # fmt: skip
    """Hours of general care family covers per elder; takes them off ``remaining`` in place.

    Returns the hours given per elder (float32), the numbers of the array code it replaced:

    * carers are resident working-age adults (``18 <= age < 60``, ``adult_hours`` each) and
      resident elders at care level 0 (``spouse_hours``) or 1 (``spouse_hours_ill``); a household's capacity is
      ``np.bincount(household[carers], weights=hours)`` (float64, summed in row order);
    * ``need = row_total(remaining[:, general]).astype(np.float64)``, summed per household and
      per family line in elder order; the co-resident share of an elder is
      ``max(capacity - own, 0) * need / household_need`` (``own``: the elder's own hours as a
      carer, a float32);
    * working-age adults of the line outside the household:
      ``max(line_adults - household_adults, 0)`` (whole numbers), times ``nearby_hours``
      summed per line over its elders, divided by the line's elder count, shared by need;
    * ``covered = float32(min(1, (coresident + nearby) / need))`` (0 without need), and
      ``given = remaining[:, general] * covered`` in float32.
    """
    n = len(status)
    lowest, highest_household, highest_line = 0, -1, -1
    for i in range(n):  # minimum and maximum only (a vectorised loop), checked after it
        lowest = min(lowest, household[i], lineage[i])
        highest_household = max(highest_household, household[i])
        highest_line = max(highest_line, lineage[i])
    if lowest < 0 or highest_household >= n_households:
        raise ValueError("household or family line index out of range")
    n_lines = highest_line + 1  # as np.bincount(lineage) counts them
    # per household and line, over all persons, without branches on their data; adults are
    # counted in int32 (the whole numbers np.bincount of a mask gives, in less memory)
    household_capacity = np.zeros(n_households, dtype=np.float64)
    household_adults = np.zeros(n_households, dtype=np.int32)
    line_adults = np.zeros(n_lines, dtype=np.int32)
    for i in range(n):
        resident = status[i] == RESIDENT
        elder = age[i] >= ELDER_AGE
        working_age = resident & ~elder & (age[i] >= 18.0)
        healthy_elder = resident & elder & (care_level[i] <= 1)
        own = spouse_hours if care_level[i] == 0 else spouse_hours_ill
        hours = adult_hours if working_age else (own if healthy_elder else np.float32(0.0))
        household_capacity[household[i]] += np.float64(hours)
        household_adults[household[i]] += working_age
        line_adults[lineage[i]] += working_age

    # per household and line, over the elders (in elder order)
    n_elders = len(elders)
    need = np.empty(n_elders, dtype=np.float64)
    household_need = np.zeros(n_households, dtype=np.float64)
    line_need = np.zeros(n_lines, dtype=np.float64)
    line_capacity = np.zeros(n_lines, dtype=np.float64)
    line_elders = np.zeros(n_lines, dtype=np.int32)
    for j in range(n_elders):
        i = elders[j]
        h, line = household[i], lineage[i]
        total = remaining[j, general[0]]
        for k in range(1, len(general)):
            total += remaining[j, general[k]]
        need[j] = np.float64(total)
        household_need[h] += need[j]
        line_need[line] += need[j]
        nearby_adults = max(line_adults[line] - household_adults[h], 0)
        line_capacity[line] += np.float64(nearby_adults) * nearby_hours
        line_elders[line] += 1

    # gathered per elder, then the shares in a loop of arithmetic alone (the compiler
    # vectorises it; its four divisions per elder are most of the cost)
    others = np.empty(n_elders, dtype=np.float64)
    own_household_need = np.empty(n_elders, dtype=np.float64)
    per_line = np.empty(n_elders, dtype=np.float64)
    own_line_need = np.empty(n_elders, dtype=np.float64)
    for j in range(n_elders):
        i = elders[j]
        h, line = household[i], lineage[i]
        healthy_elder = (status[i] == RESIDENT) & (age[i] >= ELDER_AGE) & (care_level[i] <= 1)
        own = spouse_hours if care_level[i] == 0 else spouse_hours_ill
        others[j] = household_capacity[h] - np.float64(own if healthy_elder else np.float32(0.0))
        own_household_need[j] = household_need[h]
        # a line's capacity counted once per line, not once per elder of it
        per_line[j] = line_capacity[line] / np.float64(max(line_elders[line], 1))
        own_line_need[j] = line_need[line]
    covered = np.empty(n_elders, dtype=np.float32)
    for j in range(n_elders):
        o = 0.0 if others[j] < 0.0 else others[j]  # np.maximum(others, 0.0)
        coresident = o * need[j] / own_household_need[j] if own_household_need[j] > 0 else 0.0
        nearby = per_line[j] * need[j] / own_line_need[j] if own_line_need[j] > 0 else 0.0
        covered[j] = np.float32(min((coresident + nearby) / need[j], 1.0) if need[j] > 0 else 0.0)
    given_total = np.empty(n_elders, dtype=np.float32)
    for j in range(n_elders):
        total = np.float32(0.0)
        for k in range(len(general)):
            g = remaining[j, general[k]]
            given = g * covered[j]
            remaining[j, general[k]] = g - given
            total = given if k == 0 else total + given
        given_total[j] = total
    return given_total


@formula_of("run", check="week chain")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """:func:`run` as whole-array numpy formulas, the numbers its kernel must give to the bit.

    Carers are resident adults (18-59, ``coresident_adult_care_hours`` each) and resident
    elders at care level 0 (``spouse_care_hours``) or 1 (that times
    ``carer_share_at_level_1``), each at most their week's budget (:func:`carer_hours`). An elder's general need (``need``,
    float64 row total of the general kinds) receives

    * from the household: ``max(capacity - own, 0) * need / household_need``, the carers'
      hours less the elder's own as a carer, shared in proportion to need;
    * from the lineage: ``capacity_per_elder * need / lineage_need``, where
      ``capacity_per_elder`` is the sum over the lineage's elders of
      ``nearby_child_care_hours`` times the lineage's adults outside their household,
      divided by the lineage's elders;

    and the share ``min(1, (coresident + nearby) / need)`` (float32, 0 without need) of each
    general kind is met by the family. Then :func:`time_budget`.
    """
    del rng  # deterministic
    p = world.persons
    _, _, adult, nearby_hours, spouse, spouse_ill = carer_hours(scenario)
    elders = week.elders
    resident = p.status == RESIDENT
    is_elder = p.age >= ELDER_AGE
    working_age = resident & ~is_elder & (p.age >= 18)
    healthy_elder = resident & is_elder & (p.care_level <= 1)
    carers = np.flatnonzero(working_age | healthy_elder)
    spouse_hours = np.where(p.care_level == 0, np.float32(spouse), np.float32(spouse_ill))
    hours_of_carers = np.where(working_age[carers], np.float32(adult), spouse_hours[carers])
    n_hh = len(world.households)
    hh_capacity = np.bincount(p.household[carers], weights=hours_of_carers, minlength=n_hh)
    own_contribution = np.where(healthy_elder[elders], spouse_hours[elders], np.float32(0))
    general = week.remaining[:, GENERAL_KINDS]
    need = row_total(general).astype(np.float64)
    hh = p.household[elders]
    hh_need = np.bincount(hh, weights=need, minlength=n_hh)
    others = np.maximum(hh_capacity[hh] - own_contribution, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        coresident = np.where(hh_need[hh] > 0, others * need / hh_need[hh], 0.0)
    n_lin = int(p.lineage.max()) + 1
    lin_adults = np.bincount(p.lineage, weights=working_age, minlength=n_lin)
    hh_adults = np.bincount(p.household, weights=working_age, minlength=n_hh)
    lineage = p.lineage[elders]
    nearby_adults = np.maximum(lin_adults[lineage] - hh_adults[hh], 0.0)
    lin_need = np.bincount(lineage, weights=need, minlength=n_lin)
    with np.errstate(divide="ignore", invalid="ignore"):
        lin_capacity = np.bincount(lineage, weights=nearby_adults * nearby_hours, minlength=n_lin)
        lin_capacity = lin_capacity / np.maximum(np.bincount(lineage, minlength=n_lin), 1)
        nearby = np.where(lin_need[lineage] > 0, lin_capacity[lineage] * need / lin_need[lineage], 0.0)
        covered = np.where(need > 0, np.minimum(1.0, (coresident + nearby) / need), 0.0).astype(np.float32)
    given = general * covered[:, None]
    week.remaining[:, GENERAL_KINDS] = general - given
    week.add_met("family", row_total(given))
    time_budget(world, scenario, week, week.met["family"])


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    p = world.persons
    _, _, adult, nearby, spouse, spouse_ill = carer_hours(scenario)
    given = _family_kernel(
        p.status, p.age, p.care_level, p.household, p.lineage, week.elders, week.remaining, _GENERAL,
        np.float32(adult), np.float32(spouse), np.float32(spouse_ill), float(nearby), len(world.households),
    )  # fmt: skip
    week.add_met("family", given)
    week.family_hours, week.free_hours = _budget_kernel(
        p.status, p.age, p.care_level, p.household, p.lineage, week.elders, week.met["family"],
        np.asarray(carer_hours(scenario), dtype=np.float64), len(world.households),
    )  # fmt: skip


PROCESS = Process(
    name="family",
    run=run,
    reads=(
        "persons.status",
        "persons.age",
        "persons.care_level",
        "persons.household",
        "persons.lineage",
        "week.elders",
        "week.remaining",
    ),
    writes=("week.remaining", "week.met.family", "week.family_hours", "week.free_hours"),
    section="3.4 family care",
)
