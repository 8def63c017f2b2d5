"""Where runs execute: in this process, in a pool of worker processes, or on Dask.

One interface for every command that runs replicates in parallel (``run``, ``compare``,
``validate``, ``calibrate``, ``sweep``)::

    with backend_for(workers=4) as backend:
        results = backend.map(fn, tasks)              # in task order
        for done in backend.as_completed(fn, tasks):  # as they finish, a bounded number in flight
            ...

``fn`` must be a module-level function (or a ``functools.partial`` of one) so that it can be
sent to other processes. A run's numbers depend only on its scenario, seed and replicate,
never on the process that runs it, so every backend returns the same results.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from villagesim.errors import VillagesimError
from villagesim.version import __version__, model_hash

__all__ = [
    "Backend",
    "Done",
    "SerialBackend",
    "ProcessPoolBackend",
    "DaskBackend",
    "backend_for",
    "borrowed",
    "make_client",
    "close_client",
    "check_workers",
    "make_jobqueue_cluster",
]

KeyFn = Callable[[Any], str]

LOOPBACK = "127.0.0.1"
"""Where a local cluster listens, and a dashboard unless one is asked for elsewhere."""

_END = object()


@dataclass
class Done:
    """A finished task of :meth:`Backend.as_completed`.

    Attributes:
        task: the task as given.
        result: what ``fn(task)`` returned (``None`` when it raised).
        error: the exception it raised, or ``None``.
        traceback: the formatted traceback of ``error`` (empty when none).
    """

    task: Any
    result: Any = None
    error: BaseException | None = None
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def _failed(task: Any, exc: BaseException) -> Done:
    return Done(task, None, exc, "".join(traceback.format_exception(exc)))


class Backend(ABC):
    """Runs tasks somewhere; a context manager that releases its workers on exit."""

    workers: int = 1
    """Tasks that can run at once."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - a backend without resources has nothing to release
        """Release the workers (idempotent)."""

    @property
    def parallel(self) -> bool:
        """True when tasks run outside this process."""
        return True

    def describe(self) -> str:
        """Where the tasks run, in words."""
        return f"{self.workers} worker process(es)"

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> list[Any]:
        """``[fn(t) for t in tasks]``, in task order.

        Args:
            fn: a picklable function of one task.
            tasks: the tasks.

        Raises:
            The exception of the first task (in task order) that raised.
        """

    @abstractmethod
    def as_completed(
        self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, max_inflight: int | None = None, key: KeyFn | None = None
    ) -> Iterator[Done]:
        """Run the tasks and yield each as it finishes, keeping at most ``max_inflight`` submitted.

        ``tasks`` is consumed lazily, so a long iterator costs memory only for the tasks in flight.
        A task that raises is yielded with its error; the others go on.

        Args:
            fn: a picklable function of one task.
            tasks: the tasks (an iterator is fine).
            max_inflight: tasks submitted at once (default: twice the workers, at least 4).
            key: a name for each task (used by Dask to label it).
        """


class SerialBackend(Backend):
    """Every task in this process, one after the other."""

    workers = 1

    @property
    def parallel(self) -> bool:
        return False

    def describe(self) -> str:
        return "serially"

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> list[Any]:
        return [fn(t) for t in tasks]

    def as_completed(
        self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, max_inflight: int | None = None, key: KeyFn | None = None
    ) -> Iterator[Done]:
        for t in tasks:
            try:
                result = fn(t)
            except Exception as exc:  # reported with the task, as on the other backends
                yield _failed(t, exc)
                continue
            yield Done(t, result)


