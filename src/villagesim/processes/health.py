"""Process 2: health transitions and emergencies.

Reads: ``age``, ``status``, ``care_level``, ``household``, ``alarm``, ``lottery``,
``unmet_hours`` (last week's, as the trust process left it); ``[health]``;
``policy.wearable_alarms``.
Writes: ``care_level`` (onset, progression, recovery; worsening after a late answer),
``status`` (death after an emergency answered late), ``alarm``; ``week.emergency``,
``week.late``, ``week.answer_hours``, ``week.household_residents``, ``week.died`` (adds).

Care level moves by a Markov chain by elder age band (60-69, 70-79, 80+) whose annual
rates are converted to weekly probabilities; onset and progression are multiplied by
``1 + unmet_need_worsening_multiplier * unmet_hours`` (the hours of the elder's need left
unmet last week: unmet need has consequences), at most 1. An emergency is answered in time with a
probability that depends on whether someone lives with the elder, or an alarm is worn.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.rates import weekly_probability
from villagesim.processes.week import Week
from villagesim.state.population import DEAD, ELDER_AGE, RESIDENT, World, _band3

NAME = "health"
MAX_LEVEL = 4


class Tables(NamedTuple):
    """The step's float32 tables (:func:`_parameters`)."""

    onset: np.ndarray
    progression: np.ndarray
    progression_recovery: np.ndarray
    rates: np.ndarray
    thresholds: np.ndarray


class Draws(NamedTuple):
    """The week's four float32 uniforms per person, in the order they are drawn."""

    move: np.ndarray
    emergency: np.ndarray
    answer: np.ndarray
    outcome: np.ndarray


@lru_cache(maxsize=64)
def _parameters(
    onset_rates: tuple[float, ...],
    progression_rates: tuple[float, ...],
    recovery_rate: float,
    emergency_rates: tuple[float, ...],
    thresholds: tuple[float, ...],
) -> Tables:
    """The step's float32 tables: weekly onset and progression probabilities by age band,
    progression plus recovery (their float32 sum), emergency probabilities by care level, and
    ``thresholds`` (the scalar parameters the kernel compares with) as float32."""
    onset = weekly_probability(np.asarray(onset_rates)).astype(np.float32)
    progression = weekly_probability(np.asarray(progression_rates)).astype(np.float32)
    recovery = np.float32(weekly_probability(recovery_rate))
    rates = np.asarray(emergency_rates, dtype=np.float32)
    return Tables(onset, progression, progression + recovery, rates, np.array(thresholds, dtype=np.float32))


