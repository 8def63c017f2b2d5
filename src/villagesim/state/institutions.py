"""State of the institutions: the government's treasury, facilities, NGOs, the time bank.

Institutions are few, so their state is small; it still lives in arrays (facilities) or
plain numbers (budget pools) so that the processes stay vectorised. The Mesa agents
``Government`` and ``NGO`` (:mod:`villagesim.agents`) are views on this state.

Money flows through *pools*: each budget year the government splits its budget among the
uses of :data:`~villagesim.config.schema.BUDGET_USES`; spending is drawn from the pools and never
exceeds them; what is left at the end of the year (pools and facilities' balances) lapses
or is carried over into next year's budget (``policy.unspent_funds``). Building spends its
pool at once (construction); running funds are handed to the facilities as balances.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from villagesim.config.schema import BUDGET_USES, PolicyConfig, Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.state.population import World

KINDS = ("happiness_home", "mutual_aid_point", "canteen")
"""Facility kinds, in the order of the ``[facilities]`` lists."""
KIND_LABELS = {
    "happiness_home": "Happiness home 幸福院",
    "mutual_aid_point": "Mutual-aid point 互助点",
    "canteen": "Canteen 老年食堂",
}
HOME, POINT, CANTEEN = range(3)
NO_MANAGER, PAID, VOLUNTEER, PARTY = range(4)


@dataclass
class Facilities:
    """Facility slots (built or not): one row per possible facility."""

    village: np.ndarray  # int32
    kind: np.ndarray  # int8: HOME, POINT, CANTEEN
    x: np.ndarray  # float32 km, village-local
    y: np.ndarray  # float32
    built: np.ndarray  # bool
    built_step: np.ndarray  # int32 (-1 never)
    balance: np.ndarray  # float64 RMB of running funds
    manager: np.ndarray  # int8: NO_MANAGER, PAID, VOLUNTEER, PARTY
    operating: np.ndarray  # bool: ran this week
    hours_served: np.ndarray  # float64: this week
    hours_served_year: np.ndarray  # float64: this budget year (the quality feedback)

    def __len__(self) -> int:
        return len(self.village)


@dataclass
class Treasury:
    """Budget pools of the current year (RMB) and what was spent from them."""

    shares: np.ndarray  # current split over BUDGET_USES
    pools: dict[str, float] = field(default_factory=lambda: {u: 0.0 for u in BUDGET_USES})
    allocated_year: float = 0.0  # allocated this budget year (incl. running balances handed out)
    spent_year: float = 0.0
    year: int = 0


@dataclass
class VillageReports:
    """Yearly reports of the village committees to the government, one row per village:
    filed at the budget year's end, received ``delay`` years later unless lost (budget
    process). ``step`` is the step each village's report was filed in (-1: none yet)."""

    step: np.ndarray  # int64 per village
    facilities_built: np.ndarray  # float64: facilities standing (count regime)
    facilities_operating: np.ndarray  # float64: of which used in the year
    met_share: np.ndarray  # float64: share of elders' need hours met (quality regime)
    satisfaction: np.ndarray  # float64: mean satisfaction of elders with need
    use_per_facility: np.ndarray  # float64 per facility slot: hours served in the year
    lost: np.ndarray | None = None  # bool per village: never arrives (drawn when filed)

    def copy(self) -> VillageReports:
        return VillageReports(
            *(
                None if a is None else a.copy()
                for a in (
                    self.step,
                    self.facilities_built,
                    self.facilities_operating,
                    self.met_share,
                    self.satisfaction,
                    self.use_per_facility,
                    self.lost,
                )
            )
        )


