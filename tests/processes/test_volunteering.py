"""Volunteering: who volunteers each week, and the incentive lever."""

from __future__ import annotations

import pytest

from villagesim.model import VillageModel

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def test_incentive_raises_volunteering_on_common_random_numbers(small):
    base = VillageModel(small)
    paid = VillageModel(small, policy__incentive_per_hour=30.0)
    for _ in range(10):
        base.step()
        paid.step()
    assert paid.timeseries()["active_volunteers"].sum() > 1.3 * base.timeseries()["active_volunteers"].sum()
