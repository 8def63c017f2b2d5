"""Process 5: asking for help.

Reads: ``awareness``, ``trust`` of elders; ``week.remaining``; ``[behaviour]`` ask_*.
Writes: ``week.asked`` (per elder), ``week.requested_hours`` (per elder).

An elder with unmet need asks with probability
``logistic(ask_intercept + ask_awareness * awareness + ask_trust * trust + ask_need * log(1 + hours))``.
Need not asked for stays hidden (the paper's 认知水平不够、参与意愿不足).
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.rates import logistic
from villagesim.processes.week import Week, row_total
from villagesim.state.population import World

NAME = "asking"


@njit
def _hours_kernel(remaining, elders, awareness, trust, intercept, by_awareness, by_trust):
    """Hours still needed per elder and the logit's terms without the need term.

    Equals ``hours = row_total(remaining)`` and
    ``intercept + by_awareness * awareness[elders] + by_trust * trust[elders]`` (float32,
    left to right).
    """
    n = len(elders)
    hours = np.empty(n, dtype=np.float32)
    base = np.empty(n, dtype=np.float32)
    for j in range(n):
        total = remaining[j, 0]
        for k in range(1, remaining.shape[1]):
            total += remaining[j, k]
        hours[j] = total
        base[j] = intercept + by_awareness * awareness[elders[j]] + by_trust * trust[elders[j]]
    return hours, base


@njit
def _exponent_kernel(base, log1p_hours, by_need):
    """The argument of the logistic's exp: ``-np.clip(base + by_need * log1p(hours), -40, 40)``
    (float32)."""
    out = np.empty(len(base), dtype=np.float32)
    for j in range(len(base)):
        x = base[j] + by_need * log1p_hours[j]
        if x < -40:
            x = np.float32(-40.0)
        elif x > 40:
            x = np.float32(40.0)
        out[j] = -x
    return out


@njit
def _ask_kernel(hours, exp_term, u, elders):
    """Who asks and for how many hours: ``asked = (hours > 0) & (u[elders] < 1 / (1 + exp_term))``
    (the float32 logistic of :func:`logistic`) and ``np.where(asked, hours, 0)``."""
    n = len(elders)
    asked = np.empty(n, dtype=np.bool_)
    requested = np.empty(n, dtype=np.float32)
    for j in range(n):
        probability = np.float32(1.0) / (np.float32(1.0) + exp_term[j])
        asked[j] = (hours[j] > 0) & (u[elders[j]] < probability)
        requested[j] = hours[j] if asked[j] else np.float32(0.0)
    return asked, requested


@formula_of("run", check="week chain")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """:func:`run` as whole-array numpy formulas, the numbers its kernels must give to the bit.

    With one float32 uniform ``u`` per person and ``hours`` an elder's remaining need (row
    total): the elder asks if ``hours > 0`` and ``u < logistic(ask_intercept + ask_awareness *
    awareness + ask_trust * trust + ask_need * log(1 + hours))``, for all ``hours``.
    """
    p = world.persons
    b = scenario.behaviour
    u = rng.random(len(p), dtype=np.float32)
    elders = week.elders
    hours = row_total(week.remaining)
    logit = b.ask_intercept + b.ask_awareness * p.awareness[elders] + b.ask_trust * p.trust[elders] + b.ask_need * np.log1p(hours)
    week.asked = (hours > 0) & (u[elders] < logistic(logit))
    week.requested_hours = np.where(week.asked, hours, np.float32(0)).astype(np.float32)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    b = scenario.behaviour
    u = rng.random(len(p), dtype=np.float32)
    elders = week.elders
    hours, base = _hours_kernel(
        week.remaining, elders, p.awareness, p.trust,
        np.float32(b.ask_intercept), np.float32(b.ask_awareness), np.float32(b.ask_trust),
    )  # fmt: skip
    # log1p and exp stay numpy calls (see villagesim.jit)
    exp_term = np.exp(_exponent_kernel(base, np.log1p(hours), np.float32(b.ask_need)))
    week.asked, week.requested_hours = _ask_kernel(hours, exp_term, u, elders)


PROCESS = Process(
    name="asking",
    run=run,
    reads=("persons.awareness", "persons.trust", "week.elders", "week.remaining", "scenario.behaviour"),
    writes=("week.asked", "week.requested_hours"),
    section="3.5 asking for help",
)
