"""Sweeps on a real Dask scheduler with two worker processes on 127.0.0.1: a worker killed
mid-sweep, and results identical to a serial run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sweep import assert_complete_and_equal, tiny_experiment

from conftest import kill_once_parts_written, parts_written
from villagesim.experiments.design import load_experiment
from villagesim.experiments.sweep import SweepStore, sweep

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

BIN = Path(sys.executable).parent


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - closed with the process in the fixture
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _sweep_on(cluster: dict, path, folder) -> list[str]:
    """The `villagesim sweep` command line for the test cluster, three runs per task."""
    return [
        str(BIN / "villagesim"),
        "sweep",
        str(path),
        "--out",
        str(folder),
        "--scheduler-file",
        str(cluster["scheduler_file"]),
        "--runs-per-task",
        "3",
        "--quiet",
    ]


@pytest.fixture
def dask_cluster(tmp_path):
    """A `dask scheduler` and two single-threaded `dask worker` processes (no nanny, so a
    killed worker stays dead); all of them are killed at teardown, whatever happened."""
    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _start(
                [
                    str(BIN / "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(sched_file),
                ],
                tmp_path / "scheduler.log",
            )
        )
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        for i in range(2):
            procs.append(
                _start(
                    [
                        str(BIN / "dask"),
                        "worker",
                        "--scheduler-file",
                        str(sched_file),
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                        "--name",
                        f"w{i}",
                    ],
                    tmp_path / f"worker{i}.log",
                )
            )
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            # warm both workers up (imports), so the sweep's timing is about the runs
            client.run(lambda: __import__("villagesim.experiments.sweep"))
        yield {"scheduler_file": sched_file, "scheduler": procs[0], "workers": procs[1:]}
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("serial")
    path = tiny_experiment(folder, samples=15, steps=30)
    sweep(load_experiment(path), folder / "sweep", runs_per_task=3, progress=False)
    return path, folder / "sweep"


def test_worker_killed_mid_sweep_every_run_once_and_equal_to_serial(dask_cluster, serial, tmp_path):
    path, reference = serial
    folder = tmp_path / "s"
    cmd = _sweep_on(dask_cluster, path, folder)
    from distributed import Client

    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        with Client(scheduler_file=str(dask_cluster["scheduler_file"]), timeout="30s") as watcher:
            address = {w["name"]: a for a, w in watcher.scheduler_info()["workers"].items()}["w0"]
            deadline = time.monotonic() + 90
            # wait until results are streaming AND worker w0 is in the middle of a task
            while parts_written(folder) < 2 or not watcher.processing().get(address):
                assert driver.poll() is None, driver.communicate()
                assert time.monotonic() < deadline, "no results appeared"
                time.sleep(0.02)
            victim = dask_cluster["workers"][0]
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            parts_at_kill = parts_written(folder)
        out, err = driver.communicate(timeout=120)
    finally:
        _stop(driver)
    assert parts_at_kill < 30, "the worker was killed after the sweep had finished"
    assert driver.returncode == 0, err
    assert "0 failed now" in out
    assert dask_cluster["workers"][1].poll() is None  # the other worker carried on
    assert not SweepStore(folder).failed_ids()
    assert_complete_and_equal(folder, reference)


def test_local_cluster_gives_the_serial_rows_with_a_bounded_buffer(serial, tmp_path, monkeypatch):
    """A local cluster of two workers; the driver never holds more than ``max_inflight`` tasks
    submitted but not yet written."""
    from villagesim.experiments.sweep import close_client, make_client

    path, reference = serial
    written = {"n": 0, "max_outstanding": 0}
    real_write = SweepStore.write

    def counting_write(self, result):
        written["n"] += 1
        return real_write(self, result)

    monkeypatch.setattr(SweepStore, "write", counting_write)
    client, cluster = make_client(workers=2)
    submitted = {"n": 0}
    real_submit = client.submit

    def spy(*args, **kwargs):
        submitted["n"] += 1
        written["max_outstanding"] = max(written["max_outstanding"], submitted["n"] - written["n"])
        return real_submit(*args, **kwargs)

    client.submit = spy
    try:
        report = sweep(load_experiment(path), tmp_path / "s", client=client, runs_per_task=6, max_inflight=2, progress=False)
    finally:
        close_client(client, cluster)
    assert report.ran == 90 and report.failed == 0 and report.tasks == 15
    assert submitted["n"] == 15 and written["max_outstanding"] == 2
    assert_complete_and_equal(tmp_path / "s", reference)


def test_killed_driver_of_a_cluster_sweep_resumes_without_duplicates(dask_cluster, serial, tmp_path):
    """The driver (on a login node, say) is killed while workers hold its tasks; the same
    command again finishes the sweep: every run once, rows equal to the serial sweep."""
    path, reference = serial
    folder = tmp_path / "s"
    cmd = _sweep_on(dask_cluster, path, folder)
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        kill_once_parts_written(driver, folder, 3, timeout=90)
    finally:
        _stop(driver)
    done_at_kill = len(SweepStore(folder).done_ids())
    assert done_at_kill < 90, "the driver was killed after the sweep had finished"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert f"{done_at_kill} already done" in again.stdout
    assert_complete_and_equal(folder, reference)
