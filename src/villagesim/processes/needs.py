"""Process 3: each resident elder's weekly need in hours, by kind.

Reads: ``status``, ``age``, ``care_level``, ``household``; ``week.household_residents``;
``[care]`` hours by care level.
Writes: ``week.elders`` (rows of resident elders), ``week.alone``, ``week.need`` and
``week.remaining`` (elders x kinds: daily living, meals, companionship, professional),
``need_hours``/``unmet_hours`` of the person table (reset for everyone, set for elders).
"""

from __future__ import annotations

import numpy as np

from villagesim.population import ELDER_AGE, RESIDENT, World
from villagesim.processes.week import COMPANION, DAILY, MEALS, PROFESSIONAL, Week, row_total
from villagesim.schema import Scenario

NAME = "needs"


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
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
    week.elders = elders
    week.alone = alone
    week.need = need
    week.remaining = need.copy()
    p.need_hours[:] = 0
    p.unmet_hours[:] = 0
    p.need_hours[elders] = row_total(need)
