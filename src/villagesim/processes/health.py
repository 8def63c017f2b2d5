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
    # everything below runs on the resident elders only (row numbers ``e``); the draws above
    # stay one per person row, so each villager keeps their own random numbers
    e = np.flatnonzero(resident & (p.age >= ELDER_AGE))
    band = _band3(p.age[e])
    level = p.care_level[e]
    u = u_move[e]

    onset = weekly_probability(np.asarray(h.onset_rate_by_band)).astype(np.float32)[band]
    progression = weekly_probability(np.asarray(h.progression_rate_by_band)).astype(np.float32)[band]
    recovery = np.float32(weekly_probability(h.recovery_rate))
    worsen = ((level == 0) & (u < onset)) | ((level >= 1) & (level < MAX_LEVEL) & (u < progression))
    recover = (level == 1) & (u >= progression) & (u < progression + recovery)
    level[worsen] += 1
    level[recover] = 0

    # who lives with whom, after this week's moves
    # (a count weighted by the mask: no gather of the residents' households, about twice as fast)
    week.household_residents = np.bincount(p.household, weights=resident, minlength=len(world.households)).astype(np.int64)
    alone = week.household_residents[p.household[e]] == 1

    # alarms: the first `wearable_alarms` share (by lottery) of at-risk elders wear one
    alarm = (alone | (level >= 2)) & (p.lottery[e] < scenario.policy.wearable_alarms)
    p.alarm = np.zeros(n, dtype=bool)
    p.alarm[e] = alarm

    rates = np.asarray(h.emergency_rate_by_level, dtype=np.float32)
    em = u_emergency[e] < rates[level]
    answer_p = np.where(alone, np.float32(h.answer_prob_alone), np.float32(h.answer_prob_with_others))
    answer_p = np.where(alarm, np.maximum(answer_p, np.float32(h.answer_prob_alarm)), answer_p)
    late_e = em & (u_answer[e] >= answer_p)
    outcome = u_outcome[e]
    dies_e = late_e & (outcome < h.unanswered_death_prob)
    worse = late_e & ~dies_e & (outcome < h.unanswered_death_prob + h.unanswered_worsen_prob)
    level[worse & (level < MAX_LEVEL)] += 1
    p.care_level[e] = level

    emergency = np.zeros(n, dtype=bool)
    emergency[e[em]] = True
    late = np.zeros(n, dtype=bool)
    late[e[late_e]] = True
    dies = np.zeros(n, dtype=bool)
    dies[e[dies_e]] = True
    p.status[dies] = DEAD
    p.active[dies] = False

    week.emergency = emergency
    week.late = late
    answer_hours = np.zeros(n, dtype=np.float32)
    answer_hours[e[em]] = np.where(late_e[em], np.float32(h.answer_hours_late), np.float32(h.answer_hours_in_time))
    week.answer_hours = answer_hours
    week.died = week.died | dies if week.died is not None else dies
    if dies_e.any():  # the dead no longer live in their household
        week.household_residents = week.household_residents - np.bincount(p.household[e[dies_e]], minlength=len(world.households))
