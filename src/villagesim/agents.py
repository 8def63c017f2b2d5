"""Mesa agents of villagesim.

``Elder`` and ``Volunteer`` are *views* on one row of the person table
(:class:`~villagesim.state.population.Persons`): they hold no copy of the state, so reading an
attribute gives the current value and writing one changes the table. The model creates
them on demand (for inspection and the browser page), never for every villager of a large
run. ``VillageCommittee`` is an ordinary Mesa agent, one per village.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from villagesim.config.schema import BUDGET_USES
from villagesim.processes.matching import committee_capacity
from villagesim.state.institutions import KINDS
from villagesim.state.population import AWAY, DEAD, ELDER_AGE, RESIDENT

# For type hints only, never at run time: model imports this module, so a real import would close
# a circle (lint-imports and tests/test_architecture.py leave TYPE_CHECKING imports out).
if TYPE_CHECKING:
    from villagesim.model import VillageModel

_STATUS = {RESIDENT: "resident", AWAY: "away", DEAD: "dead"}


class PersonView(mesa.Agent):
    """A Mesa agent that reads and writes one row of the person table.

    Args:
        model: the model whose person table holds the row.
        row: the person's row number (stable for the whole run).
    """

    def __init__(self, model: VillageModel, row: int) -> None:
        super().__init__(model)
        self.row = int(row)

    def _get(self, name: str):
        return getattr(self.model.world.persons, name)[self.row].item()

    def _set(self, name: str, value) -> None:
        getattr(self.model.world.persons, name)[self.row] = value

    age = property(lambda self: self._get("age"), doc="Age in years.")
    village = property(lambda self: self._get("village"), doc="Village index.")
    household = property(lambda self: self._get("household"), doc="Household index.")
    status = property(lambda self: _STATUS[self._get("status")], doc="'resident', 'away' or 'dead'.")
    care_level = property(
        lambda self: self._get("care_level"),
        lambda self, v: self._set("care_level", v),
        doc="Care level 0 (none) .. 4 (critical).",
    )
    trust = property(
        lambda self: self._get("trust"), lambda self, v: self._set("trust", v), doc="Trust in the village committee, 0..1."
    )
    awareness = property(
        lambda self: self._get("awareness"), lambda self, v: self._set("awareness", v), doc="Awareness of mutual aid, 0..1."
    )
    tb_balance = property(lambda self: self._get("tb_balance"), doc="Time-bank balance in credit-hours.")

    @property
    def location(self) -> tuple[float, float]:
        """(x, y) of the household in km, village-local."""
        hh = self.model.world.households
        h = self._get("household")
        return float(hh.x[h]), float(hh.y[h])


class Elder(PersonView):
    """A villager aged 60+: needs care, asks for help, trusts or not."""

    satisfaction = property(lambda self: self._get("satisfaction"), doc="Satisfaction with care, 0..1.")
    need_hours = property(lambda self: self._get("need_hours"), doc="This week's need, hours.")
    unmet_hours = property(lambda self: self._get("unmet_hours"), doc="This week's unmet need, hours.")
    digital = property(lambda self: self._get("digital"), doc="Can use the platform alone.")
    alarm = property(lambda self: self._get("alarm"), doc="Wears an emergency alarm.")

    @property
    def lives_alone(self) -> bool:
        """No other resident member in the household."""
        p = self.model.world.persons
        h = p.household[self.row]
        return int(np.count_nonzero((p.household == h) & (p.status == RESIDENT))) == 1

    @property
    def children_away(self) -> int:
        """Working-age members of the family line who are away."""
        p = self.model.world.persons
        same = p.lineage == p.lineage[self.row]
        return int(np.count_nonzero(same & (p.status == AWAY)))


class Volunteer(PersonView):
    """A present working-age villager or healthy young-old elder who may help."""

    availability = property(lambda self: self._get("availability"), doc="Hours per week offered when active.")
    altruism = property(lambda self: self._get("altruism"), doc="Altruism, 0..1.")
    opportunity_cost = property(lambda self: self._get("opportunity_cost"), doc="Value of time in paid work, 0..1.")
    burnout = property(lambda self: self._get("burnout"), doc="Burnout, 0..1.")
    trained = property(lambda self: self._get("trained"), doc="Can give professional care.")
    party = property(lambda self: self._get("party"), doc="Party member.")
    active = property(lambda self: self._get("active"), doc="Volunteered this week.")
    served_hours = property(lambda self: self._get("served_hours"), doc="Hours served this week.")

    @property
    def is_peer(self) -> bool:
        """An elder helping elders (young-old helping the old-old)."""
        return self.age >= ELDER_AGE


class VillageCommittee(mesa.Agent):
    """The village committee (村两委) of one village: the manual matchmaker.

    Args:
        model: the model.
        village: the village index.
    """

    def __init__(self, model: VillageModel, village: int) -> None:
        super().__init__(model)
        self.village = int(village)

    @property
    def staff_hours(self) -> float:
        """Staff hours per week before administrative burden."""
        return self.model.scenario.committee.staff_hours_per_week

    @property
    def admin_burden(self) -> float:
        """Share of staff time taken by tasks from above."""
        return self.model.scenario.committee.admin_burden

    @property
    def requests_per_week(self) -> int:
        """Requests the committee can handle a week."""
        return int(committee_capacity(self.model.scenario, len(self.model.world.villages))[self.village])

    @property
    def remoteness_km(self) -> float:
        """Distance to the township seat."""
        return float(self.model.world.villages.remoteness_km[self.village])

    @property
    def facilities(self) -> list[dict]:
        """The village's built facilities: kind, operating, manager, running funds left (RMB)."""
        fac = self.model.world.institutions.facilities
        managers = ("none", "paid", "volunteer", "party member")
        return [
            {
                "kind": KINDS[fac.kind[i]],
                "operating": bool(fac.operating[i]),
                "manager": managers[fac.manager[i]],
                "funds_rmb": float(fac.balance[i]),
            }
            for i in np.flatnonzero((fac.village == self.village) & fac.built)
        ]

    @property
    def running_funds(self) -> float:
        """Running funds the village's facilities still hold this budget year (RMB)."""
        fac = self.model.world.institutions.facilities
        return float(fac.balance[fac.village == self.village].sum())

    @property
    def publicity(self) -> float:
        """Publicity effort delivered this week (0..1), as funded."""
        return float(self.model.effective.policy.publicity)


