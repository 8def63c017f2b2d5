"""Shared fixtures: small scenarios and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from villagesim.config.schema import Scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def compiled_kernels() -> None:
    """Compile the core's kernels (or load them from numba's disk cache) once per session:
    on a fresh machine that takes some seconds, which would otherwise fall on whichever
    test steps a model first (or on a browser page or worker it starts). Only modules that
    step a model ask for it (``pytestmark = pytest.mark.usefixtures("compiled_kernels")``),
    and so do the scenario fixtures below, so that ``pytest tests/config`` pays nothing."""
    from villagesim.config.loading import load_scenario
    from villagesim.model import VillageModel

    for name in ("platform", "time_bank"):
        scenario = load_scenario(SCENARIOS / f"{name}.toml").scenario.with_overrides({"population.villages": 2})
        model = VillageModel(scenario, steps=60)
        for _ in range(60):
            model.step()


@pytest.fixture
def small(compiled_kernels) -> Scenario:
    """A village of 600 registered residents, 52 weeks."""
    return Scenario.model_validate({"name": "small", "run": {"steps": 52}, "population": {"residents_per_village": 600}})


@pytest.fixture
def small_county(compiled_kernels) -> Scenario:
    """Ten villages of varied size, 26 weeks."""
    return Scenario.model_validate(
        {
            "name": "small_county",
            "run": {"steps": 26},
            "population": {"villages": 10, "residents_per_village": 500, "village_size_sigma": 0.5},
        }
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write a scenario file into tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def parts_written(folder: Path) -> int:
    """Task files a sweep has finished in ``folder``."""
    return len(list((folder / "runs").glob("part-*.parquet")))


def kill_once_parts_written(proc, folder: Path, parts: int, timeout: float) -> None:
    """SIGKILL ``proc`` (a sweep driver) as soon as ``parts`` task files are on disk."""
    import os
    import signal
    import time

    deadline = time.monotonic() + timeout
    while parts_written(folder) < parts:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "no results appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def week_before(model, process):
    """Run the processes of ``model``'s next step that come before ``process`` (a process
    module or its ``PROCESS`` record), as ``VillageModel.step`` does, and return ``(week,
    scenario, rng)``: the step's record, the funded levers and the process's stream, ready
    for ``process.run``."""
    from villagesim.processes import STEP
    from villagesim.processes.week import Week

    target = getattr(process, "PROCESS", process)
    t = model.steps + 1
    world = model.world
    week = Week(step=t, n_villages=len(world.villages), n_persons=len(world.persons))
    for earlier in STEP:
        if earlier is target:
            break
        levers = model.scenario if earlier.levers == "intended" else week.levers
        earlier.run(world, levers, model.streams.for_step(earlier.stream_key, t), week)
    return week, week.levers, model.streams.for_step(target.stream_key, t)


def stepped(scenario: Scenario, weeks: int):
    """A model of ``scenario`` after ``weeks`` steps."""
    from villagesim.model import VillageModel

    model = VillageModel(scenario)
    for _ in range(weeks):
        model.step()
    return model
