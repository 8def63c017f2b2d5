"""Process 2: health transitions and emergencies.

Reads: ``age``, ``status``, ``care_level``, ``household``, ``alarm``, ``lottery``;
``[health]``; ``policy.wearable_alarms``.
Writes: ``care_level`` (onset, progression, recovery; worsening after a late answer),
``status`` (death after an emergency answered late), ``alarm``; ``week.emergency``,
``week.late``, ``week.answer_hours``, ``week.household_residents``, ``week.died`` (adds).

Care level moves by a Markov chain by elder age band (60-69, 70-79, 80+) whose annual
rates are converted to weekly probabilities. An emergency is answered in time with a
probability that depends on whether someone lives with the elder, or an alarm is worn.
"""

from __future__ import annotations

import numpy as np

from villagesim.population import DEAD, ELDER_AGE, RESIDENT, World, _band3
from villagesim.processes.demography import weekly_probability
from villagesim.processes.week import Week
from villagesim.schema import Scenario

NAME = "health"
MAX_LEVEL = 4


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    h = scenario.health
    n = len(p)
    u_move = rng.random(n, dtype=np.float32)
    u_emergency = rng.random(n, dtype=np.float32)
    u_answer = rng.random(n, dtype=np.float32)
    u_outcome = rng.random(n, dtype=np.float32)

    resident = p.status == RESIDENT
    elder = resident & (p.age >= ELDER_AGE)
    band = _band3(p.age)
    level = p.care_level

    onset = weekly_probability(np.asarray(h.onset_rate_by_band))[band].astype(np.float32)
    progression = weekly_probability(np.asarray(h.progression_rate_by_band))[band].astype(np.float32)
    recovery = np.float32(weekly_probability(h.recovery_rate))
    worsen = elder & (((level == 0) & (u_move < onset)) | ((level >= 1) & (level < MAX_LEVEL) & (u_move < progression)))
    recover = elder & (level == 1) & (u_move >= progression) & (u_move < progression + recovery)
    level[worsen] += 1
    level[recover] = 0

    # who lives with whom, after this week's moves
    week.household_residents = np.bincount(p.household[resident], minlength=len(world.households))
    alone = week.household_residents[p.household] == 1

    # alarms: the first `wearable_alarms` share (by lottery) of at-risk elders wear one
    at_risk = elder & (alone | (level >= 2))
    p.alarm = at_risk & (p.lottery < scenario.policy.wearable_alarms)

    rates = np.asarray(h.emergency_rate_by_level, dtype=np.float32)
    emergency = elder & (u_emergency < rates[level])
    answer_p = np.where(alone, np.float32(h.answer_prob_alone), np.float32(h.answer_prob_with_others))
    answer_p = np.where(p.alarm, np.maximum(answer_p, np.float32(h.answer_prob_alarm)), answer_p)
    late = emergency & (u_answer >= answer_p)
    dies = late & (u_outcome < h.unanswered_death_prob)
    worse = late & ~dies & (u_outcome < h.unanswered_death_prob + h.unanswered_worsen_prob)
    level[worse & (level < MAX_LEVEL)] += 1
    p.status[dies] = DEAD
    p.active[dies] = False

    week.emergency = emergency
    week.late = late
    week.answer_hours = np.where(late, np.float32(h.answer_hours_late), np.float32(h.answer_hours_in_time)) * emergency
    week.died = week.died | dies if week.died is not None else dies
    if dies.any():
        week.household_residents = np.bincount(p.household[p.status == RESIDENT], minlength=len(world.households))