class ProcessPoolBackend(Backend):
    """Tasks in ``workers`` local processes (:class:`concurrent.futures.ProcessPoolExecutor`,
    the platform's default start method)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    @property
    def pool(self) -> ProcessPoolExecutor:
        """The pool, started on first use and kept until :meth:`close`."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> list[Any]:
        tasks = list(tasks)
        if len(tasks) < 2:
            return [fn(t) for t in tasks]  # not worth a round trip to another process
        return list(self.pool.map(fn, tasks, chunksize=max(1, len(tasks) // (4 * self.workers))))

    def as_completed(
        self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, max_inflight: int | None = None, key: KeyFn | None = None
    ) -> Iterator[Done]:
        limit = max(1, int(max_inflight)) if max_inflight is not None else max(4, 2 * self.workers)
        it = iter(tasks)
        inflight: dict[Future, Any] = {}

        def top_up() -> None:
            while len(inflight) < limit:
                t = next(it, _END)
                if t is _END:
                    return
                inflight[self.pool.submit(fn, t)] = t

        top_up()
        while inflight:
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in finished:
                t = inflight.pop(fut)
                exc = fut.exception()
                yield Done(t, fut.result()) if exc is None else _failed(t, exc)
            top_up()


class DaskBackend(Backend):
    """Tasks on a ``distributed.Client``: a local cluster, a running scheduler or a batch cluster.

    Args:
        client: the client.
        cluster: the cluster the client owns (closed with it), if any.
        retries: times Dask retries a task whose worker died or that raised.
    """

    def __init__(self, client: Any, cluster: Any = None, retries: int = 0) -> None:
        self.client = client
        self.cluster = cluster
        self.retries = int(retries)
        self._threads = (float("-inf"), 4)

    @classmethod
    def start(cls, *, retries: int = 0, **options: Any) -> DaskBackend:
        """A backend on a new client; ``options`` are those of :func:`make_client`."""
        client, cluster = make_client(**options)
        return cls(client, cluster, retries)

    @property
    def workers(self) -> int:  # type: ignore[override]
        """Threads of the workers now present (looked up at most every 2 seconds: they come and go)."""
        now = time.monotonic()
        if now - self._threads[0] > 2.0:
            self._threads = (now, int(sum(self.client.nthreads().values())))
        return self._threads[1]

    def describe(self) -> str:
        text = f"on Dask ({self.client.scheduler.address})"
        if self.dashboard_link:
            text += f"; dashboard at {self.dashboard_link}"
        return text

    @property
    def dashboard_link(self) -> str | None:
        """The address of Dask's dashboard, when this backend's own cluster serves one."""
        if self.cluster is None or not getattr(self.cluster, "_villagesim_dashboard", False):
            return None
        try:
            return self.cluster.dashboard_link
        except Exception:  # no dashboard after all (bokeh missing, say)
            return None

    def close(self) -> None:
        close_client(self.client, self.cluster)
        self.client = self.cluster = None

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> list[Any]:
        futures = [self.client.submit(fn, t, pure=False, retries=self.retries) for t in tasks]
        try:
            return self.client.gather(futures)
        finally:
            for f in futures:
                f.release()

    def as_completed(
        self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, max_inflight: int | None = None, key: KeyFn | None = None
    ) -> Iterator[Done]:
        from distributed import as_completed  # dask is an optional dependency: imported only when used

        it = iter(tasks)
        pending = as_completed()
        inflight: dict[Any, Any] = {}

        def limit() -> int:
            """Fixed, or twice the threads of the workers now present (at least 4)."""
            return max(1, int(max_inflight)) if max_inflight is not None else max(4, 2 * self.workers)

        def top_up() -> None:
            while len(inflight) < limit():
                t = next(it, _END)
                if t is _END:
                    return
                name = key(t) if key is not None else f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}"
                fut = self.client.submit(fn, t, key=name, pure=False, retries=self.retries)
                inflight[fut] = t
                pending.add(fut)

        top_up()
        for fut in pending:
            t = inflight.pop(fut)
            try:
                done = Done(t, fut.result())
            except Exception as exc:  # the task raised, or killed its workers more often than retried
                done = _failed(t, exc)
            fut.release()
            yield done
            del done
            top_up()


def backend_for(
    workers: int | None = 1,
    *,
    dask: bool = False,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    cluster: str | None = None,
    retries: int = 0,
    **cluster_options: Any,
) -> Backend:
    """The backend for a command's options.

    Args:
        workers: processes. Without Dask: 1 or less (or ``None``) is serial, more is a process
            pool. With ``dask``: 0 is serial, ``None`` a local cluster of one process per core.
        dask: use Dask for local workers (the sweep's default) instead of a process pool.
        scheduler: address of a running Dask scheduler.
        scheduler_file: scheduler file written by ``dask scheduler --scheduler-file``.
        cluster: ``slurm`` or ``pbs``: a dask-jobqueue cluster (see :func:`make_client`).
        retries: times Dask retries a failed task.
        **cluster_options: the other options of :func:`make_client` (``jobs``, ``cores``, ...).

    Returns:
        A backend, to be used in a ``with`` block.
    """
    if scheduler or scheduler_file or cluster:
        return DaskBackend.start(
            scheduler=scheduler, scheduler_file=scheduler_file, cluster=cluster, retries=retries, **cluster_options
        )
    if dask:
        if workers == 0:
            return SerialBackend()
        return DaskBackend.start(workers=workers, retries=retries, **cluster_options)
    if workers is None or workers <= 1:
        return SerialBackend()
    return ProcessPoolBackend(workers)


def borrowed(backend: Backend | None, workers: int | None = 1) -> contextlib.AbstractContextManager[Backend]:
    """``backend`` itself (left open for its owner), or a new one for ``workers`` closed on exit.

    For functions that take an optional backend: ``with borrowed(backend, workers) as b: ...``.

    Args:
        backend: a backend the caller owns, or ``None``.
        workers: processes of the backend made when ``backend`` is ``None`` (see :func:`backend_for`).
    """
    return nullcontext(backend) if backend is not None else backend_for(workers)


# --------------------------------------------------------------------- Dask clients
def make_client(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    cluster: str | None = None,
    jobs: int = 1,
    cores: int = 1,
    processes: int | None = None,
    memory: str = "4GB",
    walltime: str | None = None,
    queue: str | None = None,
    account: str | None = None,
    job_extra: list[str] | None = None,
    local_directory: str | None = None,
    dashboard: str | None = None,
) -> tuple[Any, Any]:
    """A Dask client (and the cluster it owns, if any).

    ``workers=0`` means serial (returns ``(None, None)``); ``scheduler``/``scheduler_file``
    connect to a running scheduler; ``cluster`` (``slurm`` or ``pbs``) starts a
    dask-jobqueue cluster of ``jobs`` batch jobs; otherwise a local cluster of ``workers``
    single-threaded worker processes.

    Dask's dashboard has no authentication, so it is served only when asked for: ``dashboard``
    is its address (``"127.0.0.1:0"``: loopback, a free port; ``"0.0.0.0:8787"`` opens it to the
    network). Without it a local cluster has no dashboard, and a batch cluster's scheduler, which
    must listen where the compute nodes reach it, keeps its dashboard and HTTP routes on
    127.0.0.1. A local cluster's scheduler and workers listen on 127.0.0.1 only.
    """
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from distributed import Client  # dask is an optional dependency: imported only when used

    if scheduler or scheduler_file:
        try:
            client = Client(scheduler_file=scheduler_file, timeout="20s") if scheduler_file else Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise VillagesimError(f"cannot reach the Dask scheduler {scheduler or scheduler_file}: {exc}") from None
        check_workers(client)
        return client, None
    if cluster:
        cluster_obj = make_jobqueue_cluster(
            cluster,
            cores=cores,
            processes=processes,
            memory=memory,
            walltime=walltime,
            queue=queue,
            account=account,
            job_extra=job_extra,
            local_directory=local_directory,
            dashboard=dashboard,
        )
        cluster_obj.scale(jobs=jobs)
        return Client(cluster_obj), cluster_obj
    if workers == 0:
        return None, None
    from distributed import LocalCluster

    n = workers or max(1, (os.cpu_count() or 1))
    local = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host=LOOPBACK,
        dashboard_address=dashboard,
        # without a dashboard the scheduler still serves HTTP routes (health, metrics): on loopback
        scheduler_kwargs={"dashboard_address": dashboard or f"{LOOPBACK}:0", "dashboard": dashboard is not None},
        silence_logs=logging.ERROR,
    )
    local._villagesim_dashboard = dashboard is not None
    return Client(local), local


def _worker_version() -> str:
    return f"{__version__} (model {model_hash()[:12]})"


def check_workers(client: Any) -> None:
    """Fail early, in words, when the workers present cannot run this version of villagesim."""
    if not client.scheduler_info().get("workers"):
        return  # none yet: batch jobs may still be queued
    try:
        versions = client.run(_worker_version)
    except Exception as exc:
        raise VillagesimError(
            f"the Dask workers cannot run villagesim ({type(exc).__name__}: {exc}); "
            f"install villagesim {__version__} in the workers' Python environment"
        ) from None
    mine = _worker_version()
    other = sorted({v for v in versions.values() if v != mine})
    if other:
        raise VillagesimError(
            f"the Dask workers run villagesim {', '.join(other)} but this driver runs {mine}; "
            "install the same version (the same model code) on both so that results are the same everywhere"
        )


def make_jobqueue_cluster(
    kind: str,
    *,
    cores: int = 1,
    processes: int | None = None,
    memory: str = "4GB",
    walltime: str | None = None,
    queue: str | None = None,
    account: str | None = None,
    job_extra: list[str] | None = None,
    local_directory: str | None = None,
    dashboard: str | None = None,
) -> Any:
    """A dask-jobqueue ``SLURMCluster`` or ``PBSCluster``; its workers run single-threaded processes.

    The scheduler listens on the interface dask-jobqueue is configured with (the compute nodes
    must reach it); its dashboard listens on ``dashboard`` if given, otherwise on 127.0.0.1 only
    (reach it through an SSH tunnel).
    """
    import dask
    import dask_jobqueue  # an optional dependency: imported only for a batch cluster

    classes = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}
    if kind not in classes:
        raise VillagesimError(f"unknown --cluster {kind!r}; expected slurm or pbs")
    kwargs: dict[str, Any] = {
        "cores": cores,
        "processes": processes or cores,  # one single-threaded process per core: the model holds the GIL
        "memory": memory,
        "python": sys.executable,
    }
    if walltime:
        kwargs["walltime"] = walltime
    if queue:
        kwargs["queue"] = queue
    if account:
        kwargs["account"] = account
    if job_extra:
        kwargs["job_extra_directives"] = job_extra
    if local_directory:
        kwargs["local_directory"] = local_directory
    configured = dask.config.get(f"jobqueue.{kind}.scheduler-options", {}) or {}
    options = {"dashboard_address": f"{LOOPBACK}:0", **configured}  # an address set in the Dask config is asked for
    if dashboard:
        options["dashboard_address"] = dashboard
    kwargs["scheduler_options"] = options
    cluster = classes[kind](**kwargs)
    cluster._villagesim_dashboard = bool(dashboard) or "dashboard_address" in configured
    return cluster


def close_client(client: Any, cluster: Any) -> None:
    """Close a client and the cluster it owns (quietly)."""
    if client is not None:
        try:
            client.close()
        except Exception:  # closing after an interrupt may fail; nothing to keep
            pass
    if cluster is not None:
        try:
            cluster.close()
        except Exception:
            pass
