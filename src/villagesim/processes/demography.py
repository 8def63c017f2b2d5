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

import numpy as np

from villagesim.population import AWAY, DEAD, RESIDENT, World
from villagesim.processes.week import Week
from villagesim.schema import Scenario

NAME = "demography"
WEEKS_PER_YEAR = 52.0


def weekly_probability(annual: float | np.ndarray) -> float | np.ndarray:
    """Weekly probability equivalent to an annual probability."""
    return 1.0 - (1.0 - np.asarray(annual, dtype=np.float64)) ** (1.0 / WEEKS_PER_YEAR)


def annual_hazard(age: np.ndarray, care_level: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Gompertz hazard per year by age, raised by care level."""
    h = scenario.health
    mult = np.asarray(h.mortality_multiplier_by_level, dtype=np.float32)
    return h.gompertz_hazard_at_60 * np.exp(h.gompertz_slope * (age - 60.0)) * mult[care_level]


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
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
    gone = died | left
    p.active[gone] = False
    week.died = died & resident
    week.left = left
    week.returned = returned
