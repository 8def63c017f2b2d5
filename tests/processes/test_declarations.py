"""Each process changes only the state it declares, and reports only the outputs it declares.

Whole scenarios are stepped with every process wrapped: before a process runs, the person
table, the step's record and the institutions' state are copied; after it, whatever changed
must be named in the process's ``writes`` (or, for reported sums, its ``outputs``). The
scenarios together switch on every mechanism (time bank, platform, NGOs, facilities,
incentives, alarms, an intervention mid-run).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from villagesim.model import VillageModel
from villagesim.outputs import columns
from villagesim.processes import STEP, Process
from villagesim.processes.week import Week

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [
    "baseline",
    "time_bank",
    "platform",
    "digital_training",
    "ngo_purchase",
    "quality_kpi",
    "incentives",
    "wearables",
    "party_mobilisation",
]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=True)
        )
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b) and not isinstance(a, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a is b or a == b


def _snapshot(world, week: Week) -> dict[str, object]:
    state: dict[str, object] = {}
    for name, value in vars(world.persons).items():
        state[f"persons.{name}"] = value.copy() if isinstance(value, np.ndarray) else value
    for f in dataclasses.fields(week):
        if f.name in ("met", "extra"):
            continue
        value = getattr(week, f.name)
        state[f"week.{f.name}"] = value.copy() if isinstance(value, np.ndarray) else value
    for source, hours in week.met.items():
        state[f"week.met.{source}"] = hours.copy()
    inst = world.institutions
    for f in dataclasses.fields(inst):
        value = getattr(inst, f.name)
        state[f"institutions.{f.name}"] = value if f.name in ("intended", "effective_cache") else copy.deepcopy(value)
    return state


def _changed(before: dict[str, object], after: dict[str, object]) -> set[str]:
    return {k for k in before.keys() | after.keys() if k not in before or k not in after or not _same(before[k], after[k])}


def _declared(process: Process) -> set[str]:
    return set(process.writes)


def _check_step(model: VillageModel, seen: dict[str, set[str]]) -> None:
    wrapped = []
    for process in STEP:
        run = process.run

        def checked(world, levers, rng, week, _run=run, _process=process):
            before = _snapshot(world, week)
            extra_before = {k: v.copy() for k, v in week.extra.items()}
            _run(world, levers, rng, week)
            changed = _changed(before, _snapshot(world, week))
            undeclared = {c for c in changed if c not in _declared(_process)}
            assert not undeclared, f"process {_process.name} changed {sorted(undeclared)} without declaring it"
            reported = {k for k in week.extra if k not in extra_before or not np.array_equal(extra_before[k], week.extra[k])}
            outputs = {o.name for o in _process.outputs}
            assert reported <= outputs, f"process {_process.name} reported {sorted(reported - outputs)} without declaring it"
            seen[_process.name] |= changed

        wrapped.append((process, run))
        object.__setattr__(process, "run", checked)
    try:
        model.step()
    finally:
        for process, run in wrapped:
            object.__setattr__(process, "run", run)


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_process_writes_only_what_it_declares(name):
    model = VillageModel(ROOT / "scenarios" / f"{name}.toml", replicate=0, steps=60, population__villages=3)
    seen: dict[str, set[str]] = {p.name: set() for p in STEP}
    for _ in range(60):  # past the end of the first budget year
        _check_step(model, seen)
    # the check is not vacuous: the processes did change what they declare
    assert seen["demography"] >= {"persons.age", "week.died"}
    assert "week.met.family" in seen["family"]
    assert "institutions.treasury" in seen["budget"]


def test_declarations_name_real_state():
    """Every declared write names a person column, a field of the step's record or of the
    institutions (so a typo in a declaration is caught)."""
    model = VillageModel(ROOT / "scenarios" / "baseline.toml", steps=1)
    model.step()
    state = set(_snapshot(model.world, model.week))
    state |= {f"week.met.{s}" for s in ("family", "volunteer", "peer", "facility", "ngo", "time_bank")}
    for process in STEP:
        unknown = [w for w in process.writes if w not in state]
        assert not unknown, f"process {process.name} declares writes of unknown state {unknown}"


def test_a_broken_declaration_is_caught():
    """The check fails when a process writes what it does not declare."""
    family = next(p for p in STEP if p.name == "family")
    object.__setattr__(family, "writes", ("week.remaining",))
    try:
        model = VillageModel(ROOT / "scenarios" / "baseline.toml", steps=2)
        with pytest.raises(AssertionError, match="family changed .*week.met.family"):
            _check_step(model, {p.name: set() for p in STEP})
    finally:
        object.__setattr__(family, "writes", ("week.remaining", "week.met.family"))


def test_every_reported_column_is_in_the_registry():
    for process in STEP:
        for out in process.outputs:
            assert out.name in columns.SUM_WITH_HIDDEN
            if not out.hidden:
                assert columns.CATALOGUE[out.name].unit