@njit
def _health_kernel(age, status, care_level, household, lottery, unmet_hours, active, died_before, draws, tables, n_households):
    """One week of the care-level chain and the emergencies of the resident elders
    (``draws``: :class:`Draws`, ``tables``: :class:`Tables`).

    Updates ``care_level``, ``status`` and ``active`` in place and returns
    ``(alarm, emergency, late, answer_hours, died, household_residents)``, the numbers of the
    array code it replaced, where ``e`` are the resident elders (``age >= 60``):

    * with ``f = float32(1 + worsening * unmet_hours)`` (float32 arithmetic), ``onset =
      min(onset[band] * f, 1)`` and ``progression = min(progression[band] * f, 1)``, ``level``
      goes up where ``(level == 0) & (u_move < onset)`` or ``(1 <= level < 4) & (u_move <
      progression)`` and back to 0 where ``(level == 1) & (progression <= u_move <
      progression + recovery)`` (float32 sums);
    * household residents: ``np.bincount(household, weights=resident).astype(np.int64)``,
      before this week's deaths, and ``alone`` the elders whose household counts 1;
    * ``alarm[e] = (alone | (level >= 2)) & (lottery < wearable)``;
    * an emergency where ``u_emergency < rates[level]``, late where ``u_answer >= answer_p``
      (the alone or with-others probability, ``np.maximum`` with the alarm's where one is
      worn), answered in ``answer_hours`` (late or in time);
    * a late emergency kills where ``u_outcome < death_p``, else raises the level (below 4)
      where ``u_outcome < float32(death_p + worsen_p)``; the dead get ``status`` DEAD,
      ``active`` False, ``died = died_before | dies``, and count one resident fewer.

    ``thresholds`` (float32): wearable share, answer probabilities alone, with others and
    with an alarm, death and death-plus-worsen probabilities, late and in-time answer hours,
    the unmet-need worsening multiplier (per unmet hour) and the weekly recovery probability.
    """
    u_move, u_emergency, u_answer, u_outcome = draws
    onset, progression, progression_recovery, rates, thresholds = tables
    wearable, prob_alone, prob_others, prob_alarm = thresholds[0], thresholds[1], thresholds[2], thresholds[3]
    death_p, death_worsen_p, hours_late, hours_in_time = thresholds[4], thresholds[5], thresholds[6], thresholds[7]
    worsening, recovery = thresholds[8], thresholds[9]
    one = np.float32(1.0)
    n = len(age)
    # one pass over the persons without branches on their data (a mispredicted branch per
    # person costs more than the arithmetic): residents per household, rows of resident elders
    residents = np.zeros(n_households, dtype=np.int64)
    elders = np.empty(n, dtype=np.int64)
    n_elders = 0
    for i in range(n):
        h = household[i]
        if h < 0 or h >= n_households:
            raise ValueError("household index out of range")
        resident = status[i] == RESIDENT
        residents[h] += resident
        elders[n_elders] = i
        n_elders += resident & (age[i] >= ELDER_AGE)
    alarm = np.zeros(n, dtype=np.bool_)
    emergency = np.zeros(n, dtype=np.bool_)
    late = np.zeros(n, dtype=np.bool_)
    answer_hours = np.zeros(n, dtype=np.float32)
    died = died_before.copy()
    deaths = 0
    for j in range(n_elders):
        i = elders[j]
        band = np.int64(age[i] >= 70.0) + np.int64(age[i] >= 80.0)
        level = np.int64(care_level[i])
        u = u_move[i]
        f = one + worsening * unmet_hours[i]
        p = min(progression[band] * f, one)
        p_onset = min(onset[band] * f, one)
        p_recovery = p + recovery  # where f is 1, the table's float32 sum progression + recovery
        if ((level == 0) & (u < p_onset)) | ((level >= 1) & (level < MAX_LEVEL) & (u < p)):
            level += 1
        elif (level == 1) & (u >= p) & (u < p_recovery):
            level = 0
        alone = residents[household[i]] == 1
        worn = (alone | (level >= 2)) & (lottery[i] < wearable)
        alarm[i] = worn
        if u_emergency[i] < rates[level]:
            emergency[i] = True
            answer_p = prob_alone if alone else prob_others
            if worn:
                answer_p = max(answer_p, prob_alarm)
            if u_answer[i] >= answer_p:
                late[i] = True
                answer_hours[i] = hours_late
                outcome = u_outcome[i]
                if outcome < death_p:
                    died[i] = True
                    status[i] = DEAD
                    active[i] = False
                    elders[deaths] = i  # rows already passed are free to hold the dead
                    deaths += 1
                elif outcome < death_worsen_p and level < MAX_LEVEL:
                    level += 1
            else:
                answer_hours[i] = hours_in_time
        care_level[i] = level
    for j in range(deaths):  # the dead no longer live in their household
        residents[household[elders[j]]] -= 1
    return alarm, emergency, late, answer_hours, died, residents


