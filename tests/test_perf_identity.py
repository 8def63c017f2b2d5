"""The fast paths of the vectorised core give exactly the numbers of the plain formulas.

Each shortcut taken for speed (incremental neighbourhood counts, vectorised ratios, lazy
streams, group ranks, the one-pass output collector) is compared bit for bit with the
straightforward computation it replaces; the tolerance is zero.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import SCENARIOS
from villagesim.metrics import (
    COLUMNS,
    RATIO_COLUMNS,
    SUM_COLUMNS,
    SUM_WITH_HIDDEN,
    _pairwise_scratch,
    _pairwise_sum,
    village_sums,
    village_sums_plain,
    with_ratios,
    with_ratios_plain,
)
from villagesim.model import VillageModel
from villagesim.processes import facilities
from villagesim.processes.matching import _exclusive_groupsum
from villagesim.processes.week import neighbour_count_sum, rank_within
from villagesim.rng import Streams, generator, stream_key, substream
from villagesim.scenario import load_scenario
from villagesim.schema import Scenario


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays of the same dtype, bit for bit (so 0.0 and -0.0 differ, nan equals itself)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


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
    # zero, negative, infinite and missing denominators and numerators: as the array code
    odd = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, 3.0])
    sums = rng.choice(odd, size=(40, len(SUM_WITH_HIDDEN)))
    with np.errstate(divide="ignore", invalid="ignore"):
        assert _same_bits(with_ratios(sums), with_ratios_plain(sums))
        assert _same_bits(with_ratios(sums[3]), with_ratios_plain(sums[3]))
        assert _same_bits(with_ratios(sums.astype(np.float32)), with_ratios_plain(sums.astype(np.float32)))


def test_lazy_stream_draws_the_numbers_of_the_stream() -> None:
    streams = Streams(7, replicate=2)
    lazy = streams.lazy_for_step("matching", 5)
    plain = streams.for_step("matching", 5)
    assert np.array_equal(lazy.random(10), plain.random(10))
    assert np.array_equal(substream(lazy, 2).random(5), substream(streams.for_step("matching", 5), 2).random(5))


def test_streams_are_numpys_seed_sequence_streams() -> None:
    """The cheaply built streams draw the numbers of ``Generator(PCG64(SeedSequence(...)))`` and
    their seed sequence spawns and reports as numpy's."""
    rng = np.random.default_rng(8)
    keys = [(0, stream_key("demography"), 3), (2, 0, 0), (), (7,), (1, 2**32 + 5, 2**40, 9)]
    keys += [
        tuple(int(k) >> int(rng.integers(0, 32)) for k in rng.integers(0, 2**32, int(rng.integers(0, 6)))) for _ in range(300)
    ]
    for i, key in enumerate(keys):
        seed = [0, 1, 42, 2**32, 2**64 + 3][i % 5] if i < 25 else int(rng.integers(0, 2**62))
        sequence = np.random.SeedSequence(seed, spawn_key=key)
        fast = generator(seed, key)
        assert np.array_equal(fast.random(8), np.random.Generator(np.random.PCG64(sequence)).random(8)), (seed, key)
    streams = Streams(11, replicate=3)
    plain = np.random.SeedSequence(11, spawn_key=(3, stream_key("trust"), 40))
    stream = streams.for_step("trust", 40)
    assert stream.bit_generator.seed_seq.spawn_key == plain.spawn_key
    assert np.array_equal(stream.bit_generator.seed_seq.pool, plain.pool)
    for child, want in zip(stream.spawn(2), np.random.Generator(np.random.PCG64(plain)).spawn(2), strict=True):
        assert np.array_equal(child.random(4), want.random(4))
    named = np.random.Generator(np.random.PCG64(np.random.SeedSequence(11, spawn_key=(3, stream_key("population")))))
    assert np.array_equal(streams.named("population").integers(0, 100, 20), named.integers(0, 100, 20))
    with pytest.raises(ValueError):
        streams.for_step("trust", -1)


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


