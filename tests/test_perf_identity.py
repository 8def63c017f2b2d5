"""The fast paths of the vectorised core give exactly the numbers of the plain formulas.

Each shortcut taken for speed (incremental neighbourhood counts, vectorised ratios, lazy
streams, group ranks, the one-pass output collector) is compared bit for bit with the
straightforward computation it replaces; the tolerance is zero.
"""

from __future__ import annotations

import copy
from dataclasses import fields

import numpy as np
import pytest
import scipy.sparse as sp

from villagesim.metrics import COLUMNS, RATIO_COLUMNS, SUM_COLUMNS, SUM_WITH_HIDDEN, with_ratios
from villagesim.model import VillageModel
from villagesim.population import ELDER_AGE, RESIDENT
from villagesim.processes import trust, volunteering
from villagesim.processes.asking import logistic
from villagesim.processes.matching import _exclusive_groupsum
from villagesim.processes.week import neighbour_count_sum, neighbour_rows, rank_within
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


def _plain_trust(world, scenario, rng, week) -> None:
    """Process 11 as numpy formulas over the elders (the code the kernels of trust.run replaced)."""
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    elders = week.elders
    nb = world.households.neighbours
    n_hh = len(world.households)
    hh = p.household[elders]
    cnt = np.bincount(hh, minlength=n_hh).astype(np.float64)
    cnt = (cnt + nb @ cnt)[hh]
    means = []
    for weights in (p.trust[elders], week.matched.astype(np.float32)):
        hh_sum = np.bincount(hh, weights=weights, minlength=n_hh)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(cnt > 0, (hh_sum + nb @ hh_sum)[hh] / np.maximum(cnt, 1e-12), 0.0)
        means.append(share.astype(np.float32))
    nb_trust, nb_helped = means
    need = week.need.sum(axis=1)
    unmet = week.remaining.sum(axis=1)
    p.unmet_hours[elders] = unmet
    requested = week.requested_hours
    with np.errstate(divide="ignore", invalid="ignore"):
        got = np.where(requested > 0, np.clip(1.0 - unmet / np.maximum(requested, 1e-9), 0.0, 1.0), 0.0)
        ngo = week.met_of("ngo")
        services = ngo + sum(week.met_of(s) for s in ("volunteer", "peer", "facility", "time_bank"))
        quality = np.where(
            services > 0,
            (ngo * scenario.ngo.quality + (services - ngo) * b.service_quality) / np.maximum(services, 1e-12),
            b.service_quality,
        )
        met_share = np.where(need > 0, 1.0 - unmet / np.maximum(need, 1e-9), 1.0)
    outcome = (got * quality).astype(np.float32)
    t = p.trust[elders]
    rate = np.where(outcome > t, b.trust_experience_rate * (1.0 + pol.transparency), b.trust_experience_rate)
    t = np.where(week.asked, t + rate * (outcome - t), t)
    t = t + b.trust_neighbour_rate * (nb_trust - t)
    p.trust[elders] = np.clip(t, 0.0, 1.0)
    aw = p.awareness[elders]
    aw = aw + (b.awareness_publicity_rate * pol.publicity + b.awareness_word_of_mouth * nb_helped) * (1.0 - aw)
    aw = aw - b.awareness_decay * aw
    aw = np.where(week.matched, aw + b.trust_experience_rate * (1.0 - aw), aw)
    p.awareness[elders] = np.clip(aw, 0.0, 1.0)
    sat = p.satisfaction[elders]
    p.satisfaction[elders] = np.where(need > 0, sat + b.satisfaction_rate * (met_share - sat), sat)
    p.burnout *= np.float32(1.0 - b.burnout_recovery)
    p.burnout += np.float32(b.burnout_per_hour) * p.served_hours
    np.clip(p.burnout, 0.0, 1.0, out=p.burnout)


