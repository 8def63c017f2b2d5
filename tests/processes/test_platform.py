"""Platform matching (part of matching): only requests that reach the platform are matched on it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import Scenario
from villagesim.processes import matching, platform
from villagesim.processes.matching import PLATFORM

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def matching_week(coverage: float):
    s = Scenario.model_validate(
        {
            "population": {"villages": 4, "residents_per_village": 800},
            "behaviour": {"volunteer_intercept": 0.0, "ask_intercept": 1.0},
            "policy": {"platform": {"enabled": True, "offline_channel_coverage": coverage}, "budget": 1e6},
        }
    )
    model = stepped(s, 3)
    week, eff, rng = week_before(model, matching)
    assert eff.policy.platform.enabled  # funded
    asked = np.flatnonzero(week.asked)
    access = platform.digital_access(model.world, week, asked)
    reached = platform.reach(model.world, eff, week, asked, access)
    matching.run(model.world, eff, rng, week)
    return model, week, asked, access, reached


def test_platform_matches_only_requests_that_reach_it_within_the_village():
    model, week, asked, access, reached = matching_week(0.0)
    p = model.world.persons
    assert access.any() and not access.all()
    np.testing.assert_array_equal(reached, access)  # no offline channel: only digital access
    on_platform = week.pair_channel == PLATFORM
    assert on_platform.sum() > 10
    reached_rows = week.elders[asked[reached]]
    assert np.all(np.isin(week.pair_elder[on_platform], reached_rows))
    assert np.all(p.village[week.pair_elder] == p.village[week.pair_helper])
    assert week.extra["platform_requests"].sum() == reached.sum()
    assert week.extra["platform_matched_requests"].sum() <= reached.sum()


def test_full_offline_coverage_brings_every_request_to_the_platform():
    _, week, asked, access, reached = matching_week(1.0)
    assert not access.all()
    assert reached.all()
    assert week.extra["platform_requests"].sum() == len(asked)
