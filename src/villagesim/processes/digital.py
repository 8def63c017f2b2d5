"""Process 6b: digital-skills training (数字技能培训) for elders without a smartphone.

Reads: ``week.elders``; ``digital``, ``care_level``, ``status``, ``age``, ``lineage``,
``village`` of persons; the treasury's ``platform`` pool; ``policy.digital_training``,
``policy.platform.enabled``, ``government.digital_training_*``.
Writes: ``persons.digital``, ``institutions.treasury`` (the platform pool); outputs
``digital_trainees``, ``digital_trained``, ``spend_platform`` (the training's share of it) and
the hidden sum ``_elders_digital_access`` (ratio ``digital_access_share``).

Under ``policy.digital_training`` = *r* trainee places per 1000 elders per year, each village
offers ``r / 1000 x elders / 52`` places a week. Eligible are resident elders who cannot use a
smartphone and whose care level is at most :data:`TRAINABLE_CARE_LEVEL` (severe and critical
care levels stand for cognitive decline that a course does not overcome). Places go first to
the eligible elders without a family proxy (no resident 18-59 member of the family line who
can use a smartphone: the digitally excluded), the rest to those with one; within each group
every eligible elder is drawn with the same probability (places / eligible, at most 1).
A trainee learns with probability ``government.digital_training_success`` and from then on
uses the platform on their own (``digital``). Each trainee costs
``government.digital_training_cost_per_trainee``, paid from the platform's budget use; while
the platform runs, training spends only what the pool holds beyond the platform's running
cost for the rest of the budget year (the platform keeps its money); what the pool cannot pay
is not trained. With the lever at 0 nothing is drawn and the run is unchanged.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.processes.base import Output, Process
from villagesim.processes.platform import _digital_access
from villagesim.processes.week import Week
from villagesim.state.institutions import spend, weekly_cost
from villagesim.state.population import World

TRAINABLE_CARE_LEVEL = 2
"""Highest care level (0 none .. 4 critical) at which an elder can be trained."""

SPEND_PLATFORM = Output(
    "spend_platform", "RMB/week", "Spending on the platform", "The information platform's running cost paid this week."
)
"""Declared as by the finance process (the same column: training is paid from the platform's use)."""


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    n_v = week.n_villages
    rows = week.elders
    village = p.village[rows]
    access = _digital_access(rows, p.status, p.age, p.digital, p.lineage)
    rate = scenario.policy.digital_training
    if rate > 0 and len(rows):
        own = p.digital[rows]
        eligible = ~own & (p.care_level[rows] <= TRAINABLE_CARE_LEVEL)
        places = rate / 1000.0 * np.bincount(village, minlength=n_v) / WEEKS_PER_YEAR
        # money: the platform pool beyond the platform's running cost to the year's end
        tr = world.institutions.treasury
        gov = scenario.government
        weeks_left = WEEKS_PER_YEAR - ((week.step - 1) % WEEKS_PER_YEAR)
        spare = max(tr.pools["platform"] - weekly_cost(scenario, n_v)["platform"] * weeks_left, 0.0)
        wanted = float(places.sum()) * gov.digital_training_cost_per_trainee
        if wanted > spare:
            places = places * (spare / wanted)
        excluded = eligible & ~access  # no proxy either
        n_ex = np.bincount(village, weights=excluded, minlength=n_v)
        n_px = np.bincount(village, weights=eligible & access, minlength=n_v)
        p_ex = np.minimum(places / np.maximum(n_ex, 1.0), 1.0)
        left = np.maximum(places - n_ex, 0.0)
        p_px = np.minimum(left / np.maximum(n_px, 1.0), 1.0)
        prob = np.where(excluded, p_ex[village], np.where(eligible, p_px[village], 0.0))
        u = rng.random((2, len(rows)))
        trainee = u[0] < prob
        learned = trainee & (u[1] < gov.digital_training_success)
        cost = np.bincount(village, weights=trainee, minlength=n_v) * gov.digital_training_cost_per_trainee
        total = float(cost.sum())
        if total > 0:
            paid = spend(tr, "platform", total)
            week.report("spend_platform", cost * (paid / total))
        p.digital[rows[learned]] = True
        access = access | learned
        week.report("digital_trainees", np.bincount(village, weights=trainee, minlength=n_v))
        week.report("digital_trained", np.bincount(village, weights=learned, minlength=n_v))
    week.report("_elders_digital_access", np.bincount(village, weights=access, minlength=n_v))


PROCESS = Process(
    name="digital",
    run=run,
    reads=(
        "week.elders",
        "persons.digital",
        "persons.care_level",
        "persons.status",
        "persons.age",
        "persons.lineage",
        "persons.village",
        "institutions.treasury",
        "scenario.policy",
        "scenario.government",
    ),
    writes=("persons.digital", "institutions.treasury"),
    outputs=(
        Output(
            "digital_trainees",
            "persons/week",
            "Elders in digital-skills training",
            "Elders without a smartphone who took a digital-skills course this week.",
        ),
        Output(
            "digital_trained",
            "persons/week",
            "Elders who learned to use the platform",
            "Trainees of this week who can now use the platform on their own.",
        ),
        SPEND_PLATFORM,
        Output(
            "_elders_digital_access",
            "persons",
            "Elders with digital access",
            "Resident elders who can use the platform on their own or through a family proxy.",
        ),
    ),
    section="3.6b digital-skills training",
)
