"""Process 1: demography and hollowing-out.

Reads: ``age``, ``female``, ``status``, ``care_level``, ``household``, ``lineage``,
``unmet_hours`` (last week's);
``[health]`` death rates, ``[births]`` fertility and ``[hollowing_out]`` rates.
Writes: ``age`` (+1 week), ``status`` (deaths, out-migration, return), ``active``/``served``
of those who die or leave; new rows of the person table (births); ``week.died``,
``week.left``, ``week.returned``, ``week.born`` (person masks of residents who died,
residents who left, migrants who came back, persons born this week).

Mortality: the published death rate of the person's sex and 5-year band (60-64 .. 85-89;
below 60 the 60-64 rate falls, from 90 the 85-89 rate rises, by ``gompertz_slope`` per year
of age), times ``rural_mortality_adjustment``, times the care-level multiplier divided by
the band's mean multiplier under the initial prevalence (``adl_prevalence_by_band`` and
``severity_shares``). The published rates are for all care levels together: while the
band's prevalence stays at the published one (as calibrated), its deaths are the published
rate times the adjustment; the care level decides who in the band dies. (The normaliser
is a parameter function, not a mean over the run's population, so a village's rates do not
depend on how many villages are run with it.) Unmet need has consequences: the hazard is
multiplied by ``1 + unmet_need_death_multiplier * unmet_hours``, the hours of the person's
need left unmet last week (0 but for last week's resident elders). This factor is outside
the normalisation: the published rates times the adjustment are those of elders whose need
is met, and unmet need adds deaths on top of them (a reason rural mortality exceeds the
national rates).

Births: a living woman aged 15-49 gives birth in a week with probability
``1 - exp(-asfr / 52)``, ``asfr = total_fertility_rate * age_schedule[band] / 5`` (her 5-year
band). The child of a resident mother lives in her household; the child of a mother away
is sent back (a share ``left_behind_share``) to the grandparents: the household of a
resident elder of her family line (the lowest-numbered such household), else her own
household if someone lives in it; otherwise, and for the rest, the child is away with her.

Weekly probabilities come from annual rates as ``1 - (1 - rate) ** (1/52)`` and weekly
hazards as ``1 - exp(-hazard / 52)``; so simulated annual rates match the configured ones.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.rates import weekly_probability
from villagesim.processes.week import Week
from villagesim.state.population import AWAY, DEAD, RESIDENT, Persons, World, newborns

NAME = "demography"

BANDS = 6
"""Published 5-year bands of death rates: 60-64 .. 85-89."""
GROUPS = BANDS + 2
"""Age groups of the observed death rates: under 60, the bands, 90+."""
FERTILE_MIN, FERTILE_MAX = 15.0, 50.0
"""Mothers' ages of the fertility schedule (7 bands of 5 years)."""


