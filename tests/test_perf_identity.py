"""The fast paths of the vectorised core give exactly the numbers of the plain formulas.

Each shortcut taken for speed (incremental neighbourhood counts, vectorised ratios, lazy
streams, group ranks, the one-pass output collector) is compared bit for bit with the
straightforward computation it replaces; the tolerance is zero.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from villagesim.metrics import COLUMNS, RATIO_COLUMNS, SUM_COLUMNS, SUM_WITH_HIDDEN, with_ratios
from villagesim.model import VillageModel
from villagesim.processes.matching import Pool, _committee_order, _stable_order, assign
from villagesim.processes.week import neighbour_count_sum, rank_within
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
    starts = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    counts = np.diff(np.r_[starts, len(keys)])
    assert np.array_equal(rank_within(keys), np.arange(len(keys)) - np.repeat(starts, counts))
    assert len(rank_within(np.zeros(0, dtype=np.int64))) == 0


def test_collector_rows_are_the_recorded_outputs() -> None:
    model = VillageModel(Scenario(), steps=6)
    for _ in range(6):
        model.step()
    collected = model.datacollector.get_model_vars_dataframe()
    ts = model.timeseries()
    assert list(collected.columns) == COLUMNS
    assert np.array_equal(collected.to_numpy(), ts[COLUMNS].to_numpy())


def _assign_arrays(rng, world, pool, req_rows, demand, eligible, attempts, local_knowledge, walking_km):
    """Committee matching written as whole-array numpy operations, round by round: the
    formulation the compiled rounds of ``matching.assign`` replace."""
    p, hh = world.persons, world.households
    given = np.zeros(len(req_rows), dtype=np.float32)
    pairs_r, pairs_v, pairs_h = [], [], []
    req_hh = p.household[req_rows]
    req_hamlet, req_village = hh.hamlet[req_hh], p.village[req_rows]
    req_x, req_y = hh.x[req_hh], hh.y[req_hh]
    pool_hh = p.household[pool.rows]
    pool_x, pool_y = hh.x[pool_hh], hh.y[pool_hh]
    for _ in range(attempts):
        idx = np.flatnonzero(demand - given > 1e-6)
        if len(idx) == 0 or len(pool.rows) == 0:
            break
        local = rng.random(len(idx)) < local_knowledge
        u = rng.random(len(idx))
        hamlet, village = req_hamlet[idx], req_village[idx]
        use_hamlet = local & (pool.hamlet_count[hamlet] > 0)
        start = np.where(use_hamlet, pool.hamlet_start[hamlet], pool.village_start[village])
        count = np.where(use_hamlet, pool.hamlet_count[hamlet], pool.village_count[village])
        cand = np.where(count > 0, start + np.floor(u * count).astype(np.int64), -1)
        ok = cand >= 0
        idx, cand = idx[ok], cand[ok]
        dist = np.hypot(req_x[idx] - pool_x[cand], req_y[idx] - pool_y[cand])
        ok = eligible[cand] & (pool.hours_left[cand] > 0) & (pool.rows[cand] != req_rows[idx]) & (dist <= walking_km)
        idx, cand = idx[ok], cand[ok]
        if len(idx) == 0:
            continue
        order = np.lexsort((idx, cand))
        idx, cand = idx[order], cand[order]
        want = (demand[idx] - given[idx]).astype(np.float64)
        before = np.cumsum(want) - want
        first = np.maximum.accumulate(np.where(np.r_[True, cand[1:] != cand[:-1]], np.arange(len(cand)), 0))
        before = before - before[first]
        give = np.clip(pool.hours_left[cand] - before, 0.0, want).astype(np.float32)
        ok = give > 0
        idx, cand, give = idx[ok], cand[ok], give[ok]
        given[idx] += give
        pool.hours_left -= np.bincount(cand, weights=give, minlength=len(pool.rows)).astype(np.float32)
        np.maximum(pool.hours_left, 0, out=pool.hours_left)
        pairs_r.append(idx)
        pairs_v.append(cand)
        pairs_h.append(give)
    if not pairs_r:
        return given, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return given, np.concatenate(pairs_r), np.concatenate(pairs_v), np.concatenate(pairs_h)


@pytest.mark.parametrize("seed", range(4))
def test_compiled_matching_equals_the_array_formulation(seed: int) -> None:
    """Scarce volunteers (several requests per volunteer), short walks and partial hours:
    every branch of a round is taken. Tolerance zero."""
    model = VillageModel(Scenario().with_overrides({"population.villages": 3}), replicate=seed, steps=2)
    model.step()
    world = model.world
    rng = np.random.default_rng(seed)
    elders = np.flatnonzero(world.persons.age >= 60)
    req_rows = rng.choice(elders, size=min(400, len(elders)), replace=False)
    req_rows = req_rows[np.argsort(world.persons.village[req_rows], kind="stable")]
    demand = (rng.random(len(req_rows)) * 6).astype(np.float32)
    demand[::7] = 0
    results = []
    for fn in (assign, _assign_arrays):
        pool = Pool.of_active(world)
        pool.hours_left = (pool.hours_left * np.float32(0.3)).astype(np.float32)
        eligible = rng.random(len(pool.rows)) < 0.8 if fn is assign else results[0][1]
        out = fn(np.random.default_rng(100 + seed), world, pool, req_rows, demand, eligible, 5, 0.7, 1.2)
        results.append((out, eligible, pool.hours_left.copy()))
    (compiled, _, left_c), (arrays, _, left_a) = results
    # enough matches to mean something, and volunteers shared by several requests
    assert len(compiled[1]) > 40 and len(np.unique(compiled[2])) < len(compiled[2])
    for a, b in zip(compiled, arrays, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(left_c, left_a)


def test_pool_is_the_stable_sort_of_active_volunteers_by_hamlet() -> None:
    model = VillageModel(Scenario().with_overrides({"population.villages": 4}), steps=2)
    model.step()
    world = model.world
    p, hh = world.persons, world.households
    active = np.flatnonzero(p.active)
    hamlet = hh.hamlet[p.household[active]]
    rows = active[np.argsort(hamlet, kind="stable")]
    pool = Pool.of_active(world)
    assert len(rows) > 50 and np.array_equal(pool.rows, rows)
    assert np.array_equal(pool.hours_left, p.availability[rows]) and pool.hours_left.dtype == np.float32
    assert np.array_equal(pool.hamlet_count, np.bincount(hamlet, minlength=len(world.villages.hamlet_x)))
    assert np.array_equal(pool.village_count, np.bincount(p.village[rows], minlength=len(world.villages)))
    assert np.array_equal(pool.village_start, np.r_[0, np.cumsum(pool.village_count)[:-1]])
    assert np.array_equal(pool.x, hh.x[p.household[rows]]) and np.array_equal(pool.y, hh.y[p.household[rows]])


def test_committee_order_is_lexsort_and_counting_sort_is_stable_argsort() -> None:
    rng = np.random.default_rng(11)
    for n in (0, 1, 7, 300):
        key = rng.integers(0, 12, n)
        u = rng.random(n)
        u[::5] = 0.5  # ties in u too: then the position decides, as in lexsort
        assert np.array_equal(_committee_order(u, key), np.lexsort((u, key)))
        assert np.array_equal(_stable_order(key, 12), np.argsort(key, kind="stable"))
