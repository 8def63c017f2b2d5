"""The built world: the start-of-run structure of the population."""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.rng import Streams
from villagesim.state.population import ELDER_AGE, _band3, build_world


def big(**sections) -> Scenario:
    data = {"population": {"villages": 20, "residents_per_village": 5000}}
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return Scenario.model_validate(data)


def test_initial_disability_prevalence_by_band():
    s = big()
    world = build_world(s, Streams(3).named("population"))
    p = world.persons
    elder = p.age >= ELDER_AGE
    band = _band3(p.age)
    for b, target in enumerate(s.health.adl_prevalence_by_band):
        group = p.care_level[elder & (band == b)]
        share = (group >= 1).mean()
        tolerance = 4 * np.sqrt(target * (1 - target) / len(group))  # 4 binomial sd
        assert abs(share - target) < tolerance, (b, share, target, tolerance)
