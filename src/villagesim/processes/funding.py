"""Process 0: funding — which levers the budget pays this week.

Reads: ``institutions.treasury`` (pools), ``institutions.incentive_unpaid``, the planner's
levers (``[policy]`` and ``[ngo]`` as the scenario and its interventions set them),
``villages.remoteness_km``.
Writes: ``week.levers`` (the levers as funded, which the later processes see),
``institutions.intended``, ``institutions.effective_cache``; when the planner's levers
changed since last week (an intervention, or a lever pulled on the page):
``institutions.treasury`` (pools re-split) and ``institutions.ngo_enters``.

* **Levers changed.** Under ``policy.inactive_uses = "resplit"``, unspent flexible money
  (subsidies, NGO, publicity, platform) is re-split over the uses that now have something to
  pay for, in proportion to the year's shares (reported as ``reallocated``); building and
  running funds are already committed. Under ``"hold"`` each use keeps its money. NGOs reconsider which villages
  the contract price makes worth serving.
* **Funded levers.** The planner's scenario says what is *intended*; the processes act on
  what is *funded*: no incentive once the subsidy pool ran dry this year, publicity effort
  scaled to what its pool pays, no platform, alarms, insurance or time-bank guarantee
  without money for them. Each week ``lever_set_<lever>`` and ``lever_paid_<lever>`` say,
  for each lever of ``FUNDED_LEVERS``, whether the planner set it and whether the budget
  delivered it in full (the run's summary counts the weeks of each year). The yearly budget (process ``budget``) decides on the intended
  levers, so a lever whose money ran out is funded again next year.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import BUDGET_USES, Scenario
from villagesim.processes.base import Output, Process
from villagesim.processes.budget import REALLOCATED
from villagesim.processes.week import Week
from villagesim.state.institutions import FUNDED_LEVERS, Institutions, active_uses, ngo_entry, weekly_cost
from villagesim.state.population import World


def effective_scenario(scenario: Scenario, world: World) -> Scenario:
    """The levers as actually delivered this week: what the pools can no longer pay is off.

    The planner's scenario says what is *intended*; processes act on what is *funded*:
    no incentive once the subsidy pool ran dry this year, publicity effort scaled to what
    its pool pays, no platform, alarms, insurance or guarantee without money for them.
    """
    inst: Institutions = world.institutions
    pools = inst.treasury.pools
    pol = scenario.policy
    update: dict = {}
    subsidies_dry = pools["subsidies"] <= 1e-9
    if pol.incentive_per_hour > 0 and (inst.incentive_unpaid or subsidies_dry):
        update["incentive_per_hour"] = 0.0
    if pol.wearable_alarms > 0 and subsidies_dry:
        update["wearable_alarms"] = 0.0
    if pol.liability_insurance and subsidies_dry:
        update["liability_insurance"] = False
    if pol.time_bank.enabled and pol.time_bank.redemption_guarantee > 0 and subsidies_dry:
        update["time_bank"] = None  # the guarantee is off
    costs = weekly_cost(scenario, len(world.villages))
    if pol.publicity > 0 and pools["publicity"] < costs["publicity"]:
        update["publicity"] = pol.publicity * pools["publicity"] / costs["publicity"]
    if pol.platform.enabled and pools["platform"] < costs["platform"] - 1e-9:
        update["platform"] = None  # the platform is off
    if not update:
        return scenario
    # the same levers switched off (or scaled) as last week: reuse last week's copy
    key = tuple(update.items())
    cached = inst.effective_cache
    if cached is not None and cached[0] is scenario and cached[1] == key:
        return cached[2]
    if "time_bank" in update:
        update["time_bank"] = pol.time_bank.model_copy(update={"redemption_guarantee": 0.0})
    if "platform" in update:
        update["platform"] = pol.platform.model_copy(update={"enabled": False})
    effective = scenario.model_copy(update={"policy": pol.model_copy(update=update)})
    inst.effective_cache = (scenario, key, effective)
    return effective


def reallocate(world: World, scenario: Scenario) -> float:
    """After a lever change mid-year, under ``policy.inactive_uses = "resplit"``: re-split the
    unspent flexible pools over the uses that now have something to pay for (building and
    running funds are already committed). Returns the money moved between uses (RMB); under
    ``"hold"`` each use keeps its money and nothing moves."""
    inst = world.institutions
    tr = inst.treasury
    if scenario.policy.inactive_uses != "resplit":
        return 0.0
    flexible = ["subsidies", "ngo", "publicity", "platform"]
    money = sum(tr.pools[u] for u in flexible)
    active = active_uses(scenario)
    weights = np.array([tr.shares[BUDGET_USES.index(u)] * active[BUDGET_USES.index(u)] for u in flexible])
    if money <= 0 or weights.sum() <= 0:
        return 0.0
    weights = weights / weights.sum()
    moved = 0.0
    for u, w in zip(flexible, weights, strict=True):
        new = money * float(w)
        moved += max(new - tr.pools[u], 0.0)
        tr.pools[u] = new
    return moved


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    inst: Institutions = world.institutions
    if inst.intended is not None and scenario is not inst.intended:
        moved = reallocate(world, scenario)
        week.report("reallocated", np.full(week.n_villages, moved / week.n_villages))
        inst.ngo_enters = ngo_entry(world, scenario)
    inst.intended = scenario
    week.levers = effective_scenario(scenario, world)
    n_v = week.n_villages
    for lever in FUNDED_LEVERS:
        wanted = lever.value(scenario.policy)
        is_set = wanted > 0
        paid = is_set and lever.value(week.levers.policy) >= wanted
        week.report(f"lever_set_{lever.name}", np.full(n_v, float(is_set)))
        week.report(f"lever_paid_{lever.name}", np.full(n_v, float(paid)))


PROCESS = Process(
    name="funding",
    run=run,
    levers="intended",
    reads=("institutions.treasury", "institutions.incentive_unpaid", "villages.remoteness_km", "scenario.policy", "scenario.ngo"),
    writes=(
        "week.levers",
        "institutions.intended",
        "institutions.effective_cache",
        "institutions.treasury",
        "institutions.ngo_enters",
    ),
    outputs=(
        REALLOCATED,
        *(
            out
            for lever in FUNDED_LEVERS
            for out in (
                Output(
                    f"lever_set_{lever.name}",
                    "villages",
                    f"Lever set: {lever.label.lower()}",
                    f"Villages where {lever.path} is set this week.",
                ),
                Output(
                    f"lever_paid_{lever.name}",
                    "villages",
                    f"Lever paid: {lever.label.lower()}",
                    f"Villages where {lever.path} is set and the budget delivers it in full this week.",
                ),
            )
        ),
    ),
    section="3.0 funding of levers",
)