def base_rate(age: np.ndarray, female: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Death rate per person-year of the person's sex and age before the care level: the
    published rate of the band (the 60-64 rate falling by ``gompertz_slope`` per year
    below 60, the 85-89 rate rising by it from 90), times the rural adjustment (float64)."""
    h = scenario.health
    rates = np.array([h.death_rate_male_by_band, h.death_rate_female_by_band], dtype=np.float64) / 1000.0
    a = np.asarray(age, dtype=np.float64)
    band = np.clip(np.floor((a - 60.0) / 5.0), 0, BANDS - 1).astype(np.int64)
    outside = a - np.clip(a, 60.0, 90.0)
    return h.rural_mortality_adjustment * rates[np.asarray(female, dtype=np.int64), band] * np.exp(h.gompertz_slope * outside)


def mortality_group(age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """Group of each person for observed death rates: ``sex * GROUPS + g``, ``g`` 0 under 60, 1..6 the
    bands 60-64 .. 85-89, 7 from 90."""
    a = np.asarray(age, dtype=np.float64)
    g = np.clip(np.floor((a - 55.0) / 5.0), 0, GROUPS - 1).astype(np.int64)
    return np.asarray(female, dtype=np.int64) * GROUPS + g


def expected_multiplier(age: np.ndarray, scenario: Scenario) -> np.ndarray:
    """The mean care-level multiplier of a person's age band under the initial prevalence:
    ``(1 - prev) * m[0] + prev * sum(severity_shares * m[1:])`` with ``prev`` the ADL
    prevalence of the 10-year band (60-69, 70-79, 80+; the 5-year bands and 90+ take that of
    theirs), ``m[0]`` under 60 (nobody under 60 is disabled at the start), float64."""
    h = scenario.health
    mult = np.asarray(h.mortality_multiplier_by_level, dtype=np.float64)
    severity = np.asarray(h.severity_shares, dtype=np.float64)
    prev = np.asarray(h.adl_prevalence_by_band, dtype=np.float64)
    disabled = float(np.sum(severity * mult[1:]) / severity.sum())
    by_band = np.r_[mult[0], (1.0 - prev) * mult[0] + prev * disabled]
    a = np.asarray(age, dtype=np.float64)
    band = (a >= 60.0).astype(np.int64) + (a >= 70.0) + (a >= 80.0)
    return by_band[band]


def annual_hazard(age, female, care_level, scenario: Scenario, unmet_hours=None) -> np.ndarray:
    """Death hazard per year: :func:`base_rate` times the care-level multiplier over the
    mean multiplier of the person's band under the initial prevalence (:func:`expected_multiplier`),
    times ``1 + unmet_need_death_multiplier * unmet_hours`` (last week's unmet hours; none
    given: no unmet need), float64."""
    h = scenario.health
    mult = np.asarray(h.mortality_multiplier_by_level, dtype=np.float64)
    hazard = base_rate(age, female, scenario) * mult[np.asarray(care_level)] / expected_multiplier(age, scenario)
    if unmet_hours is not None and h.unmet_need_death_multiplier > 0:
        hazard = hazard * (1.0 + h.unmet_need_death_multiplier * np.asarray(unmet_hours, dtype=np.float64))
    return hazard


def life_expectancy_at_60(scenario: Scenario, female: bool | None = None, step: float = 0.005) -> float:
    """Remaining life expectancy at exact age 60 of the model's rates (the life table of
    :func:`base_rate`, the care-level effect averaging out by its normalisation), by
    numerical integration of survival to age 140 in steps of ``step`` years. ``female``
    None: the mean of men and women (equal numbers at 60, as the villages are built)."""
    if female is None:
        return 0.5 * (life_expectancy_at_60(scenario, False, step) + life_expectancy_at_60(scenario, True, step))
    x = np.arange(60.0, 140.0, step) + step / 2
    h = base_rate(x, np.full(len(x), female), scenario)
    survival = np.exp(-np.r_[0.0, np.cumsum(h * step)])
    return float(np.sum((survival[:-1] + survival[1:]) / 2.0) * step)


def fertility_rate(age: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Yearly birth rate of a woman by her age (0 outside 15-49), float64."""
    b = scenario.births
    shape = np.asarray(b.age_schedule, dtype=np.float64)
    asfr = b.total_fertility_rate * shape / shape.sum() / 5.0
    a = np.asarray(age, dtype=np.float64)
    band = np.clip(np.floor((a - FERTILE_MIN) / 5.0), 0, len(shape) - 1).astype(np.int64)
    return np.where((a >= FERTILE_MIN) & (a < FERTILE_MAX), asfr[band], 0.0)


def _grandparents(world: World, mothers: np.ndarray) -> np.ndarray:
    """For each mother (row numbers), the lowest household number with a resident elder of
    her family line, -1 where none."""
    p = world.persons
    elder = np.flatnonzero((p.status == RESIDENT) & (p.age >= 60.0))
    if len(elder) == 0 or len(mothers) == 0:
        return np.full(len(mothers), -1, dtype=np.int64)
    order = np.lexsort((p.household[elder], p.lineage[elder]))
    lin = p.lineage[elder][order]
    first = np.r_[True, lin[1:] != lin[:-1]]
    lineages, homes = lin[first], p.household[elder][order][first]
    pos = np.minimum(np.searchsorted(lineages, p.lineage[mothers]), len(lineages) - 1)
    return np.where(lineages[pos] == p.lineage[mothers], homes[pos], -1).astype(np.int64)


