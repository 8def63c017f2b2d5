"""Process 5: asking for help.

Reads: ``awareness``, ``trust`` of elders; ``week.remaining``; ``[behaviour]`` ask_*.
Writes: ``week.asked`` (per elder), ``week.requested_hours`` (per elder).

An elder with unmet need asks with probability
``logistic(ask_intercept + ask_awareness * awareness + ask_trust * trust + ask_need * log(1 + hours))``.
Need not asked for stays hidden (the paper's 认知水平不够、参与意愿不足).
"""

from __future__ import annotations

import numpy as np

from villagesim.population import World
from villagesim.processes.week import Week, row_total
from villagesim.schema import Scenario

NAME = "asking"


def logistic(x: np.ndarray) -> np.ndarray:
    """The logistic function, in float32."""
    return (1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))).astype(np.float32)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    b = scenario.behaviour
    u = rng.random(len(p), dtype=np.float32)
    elders = week.elders
    hours = row_total(week.remaining)
    logit = b.ask_intercept + b.ask_awareness * p.awareness[elders] + b.ask_trust * p.trust[elders] + b.ask_need * np.log1p(hours)
    asked = (hours > 0) & (u[elders] < logistic(logit))
    week.asked = asked
    week.requested_hours = np.where(asked, hours, np.float32(0)).astype(np.float32)