def _plain_volunteering(world, scenario, rng, week) -> np.ndarray:
    """Process 6 as numpy formulas over the whole person table (the code the kernels of
    volunteering.run replaced); returns the candidates' logits."""
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    u = rng.random(len(p), dtype=np.float32)
    cand = (p.status == RESIDENT) & (
        ((p.age >= 18) & (p.age < ELDER_AGE)) | ((p.age >= ELDER_AGE) & (p.age < b.young_old_max_age + 1) & (p.care_level == 0))
    )
    among = cand.astype(np.float32)
    n_hh = len(world.households)
    nb = world.households.neighbours
    hh_sum = np.bincount(p.household, weights=p.active.astype(np.float32) * among, minlength=n_hh)
    hh_n = np.bincount(p.household, weights=among, minlength=n_hh)
    tot = hh_sum + nb @ hh_sum
    cnt = hh_n + nb @ hh_n
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(cnt > 0, tot / np.maximum(cnt, 1e-12), 0.0)[p.household].astype(np.float32)
    credit = pol.time_bank.credit_per_hour if pol.time_bank.enabled else 0.0
    logit = (
        b.volunteer_intercept
        + b.volunteer_altruism * p.altruism
        + b.volunteer_incentive * pol.incentive_per_hour
        + b.volunteer_credit * credit * p.tb_trust
        + b.volunteer_norm * norm
        + b.volunteer_party * pol.party_mobilisation * p.party
        - b.volunteer_blame_fear * (0.0 if pol.liability_insurance else 1.0)
        - b.volunteer_opportunity_cost * p.opportunity_cost
        - b.volunteer_burnout * p.burnout
    )
    p.active = cand & (u < logistic(logit)) & (p.availability > 0)
    p.served_hours[:] = 0
    week.candidates = cand
    return logit[cand]


class _Draws:
    """Stands in for a stream: hands out the given float32 draws once."""

    def __init__(self, draws: np.ndarray) -> None:
        self.draws = draws.copy()

    def random(self, size: int, dtype=np.float64) -> np.ndarray:
        assert size == len(self.draws) and dtype == np.float32
        return self.draws


@pytest.mark.parametrize(("module", "plain"), [(trust, _plain_trust), (volunteering, _plain_volunteering)])
@pytest.mark.parametrize(
    "levers", [{}, {"policy.transparency": 0.6, "policy.party_mobilisation": 0.7, "policy.time_bank.enabled": True}]
)
def test_compiled_processes_equal_the_numpy_formulas(monkeypatch, module, plain, levers: dict) -> None:
    """Each week the process runs both ways on copies of the same state: every person column,
    the week's candidates and the volunteering logits agree to the bit."""
    compiled = module.run
    weeks = []
    logits = []
    monkeypatch.setattr(volunteering, "logistic", lambda x: logits.append(x.copy()) or logistic(x))

    def both(world, scenario, rng, week) -> None:
        # the week's draws (volunteering takes one per person) are handed to both ways
        draws = rng.random(len(world.persons), dtype=np.float32)
        other_world, other_week = copy.deepcopy((world, week))
        plain_logits = plain(other_world, scenario, _Draws(draws), other_week)
        compiled(world, scenario, _Draws(draws), week)
        if plain_logits is not None:
            assert logits[-1].dtype == plain_logits.dtype and logits[-1].tobytes() == plain_logits.tobytes()
        for f in fields(world.persons):
            a, b = getattr(world.persons, f.name), getattr(other_world.persons, f.name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f.name
        if week.candidates is not None:
            assert np.array_equal(week.candidates, other_week.candidates)
        weeks.append(week.step)

    monkeypatch.setattr(module, "run", both)
    model = VillageModel(Scenario().with_overrides({"population.villages": 2, **levers}), steps=10)
    for _ in range(10):
        model.step()
    assert len(weeks) == 10


def test_trust_neighbourhood_sums_with_other_weights() -> None:
    """With entries other than 1.0 the sums read the matrix's entries: still the product."""
    nb = _symmetric_graph(400, 6) * 0.5
    rng = np.random.default_rng(7)
    household = rng.integers(0, 400, 1500).astype(np.int32)
    elders = np.sort(rng.choice(1500, 600, replace=False))
    values = rng.random(1500, dtype=np.float32)
    matched = rng.random(600) < 0.3
    indptr, indices, data, ones = neighbour_rows(nb)
    assert not ones
    got = trust._neighbourhood_sums(indptr, indices, data, ones, household, elders, values, matched, 400)
    hh = household[elders]
    for k, weights in enumerate((None, values[elders], matched.astype(np.float32))):
        sums = np.bincount(hh, weights=weights, minlength=400).astype(np.float64)
        assert np.array_equal(got[2 * k], sums)
        with_elders = sums > 0 if k != 2 else got[0] > 0
        assert np.array_equal(got[2 * k + 1][with_elders], (nb @ sums)[with_elders])