def births(world: World, scenario: Scenario, rng: np.random.Generator, u_birth: np.ndarray, week: Week) -> None:
    """Births of the week (after deaths and moves): appends the newborns to the person
    table (their traits drawn from ``rng`` after the per-row draws, as the villages are
    built) and pads this week's person masks; sets ``week.born``."""
    p = world.persons
    n = len(p)
    alive = p.status != DEAD
    p_birth = -np.expm1(-fertility_rate(p.age, scenario) / WEEKS_PER_YEAR)
    mothers = np.flatnonzero(alive & p.female & (u_birth < p_birth))
    u_back = rng.random(len(mothers))
    away = p.status[mothers] == AWAY
    household = p.household[mothers].astype(np.int64)
    status = np.where(away, AWAY, RESIDENT).astype(np.int8)
    back = away & (u_back < scenario.births.left_behind_share)
    if back.any():
        grand = _grandparents(world, mothers[back])
        lived_in = np.bincount(p.household[p.status == RESIDENT], minlength=int(p.household.max()) + 1)
        own = np.where(lived_in[household[back]] > 0, household[back], -1)
        home = np.where(grand >= 0, grand, own)
        idx = np.flatnonzero(back)
        household[idx[home >= 0]] = home[home >= 0]
        status[idx[home >= 0]] = RESIDENT
    newborns(world, scenario, rng, household.astype(np.int32), status)
    k = len(p) - n
    for name in ("died", "left", "returned"):
        mask = getattr(week, name)
        if mask is not None:
            setattr(week, name, np.r_[mask, np.zeros(k, dtype=bool)])
    week.born = np.r_[np.zeros(n, dtype=bool), np.ones(k, dtype=bool)]
    week.n_persons = len(p)


def _normalised_expm1(p, scenario: Scenario) -> np.ndarray:
    """``expm1(-annual_hazard / 52)`` of everyone (after this week's ageing), float32."""
    hazard = annual_hazard(p.age, p.female, p.care_level, scenario, p.unmet_hours)
    return np.expm1(-hazard / WEEKS_PER_YEAR).astype(np.float32)


@lru_cache(maxsize=64)
def _parameters(outmigration_rate: float, return_rate: float, ages: tuple) -> tuple:
    """The weekly leave and return probabilities and the age limits of migration (youngest
    to leave, oldest plus one, youngest to return), float32."""
    leave_p, return_p = np.float32(weekly_probability(outmigration_rate)), np.float32(weekly_probability(return_rate))
    return leave_p, return_p, np.array(ages, dtype=np.float32)


@njit
def _age_kernel(age, status, step):
    """Ages the living by ``step`` years in place: ``age += step * (status != DEAD)``."""
    for i in range(len(age)):
        age[i] = age[i] + (step if status[i] != DEAD else np.float32(0.0))


@njit
def _moves_kernel(status, age, active, u_death, u_move, expm1_hazard, ages, leave_p, return_p):
    """Deaths, out-migration and return; updates ``status`` and ``active`` in place.

    Equals the masks ``died = alive & (u_death < -expm1_hazard)``,
    ``left = resident & ~died & (min_age <= age < max_age + 1) & (u_move < leave_p)`` and
    ``returned = away & ~died & (age >= return_min_age) & (u_move < return_p)``
    (``ages``: the three age limits as float32), then ``status`` AWAY where left, RESIDENT
    where returned, DEAD where died, and ``active`` False where died or left. Returns
    ``(died & resident, left, returned)``; no branch on a person's data.
    """
    n = len(status)
    min_age, max_age, return_min_age = ages[0], ages[1], ages[2]
    died_resident = np.empty(n, dtype=np.bool_)
    left = np.empty(n, dtype=np.bool_)
    returned = np.empty(n, dtype=np.bool_)
    for i in range(n):
        st = status[i]
        resident = st == RESIDENT
        died = (st != DEAD) & (u_death[i] < -expm1_hazard[i])
        leaves = resident & ~died & (age[i] >= min_age) & (age[i] < max_age) & (u_move[i] < leave_p)
        returns = (st == AWAY) & ~died & (age[i] >= return_min_age) & (u_move[i] < return_p)
        status[i] = DEAD if died else (AWAY if leaves else (RESIDENT if returns else st))
        active[i] = active[i] & ~(died | leaves)
        died_resident[i] = died & resident
        left[i] = leaves
        returned[i] = returns
    return died_resident, left, returned


