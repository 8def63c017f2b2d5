"""Matching: committee capacity, walking distance, trained helpers for professional care."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.model import VillageModel
from villagesim.processes.matching import committee_capacity

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


@pytest.mark.parametrize("burden", [0.0, 0.6, 0.95])
def test_manual_matching_respects_committee_capacity_and_walking_distance(burden):
    s = Scenario.model_validate(
        {
            "run": {"steps": 30},
            "population": {"villages": 8, "residents_per_village": 800, "village_radius_km": 3.0},
            "committee": {"admin_burden": burden, "walking_distance_km": 0.8},
            "behaviour": {"volunteer_intercept": 0.0, "ask_intercept": 1.0},
        }
    )
    model = VillageModel(s)
    cap = committee_capacity(s, 8)
    hh = model.world.households
    p = model.world.persons
    pairs = 0
    for _ in range(30):
        model.step()
        w = model.week
        handled = np.bincount(p.village[w.elders[w.handled]], minlength=8)
        assert np.all(handled <= cap)
        assert np.all(w.matched <= w.handled)
        e, v = p.household[w.pair_elder], p.household[w.pair_helper]
        dist = np.hypot(hh.x[e] - hh.x[v], hh.y[e] - hh.y[v])
        assert np.all(dist <= 0.8 + 1e-6)
        assert np.all(p.village[w.pair_elder] == p.village[w.pair_helper])
        assert np.all(w.pair_elder != w.pair_helper)
        served = np.bincount(w.pair_helper, weights=w.pair_hours, minlength=len(p))
        assert np.all(served <= p.availability + 1e-3)
        assert np.all(p.active[w.pair_helper])
        pairs += len(w.pair_elder)
    if burden < 0.9:
        assert pairs > 50


def test_professional_care_only_from_trained_volunteers():
    s = Scenario.model_validate(
        {
            "run": {"steps": 20},
            "population": {"villages": 4, "trained_share": 0.2},
            "behaviour": {"volunteer_intercept": 0.0, "ask_intercept": 1.0},
            "committee": {"admin_burden": 0.0},
            "ngo": {"count": 0},  # NGOs give professional care too; here only volunteers
        }
    )
    model = VillageModel(s)
    p = model.world.persons
    for _ in range(20):
        model.step()
        w = model.week
        prof_need = w.need[:, 3]
        prof_left = w.remaining[:, 3]
        got_prof = prof_need - prof_left > 1e-4
        # anyone who received professional hours was helped by at least one trained volunteer
        helped = np.zeros(len(p), bool)
        helped[w.pair_elder[p.trained[w.pair_helper]]] = True
        assert np.all(helped[w.elders[got_prof]])