@formula_of("run", check="week chain")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """:func:`run` as whole-array numpy formulas, the numbers its kernel must give to the bit.

    Four float32 uniforms per person (move, emergency, answer, outcome), read for the
    resident elders. By age band (60-69, 70-79, 80+) and weekly probabilities of the annual
    rates, onset and progression times ``1 + unmet_need_worsening_multiplier * unmet_hours``
    (float32, at most 1): level 0 falls ill if ``u_move < onset``; levels 1-3 worsen if ``u_move <
    progression``; level 1 recovers to 0 if ``progression <= u_move < progression +
    recovery``. An elder wears an alarm if alone or at level >= 2 and ``lottery <
    wearable_alarms``. An emergency happens if ``u_emergency < emergency_rate[level]``; it
    is answered late if ``u_answer >= answer_p`` (alone or with others; at least the alarm's
    probability with an alarm); a late answer kills if ``u_outcome < unanswered_death_prob``,
    else worsens the level (below 4) if ``u_outcome < unanswered_death_prob +
    unanswered_worsen_prob``. Residents per household are counted before the deaths and
    lowered by them.
    """
    p = world.persons
    h = scenario.health
    n = len(p)
    u_move, u_emergency, u_answer, u_outcome = (rng.random(n, dtype=np.float32) for _ in range(4))
    resident = p.status == RESIDENT
    e = np.flatnonzero(resident & (p.age >= ELDER_AGE))
    band = _band3(p.age[e])
    level = p.care_level[e]
    u = u_move[e]
    f = np.float32(1.0) + np.float32(h.unmet_need_worsening_multiplier) * p.unmet_hours[e]
    onset = weekly_probability(np.asarray(h.onset_rate_by_band)).astype(np.float32)[band]
    progression = weekly_probability(np.asarray(h.progression_rate_by_band)).astype(np.float32)[band]
    onset = np.minimum(onset * f, np.float32(1.0))
    progression = np.minimum(progression * f, np.float32(1.0))
    recovery = np.float32(weekly_probability(h.recovery_rate))
    worsen = ((level == 0) & (u < onset)) | ((level >= 1) & (level < MAX_LEVEL) & (u < progression))
    recover = (level == 1) & (u >= progression) & (u < progression + recovery)
    level[worsen] += 1
    level[recover] = 0
    week.household_residents = np.bincount(p.household, weights=resident, minlength=len(world.households)).astype(np.int64)
    alone = week.household_residents[p.household[e]] == 1
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
    emergency, late, dies = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    emergency[e[em]] = True
    late[e[late_e]] = True
    dies[e[dies_e]] = True
    p.status[dies] = DEAD
    p.active[dies] = False
    week.emergency = emergency
    week.late = late
    answer_hours = np.zeros(n, dtype=np.float32)
    answer_hours[e[em]] = np.where(late_e[em], np.float32(h.answer_hours_late), np.float32(h.answer_hours_in_time))
    week.answer_hours = answer_hours
    week.died = week.died | dies if week.died is not None else dies
    if dies_e.any():
        week.household_residents = week.household_residents - np.bincount(p.household[e[dies_e]], minlength=len(world.households))


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    h = scenario.health
    n = len(p)
    # one draw per person row, so each villager keeps their own random numbers
    u_move = rng.random(n, dtype=np.float32)
    u_emergency = rng.random(n, dtype=np.float32)
    u_answer = rng.random(n, dtype=np.float32)
    u_outcome = rng.random(n, dtype=np.float32)
    thresholds = (
        scenario.policy.wearable_alarms,
        h.answer_prob_alone,
        h.answer_prob_with_others,
        h.answer_prob_alarm,
        h.unanswered_death_prob,
        h.unanswered_death_prob + h.unanswered_worsen_prob,
        h.answer_hours_late,
        h.answer_hours_in_time,
        h.unmet_need_worsening_multiplier,
        float(weekly_probability(h.recovery_rate)),
    )
    tables = _parameters(
        tuple(h.onset_rate_by_band),
        tuple(h.progression_rate_by_band),
        h.recovery_rate,
        tuple(h.emergency_rate_by_level),
        thresholds,
    )
    died_before = week.died if week.died is not None else np.zeros(n, dtype=bool)
    p.alarm, week.emergency, week.late, week.answer_hours, week.died, week.household_residents = _health_kernel(
        p.age, p.status, p.care_level, p.household, p.lottery, p.unmet_hours, p.active, died_before,
        Draws(u_move, u_emergency, u_answer, u_outcome), tables, len(world.households),
    )  # fmt: skip


PROCESS = Process(
    name="health",
    run=run,
    reads=(
        "persons.age",
        "persons.status",
        "persons.care_level",
        "persons.household",
        "persons.alarm",
        "persons.lottery",
        "persons.unmet_hours",
        "scenario.health",
    ),
    writes=(
        "persons.care_level",
        "persons.status",
        "persons.alarm",
        "week.emergency",
        "week.late",
        "week.answer_hours",
        "week.household_residents",
        "week.died",
    ),
    section="3.2 health transitions and emergencies",
)
