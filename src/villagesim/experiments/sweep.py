"""Sweeps: run an experiment's design serially, on a local Dask cluster, on an existing Dask
scheduler or on a batch cluster (dask-jobqueue), streaming results to a resumable store.

The store (the ``--out`` folder)::

    experiment.toml        the experiment file as given
    experiment.json        resolved experiment, horizon, digest, provenance, villagesim version,
                           model hash, design.parquet's SHA-256 (written once)
    design.parquet         every run: run_id, point, replicate, seed, parameter values (written once)
    runs/part-*.parquet    per-run summaries (parameters, seed, outcomes), one file per finished task
    timeseries/part-*.parquet  per-run weekly series of the kept outcomes, same parts
    manifests/part-*.json  per task: its run ids and each part's rows, bytes and SHA-256
    failed/run-*.json      runs that raised, with the error
    .villagesim.lock       held (flock) by the driver writing the store

Every file is written under a temporary name, flushed to disk and renamed when complete: a
task's series, its failures, its summaries, and last its manifest, the mark that the task is
done. One driver at a time: a second driver on the same store refuses at once, naming the PID
and host of the first (the lock dies with its process, so a killed driver never blocks).

Running the same command on the same folder again resumes: it refuses a store of another
experiment, horizon, villagesim version or model code (results of two versions never mix),
checks every task's parts against its manifest (present, same size and SHA-256, readable, the
right row count, series and summaries both there), removes damaged or unfinished tasks with one
line saying how many runs will be redone, and runs only the runs that are neither done nor
failed; so after an interruption (Ctrl-C, a killed driver) or a truncated file no run is lost or
stored twice. A task that Dask retries (its worker died) is written once, by the driver, when
its result arrives; writing a run that is already stored is refused, and so is reading a store
that holds a run twice.

The driver keeps at most ``max_inflight`` tasks submitted and writes each result as it arrives,
so its memory stays bounded whatever the size of the design. A run's outcomes depend only on
its parameters, seed and replicate number: serial, local and remote execution give identical rows.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import itertools
import json
import os
import socket
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
import pyarrow as pa
import pyarrow.parquet as pq

from villagesim.config.loading import apply_overrides
from villagesim.config.schema import Scenario
from villagesim.errors import VillagesimError
from villagesim.experiments.design import MAX_DESIGN_RUNS, Design, Experiment, build_design
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
from villagesim.version import __version__, model_hash

__all__ = [
    "RunSpec",
    "TaskResult",
    "run_task",
    "SweepStore",
    "StoreCheck",
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
MANIFESTS = "manifests"
DESIGN = "design.parquet"
EXPERIMENT_JSON = "experiment.json"
LOCK = ".villagesim.lock"


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
@dataclass
class StoreCheck:
    """What :meth:`SweepStore.verify` found.

    Attributes:
        damaged: the files found damaged (relative to the store), removed with their tasks.
        redo: runs of those tasks, which are no longer done.
    """

    damaged: list[str]
    redo: int

    def message(self, folder: Path) -> str | None:
        """One line for the user, or ``None`` when nothing was damaged."""
        if not self.damaged:
            return None
        shown = ", ".join(self.damaged[:3]) + (f" and {len(self.damaged) - 3} more" if len(self.damaged) > 3 else "")
        return f"{folder}: {len(self.damaged)} damaged part(s) found ({shown}); their {self.redo} run(s) will be redone"


_HELD: dict[str, int] = {}
"""Store locks this process holds (resolved folder -> depth), so that a caller may lock a store
early (before starting a cluster) and :func:`sweep` lock it again."""


class SweepStore:
    """The on-disk results of a sweep (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._stored: set[int] | None = None

    # -- one driver at a time
    def check_target(self) -> None:
        """Refuse a ``--out`` that is a file, or a folder that is not (the start of) a sweep store."""
        if self.folder.exists() and not self.folder.is_dir():
            raise VillagesimError(f"cannot write a sweep to {self.folder}: a file of that name exists")
        if self.folder.is_dir() and not (self.folder / EXPERIMENT_JSON).exists() and not self._unfinished_start():
            raise VillagesimError(f"{self.folder} exists and is not a sweep folder; choose another --out")

    @contextlib.contextmanager
    def locked(self) -> Iterator[SweepStore]:
        """Hold the store's lock: a second driver on the same store refuses at once.

        The lock is ``fcntl.flock`` on ``.villagesim.lock`` in the store: the system releases it
        when its process ends, however it ends, so a killed driver's lock never blocks the next
        one. The file says who holds it (PID and host). Locking again in the same process is
        allowed (the command line locks before starting a cluster, :func:`sweep` again).
        """
        self.check_target()
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.folder.resolve())
        if _HELD.get(key):
            _HELD[key] += 1
            try:
                yield self
            finally:
                _HELD[key] -= 1
            return
        path = self.folder / LOCK
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole block
        try:
            try:
                import fcntl
            except ImportError:  # not a POSIX system: no lock (documented)
                fcntl = None
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    fh.seek(0)
                    holder = fh.read().strip() or "a process that has not yet written its PID"
                    raise VillagesimError(
                        f"{self.folder} is in use by another sweep driver ({holder}); "
                        "wait for it to finish (or stop it), or choose another --out"
                    ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"PID {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            fh.flush()
            _HELD[key] = 1
            try:
                yield self
            finally:
                _HELD.pop(key, None)
        finally:
            fh.close()  # releases the lock; the file stays (removing it would race with a new driver)

    # -- writing
    def initialise(self, exp: Experiment, design: Design, steps: int) -> None:
        """Create the folder and its manifest, or check that it holds the same experiment, made by
        the same villagesim (version and model code)."""
        digest = exp.digest(steps)
        meta = self.folder / EXPERIMENT_JSON
        self.check_target()
        if meta.exists():
            old = self.info()
            if old.get("digest") != digest:
                why = (
                    "a horizon of " + str(old.get("steps")) + " weeks" if old.get("steps") != steps else "a different experiment"
                )
                raise VillagesimError(
                    f"{self.folder} holds a sweep of {why} ({old.get('name')}, from {old.get('experiment_file')}); "
                    "run the same experiment and --steps to resume it, or choose another --out"
                )
            theirs = (old.get("villagesim_version"), old.get("model_hash"))
            if theirs != (__version__, model_hash()):
                model = f"model {theirs[1][:12]}" if theirs[1] else "no model hash recorded"
                raise VillagesimError(
                    f"{self.folder} was made by villagesim {theirs[0]} ({model}) and this is villagesim {__version__} "
                    f"(model {model_hash()[:12]}); results of two versions must not mix: run the sweep into a new --out, "
                    "or finish this one with the villagesim that started it"
                )
            self._check_design(old)
            return
        for sub in (RUNS, TIMESERIES, FAILED, MANIFESTS):
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
            "timeseries": exp.timeseries,
            "factors": [
                {"path": f.path, "role": f.role, "spec": f.describe(), "kind": f.kind, "range": f.is_range} for f in exp.factors
            ],
            "discovery": exp.discovery,
            "points": len(design.points),
            "runs": len(design.runs),
            "digest": digest,
            "design_sha256": _sha256_file(self.folder / DESIGN),
            "model_hash": model_hash(),
            "base_scenario": exp.base.model_dump(mode="json"),
            **provenance(exp.seed, digest),
        }
        if design.unit is not None:

            def save_unit(p: Path) -> None:
                with open(p, "wb") as fh:  # a file object: np.save would add ".npy" to a temporary name
                    np.save(fh, design.unit)

            self._atomic(self.folder / "design_unit.npy", save_unit)
        self._atomic(meta, lambda p: write_json(info, p))
        self._stored = set()

    def _check_design(self, info: dict[str, Any]) -> None:
        path = self.folder / DESIGN
        if not path.exists() or _sha256_file(path) != info.get("design_sha256"):
            raise self._damaged(f"{DESIGN} is missing or not the file the sweep wrote")

    def _damaged(self, what: str) -> VillagesimError:
        return VillagesimError(
            f"{self.folder} is a damaged sweep store: {what}; it cannot be resumed or analysed safely - "
            "run the sweep again into a new --out (the parts in runs/ remain readable with pandas)"
        )

    def _unfinished_start(self) -> bool:
        """True for an empty folder, or one a driver stopped while creating it (no run written yet)."""
        ours = {RUNS, TIMESERIES, FAILED, MANIFESTS, "experiment.toml", DESIGN, "design_unit.npy"}
        for entry in self.folder.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.name not in ours:
                return False
            if entry.is_dir() and any(entry.iterdir()):
                return False
        return True

    def write(self, result: TaskResult) -> None:
        """Write a task's result: series, failures, summary part, then the task's manifest.

        The manifest (``manifests/part-….json``: run ids, and each part's rows, bytes and SHA-256)
        is written last and is the mark that the task is done.

        Raises:
            VillagesimError: a run of the task is already stored (a run is stored once).
        """
        n = len(result.summary)
        if n:
            ids = [int(i) for i in result.summary["run_id"]]
            again = sorted(set(ids) & self.stored) + sorted(i for i, c in collections.Counter(ids).items() if c > 1)
            if again:
                raise VillagesimError(
                    f"{self.folder}: run {again[0]} is already stored; a store holds each run once (is another "
                    "driver writing to it?)"
                )
            name = f"part-{min(ids):08d}-{max(ids):08d}-{n:05d}.parquet"
            files: dict[str, dict[str, Any]] = {}
            if result.timeseries is not None:
                files[f"{TIMESERIES}/{name}"] = self._write_part(self.folder / TIMESERIES / name, result.timeseries)
        for fail in result.failed:
            self._atomic(self.folder / FAILED / f"run-{fail['run_id']:08d}.json", lambda p, f=fail: write_json(f, p))
        if n:
            files[f"{RUNS}/{name}"] = self._write_part(self.folder / RUNS / name, result.summary)
            manifest = {"run_ids": sorted(ids), "files": files}
            (self.folder / MANIFESTS).mkdir(exist_ok=True)
            self._atomic_bytes(self.folder / MANIFESTS / _manifest_name(name), json.dumps(manifest, indent=1).encode())
            self.stored.update(ids)

    def _write_part(self, path: Path, frame: pd.DataFrame) -> dict[str, Any]:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
        self._atomic_bytes(path, data)
        return {"rows": len(frame), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    @staticmethod
    def _atomic_bytes(path: Path, data: bytes) -> None:
        """Write ``data`` to a temporary file, flush it to disk, rename it to ``path``."""

        def put(p: Path) -> None:
            with open(p, "wb") as fh:
                fh.write(data)

        SweepStore._atomic(path, put)

    @staticmethod
    def _atomic(path: Path, writer: Callable[[Path], Any]) -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            writer(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)

    # -- checking (on resume, under the lock)
    def verify(self, keep_timeseries: bool = True) -> StoreCheck:
        """Check every part against its manifest; remove what is damaged or unfinished.

        A task is kept when its manifest reads, each of its parts exists with the size, SHA-256
        and row count the manifest records, and both its summaries and (if the sweep keeps them)
        its series are there. Otherwise the task's files are removed and its runs are no longer
        done. Parts without a manifest (a driver stopped between the two) and temporary files are
        removed quietly. Unreadable failure records are removed (their runs are redone).

        Raises:
            VillagesimError: a run id is stored by two tasks.
        """
        self.tidy_temporaries()
        damaged: list[str] = []
        redo = 0
        owner: dict[int, str] = {}
        listed: set[str] = set()
        for path in sorted((self.folder / MANIFESTS).glob("part-*.json")):
            part = path.stem + ".parquet"
            runs_file, ts_file = f"{RUNS}/{part}", f"{TIMESERIES}/{part}"
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
                ids = [int(i) for i in manifest["run_ids"]]
                files = dict(manifest["files"])
            except (OSError, ValueError, KeyError, TypeError):
                damaged.append(f"{MANIFESTS}/{path.name}")
                redo += _count_of(part)
                for rel in (runs_file, ts_file):
                    (self.folder / rel).unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                continue
            needed = [runs_file] + ([ts_file] if keep_timeseries else [])
            if not set(files) <= {runs_file, ts_file}:  # not this task's manifest: its parts are not ours to judge
                bad = [f"{MANIFESTS}/{path.name}"]
            else:
                bad = [rel for rel in needed if rel not in files]
                bad += [rel for rel, meta in files.items() if not self._part_ok(rel, meta)]
            if bad:
                damaged.extend(bad)
                redo += len(ids)
                for rel in (runs_file, ts_file):
                    (self.folder / rel).unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                continue
            for rid in ids:
                if rid in owner:
                    raise VillagesimError(
                        f"{self.folder} stores run {rid} twice ({owner[rid]} and {runs_file}); a store holds each run "
                        "once - it was written by two drivers at once or parts were copied in: run the sweep into a new --out"
                    )
                owner[rid] = runs_file
            listed.update(files)
        for sub in (RUNS, TIMESERIES):
            for p in (self.folder / sub).glob("part-*.parquet"):
                if f"{sub}/{p.name}" not in listed:
                    p.unlink(missing_ok=True)  # written by a driver stopped before the task's manifest
        for p in sorted((self.folder / FAILED).glob("run-*.json")):
            try:
                json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                damaged.append(f"{FAILED}/{p.name}")
                redo += 1
                p.unlink(missing_ok=True)
        self._stored = set(owner)
        return StoreCheck(damaged, redo)

    def _part_ok(self, rel: str, meta: Any) -> bool:
        path = self.folder / rel
        try:
            if path.stat().st_size != int(meta["bytes"]) or _sha256_file(path) != meta["sha256"]:
                return False
            return pq.read_metadata(path).num_rows == int(meta["rows"])
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
            return False

    def tidy_temporaries(self) -> None:
        """Remove the temporary files an interrupted driver left."""
        for sub in (RUNS, TIMESERIES, FAILED, MANIFESTS, "."):
            folder = self.folder / sub
            if folder.exists():
                for p in folder.glob(".*.tmp-*"):
                    p.unlink(missing_ok=True)

    def tidy(self) -> None:
        """Remove what an interrupted driver left: temporary files and parts without a manifest."""
        self.verify(keep_timeseries=bool(self.info().get("timeseries", True)))

    # -- reading
    @property
    def stored(self) -> set[int]:
        """Run ids stored (as of the last :meth:`verify`, plus those written since)."""
        if self._stored is None:
            self._stored = self.done_ids()
        return self._stored

    def _manifested(self) -> bool:
        """False for a store made before parts had manifests (read all its parts)."""
        return (self.folder / MANIFESTS).is_dir()

    def done_ids(self) -> set[int]:
        """Run ids of the tasks whose manifest is written."""
        out: set[int] = set()
        if not self._manifested():
            for p in sorted((self.folder / RUNS).glob("part-*.parquet")):
                out.update(pq.read_table(p, columns=["run_id"]).column(0).to_pylist())
            return out
        for p in sorted((self.folder / MANIFESTS).glob("part-*.json")):
            try:
                out.update(int(i) for i in json.loads(p.read_text(encoding="utf-8"))["run_ids"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # damaged: verify() removes it and its runs are redone
        return out

    def failed_ids(self) -> set[int]:
        """Run ids recorded as failed."""
        return {int(p.stem.split("-")[1]) for p in (self.folder / FAILED).glob("run-*.json")}

    def info(self) -> dict[str, Any]:
        """The store's ``experiment.json``.

        Raises:
            VillagesimError: it is missing (not a sweep folder) or cannot be read (a damaged store).
        """
        meta = self.folder / EXPERIMENT_JSON
        if not meta.exists():
            raise VillagesimError(f"not a sweep folder (no {EXPERIMENT_JSON}): {self.folder}")
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise self._damaged(f"{EXPERIMENT_JSON} cannot be read ({type(exc).__name__})") from None
        if not isinstance(info, dict) or "digest" not in info:
            raise self._damaged(f"{EXPERIMENT_JSON} is not a sweep's manifest")
        return info

    def design(self) -> pd.DataFrame:
        try:
            return pd.read_parquet(self.folder / DESIGN)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise self._damaged(f"{DESIGN} cannot be read ({type(exc).__name__})") from None

    def _parts(self, sub: str) -> list[Path]:
        parts = sorted((self.folder / sub).glob("part-*.parquet"))
        if not self._manifested():
            return parts
        return [p for p in parts if (self.folder / MANIFESTS / _manifest_name(p.name)).exists()]

    def _read(self, sub: str) -> pd.DataFrame | None:
        frames = []
        for p in self._parts(sub):
            try:
                frames.append(pd.read_parquet(p))
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise VillagesimError(
                    f"{p} is damaged ({type(exc).__name__}); run the sweep command again: it finds damaged parts "
                    "and redoes their runs"
                ) from None
        return pd.concat(frames, ignore_index=True) if frames else None

    def _duplicates(self, count: int, example: int) -> VillagesimError:
        return VillagesimError(
            f"{self.folder} holds {count} run(s) stored more than once (run {example}, for one); a store holds each "
            "run once - it was written by two drivers at once or parts were copied in: run the sweep into a new --out"
        )

    def summaries(self) -> pd.DataFrame:
        """Every finished run's summary row, ordered by run id.

        Raises:
            VillagesimError: a part cannot be read, or a run is stored twice.
        """
        frame = self._read(RUNS)
        if frame is None:
            return pd.DataFrame()
        twice = frame["run_id"].duplicated()
        if twice.any():
            raise self._duplicates(int(twice.sum()), int(frame.loc[twice, "run_id"].iloc[0]))
        return frame.sort_values("run_id", ignore_index=True)

    def timeseries(self) -> pd.DataFrame:
        """Every finished run's weekly series, ordered by run id and step.

        Raises:
            VillagesimError: a part cannot be read, or a run is stored twice.
        """
        frame = self._read(TIMESERIES)
        if frame is None:
            return pd.DataFrame()
        twice = frame.duplicated(["run_id", "step"])
        if twice.any():
            runs = frame.loc[twice, "run_id"]
            raise self._duplicates(int(runs.nunique()), int(runs.iloc[0]))
        return frame.sort_values(["run_id", "step"], ignore_index=True)

    def failures(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.folder / FAILED).glob("run-*.json")):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # damaged: the next sweep command redoes the run
        return out


def _manifest_name(part: str) -> str:
    return part.removesuffix(".parquet") + ".json"


def _count_of(part: str) -> int:
    """Runs of a task, from its part name ``part-FIRST-LAST-COUNT.parquet``."""
    try:
        return int(part.removesuffix(".parquet").rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Flush a rename to disk (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    allow_large_design: bool = False,
    notify: Callable[[str], None] | None = None,
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
        allow_large_design: build a design of more than :data:`~villagesim.experiments.design.MAX_DESIGN_RUNS` runs.
        notify: where a line about the store goes (damaged parts found and redone); default stderr.

    Returns:
        a :class:`SweepReport`.

    Raises:
        VillagesimError: another driver holds the store; it holds another experiment or results of
            another villagesim version or model; it is damaged beyond its parts; the design is too large.
    """
    steps = int(steps if steps is not None else exp.steps)
    if steps < 1:
        raise VillagesimError("--steps must be at least 1")
    store = SweepStore(out)
    with store.locked():
        design = build_design(exp, max_runs=None if allow_large_design else MAX_DESIGN_RUNS)
        store.initialise(exp, design, steps)
        line = store.verify(keep_timeseries=exp.timeseries).message(store.folder)
        if line:
            (notify or (lambda text: print(text, file=sys.stderr)))(line)
        return _sweep(
            exp, store, design, steps, backend, client, max_runs, runs_per_task, max_inflight, retries, retry_failed, progress
        )


def _sweep(
    exp: Experiment,
    store: SweepStore,
    design: Design,
    steps: int,
    backend: Backend | None,
    client: Any,
    max_runs: int | None,
    runs_per_task: int | None,
    max_inflight: int | None,
    retries: int,
    retry_failed: bool,
    progress: bool,
) -> SweepReport:
    """:func:`sweep` on a locked, checked store."""
    from tqdm import tqdm

    window = min(exp.window, steps)
    total = len(design.runs)
    selected = total if max_runs is None else max(0, min(int(max_runs), total))
    done = set(store.stored)
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
