"""Trust, awareness, satisfaction and burnout: bounded, and moved by experience and the levers."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import Scenario
from villagesim.processes import trust

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def model_before_trust(weeks: int = 5):
    s = Scenario.model_validate(
        {
            "population": {"villages": 4, "residents_per_village": 800},
            "behaviour": {"volunteer_intercept": 0.0, "ask_intercept": 1.0},
            "committee": {"admin_burden": 0.0},
        }
    )
    model = stepped(s, weeks)
    week, eff, rng = week_before(model, trust)
    return model, week, eff, rng


def test_states_stay_in_zero_one_and_unmet_hours_are_what_is_left():
    model, week, s, rng = model_before_trust()
    p = model.world.persons
    burnout, served, awareness = p.burnout.copy(), p.served_hours.copy(), p.awareness.copy()
    trust.run(model.world, s, rng, week)
    for name in ("trust", "awareness", "satisfaction", "burnout"):
        values = getattr(p, name)
        assert values.min() >= 0.0 and values.max() <= 1.0, name
    e = week.elders
    np.testing.assert_allclose(p.unmet_hours[e], week.remaining.sum(axis=1), rtol=1e-5, atol=1e-4)
    # burnout fades for those who did not serve and grows for those who served a lot
    idle = served == 0
    assert np.all(p.burnout[idle] <= burnout[idle] + 1e-7)
    busy = served >= 2.0
    assert busy.any() and np.mean(p.burnout[busy] > burnout[busy]) > 0.9
    # being helped makes one aware: awareness of the helped rises more than that of the rest
    rise = p.awareness[e] - awareness[e]
    assert week.matched.sum() > 20
    assert np.all(rise[week.matched] > 0)
    assert rise[week.matched].mean() > rise[~week.matched].mean() + 0.01


def test_publicity_raises_awareness_and_transparency_raises_trust():
    model, week, s, rng = model_before_trust()
    results = {}
    for name, levers in {
        "plain": {},
        "publicity": {"policy.publicity": 1.0},
        "transparency": {"policy.transparency": 1.0},
    }.items():
        m, w = copy.deepcopy((model, week))
        trust.run(m.world, s.with_overrides(levers), rng, w)
        results[name] = m.world.persons
    e = week.elders
    asked = e[week.asked]
    assert len(asked) > 50
    plain = results["plain"]
    assert results["publicity"].awareness[e].mean() > plain.awareness[e].mean() + 0.01
    assert np.all(results["publicity"].awareness[e] >= plain.awareness[e] - 1e-6)
    assert results["transparency"].trust[asked].mean() > plain.trust[asked].mean()
    assert np.all(results["transparency"].trust[asked] >= plain.trust[asked] - 1e-6)
