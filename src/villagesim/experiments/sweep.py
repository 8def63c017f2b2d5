"""Sweeps: run an experiment's design serially, on a local Dask cluster, on an existing Dask
scheduler or on a batch cluster (dask-jobqueue), streaming results to a resumable store.

The store (the ``--out`` folder)::

    experiment.toml        the experiment file as given
    experiment.json        resolved experiment, horizon, digest, provenance (written once)
    design.parquet         every run: run_id, point, replicate, seed, parameter values (written once)
    runs/part-*.parquet    per-run summaries (parameters, seed, outcomes), one file per finished task
    timeseries/part-*.parquet  per-run weekly series of the kept outcomes, same parts
    failed/run-*.json      runs that raised, with the error

Every file is written under a temporary name and renamed when complete, the time series of a
part before its summaries: a part in ``runs/`` is the mark that its runs are done. Running the
same command on the same folder again runs only the runs that are neither done nor failed, so
after an interruption (Ctrl-C, a killed driver) no run is lost or repeated. A task that Dask
retries (its worker died) is written once, by the driver, when its result arrives.

The driver keeps at most ``max_inflight`` tasks submitted and writes each result as it arrives,
so its memory stays bounded whatever the size of the design. A run's outcomes depend only on
its parameters, seed and replicate number: serial, local and remote execution give identical rows.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from villagesim.config.loading import apply_overrides
from villagesim.config.schema import Scenario
from villagesim.errors import VillagesimError
from villagesim.experiments.design import Design, Experiment, build_design
from villagesim.runs.backends import (
    Backend,
    DaskBackend,
    SerialBackend,
    check_workers,
    close_client,
    make_client,
    make_jobqueue_cluster,
)
from villagesim.runs.folder import provenance, write_json
from villagesim.runs.runner import run_replicate
from villagesim.runs.stats import window_means

__all__ = [
    "RunSpec",
    "TaskResult",
    "run_task",
    "SweepStore",
    "sweep",
    "SweepReport",
    "outcome_values",
    "make_client",
    "close_client",
    "check_workers",
    "make_jobqueue_cluster",
]

RUNS = "runs"
TIMESERIES = "timeseries"
FAILED = "failed"
DESIGN = "design.parquet"
EXPERIMENT_JSON = "experiment.json"


@dataclass(frozen=True)
class RunSpec:
    """One run: a parameter point and a replicate."""

    run_id: int
    point: int
    replicate: int
    seed: int
    overrides: dict[str, Any]


@dataclass
class TaskResult:
    """What a task sends back: summary rows, weekly series, failures."""

    run_ids: list[int]
    summary: pd.DataFrame
    timeseries: pd.DataFrame | None
    failed: list[dict[str, Any]]
    seconds: float


def outcome_values(ts: pd.DataFrame, outcomes: list[str], window: int) -> dict[str, float]:
    """A run's outcomes: the mean of each column over its last ``window`` weeks.

    Args:
        ts: the run's weekly time series.
        outcomes: the columns to average.
        window: weeks averaged.
    """
    return window_means(ts, outcomes, window)


def run_task(
    base: Scenario, runs: list[RunSpec], steps: int, outcomes: list[str], window: int, keep_timeseries: bool
) -> TaskResult:
    """Run several runs one after the other (the unit of work sent to a Dask worker).

    A run that raises is reported in ``failed`` with its error; the others go on.
    """
    start = time.perf_counter()
    rows, series, failed = [], [], []
    for spec in runs:
        try:
            scenario = apply_overrides(base, {**spec.overrides, "run.seed": int(spec.seed)})
            ts, _ = run_replicate(scenario, spec.replicate, steps=steps, record_villages=False)
        except Exception as exc:  # a failing run is recorded, the sweep goes on
            failed.append(
                {
                    "run_id": spec.run_id,
                    "point": spec.point,
                    "replicate": spec.replicate,
                    "seed": int(spec.seed),
                    "parameters": spec.overrides,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "traceback": traceback.format_exc(),
                }
            )
            continue
        row = {"run_id": spec.run_id, "point": spec.point, "replicate": spec.replicate, "seed": np.uint64(spec.seed)}
        row.update(spec.overrides)
        row.update(outcome_values(ts, outcomes, window))
        rows.append(row)
        if keep_timeseries:
            part = ts[["step", *outcomes]].copy()
            part.insert(0, "run_id", np.int64(spec.run_id))
            series.append(part)
    summary = pd.DataFrame(rows)
    if len(summary):
        summary["seed"] = summary["seed"].astype("uint64")
    return TaskResult(
        run_ids=[s.run_id for s in runs],
        summary=summary,
        timeseries=pd.concat(series, ignore_index=True) if series else None,
        failed=failed,
        seconds=time.perf_counter() - start,
    )


# --------------------------------------------------------------------- the store
class SweepStore:
    """The on-disk results of a sweep (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    # -- writing
    def initialise(self, exp: Experiment, design: Design, steps: int) -> None:
        """Create the folder and its manifest, or check that it holds the same experiment."""
        digest = exp.digest(steps)
        meta = self.folder / EXPERIMENT_JSON
        if self.folder.exists() and not self.folder.is_dir():
            raise VillagesimError(f"cannot write a sweep to {self.folder}: a file of that name exists")
        if meta.exists():
            old = json.loads(meta.read_text(encoding="utf-8"))
            if old.get("digest") != digest:
                why = (
                    "a horizon of " + str(old.get("steps")) + " weeks" if old.get("steps") != steps else "a different experiment"
                )
                raise VillagesimError(
                    f"{self.folder} holds a sweep of {why} ({old.get('name')}, from {old.get('experiment_file')}); "
                    "run the same experiment and --steps to resume it, or choose another --out"
                )
            return
        if self.folder.exists() and not self._unfinished_start():
            raise VillagesimError(f"{self.folder} exists and is not a sweep folder; choose another --out")
        for sub in (RUNS, TIMESERIES, FAILED):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._atomic(self.folder / "experiment.toml", lambda p: p.write_text(exp.text, encoding="utf-8"))
        self._atomic(self.folder / DESIGN, lambda p: design.runs.to_parquet(p, index=False))
        info = {
            "name": exp.name,
            "description": exp.description,
            "experiment_file": str(exp.path),
            "scenario_file": str(exp.scenario_path),
            "design": exp.design_kind,
            "samples": exp.samples,
            "levels": exp.levels,
            "design_seed": exp.design_seed,
            "replicates": exp.replicates,
            "steps": steps,
            "window": min(exp.window, steps),
            "outcomes": exp.outcomes,
            "factors": [
                {"path": f.path, "role": f.role, "spec": f.describe(), "kind": f.kind, "range": f.is_range} for f in exp.factors
            ],
            "discovery": exp.discovery,
            "points": len(design.points),
            "runs": len(design.runs),
            "digest": digest,
            "base_scenario": exp.base.model_dump(mode="json"),
            **provenance(exp.seed, digest),
        }
        if design.unit is not None:

            def save_unit(p: Path) -> None:
                with open(p, "wb") as fh:  # a file object: np.save would add ".npy" to a temporary name
                    np.save(fh, design.unit)

            self._atomic(self.folder / "design_unit.npy", save_unit)
        self._atomic(meta, lambda p: write_json(info, p))

    def _unfinished_start(self) -> bool:
        """True for an empty folder, or one a driver stopped while creating it (no run written yet)."""
        ours = {RUNS, TIMESERIES, FAILED, "experiment.toml", DESIGN, "design_unit.npy"}
        for entry in self.folder.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.name not in ours:
                return False
            if entry.is_dir() and any(entry.iterdir()):
                return False
        return True

    def write(self, result: TaskResult) -> None:
        """Write a task's result: series, then failures, then the summary part (the mark of done)."""
        if len(result.summary):
            ids = result.summary["run_id"].to_numpy()
            name = f"part-{int(ids.min()):08d}-{int(ids.max()):08d}-{len(ids):05d}.parquet"
            if result.timeseries is not None:
                self._atomic(self.folder / TIMESERIES / name, lambda p: result.timeseries.to_parquet(p, index=False))
        for fail in result.failed:
            self._atomic(self.folder / FAILED / f"run-{fail['run_id']:08d}.json", lambda p, f=fail: write_json(f, p))
        if len(result.summary):
            self._atomic(self.folder / RUNS / name, lambda p: result.summary.to_parquet(p, index=False))

    @staticmethod
    def _atomic(path: Path, writer: Callable[[Path], Any]) -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            writer(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def tidy(self) -> None:
        """Remove what an interrupted driver left: temporary files and series without a summary part."""
        for sub in (RUNS, TIMESERIES, FAILED):
            folder = self.folder / sub
            if folder.exists():
                for p in folder.glob(".*.tmp-*"):
                    p.unlink(missing_ok=True)
        done = {p.name for p in (self.folder / RUNS).glob("part-*.parquet")}
        for p in (self.folder / TIMESERIES).glob("part-*.parquet"):
            if p.name not in done:
                p.unlink(missing_ok=True)

    # -- reading
    def done_ids(self) -> set[int]:
        """Run ids with a summary on disk."""
        out: set[int] = set()
        for p in sorted((self.folder / RUNS).glob("part-*.parquet")):
            out.update(pq.read_table(p, columns=["run_id"]).column(0).to_pylist())
        return out

    def failed_ids(self) -> set[int]:
        """Run ids recorded as failed."""
        return {int(p.stem.split("-")[1]) for p in (self.folder / FAILED).glob("run-*.json")}

    def info(self) -> dict[str, Any]:
        meta = self.folder / EXPERIMENT_JSON
        if not meta.exists():
            raise VillagesimError(f"not a sweep folder (no {EXPERIMENT_JSON}): {self.folder}")
        return json.loads(meta.read_text(encoding="utf-8"))

    def design(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / DESIGN)

    def summaries(self) -> pd.DataFrame:
        """Every finished run's summary row, ordered by run id."""
        parts = sorted((self.folder / RUNS).glob("part-*.parquet"))
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values("run_id", ignore_index=True)

    def timeseries(self) -> pd.DataFrame:
        """Every finished run's weekly series, ordered by run id and step."""
        parts = sorted((self.folder / TIMESERIES).glob("part-*.parquet"))
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values(
            ["run_id", "step"], ignore_index=True
        )

    def failures(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((self.folder / FAILED).glob("run-*.json"))]


# --------------------------------------------------------------------- execution
@dataclass
class SweepReport:
    """What a call of :func:`sweep` did."""

    total: int
    selected: int
    already: int
    ran: int
    failed: int
    seconds: float
    tasks: int

    @property
    def runs_per_second(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else float("nan")


def _tasks(design: Design, todo: list[int], runs_per_task: int) -> Iterator[list[RunSpec]]:
    """Runs to do (ascending ids), in tasks of aligned blocks of ``runs_per_task`` run ids.

    Tasks are made one at a time as the driver asks for them, so a design of any size costs
    the driver only its list of run ids.
    """
    runs = design.runs
    for _, block in itertools.groupby(todo, key=lambda rid: rid // runs_per_task):
        specs = []
        for rid in block:
            row = runs.iloc[rid]
            specs.append(
                RunSpec(int(row["run_id"]), int(row["point"]), int(row["replicate"]), int(row["seed"]), design.overrides(row))
            )
        yield specs


def sweep(
    exp: Experiment,
    out: str | Path,
    *,
    backend: Backend | None = None,
    client: Any = None,
    max_runs: int | None = None,
    steps: int | None = None,
    runs_per_task: int | None = None,
    max_inflight: int | None = None,
    retries: int = 2,
    retry_failed: bool = False,
    progress: bool = True,
) -> SweepReport:
    """Run (or resume) a sweep of ``exp`` into ``out``.

    Args:
        exp: a loaded experiment.
        out: the store folder; created, or resumed when it holds the same experiment and horizon.
        backend: where the tasks run (default: this process; see :mod:`villagesim.runs.backends`).
        client: a ``distributed.Client`` to run them on instead (wrapped in a Dask backend, not closed).
        max_runs: only the first ``max_runs`` runs of the design (a quick look).
        steps: horizon in weeks instead of the experiment's.
        runs_per_task: runs per Dask task (default: the replicates of a point, at least 4).
        max_inflight: tasks submitted at once (default: twice the threads of the workers present,
            at least 4, looked up again every 2 seconds as workers join or leave).
        retries: times Dask retries a task that raised outside a run (a run's own error is recorded, not
            retried); used for ``client`` (a backend has its own).
        retry_failed: run again the runs recorded as failed.
        progress: show a progress bar on stderr.

    Returns:
        a :class:`SweepReport`.
    """
    from tqdm import tqdm

    steps = int(steps if steps is not None else exp.steps)
    if steps < 1:
        raise VillagesimError("--steps must be at least 1")
    window = min(exp.window, steps)
    design = build_design(exp)
    store = SweepStore(out)
    store.initialise(exp, design, steps)
    store.tidy()
    total = len(design.runs)
    selected = total if max_runs is None else max(0, min(int(max_runs), total))
    done = store.done_ids()
    failed_before = store.failed_ids()
    if retry_failed:
        for rid in failed_before - done:
            (store.folder / FAILED / f"run-{rid:08d}.json").unlink(missing_ok=True)
        failed_before = set()
    skip = done | failed_before
    todo = [rid for rid in range(selected) if rid not in skip]
    already = selected - len(todo)
    done_before = len([d for d in done if d < selected])
    failed_in_selection = len([f for f in failed_before if f < selected and f not in done])
    per_task = int(runs_per_task or max(exp.replicates, 4))
    if backend is None:
        backend = DaskBackend(client, retries=retries) if client is not None else SerialBackend()
    base = exp.base
    args = (steps, exp.outcomes, window, exp.timeseries)
    jobs = ((base, runs, *args) for runs in _tasks(design, todo, per_task))
    failed_now = 0
    ran = 0
    n_tasks = 0
    start = time.perf_counter()
    bar = tqdm(total=selected, initial=already, unit="run", desc=exp.name, disable=not progress or None, file=sys.stderr)

    def record(result: TaskResult) -> None:
        nonlocal failed_now, ran
        store.write(result)
        failed_now += len(result.failed)
        ran += len(result.run_ids)
        bar.update(len(result.run_ids))
        bar.set_postfix(
            done=done_before + ran - failed_now, failed=failed_in_selection + failed_now, remaining=selected - already - ran
        )

    try:
        for done in backend.as_completed(_run_task, jobs, max_inflight=max_inflight, key=_task_key):
            n_tasks += 1
            runs = done.task[1]
            record(done.result if done.ok else _task_failure(runs, done.error))
            del done
    finally:
        bar.close()
    return SweepReport(
        total=total,
        selected=selected,
        already=already,
        ran=ran,
        failed=failed_now,
        seconds=time.perf_counter() - start,
        tasks=n_tasks,
    )


def _run_task(job: tuple[Any, ...]) -> TaskResult:
    """:func:`run_task` of one task's arguments (looked up at call time, so a test can replace it)."""
    return run_task(*job)


def _task_key(job: tuple[Any, ...]) -> str:
    runs = job[1]
    return f"villagesim-run-{runs[0].run_id}-{runs[-1].run_id}-{uuid.uuid4().hex[:8]}"


def _task_failure(runs: list[RunSpec], exc: BaseException) -> TaskResult:
    failed = [
        {
            "run_id": s.run_id,
            "point": s.point,
            "replicate": s.replicate,
            "seed": int(s.seed),
            "parameters": s.overrides,
            "error_type": type(exc).__name__,
            "error": str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        for s in runs
    ]
    return TaskResult([s.run_id for s in runs], pd.DataFrame(), None, failed, 0.0)
