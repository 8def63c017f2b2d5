"""Every backend runs the same tasks to the same results, in task order, and reports a task that raises."""

from __future__ import annotations

import functools
import math

import pandas as pd
import pytest

from villagesim.config.schema import Scenario
from villagesim.experiments.compare import compare
from villagesim.runs.backends import DaskBackend, ProcessPoolBackend, SerialBackend, backend_for, borrowed
from villagesim.runs.runner import run_replicate, run_scenario

TINY = Scenario.model_validate(
    {"name": "tiny", "run": {"steps": 12, "seed": 11}, "population": {"villages": 2, "residents_per_village": 200}}
)


@pytest.fixture(scope="module")
def dask_backend():
    pytest.importorskip("distributed")
    with DaskBackend.start(workers=2) as backend:
        yield backend


@pytest.fixture(params=["serial", "pool", "dask"])
def backend(request):
    if request.param == "dask":
        yield request.getfixturevalue("dask_backend")
        return
    with SerialBackend() if request.param == "serial" else ProcessPoolBackend(2) as b:
        yield b


def test_map_keeps_the_order_of_the_tasks(backend):
    assert backend.map(math.sqrt, [16.0, 1.0, 9.0, 4.0, 0.0, 25.0]) == [4.0, 1.0, 3.0, 2.0, 0.0, 5.0]


def test_a_raising_task_is_reported(backend):
    with pytest.raises(ValueError, match="math domain error"):
        backend.map(math.sqrt, [4.0, -1.0, 9.0])
    done = {d.task: d for d in backend.as_completed(math.sqrt, [4.0, -1.0, 9.0])}
    assert set(done) == {4.0, -1.0, 9.0}
    assert done[4.0].ok and done[4.0].result == 2.0 and done[9.0].result == 3.0
    assert not done[-1.0].ok and isinstance(done[-1.0].error, ValueError)
    assert "ValueError" in done[-1.0].traceback


def test_runs_give_the_same_numbers_on_every_backend(backend):
    one = functools.partial(run_replicate, TINY, record_villages=False)
    serial = [one(r) for r in range(3)]
    for (ts, _), (ref, _) in zip(backend.map(one, range(3)), serial, strict=True):
        pd.testing.assert_frame_equal(ts, ref)
    streamed = {d.task: d.result for d in backend.as_completed(one, range(3), max_inflight=2)}
    for r, (ref, _) in enumerate(serial):
        pd.testing.assert_frame_equal(streamed[r][0], ref)


def test_as_completed_keeps_a_bounded_number_in_flight(backend):
    drawn = {"n": 0, "ahead": 0}

    def tasks():
        for x in [1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0]:
            drawn["n"] += 1
            yield x

    got = []
    for d in backend.as_completed(math.sqrt, tasks(), max_inflight=2):
        drawn["ahead"] = max(drawn["ahead"], drawn["n"] - len(got))
        got.append(d.result)
    assert sorted(got) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert drawn["ahead"] <= 2


def test_a_scenario_and_a_comparison_are_the_same_in_parallel():
    with ProcessPoolBackend(2) as pool:
        a = run_scenario(TINY, replicates=3, backend=pool)
        c = compare(TINY, TINY.with_overrides({"run.seed": 12}), replicates=2, window=4, backend=pool)
    b = run_scenario(TINY, replicates=3)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    pd.testing.assert_frame_equal(a.villages, b.villages)
    ref = compare(TINY, TINY.with_overrides({"run.seed": 12}), replicates=2, window=4)
    pd.testing.assert_frame_equal(c.table, ref.table)
    pd.testing.assert_frame_equal(c.values, ref.values)
    pd.testing.assert_frame_equal(c.timeseries, ref.timeseries)


def test_backend_for_chooses_from_the_options():
    with backend_for(1) as b:
        assert isinstance(b, SerialBackend)
    with backend_for(None) as b:
        assert isinstance(b, SerialBackend)
    with backend_for(3) as b:
        assert isinstance(b, ProcessPoolBackend) and b.workers == 3
    with backend_for(0, dask=True) as b:
        assert isinstance(b, SerialBackend)


def test_a_borrowed_backend_is_left_open():
    pool = ProcessPoolBackend(2)
    with borrowed(pool, 5) as b:
        assert b is pool and b.map(math.sqrt, [1.0, 4.0]) == [1.0, 2.0]
    assert pool._pool is not None  # started on use, not closed by the borrower
    pool.close()
    with borrowed(None, 1) as b:
        assert isinstance(b, SerialBackend)
