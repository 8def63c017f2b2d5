"""The fast paths of the vectorised core give exactly the numbers of the plain formulas.

Each shortcut taken for speed (incremental neighbourhood counts, vectorised ratios, lazy
streams, group ranks, the one-pass output collector, compiled kernels) is compared bit for
bit with the straightforward computation it replaces; the tolerance is zero.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from villagesim.metrics import COLUMNS, RATIO_COLUMNS, SUM_COLUMNS, SUM_WITH_HIDDEN, with_ratios
from villagesim.model import VillageModel
from villagesim.population import AWAY, DEAD, ELDER_AGE, RESIDENT, _band3
from villagesim.processes import asking, demography, family, health, needs
from villagesim.processes.asking import logistic
from villagesim.processes.demography import annual_hazard, weekly_probability
from villagesim.processes.matching import _exclusive_groupsum
from villagesim.processes.week import GENERAL_KINDS, Week, neighbour_count_sum, rank_within, row_total
from villagesim.rng import Streams, substream
from villagesim.schema import Scenario


def _symmetric_graph(n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, 6 * n)
    cols = np.clip(rows + rng.integers(-20, 21, len(rows)), 0, n - 1)
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return ((m + m.T) > 0).astype(np.float64).tocsr()


@pytest.mark.parametrize("symmetric", [True, False])
def test_neighbour_count_sum_equals_the_product(symmetric: bool) -> None:
    n = 3000
    nb = _symmetric_graph(n, 1)
    if not symmetric:
        nb = sp.triu(nb).tocsr()
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 4, n).astype(np.float64)
    for week in range(12):
        # few changes (incremental), sparse counts (columns only), dense changes (the product)
        if week % 4 == 1:
            counts = np.zeros(n)
            counts[rng.integers(0, n, 20)] = 1.0
        elif week % 4 == 2:
            counts = rng.integers(0, 4, n).astype(np.float64)
        else:
            change = rng.integers(0, n, 15)
            counts = counts.copy()
            counts[change] = rng.integers(0, 5, len(change))
        got = neighbour_count_sum(nb, "test", counts)
        assert np.array_equal(got, nb @ counts)


def test_neighbour_count_sum_with_other_weights_uses_the_product() -> None:
    nb = _symmetric_graph(500, 3) * 0.5
    counts = np.arange(500, dtype=np.float64) % 3
    assert np.array_equal(neighbour_count_sum(nb, "half", counts), nb @ counts)


def test_with_ratios_matches_column_by_column() -> None:
    index = {c: i for i, c in enumerate(SUM_WITH_HIDDEN)}
    rng = np.random.default_rng(4)
    sums = rng.random((9, len(SUM_WITH_HIDDEN))) * 50 * (rng.random((9, len(SUM_WITH_HIDDEN))) > 0.3)
    got = with_ratios(sums)
    assert got.shape == (9, len(COLUMNS))
    assert np.array_equal(got[:, : len(SUM_COLUMNS)], sums[:, : len(SUM_COLUMNS)])
    for k, (num, den, empty) in enumerate(RATIO_COLUMNS.values()):
        n, d = sums[:, index[num]], sums[:, index[den]]
        with np.errstate(divide="ignore", invalid="ignore"):
            want = np.where(d > 0, n / np.where(d > 0, d, 1.0), empty)
        assert np.array_equal(got[:, len(SUM_COLUMNS) + k], want)
    assert np.array_equal(with_ratios(sums[0]), got[0])


def test_lazy_stream_draws_the_numbers_of_the_stream() -> None:
    streams = Streams(7, replicate=2)
    lazy = streams.lazy_for_step("matching", 5)
    plain = streams.for_step("matching", 5)
    assert np.array_equal(lazy.random(10), plain.random(10))
    assert np.array_equal(substream(lazy, 2).random(5), substream(streams.for_step("matching", 5), 2).random(5))


def test_group_helpers_match_repeat_formulas() -> None:
    rng = np.random.default_rng(5)
    keys = np.sort(rng.integers(0, 30, 400))
    values = rng.random(400)
    starts = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    counts = np.diff(np.r_[starts, len(keys)])
    assert np.array_equal(rank_within(keys), np.arange(len(keys)) - np.repeat(starts, counts))
    before = np.cumsum(values) - values
    assert np.array_equal(_exclusive_groupsum(keys, values), before - np.repeat(before[starts], counts))
    assert len(rank_within(np.zeros(0, dtype=np.int64))) == 0


def test_collector_rows_are_the_recorded_outputs() -> None:
    model = VillageModel(Scenario(), steps=6)
    for _ in range(6):
        model.step()
    collected = model.datacollector.get_model_vars_dataframe()
    ts = model.timeseries()
    assert list(collected.columns) == COLUMNS
    assert np.array_equal(collected.to_numpy(), ts[COLUMNS].to_numpy())


# ---------------------------------------------------------------- compiled processes
# The array code of demography, health, needs, family and asking before their numba kernels,
# kept here as the plain formulas the kernels must reproduce bit for bit.
def _demography_arrays(world, scenario, rng, week) -> None:
    p = world.persons
    hol = scenario.hollowing_out
    n = len(p)
    u_death = rng.random(n, dtype=np.float32)
    u_move = rng.random(n, dtype=np.float32)
    alive = p.status != DEAD
    p.age += np.float32(1.0 / 52.0) * alive
    resident = p.status == RESIDENT
    p_death = -np.expm1(-annual_hazard(p.age, p.care_level, scenario) / 52.0)
    died = alive & (u_death < p_death)
    leave_p = np.float32(weekly_probability(hol.outmigration_rate))
    return_p = np.float32(weekly_probability(hol.return_rate))
    can_leave = resident & ~died & (p.age >= hol.migration_min_age) & (p.age < hol.migration_max_age + 1)
    left = can_leave & (u_move < leave_p)
    returned = (p.status == AWAY) & ~died & (p.age >= hol.return_min_age) & (u_move < return_p)
    p.status[left] = AWAY
    p.status[returned] = RESIDENT
    p.status[died] = DEAD
    p.active[died | left] = False
    week.died = died & resident
    week.left = left
    week.returned = returned


def _health_arrays(world, scenario, rng, week) -> None:
    p = world.persons
    h = scenario.health
    n = len(p)
    u_move, u_emergency, u_answer, u_outcome = (rng.random(n, dtype=np.float32) for _ in range(4))
    resident = p.status == RESIDENT
    e = np.flatnonzero(resident & (p.age >= ELDER_AGE))
    band = _band3(p.age[e])
    level = p.care_level[e]
    u = u_move[e]
    onset = weekly_probability(np.asarray(h.onset_rate_by_band)).astype(np.float32)[band]
    progression = weekly_probability(np.asarray(h.progression_rate_by_band)).astype(np.float32)[band]
    recovery = np.float32(weekly_probability(h.recovery_rate))
    worsen = ((level == 0) & (u < onset)) | ((level >= 1) & (level < 4) & (u < progression))
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
    level[worse & (level < 4)] += 1
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


def _needs_arrays(world, scenario, rng, week) -> None:
    p = world.persons
    c = scenario.care
    elders = np.flatnonzero((p.status == RESIDENT) & (p.age >= ELDER_AGE))
    level = p.care_level[elders]
    alone = week.household_residents[p.household[elders]] == 1
    need = np.zeros((len(elders), 4), dtype=np.float32)
    need[:, 0] = np.asarray(c.daily_living_hours_by_level, dtype=np.float32)[level]
    need[:, 1] = np.asarray(c.meals_hours_by_level, dtype=np.float32)[level]
    need[:, 2] = np.where(alone, np.float32(c.companionship_hours_alone), np.float32(c.companionship_hours_not_alone))
    need[:, 3] = np.asarray(c.professional_hours_by_level, dtype=np.float32)[level]
    week.elders, week.alone, week.need, week.remaining = elders, alone, need, need.copy()
    p.need_hours[:] = 0
    p.unmet_hours[:] = 0
    p.need_hours[elders] = row_total(need)


def _family_arrays(world, scenario, rng, week) -> None:
    p = world.persons
    c = scenario.care
    elders = week.elders
    resident = p.status == RESIDENT
    is_elder = p.age >= ELDER_AGE
    working_age = resident & ~is_elder & (p.age >= 18)
    healthy_elder = resident & is_elder & (p.care_level <= 1)
    carers = np.flatnonzero(working_age | healthy_elder)
    carer_hours = np.where(working_age[carers], np.float32(c.coresident_adult_care_hours), np.float32(c.spouse_care_hours))
    n_hh = len(world.households)
    hh_capacity = np.bincount(p.household[carers], weights=carer_hours, minlength=n_hh)
    own_contribution = np.where(healthy_elder[elders], np.float32(c.spouse_care_hours), np.float32(0))
    general = week.remaining[:, GENERAL_KINDS]
    need = row_total(general).astype(np.float64)
    hh = p.household[elders]
    hh_need = np.bincount(hh, weights=need, minlength=n_hh)
    others = np.maximum(hh_capacity[hh] - own_contribution, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        coresident = np.where(hh_need[hh] > 0, others * need / hh_need[hh], 0.0)
    n_lin = int(p.lineage.max()) + 1
    lin_adults = np.bincount(p.lineage, weights=working_age, minlength=n_lin)
    hh_adults = np.bincount(p.household, weights=working_age, minlength=n_hh)
    lineage = p.lineage[elders]
    nearby_adults = np.maximum(lin_adults[lineage] - hh_adults[hh], 0.0)
    lin_need = np.bincount(lineage, weights=need, minlength=n_lin)
    with np.errstate(divide="ignore", invalid="ignore"):
        lin_capacity = np.bincount(lineage, weights=nearby_adults * c.nearby_child_care_hours, minlength=n_lin)
        lin_capacity = lin_capacity / np.maximum(np.bincount(lineage, minlength=n_lin), 1)
        nearby = np.where(lin_need[lineage] > 0, lin_capacity[lineage] * need / lin_need[lineage], 0.0)
        covered = np.where(need > 0, np.minimum(1.0, (coresident + nearby) / need), 0.0).astype(np.float32)
    given = general * covered[:, None]
    week.remaining[:, GENERAL_KINDS] = general - given
    week.add_met("family", row_total(given))


def _asking_arrays(world, scenario, rng, week) -> None:
    p = world.persons
    b = scenario.behaviour
    u = rng.random(len(p), dtype=np.float32)
    elders = week.elders
    hours = row_total(week.remaining)
    logit = b.ask_intercept + b.ask_awareness * p.awareness[elders] + b.ask_trust * p.trust[elders] + b.ask_need * np.log1p(hours)
    week.asked = (hours > 0) & (u[elders] < logistic(logit))
    week.requested_hours = np.where(week.asked, hours, np.float32(0)).astype(np.float32)


def _assert_same_bits(a, b, what: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for k in a:
            _assert_same_bits(a[k], b[k], f"{what}[{k}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert (a.dtype, a.shape) == (b.dtype, b.shape), what
    assert a.tobytes() == b.tobytes(), what


STRESSED = {
    # frequent transitions, emergencies, late answers, deaths and moves; elders without need
    "health": {
        "onset_rate_by_band": [0.3, 0.5, 0.8],
        "progression_rate_by_band": [0.4, 0.6, 0.9],
        "recovery_rate": 0.9,
        "emergency_rate_by_level": [0.05, 0.1, 0.2, 0.3, 0.4],
        "answer_prob_alone": 0.3,
        "answer_prob_with_others": 0.6,
        "answer_prob_alarm": 0.5,
        "unanswered_death_prob": 0.3,
        "unanswered_worsen_prob": 0.5,
    },
    "policy": {"wearable_alarms": 0.5},
    "hollowing_out": {"outmigration_rate": 0.5, "return_rate": 0.5},
    "care": {"companionship_hours_not_alone": 0.0, "daily_living_hours_by_level": [0.0, 0.0, 10.0, 20.0, 50.0]},
}


@pytest.mark.parametrize("sections", [{}, STRESSED], ids=["default", "stressed"])
def test_compiled_processes_match_their_array_formulas(sections: dict) -> None:
    data = {"population": {"villages": 3, "residents_per_village": 600}}
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    scenario = Scenario.model_validate(data)
    model = VillageModel(scenario, steps=12)
    for _ in range(2):
        model.step()
    arrays = dataclasses.replace(model.world, persons=copy.deepcopy(model.world.persons))
    compiled = dataclasses.replace(model.world, persons=copy.deepcopy(model.world.persons))
    chain = [
        (demography, _demography_arrays),
        (health, _health_arrays),
        (needs, _needs_arrays),
        (family, _family_arrays),
        (asking, _asking_arrays),
    ]
    deaths = 0
    for t in range(3, 13):
        week_a, week_c = (Week(step=t, n_villages=3, n_persons=len(arrays.persons)) for _ in range(2))
        for process, formula in chain:
            formula(arrays, model.effective, model.streams.for_step(process.NAME, t), week_a)
            process.run(compiled, model.effective, model.streams.lazy_for_step(process.NAME, t), week_c)
            for f in dataclasses.fields(arrays.persons):
                _assert_same_bits(getattr(arrays.persons, f.name), getattr(compiled.persons, f.name), f"{process.NAME}: {f.name}")
            for f in dataclasses.fields(week_a):
                if f.name != "extra":
                    a, c = getattr(week_a, f.name), getattr(week_c, f.name)
                    assert (a is None) == (c is None), f"{process.NAME}: week.{f.name}"
                    if a is not None:
                        _assert_same_bits(a, c, f"{process.NAME}: week.{f.name}")
        deaths += int(week_c.died.sum())
    assert deaths > 0
