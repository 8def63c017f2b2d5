"""Process 4: family care first.

Reads: ``status``, ``age``, ``care_level``, ``household``, ``lineage``; ``week.elders``,
``week.remaining``; ``[care]`` family hours.
Writes: ``week.remaining`` (less what family covers), ``week.met["family"]``.

Only *resident* relatives give care: a co-resident spouse at care level 0-1
(``spouse_care_hours``), each co-resident working-age adult
(``coresident_adult_care_hours``) and each working-age adult of the same family line living
in another household of the village (``nearby_child_care_hours``). Children who have left
give none (this is where hollowing-out bites). A household's (family line's) capacity is
shared among its elders in proportion to their need; an elder's own capacity never serves
itself. Family gives daily-living help, meals and companionship, not professional care.
"""

from __future__ import annotations

import numpy as np

from villagesim.population import ELDER_AGE, RESIDENT, World
from villagesim.processes.week import GENERAL_KINDS, Week, row_total
from villagesim.schema import Scenario

NAME = "family"


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    p = world.persons
    c = scenario.care
    elders = week.elders
    resident = p.status == RESIDENT
    is_elder = p.age >= ELDER_AGE
    working_age = resident & ~is_elder & (p.age >= 18)
    healthy_elder = resident & is_elder & (p.care_level <= 1)

    # only carers contribute: sums run over their rows (in row order, so the same numbers)
    carers = np.flatnonzero(working_age | healthy_elder)
    carer_hours = np.where(working_age[carers], np.float32(c.coresident_adult_care_hours), np.float32(c.spouse_care_hours))
    n_hh = len(world.households)
    hh_capacity = np.bincount(p.household[carers], weights=carer_hours, minlength=n_hh)
    own_contribution = np.where(healthy_elder[elders], np.float32(c.spouse_care_hours), np.float32(0))

    general = week.remaining[:, GENERAL_KINDS]
    need = row_total(general).astype(np.float64)
    hh = p.household[elders]
    hh_need = np.bincount(hh, weights=need, minlength=n_hh)
    others = np.maximum(hh_capacity[hh] - own_contribution, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        coresident = np.where(hh_need[hh] > 0, others * need / hh_need[hh], 0.0)

    # adult children of the same family line living elsewhere in the village
    n_lin = int(p.lineage.max()) + 1 if len(p) else 0
    lin_adults = np.bincount(p.lineage, weights=working_age, minlength=n_lin)
    hh_adults = np.bincount(p.household, weights=working_age, minlength=n_hh)
    lineage = p.lineage[elders]
    nearby_adults = np.maximum(lin_adults[lineage] - hh_adults[hh], 0.0)
    lin_need = np.bincount(lineage, weights=need, minlength=n_lin)
    with np.errstate(divide="ignore", invalid="ignore"):
        lin_capacity = np.bincount(lineage, weights=nearby_adults * c.nearby_child_care_hours, minlength=n_lin)
        # capacity of a line counted once per line, not once per elder of it
        per_elder_lines = np.bincount(lineage, minlength=n_lin)
        lin_capacity = lin_capacity / np.maximum(per_elder_lines, 1)
        nearby = np.where(lin_need[lineage] > 0, lin_capacity[lineage] * need / lin_need[lineage], 0.0)

    capacity = coresident + nearby
    with np.errstate(divide="ignore", invalid="ignore"):
        covered = np.where(need > 0, np.minimum(1.0, capacity / need), 0.0).astype(np.float32)
    given = general * covered[:, None]
    week.remaining[:, GENERAL_KINDS] = general - given
    week.add_met("family", row_total(given))
