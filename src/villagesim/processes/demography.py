"""Process 1: demography and hollowing-out.

Reads: ``age``, ``status``, ``care_level``; ``[health]`` Gompertz parameters and
``[hollowing_out]`` rates.
Writes: ``age`` (+1 week), ``status`` (deaths, out-migration, return), ``active``/``served``
of those who die or leave; ``week.died``, ``week.left``, ``week.returned`` (person masks of
residents who died, residents who left, migrants who came back).

Weekly probabilities come from annual rates as ``1 - (1 - rate) ** (1/52)`` and weekly
hazards as ``1 - exp(-hazard / 52)``; so simulated annual rates match the configured ones.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.rates import weekly_probability
from villagesim.processes.week import Week
from villagesim.state.population import AWAY, DEAD, RESIDENT, World

NAME = "demography"


def annual_hazard(age: np.ndarray, care_level: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Gompertz hazard per year by age, raised by care level."""
    h = scenario.health
    mult = np.asarray(h.mortality_multiplier_by_level, dtype=np.float32)
    return h.gompertz_hazard_at_60 * np.exp(h.gompertz_slope * (age - 60.0)) * mult[care_level]


@lru_cache(maxsize=64)
def _parameters(mortality_multiplier: tuple[float, ...], outmigration_rate: float, return_rate: float, ages: tuple) -> tuple:
    """Mortality multipliers by care level, the weekly leave and return probabilities and the
    age limits of migration (youngest to leave, oldest plus one, youngest to return), float32."""
    mult = np.asarray(mortality_multiplier, dtype=np.float32)
    leave_p, return_p = np.float32(weekly_probability(outmigration_rate)), np.float32(weekly_probability(return_rate))
    return mult, leave_p, return_p, np.array(ages, dtype=np.float32)


@njit
def _age_kernel(age, status, step, slope):
    """Ages the living by ``step`` years in place and returns the Gompertz exponent.

    Equals ``age += step * (status != DEAD)`` and ``slope * (age - 60.0)`` (float32).
    """
    exponent = np.empty(len(age), dtype=np.float32)
    for i in range(len(age)):
        age[i] = age[i] + (step if status[i] != DEAD else np.float32(0.0))
        exponent[i] = slope * (age[i] - np.float32(60.0))
    return exponent


@njit
def _hazard_kernel(growth, care_level, hazard_at_60, mult):
    """The argument of the weekly death probability: ``-annual_hazard / 52`` (float32), from
    ``growth = exp(slope * (age - 60))``, in the order of :func:`annual_hazard`."""
    out = np.empty(len(growth), dtype=np.float32)
    for i in range(len(growth)):
        out[i] = -(hazard_at_60 * growth[i] * mult[care_level[i]]) / np.float32(WEEKS_PER_YEAR)
    return out


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

    With ``u_death``, ``u_move`` one float32 uniform per person (in that order): the living
    age by ``1/52`` year; a living person dies if ``u_death < 1 - exp(-annual_hazard / 52)``;
    a resident who does not die and is aged ``migration_min_age <= age < migration_max_age + 1``
    leaves if ``u_move < 1 - (1 - outmigration_rate) ** (1/52)``; an away person who does
    not die and is at least ``return_min_age`` returns if ``u_move < 1 - (1 - return_rate) **
    (1/52)``. Who dies or leaves stops volunteering.
    """
    p = world.persons
    hol = scenario.hollowing_out
    n = len(p)
    u_death = rng.random(n, dtype=np.float32)
    u_move = rng.random(n, dtype=np.float32)
    alive = p.status != DEAD
    p.age += np.float32(1.0 / WEEKS_PER_YEAR) * alive
    resident = p.status == RESIDENT
    p_death = -np.expm1(-annual_hazard(p.age, p.care_level, scenario) / WEEKS_PER_YEAR)
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


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    h = scenario.health
    hol = scenario.hollowing_out
    n = len(p)
    u_death = rng.random(n, dtype=np.float32)
    u_move = rng.random(n, dtype=np.float32)
    ages = (hol.migration_min_age, hol.migration_max_age + 1, hol.return_min_age)
    mult, leave_p, return_p, ages = _parameters(
        tuple(h.mortality_multiplier_by_level), hol.outmigration_rate, hol.return_rate, ages
    )

    # exp and expm1 stay numpy calls over the whole array (see villagesim.jit)
    growth = np.exp(_age_kernel(p.age, p.status, np.float32(1.0 / WEEKS_PER_YEAR), np.float32(h.gompertz_slope)))
    expm1_hazard = np.expm1(_hazard_kernel(growth, p.care_level, np.float32(h.gompertz_hazard_at_60), mult))
    week.died, week.left, week.returned = _moves_kernel(
        p.status, p.age, p.active, u_death, u_move, expm1_hazard, ages, leave_p, return_p
    )


PROCESS = Process(
    name="demography",
    run=run,
    reads=("persons.age", "persons.status", "persons.care_level", "scenario.health", "scenario.hollowing_out"),
    writes=("persons.age", "persons.status", "persons.active", "persons.served_hours", "week.died", "week.left", "week.returned"),
    section="3.1 demography and hollowing-out",
)