@formula_of("run", check="week chain")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """:func:`run` as whole-array numpy formulas, the numbers its kernels must give to the bit.

    With ``u_death``, ``u_move``, ``u_birth`` one float32 uniform per person (in that order):
    the living age by ``1/52`` year; a living person dies if ``u_death < 1 - exp(-annual_hazard
    / 52)`` (:func:`annual_hazard`); a resident who does not die
    and is aged ``migration_min_age <= age < migration_max_age + 1`` leaves if ``u_move < 1 -
    (1 - outmigration_rate) ** (1/52)``; an away person who does not die and is at least
    ``return_min_age`` returns if ``u_move < 1 - (1 - return_rate) ** (1/52)``. Who dies or
    leaves stops volunteering. Then :func:`births`.
    """
    p = world.persons
    hol = scenario.hollowing_out
    n = len(p)
    u_death = rng.random(n, dtype=np.float32)
    u_move = rng.random(n, dtype=np.float32)
    u_birth = rng.random(n, dtype=np.float32)
    alive = p.status != DEAD
    p.age += np.float32(1.0 / WEEKS_PER_YEAR) * alive
    resident = p.status == RESIDENT
    p_death = -_normalised_expm1(p, scenario)
    died = alive & (u_death < p_death)
    leave_p = np.float32(weekly_probability(hol.outmigration_rate))
    return_p = np.float32(weekly_probability(hol.return_rate))
    can_leave = resident & ~died & (p.age >= hol.migration_min_age) & (p.age < hol.migration_max_age + 1)
    left = can_leave & (u_move < leave_p)
    returned = (p.status == AWAY) & ~died & (p.age >= hol.return_min_age) & (u_move < return_p)
    p.status[left] = AWAY
    p.status[returned] = RESIDENT
    p.status[died] = DEAD
    p.active[died | left] = False
    week.died = died & resident
    week.left = left
    week.returned = returned
    births(world, scenario, rng, u_birth, week)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    hol = scenario.hollowing_out
    n = len(p)
    u_death = rng.random(n, dtype=np.float32)
    u_move = rng.random(n, dtype=np.float32)
    u_birth = rng.random(n, dtype=np.float32)
    ages = (hol.migration_min_age, hol.migration_max_age + 1, hol.return_min_age)
    leave_p, return_p, ages = _parameters(hol.outmigration_rate, hol.return_rate, ages)

    _age_kernel(p.age, p.status, np.float32(1.0 / WEEKS_PER_YEAR))
    # exp and expm1 stay numpy calls over the whole array (see villagesim.jit)
    expm1_hazard = _normalised_expm1(p, scenario)
    week.died, week.left, week.returned = _moves_kernel(
        p.status, p.age, p.active, u_death, u_move, expm1_hazard, ages, leave_p, return_p
    )
    births(world, scenario, rng, u_birth, week)


PROCESS = Process(
    name="demography",
    run=run,
    reads=(
        "persons.age",
        "persons.female",
        "persons.status",
        "persons.care_level",
        "persons.household",
        "persons.lineage",
        "persons.unmet_hours",
        "scenario.health",
        "scenario.births",
        "scenario.hollowing_out",
    ),
    # births append a row to every column of the person table
    writes=(
        *(f"persons.{f.name}" for f in fields(Persons)),
        "week.died",
        "week.left",
        "week.returned",
        "week.born",
        "week.n_persons",
    ),
    section="3.1 demography and hollowing-out",
)
