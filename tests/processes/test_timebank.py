"""Time-bank redemptions (part of matching): handled first, honoured, guaranteed, paid from credit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import stepped, week_before
from villagesim.config.schema import Scenario
from villagesim.processes import matching, timebank

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def redemption_week(**time_bank):
    s = Scenario.model_validate(
        {
            "population": {"villages": 4, "residents_per_village": 800},
            "behaviour": {"ask_intercept": 1.0},
            "policy": {"time_bank": {"enabled": True, **time_bank}, "budget": 1e6},
        }
    )
    model = stepped(s, 3)
    p = model.world.persons
    p.tb_balance[:] = np.where(p.lineage % 2 == 0, 50.0, 0.0)  # half the family lines hold credit
    week, eff, rng = week_before(model, matching)
    attempts = timebank.redeeming(model.world, eff, week)
    family_credit = float(p.tb_balance.sum(dtype=np.float64))
    redeemed = model.world.institutions.tb_redeemed
    matching.run(model.world, eff, rng, week)
    return model, week, eff, attempts, family_credit, redeemed


def test_honoured_guaranteed_redemptions_leave_no_need_and_are_paid_in_credit():
    model, week, s, attempts, credit, redeemed = redemption_week(honour_rate=1.0, redemption_guarantee=1.0)
    p, inst = model.world.persons, model.world.institutions
    assert attempts.sum() > 20
    holds = p.lineage[week.elders] % 2 == 0
    np.testing.assert_array_equal(attempts, week.asked & holds)
    # the committee handles redemptions first: where it took up any other request, it took
    # up every redemption of the village
    village = p.village[week.elders]
    others_handled = np.bincount(village[week.handled & ~attempts], minlength=len(model.world.villages)) > 0
    assert others_handled.any()
    assert np.all(week.handled[attempts & others_handled[village]])
    # help this week or, failing that, paid care bought by the bank for all that was left
    # (either way the redemption succeeds, and the elder counts as helped)
    assert np.all(week.matched[attempts])
    bought = week.met["time_bank"] > 0
    assert bought.any()
    np.testing.assert_allclose(week.remaining[bought], 0.0, atol=1e-4)
    assert week.met["time_bank"].sum() > 0
    assert np.all(week.met["time_bank"][~attempts] == 0)
    taken = credit - float(p.tb_balance.sum(dtype=np.float64))
    assert taken > 0 and np.all(p.tb_balance >= -1e-4)
    assert inst.tb_redeemed - redeemed == pytest.approx(taken, rel=1e-4)


def test_an_operator_that_never_honours_pays_nothing_and_takes_no_credit():
    model, week, _, attempts, credit, redeemed = redemption_week(honour_rate=0.0, redemption_guarantee=1.0)
    assert attempts.sum() > 20
    assert week.met["time_bank"].sum() == 0
    assert model.world.institutions.tb_redeemed == redeemed
    assert float(model.world.persons.tb_balance.sum(dtype=np.float64)) == pytest.approx(credit)