def test_facility_service_equals_the_plain_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each week's compiled service (distances kept from earlier weeks) gives the numbers of
    :func:`facilities.serve_plain` on the same draw, while facilities are built and staffed."""
    s = load_scenario(SCENARIOS / "prefecture.toml").scenario.with_overrides({"population.villages": 6})
    # few funds and restless managers: facilities start and stop operating, more are built after a year
    s = s.with_overrides({"policy.budget": 300000.0, "facilities.manager_quit_rate": 5.0})
    compiled = facilities.serve
    weeks_served = []

    def serve_both(world, scenario, rng, week):
        fac = world.institutions.facilities
        state, remaining, year = rng.bit_generator.state, week.remaining.copy(), fac.hours_served_year.copy()
        given = compiled(world, scenario, rng, week)
        if fac.operating.any() and len(week.elders):
            after, hours = week.remaining, fac.hours_served
            redraw = np.random.Generator(np.random.PCG64())
            redraw.bit_generator.state = state
            u = redraw.random(len(world.persons), dtype=np.float32)
            week.remaining, fac.hours_served = remaining, np.zeros(len(fac))
            plain = facilities.serve_plain(world, scenario, u, week)
            assert _same_bits(given, plain)
            assert _same_bits(after, week.remaining)
            assert _same_bits(hours, fac.hours_served)
            assert _same_bits(fac.hours_served_year, year + hours)
            weeks_served.append(int(fac.operating.sum()))
        return given

    monkeypatch.setattr(facilities, "serve", serve_both)
    model = VillageModel(s, steps=60)
    for _ in range(60):
        model.step()
    assert len(weeks_served) > 30 and len(set(weeks_served)) > 5


def test_pairwise_sum_is_numpys_summation_order() -> None:
    rng = np.random.default_rng(6)
    lengths = np.array([*range(1, 300), 511, 1000, 1031, 4096, 8191, 8192, 8193, 20000] * 2)
    rng.shuffle(lengths)
    values = (rng.random(lengths.sum()) * 10 ** rng.uniform(-4, 4, lengths.sum())).astype(np.float32)
    values[rng.random(len(values)) < 0.2] *= -1
    at = np.r_[0, np.cumsum(lengths)[:-1]]
    wide = values.astype(np.float64)
    frames, partial = _pairwise_scratch()
    got = [wide[a] + _pairwise_sum(wide, a + 1, n - 1, frames, partial) for a, n in zip(at, lengths, strict=True)]
    assert _same_bits(np.array(got), np.add.reduceat(values, at, dtype=np.float64))


def _without_villages(week, village: np.ndarray, gone: list[int]):
    """The week with the elders of villages ``gone`` left out."""
    keep = ~np.isin(village, gone)
    per_elder = ("elders", "alone", "need", "remaining", "asked", "requested_hours", "matched", "handled")
    return dataclasses.replace(
        week, **{f: getattr(week, f)[keep] for f in per_elder}, met={k: v[keep] for k, v in week.met.items()}
    )


def test_village_sums_equal_the_array_formulation() -> None:
    s = load_scenario(SCENARIOS / "prefecture.toml").scenario.with_overrides({"population.villages": 6})
    model = VillageModel(s, steps=20)
    for _ in range(20):
        model.step()
        week = model.week
        assert _same_bits(village_sums(model.world, week, week.extra), village_sums_plain(model.world, week, week.extra))
    # villages without elders: first, middle, last ones (np.add.reduceat's cuts, kept as they were)
    village = model.world.persons.village[week.elders]
    for gone in ([0], [2], [5], [4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4]):
        sub = _without_villages(week, village, gone)
        assert _same_bits(village_sums(model.world, sub), village_sums_plain(model.world, sub))
    none = _without_villages(week, village, list(range(6)))
    assert _same_bits(village_sums(model.world, none), village_sums_plain(model.world, none))
