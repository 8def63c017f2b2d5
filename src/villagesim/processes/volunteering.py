"""Process 6: who volunteers this week.

Reads: ``status``, ``age``, ``care_level``, ``household``, ``altruism``, ``opportunity_cost``,
``burnout``, ``party``, ``tb_trust``, last week's ``active``; the neighbour graph;
``[behaviour]`` volunteer_*; levers ``incentive_per_hour``, ``party_mobilisation``,
``liability_insurance``, ``time_bank``.
Writes: ``active`` (per person), ``served_hours`` (reset), ``week.candidates``.

Candidates are residents aged 18-59 and healthy "young-old" elders (60 to
``young_old_max_age``, care level 0). Each volunteers with probability
``logistic(v0 + altruism + incentive + credit x trust + norm + party - blame fear - opportunity cost - burnout)``
where the norm is the share of candidates in the own and neighbouring households who
volunteered last week (德治).
"""

from __future__ import annotations

import numpy as np

from villagesim.population import ELDER_AGE, RESIDENT, World
from villagesim.processes.asking import logistic
from villagesim.processes.week import Week, neighbour_count_sum
from villagesim.schema import Scenario

NAME = "volunteering"


def candidates_mask(world: World, scenario: Scenario) -> np.ndarray:
    """Residents who could volunteer: working-age adults and healthy young-old elders."""
    p = world.persons
    b = scenario.behaviour
    resident = p.status == RESIDENT
    working_age = (p.age >= 18) & (p.age < ELDER_AGE)
    young_old = (p.age >= ELDER_AGE) & (p.age < b.young_old_max_age + 1) & (p.care_level == 0)
    return resident & (working_age | young_old)


def neighbour_share(world: World, value: np.ndarray, among: np.ndarray, whole: bool = False) -> np.ndarray:
    """Per person: mean of ``value`` over ``among`` persons of the own and neighbouring households.

    ``whole``: ``among`` is 0/1, so the number of ``among`` persons of a neighbourhood is a
    count (summed exactly over the households where it changed).
    """
    p = world.persons
    return _household_share(world, value, among, whole)[p.household].astype(np.float32)


def _household_share(world: World, value: np.ndarray, among: np.ndarray, whole: bool = False) -> np.ndarray:
    """Per household: the mean of :func:`neighbour_share` (float64)."""
    p = world.persons
    n_hh = len(world.households)
    hh_sum = np.bincount(p.household, weights=value * among, minlength=n_hh)
    hh_n = np.bincount(p.household, weights=among, minlength=n_hh)
    nb = world.households.neighbours
    tot = hh_sum + nb @ hh_sum
    # the candidates' count changes little from week to week: summed over the households
    # where it changed (exact for counts, the same numbers as the product)
    cnt = hh_n + (neighbour_count_sum(nb, "volunteering.count", hh_n) if whole else nb @ hh_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1e-12), 0.0)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    u = rng.random(len(p), dtype=np.float32)
    cand = candidates_mask(world, scenario)
    share = _household_share(world, p.active.astype(np.float32), cand.astype(np.float32), whole=True)
    # only candidates can volunteer: the logistic is evaluated on their rows alone (element by
    # element the same numbers as over the whole table)
    rows = np.flatnonzero(cand)
    norm = share[p.household[rows]].astype(np.float32)
    credit = pol.time_bank.credit_per_hour if pol.time_bank.enabled else 0.0
    logit = (
        b.volunteer_intercept
        + b.volunteer_altruism * p.altruism[rows]
        + b.volunteer_incentive * pol.incentive_per_hour
        + b.volunteer_credit * credit * p.tb_trust[rows]
        + b.volunteer_norm * norm
        + b.volunteer_party * pol.party_mobilisation * p.party[rows]
        - b.volunteer_blame_fear * (0.0 if pol.liability_insurance else 1.0)
        - b.volunteer_opportunity_cost * p.opportunity_cost[rows]
        - b.volunteer_burnout * p.burnout[rows]
    )
    active = np.zeros(len(p), dtype=bool)
    active[rows] = (u[rows] < logistic(logit)) & (p.availability[rows] > 0)
    p.active = active
    p.served_hours[:] = 0
    week.candidates = cand
