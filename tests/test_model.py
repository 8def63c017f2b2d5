"""The whole week of the model: hours add up."""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.model import VillageModel

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def test_hours_add_up():
    model = VillageModel(Scenario.model_validate({"run": {"steps": 10}, "population": {"villages": 3}}))
    for _ in range(10):
        model.step()
    ts = model.timeseries()
    met = ts[[c for c in ts.columns if c.startswith("met_hours_")]].sum(axis=1)
    np.testing.assert_allclose(met + ts["unmet_hours"], ts["need_hours"], rtol=1e-5)
    assert (ts["matched_requests"] <= ts["handled_requests"]).all()
    assert (ts["handled_requests"] <= ts["requests"]).all()
    assert ts["unmet_need_share"].between(0, 1).all()