@dataclass
class Institutions:
    """Everything the institutions hold."""

    treasury: Treasury
    facilities: Facilities
    ngo_enters: np.ndarray  # bool per village: an NGO would serve it at the contract price
    reports: list[dict[str, float]] = field(default_factory=list)  # yearly feedback, oldest first
    # the report channel (budget process): what each village files, what the government has received
    year_need: np.ndarray | None = None  # per village: elders' need hours this budget year
    year_unmet: np.ndarray | None = None  # per village: of which unmet
    in_transit: list[VillageReports] = field(default_factory=list)  # filed, not yet delivered
    received: VillageReports | None = None  # per village, the last report received (prior before any)
    tb_village_success: np.ndarray | None = None  # float per village: recent redemption success (EMA)
    tb_credited: float = 0.0  # cumulative credit-hours issued
    tb_redeemed: float = 0.0
    tb_expired: float = 0.0
    incentive_unpaid: bool = False  # the subsidy pool ran dry: incentives are not paid
    pending_building_spend: np.ndarray | None = None  # per village, booked in the next step's outputs
    pending_upgrade_spend: np.ndarray | None = None  # of which upgrades of existing buildings (count regime)
    pending_reports: dict[str, np.ndarray] = field(default_factory=dict)  # reported before step 1, booked in it
    intended: Scenario | None = None  # the planner's levers (processes see the funded ones)
    # the last effective scenario: (intended scenario, what was switched off or scaled, result)
    effective_cache: tuple[Scenario, tuple, Scenario] | None = field(default=None, repr=False)


def facility_slots(world: World, scenario: Scenario) -> Facilities:
    """All possible facilities: per village up to ``max_per_village`` of each kind.

    Happiness homes and canteens stand at the centre of the village's first hamlet;
    mutual-aid point *k* stands at the centre of hamlet *k*.
    """
    v = world.villages
    fac = scenario.facilities
    vill, kind, xs, ys = [], [], [], []
    n_v = len(v)
    for k, most in enumerate(fac.max_per_village):
        for slot in range(most):
            villages = np.arange(n_v)
            if k == POINT:
                villages = villages[v.hamlet_count > slot]
                hamlet = v.hamlet_start[villages] + slot
            else:
                if slot > 0:
                    # a second home/canteen: next hamlet if there is one, else the first
                    hamlet = v.hamlet_start[villages] + np.minimum(slot, v.hamlet_count[villages] - 1)
                else:
                    hamlet = v.hamlet_start[villages]
            vill.append(villages)
            kind.append(np.full(len(villages), k))
            xs.append(v.hamlet_x[hamlet])
            ys.append(v.hamlet_y[hamlet])
    village = np.concatenate(vill).astype(np.int32) if vill else np.zeros(0, np.int32)
    order = np.lexsort((np.concatenate(kind) if kind else np.zeros(0), village))
    n = len(village)
    return Facilities(
        village=village[order],
        kind=np.concatenate(kind)[order].astype(np.int8) if kind else np.zeros(0, np.int8),
        x=np.concatenate(xs)[order].astype(np.float32) if xs else np.zeros(0, np.float32),
        y=np.concatenate(ys)[order].astype(np.float32) if ys else np.zeros(0, np.float32),
        built=np.zeros(n, bool),
        built_step=np.full(n, -1, np.int32),
        balance=np.zeros(n),
        manager=np.zeros(n, np.int8),
        operating=np.zeros(n, bool),
        hours_served=np.zeros(n),
        hours_served_year=np.zeros(n),
    )


def ngo_entry(world: World, scenario: Scenario) -> np.ndarray:
    """Villages an NGO enters: the contract price covers its cost plus travel there and back."""
    ngo = scenario.ngo
    travel = 2.0 * ngo.travel_cost_per_km * world.villages.remoteness_km / ngo.hours_per_visit
    return (ngo.count > 0) & (scenario.policy.ngo_price_per_hour >= ngo.cost_per_hour + travel)


def init_institutions(world: World, scenario: Scenario, rng: np.random.Generator) -> Institutions:
    """Facilities that exist at the start (built, unfunded), empty pools, NGO reach."""
    fac = facility_slots(world, scenario)
    first_slot = np.r_[True, (fac.village[1:] != fac.village[:-1]) | (fac.kind[1:] != fac.kind[:-1])]
    coverage = np.asarray(scenario.facilities.initial_coverage)[fac.kind]
    u_village = rng.random(len(world.villages))
    exists = first_slot & (u_village[fac.village] < coverage)
    fac.built[exists] = True
    fac.built_step[exists] = 0
    shares = np.asarray(scenario.policy.split.shares(), dtype=float)
    inst = Institutions(
        treasury=Treasury(shares=shares / shares.sum()),
        facilities=fac,
        ngo_enters=ngo_entry(world, scenario),
        tb_village_success=np.full(len(world.villages), scenario.policy.time_bank.initial_trust),
    )
    world.persons.tb_trust[:] = scenario.policy.time_bank.initial_trust
    return inst


