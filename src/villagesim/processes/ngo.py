"""Process 7b: NGO services purchased by the government (政府购买服务).

Reads: ``world.institutions`` (NGO pool, ``ngo_enters``), ``week.elders``,
``week.asked``, ``week.remaining``, village remoteness; ``[ngo]``,
``policy.ngo_price_per_hour``.
Writes: ``week.remaining`` (less NGO care), ``week.met["ngo"]``; outputs ``ngo_hours``,
``ngo_villages_served``, ``spend_ngo``.

An NGO enters a village only where the contract price covers its cost per hour plus the
travel there and back per visit (``2 x travel_cost_per_km x remoteness / hours_per_visit``).
Each week the NGOs deliver at most ``count x hours_per_week`` hours and at most what the
remaining NGO pool pays for (spread evenly over the weeks left in the budget year). They
serve elders who asked for help, professional care first, then daily-living help; being
paid per hour they go to the nearest villages first (travel is their cost), then to the
most severe cases.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.processes.base import Output, Process
from villagesim.processes.week import DAILY, PROFESSIONAL, Week
from villagesim.state.institutions import spend
from villagesim.state.population import World

NAME = "ngo"


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    inst = world.institutions
    p = world.persons
    n_e = len(week.elders)
    week.add_met("ngo", np.zeros(n_e, dtype=np.float32))
    price = scenario.policy.ngo_price_per_hour
    pool = inst.treasury.pools["ngo"]
    if scenario.ngo.count == 0 or pool <= 0 or price <= 0 or not inst.ngo_enters.any() or n_e == 0:
        return
    weeks_left = WEEKS_PER_YEAR - ((week.step - 1) % WEEKS_PER_YEAR)
    hours = min(scenario.ngo.count * scenario.ngo.hours_per_week, pool / weeks_left / price)
    village = p.village[week.elders]
    eligible = week.asked & inst.ngo_enters[village]
    prof = week.remaining[:, PROFESSIONAL] * eligible
    daily = week.remaining[:, DAILY] * eligible
    want = prof + daily
    cand = np.flatnonzero(want > 0)
    if len(cand) == 0 or hours <= 0:
        return
    remote = world.villages.remoteness_km[village[cand]]
    order = cand[np.lexsort((rng.random(len(cand)), -p.care_level[week.elders[cand]], remote))]
    cum = np.cumsum(want[order], dtype=np.float64)
    give = np.clip(hours - (cum - want[order]), 0.0, want[order]).astype(np.float32)
    gave = np.zeros(n_e, dtype=np.float32)
    gave[order] = give
    to_prof = np.minimum(gave, prof)
    to_daily = gave - to_prof
    week.remaining[:, PROFESSIONAL] -= to_prof
    week.remaining[:, DAILY] -= to_daily
    week.met["ngo"] = gave
    total = float(gave.sum())
    paid = spend(inst.treasury, "ngo", total * price)
    n_v = week.n_villages
    per_village_hours = np.bincount(village, weights=gave, minlength=n_v)
    week.report("ngo_hours", per_village_hours)
    week.report("ngo_villages_served", (per_village_hours > 0).astype(float))
    week.report("spend_ngo", per_village_hours / total * paid if total > 0 else np.zeros(n_v))


PROCESS = Process(
    name="ngo",
    run=run,
    reads=(
        "institutions.treasury",
        "institutions.ngo_enters",
        "week.elders",
        "week.asked",
        "week.remaining",
        "villages.remoteness_km",
        "scenario.ngo",
    ),
    writes=("week.remaining", "week.met.ngo", "institutions.treasury"),
    outputs=(
        Output("ngo_hours", "hours/week", "NGO care hours", "Hours of care delivered by purchased NGO services."),
        Output("ngo_villages_served", "villages", "Villages served by NGOs", "Villages where an NGO gave care this week."),
        Output("spend_ngo", "RMB/week", "Spending on NGO services", "Paid to NGOs for the hours they delivered."),
    ),
    section="3.8 purchased NGO services",
)
