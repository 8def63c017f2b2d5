"""The fast paths of the vectorised core give exactly the numbers of the plain formulas.

Each shortcut taken for speed (incremental neighbourhood counts, vectorised ratios, lazy
streams, group ranks, the one-pass output collector, compiled kernels) is compared bit for
bit with the straightforward computation it replaces; the tolerance is zero. The compiled
paths and their plain formulas are the pairs of :func:`villagesim.jit.formulas` (each formula
lives next to its kernel in src); each check below runs over every pair it names, so a kernel
registered with its formula is tested with the others.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import fields

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import SCENARIOS
from villagesim.config.loading import load_scenario
from villagesim.config.schema import Scenario
from villagesim.jit import Formula, formulas
from villagesim.model import VillageModel
from villagesim.outputs.sums import (
    _INDEX,
    COLUMNS,
    RATIO_COLUMNS,
    SUM_COLUMNS,
    SUM_WITH_HIDDEN,
    _pairwise_scratch,
    _pairwise_sum,
)
from villagesim.processes import PROCESSES, trust, volunteering
from villagesim.processes.matching import Pairs, Pool, Requests, _committee_order, _stable_order
from villagesim.processes.rates import logistic
from villagesim.processes.week import Week, neighbour_count_sum, neighbour_rows, rank_within
from villagesim.rng import Streams, generator, stream_key, substream

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # the tests step models


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


CHECKS = ("week chain", "in a model run", "committee rounds", "facility service", "village sums", "ratios")
"""The ways a pair is compared; each has its test below."""


def _pairs(check: str) -> object:
    """Parametrises a test over the registered pairs compared by ``check``."""
    return pytest.mark.parametrize("pair", formulas(check), ids=lambda pair: pair.name)


def test_every_kernel_formula_pair_is_checked() -> None:
    pairs = formulas()
    assert {pair.check for pair in pairs} <= set(CHECKS)
    for check in CHECKS:
        assert formulas(check), check
    names = {pair.name for pair in pairs}
    for process in ("demography", "health", "needs", "family", "asking", "volunteering", "trust"):
        assert f"{process}.run" in names
    assert {"matching._assign_rounds", "facilities.serve", "sums.village_sums", "sums.with_ratios"} <= names
    for pair in pairs:
        assert pair.plain.__module__ == pair.module and callable(pair.compiled)


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


@_pairs("ratios")
def test_with_ratios_matches_column_by_column(pair: Formula) -> None:
    with_ratios, with_ratios_plain = pair.compiled, pair.plain
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


def _requests(world, req_rows):
    p, hh = world.persons, world.households
    req_hh = p.household[req_rows]
    return Requests(req_rows, hh.hamlet[req_hh], p.village[req_rows], hh.x[req_hh], hh.y[req_hh])


def _assign_compiled(pair, rng, world, pool, req_rows, demand, eligible, attempts, local_knowledge, walking_km):
    """The committee's rounds as ``matching._manual`` runs them (``_assign_rounds``), for
    given requests: ``(given, pair_req, pair_pool, pair_hours)``."""
    n = len(req_rows)
    given = np.zeros(n, dtype=np.float32)
    pairs = Pairs(np.empty(n * attempts, np.int64), np.empty(n * attempts, np.int64), np.empty(n * attempts, np.float32))
    req = _requests(world, req_rows)
    n_pairs = pair.compiled(
        rng, demand, given, req, pool.arrays(), eligible, attempts, local_knowledge, np.float32(walking_km), pairs, 0
    )
    return (given, *(a[:n_pairs] for a in pairs))


def _assign_plain(pair, rng, world, pool, req_rows, demand, eligible, attempts, local_knowledge, walking_km):
    return pair.plain(rng, demand, _requests(world, req_rows), pool, eligible, attempts, local_knowledge, walking_km)


@_pairs("committee rounds")
@pytest.mark.parametrize("seed", range(4))
def test_compiled_matching_equals_the_array_formulation(pair: Formula, seed: int) -> None:
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
    for fn in (_assign_compiled, _assign_plain):
        pool = Pool.of_active(world)
        pool.hours_left = (pool.hours_left * np.float32(0.3)).astype(np.float32)
        eligible = rng.random(len(pool.rows)) < 0.8 if fn is _assign_compiled else results[0][1]
        out = fn(pair, np.random.default_rng(100 + seed), world, pool, req_rows, demand, eligible, 5, 0.7, 1.2)
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


class _Draws:
    """Stands in for a stream: hands out the given float32 draws once."""

    def __init__(self, draws: np.ndarray, seed: int = 0) -> None:
        self.draws = draws.copy()
        self.other = np.random.default_rng(seed)  # the week's further draws (accidents)
        self.first = True

    def random(self, size: int, dtype=np.float64) -> np.ndarray:
        if self.first:
            assert size == len(self.draws) and dtype == np.float32
            self.first = False
            return self.draws
        return self.other.random(size, dtype=dtype)


@_pairs("in a model run")
@pytest.mark.parametrize(
    "levers",
    [
        {},
        {"policy.transparency": 0.6, "policy.party_mobilisation": 0.7, "policy.time_bank.enabled": True},
        {"behaviour.accident_rate_per_hour": 0.05, "policy.publicity": 0.5},
    ],
)
def test_compiled_processes_equal_the_numpy_formulas(monkeypatch, pair: Formula, levers: dict) -> None:
    """Each week the process runs both ways on copies of the same state: every person column,
    the week's candidates and the volunteering logits agree to the bit."""
    module, compiled, plain = sys.modules[pair.module], pair.compiled, pair.plain
    weeks = []
    logits = []
    monkeypatch.setattr(volunteering, "logistic", lambda x: logits.append(x.copy()) or logistic(x))

    def both(world, scenario, rng, week) -> None:
        # the week's draws (volunteering takes one per person) are handed to both ways
        draws = rng.random(len(world.persons), dtype=np.float32)
        other_world, other_week = copy.deepcopy((world, week))
        plain_logits = plain(other_world, scenario, _Draws(draws, week.step), other_week)
        compiled(world, scenario, _Draws(draws, week.step), week)
        if plain_logits is not None:
            assert logits[-1].dtype == plain_logits.dtype and logits[-1].tobytes() == plain_logits.tobytes()
        for f in fields(world.persons):
            a, b = getattr(world.persons, f.name), getattr(other_world.persons, f.name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f.name
        if week.candidates is not None:
            assert np.array_equal(week.candidates, other_week.candidates)
        weeks.append(week.step)

    monkeypatch.setattr(module.PROCESS, pair.kernel, both)  # the model runs the process's record
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


def _week_chain() -> list[tuple[object, object]]:
    """The processes compared in a chain of fresh weeks, in the order of a step, with their
    plain formulas."""
    chain = [(sys.modules[pair.module], pair.plain) for pair in formulas("week chain")]
    return sorted(chain, key=lambda entry: PROCESSES.index(entry[0].PROCESS))


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
    chain = _week_chain()
    assert [process.NAME for process, _ in chain] == ["demography", "health", "needs", "family", "asking"]
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


@_pairs("facility service")
def test_facility_service_equals_the_plain_formula(monkeypatch: pytest.MonkeyPatch, pair: Formula) -> None:
    """Each week's compiled service (distances kept from earlier weeks) gives the numbers of
    :func:`facilities.serve_plain` on the same draw, while facilities are built and staffed."""
    module = sys.modules[pair.module]
    s = load_scenario(SCENARIOS / "prefecture.toml").scenario.with_overrides({"population.villages": 6})
    # few funds and restless volunteer managers who come and go: facilities start and stop
    # operating, more are built after a year (paid managers are hired only on yearly contracts)
    s = s.with_overrides(
        {"policy.budget": 300000.0, "facilities.manager_quit_rate": 5.0, "facilities.volunteer_manager_rate": 5.0}
    )
    compiled = pair.compiled
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
            plain = pair.plain(world, scenario, u, week)
            assert _same_bits(given, plain)
            assert _same_bits(after, week.remaining)
            assert _same_bits(hours, fac.hours_served)
            assert _same_bits(fac.hours_served_year, year + hours)
            weeks_served.append(int(fac.operating.sum()))
        return given

    monkeypatch.setattr(module, pair.kernel, serve_both)
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


@_pairs("village sums")
def test_village_sums_equal_the_array_formulation(pair: Formula) -> None:
    village_sums, village_sums_plain = pair.compiled, pair.plain
    s = load_scenario(SCENARIOS / "prefecture.toml").scenario.with_overrides({"population.villages": 6})
    model = VillageModel(s, steps=20)
    for _ in range(20):
        model.step()
        week = model.week
        assert _same_bits(village_sums(model.world, week, week.extra), village_sums_plain(model.world, week, week.extra))
    # villages without elders: first, middle, last ones; every village's sums are those of
    # its own elders (np.bincount by village, equal up to rounding: another summation order)
    village = model.world.persons.village[week.elders]
    met = week.met_of("volunteer")
    for gone in ([0], [2], [5], [4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4]):
        sub = _without_villages(week, village, gone)
        sums = village_sums(model.world, sub)
        assert _same_bits(sums, village_sums_plain(model.world, sub))
        kept = ~np.isin(village, gone)
        trust_of = model.world.persons.trust[week.elders[kept]]
        for name, values in (("met_hours_volunteer", met[kept]), ("elders_alone", week.alone[kept]), ("_trust_sum", trust_of)):
            expected = np.bincount(village[kept], weights=values, minlength=6)
            assert np.allclose(sums[:, _INDEX[name]], expected, rtol=1e-12, atol=0), (gone, name)
    none = _without_villages(week, village, list(range(6)))
    assert _same_bits(village_sums(model.world, none), village_sums_plain(model.world, none))