def active_uses(scenario: Scenario) -> np.ndarray:
    """Which budget uses have something to pay for under the current levers."""
    pol = scenario.policy
    subsidies = (
        pol.incentive_per_hour > 0
        or pol.wearable_alarms > 0
        or pol.liability_insurance
        or (pol.time_bank.enabled and pol.time_bank.redemption_guarantee > 0)
    )
    flags = {
        "facility_building": True,
        "facility_running": True,
        "subsidies": subsidies,
        "ngo": scenario.ngo.count > 0,
        "publicity": pol.publicity > 0,
        "platform": pol.platform.enabled or pol.digital_training > 0,
    }
    return np.array([flags[u] for u in BUDGET_USES], dtype=bool)


def spend(treasury: Treasury, use: str, amount: float) -> float:
    """Draw up to ``amount`` from a pool; return what was actually spent."""
    paid = float(min(max(amount, 0.0), treasury.pools[use]))
    treasury.pools[use] -= paid
    treasury.spent_year += paid
    return paid


def weekly_cost(scenario: Scenario, n_villages: int) -> dict[str, float]:
    """Full weekly cost (RMB/week) of publicity (at the lever's effort) and of the platform."""
    gov = scenario.government
    pol = scenario.policy
    return {
        "publicity": pol.publicity * gov.publicity_cost_per_village_year * n_villages / WEEKS_PER_YEAR,
        "platform": gov.platform_cost_per_village_year * n_villages / WEEKS_PER_YEAR if pol.platform.enabled else 0.0,
    }


@dataclass(frozen=True)
class FundedLever:
    """A lever the budget must pay for: where it is set, the budget use that pays it, and
    its value (as the planner set it, or as funded this week)."""

    name: str  # output columns lever_set_<name>, lever_paid_<name>
    path: str  # the scenario parameter
    label: str
    use: str  # the budget use (BUDGET_USES) that pays it
    value: Callable[[PolicyConfig], float]


FUNDED_LEVERS: tuple[FundedLever, ...] = (
    FundedLever(
        "incentive_per_hour", "policy.incentive_per_hour", "Incentive per hour", "subsidies", lambda p: p.incentive_per_hour
    ),
    FundedLever("wearable_alarms", "policy.wearable_alarms", "Wearable alarms", "subsidies", lambda p: p.wearable_alarms),
    FundedLever(
        "liability_insurance",
        "policy.liability_insurance",
        "Liability insurance",
        "subsidies",
        lambda p: float(p.liability_insurance),
    ),
    FundedLever(
        "time_bank_guarantee",
        "policy.time_bank.redemption_guarantee",
        "Time-bank guarantee",
        "subsidies",
        lambda p: p.time_bank.redemption_guarantee if p.time_bank.enabled else 0.0,
    ),
    FundedLever("publicity", "policy.publicity", "Publicity", "publicity", lambda p: p.publicity),
    FundedLever("platform", "policy.platform.enabled", "Platform", "platform", lambda p: float(p.platform.enabled)),
)
"""Levers that act only as far as the budget pays for them (see the funding process): each
week the outputs say whether each is set and whether it was delivered in full."""


def unfundable(scenario: Scenario) -> list[tuple[FundedLever, str]]:
    """Levers set in ``scenario`` (or by one of its interventions) that its budget can never
    pay, with the reason: no budget, or no share of the budget for the use that pays them
    (the split keeps a use's share at 0 under either allocation and regime)."""
    pol = scenario.policy
    split = dict(zip(BUDGET_USES, pol.split.shares(), strict=True))
    out = []
    for lever in FUNDED_LEVERS:
        set_later = any(lever.path in item.set and item.set[lever.path] not in (0, 0.0, False) for item in scenario.intervention)
        if lever.value(pol) <= 0 and not set_later:
            continue
        if pol.budget <= 0:
            out.append((lever, "the budget is 0"))
        elif split[lever.use] <= 0:
            out.append((lever, f"policy.split.{lever.use} is 0: no money for {lever.use}"))
    return out