class Government(mesa.Agent):
    """The township/county government: budget, allocation, evaluation regime (a view on the treasury)."""

    @property
    def treasury(self):
        """Pools of the current budget year and the split."""
        return self.model.world.institutions.treasury

    @property
    def shares(self) -> dict[str, float]:
        """Current budget split by use."""
        return dict(zip(BUDGET_USES, self.treasury.shares.tolist(), strict=True))

    @property
    def evaluation_regime(self) -> str:
        """'count' or 'quality'."""
        return self.model.scenario.policy.evaluation_regime

    @property
    def reports(self) -> list[dict[str, float]]:
        """Yearly feedback filed so far (the government sees them with a delay)."""
        return self.model.world.institutions.reports


class NGO(mesa.Agent):
    """A social organisation selling professional care at the contract price.

    Args:
        model: the model.
        index: which of the scenario's NGOs.
    """

    def __init__(self, model, index: int) -> None:
        super().__init__(model)
        self.index = int(index)

    @property
    def hours_per_week(self) -> float:
        """Hours of care the NGO can deliver a week."""
        return self.model.scenario.ngo.hours_per_week

    @property
    def villages_served(self) -> list[int]:
        """Villages where the contract price covers cost plus travel."""
        return np.flatnonzero(self.model.world.institutions.ngo_enters).tolist()
