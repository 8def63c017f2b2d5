"""Sweeps in one process: the store, resuming, quick looks, failed runs, an interrupted driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, kill_once_parts_written, write
from villagesim.cli.main import main
from villagesim.errors import VillagesimError
from villagesim.experiments.design import build_design, load_experiment
from villagesim.experiments.sweep import SweepStore, make_jobqueue_cluster, sweep

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

VILLAGESIM = str(Path(sys.executable).parent / "villagesim")


def tiny_experiment(folder: Path, samples: int = 10, steps: int = 20, replicates: int = 3) -> Path:
    """An experiment of 2 x ``samples`` points x ``replicates`` runs of a 300-person village."""
    write(folder, "village.toml", f'name = "village"\n[run]\nsteps = {steps}\n[population]\nresidents_per_village = 300\n')
    return write(
        folder,
        "tiny.toml",
        f'name = "tiny"\nscenario = "village.toml"\nseed = 17\nreplicates = {replicates}\nwindow = 10\n'
        'outcomes = ["unmet_need_share", "active_volunteers", "mean_trust", "requests"]\n'
        '[levers]\n"policy.publicity" = [0.0, 1.0]\n'
        '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.01, high = 0.12 }\n'
        f'[design]\nkind = "lhs"\nsamples = {samples}\n',
    )


def assert_complete_and_equal(folder: Path, reference: Path) -> None:
    """Every run of the design exactly once, rows identical to the reference sweep."""
    got, ref = SweepStore(folder), SweepStore(reference)
    design = got.design()
    runs = got.summaries()
    assert runs["run_id"].is_unique, "a run was written twice"
    assert sorted(runs["run_id"]) == design["run_id"].tolist(), "a run is missing"
    pd.testing.assert_frame_equal(runs, ref.summaries(), check_exact=True)
    ts = got.timeseries()
    assert not ts.duplicated(["run_id", "step"]).any()
    pd.testing.assert_frame_equal(ts, ref.timeseries(), check_exact=True)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny experiment run serially, start to end: (experiment file, sweep folder)."""
    folder = tmp_path_factory.mktemp("reference")
    path = tiny_experiment(folder)
    sweep(load_experiment(path), folder / "sweep", runs_per_task=3, progress=False)
    return path, folder / "sweep"


def test_store_layout_rows_and_series(reference):
    path, out = reference
    exp = load_experiment(path)
    store = SweepStore(out)
    info = store.info()
    assert info["runs"] == 60 and info["points"] == 20 and info["steps"] == 20 and len(info["digest"]) == 64
    runs = store.summaries()
    assert list(runs.columns[:4]) == ["run_id", "point", "replicate", "seed"]
    assert {"policy.publicity", "hollowing_out.outmigration_rate", *exp.outcomes} <= set(runs.columns)
    assert (runs["seed"] == 17).all()  # common random numbers: every point shares the root seed
    design = build_design(exp).runs
    pd.testing.assert_frame_equal(
        runs[design.columns].reset_index(drop=True), design, check_dtype=False
    )  # each row carries its own parameters
    ts = store.timeseries()
    assert len(ts) == 60 * 20 and set(ts.columns) == {"run_id", "step", *exp.outcomes}
    # a row's outcome is the mean of its series over the last `window` weeks
    last = ts[ts["step"] > 10].groupby("run_id")["unmet_need_share"].mean()
    assert runs.set_index("run_id")["unmet_need_share"].to_numpy() == pytest.approx(last.to_numpy(), rel=1e-12)
    # replicate r of two points differing only in publicity drew the same population (CRN)
    first = runs[runs["point"].isin([0, 10])]
    assert first.groupby("replicate")["hollowing_out.outmigration_rate"].nunique().eq(1).all()


def test_a_run_depends_only_on_its_parameters_and_seed(reference, tmp_path):
    """Running a subset of runs alone, in another task grouping, gives the same rows."""
    path, out = reference
    sweep(load_experiment(path), tmp_path / "s", max_runs=13, runs_per_task=5, progress=False)
    part = SweepStore(tmp_path / "s").summaries()
    pd.testing.assert_frame_equal(part, SweepStore(out).summaries().iloc[:13], check_exact=True)


def test_quick_look_then_resume_runs_only_what_is_missing(reference, tmp_path):
    path, out = reference
    exp = load_experiment(path)
    first = sweep(exp, tmp_path / "s", max_runs=7, runs_per_task=3, progress=False)
    assert (first.ran, first.already, first.selected) == (7, 0, 7)
    again = sweep(exp, tmp_path / "s", max_runs=7, runs_per_task=3, progress=False)
    assert again.ran == 0 and again.already == 7
    rest = sweep(exp, tmp_path / "s", runs_per_task=4, progress=False)
    assert rest.ran == 53 and rest.already == 7
    assert_complete_and_equal(tmp_path / "s", out)


def test_a_folder_of_another_experiment_or_horizon_is_refused(reference, tmp_path):
    path, _ = reference
    exp = load_experiment(path)
    sweep(exp, tmp_path / "s", max_runs=2, steps=8, progress=False)
    assert SweepStore(tmp_path / "s").info()["steps"] == 8
    with pytest.raises(VillagesimError, match="horizon of 8 weeks"):
        sweep(exp, tmp_path / "s", max_runs=2, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(VillagesimError, match="not a sweep folder"):
        sweep(exp, tmp_path / "other", max_runs=2, progress=False)


def test_a_run_that_raises_is_recorded_and_the_rest_go_on(tmp_path, capsys):
    write(tmp_path, "village.toml", 'name = "v"\n[run]\nsteps = 6\n[population]\nresidents_per_village = 200\n')
    path = write(
        tmp_path,
        "ages.toml",
        'scenario = "village.toml"\nreplicates = 2\noutcomes = ["unmet_need_share"]\n'
        '[uncertainties]\n"hollowing_out.migration_min_age" = [18, 40]\n"hollowing_out.migration_max_age" = [30, 49]\n',
    )
    out = tmp_path / "s"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    assert "2 failed now" in capsys.readouterr().out
    store = SweepStore(out)
    failures = store.failures()
    assert sorted(f["run_id"] for f in failures) == [4, 5]  # min age 40 > max age 30
    assert failures[0]["error_type"] == "ScenarioError" and "migration_min_age" in failures[0]["error"]
    assert failures[0]["parameters"] == {"hollowing_out.migration_min_age": 40, "hollowing_out.migration_max_age": 30}
    assert sorted(store.summaries()["run_id"]) == [0, 1, 2, 3, 6, 7]
    assert main(["sweep", str(path), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    assert "0 run(s)" in capsys.readouterr().out  # recorded failures are not rerun by default
    assert main(["sweep", str(path), "--out", str(out), "--workers", "0", "--quiet", "--retry-failed"]) == 0
    assert "2 run(s)" in capsys.readouterr().out
    assert sorted(store.failed_ids()) == [4, 5] and store.summaries()["run_id"].is_unique


def test_killed_driver_resumes_to_a_complete_dataset_without_duplicates(reference, tmp_path):
    path, out = reference
    folder = tmp_path / "s"
    cmd = [VILLAGESIM, "sweep", str(path), "--out", str(folder), "--workers", "0", "--runs-per-task", "3", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        kill_once_parts_written(proc, folder, 3, timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    parts = len(list((folder / "runs").glob("part-*.parquet")))
    assert 3 <= parts < 20, "the driver was not killed mid-sweep"
    before = SweepStore(folder).done_ids()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{60 - len(before)} run(s)" in done.stdout and f"{len(before)} already done" in done.stdout
    assert not list(folder.rglob(".*.tmp-*"))
    assert_complete_and_equal(folder, out)


def test_ctrl_c_keeps_finished_runs(reference, tmp_path, monkeypatch, capsys):
    path, _ = reference
    import villagesim.experiments.sweep as sw

    calls = {"n": 0}
    real = sw.run_task

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sw, "run_task", interrupted)
    code = main(["sweep", str(path), "--out", str(tmp_path / "s"), "--workers", "0", "--runs-per-task", "3", "--quiet"])
    assert code == 130
    assert "run the same command again" in capsys.readouterr().err
    assert len(SweepStore(tmp_path / "s").done_ids()) == 6


def test_slurm_cluster_options_reach_the_job_script():
    cluster = make_jobqueue_cluster(
        "slurm", cores=8, memory="16GB", walltime="02:00:00", queue="compute", account="ageing", job_extra=["--qos=normal"]
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for text in (
        "#SBATCH -p compute",
        "#SBATCH -A ageing",
        "#SBATCH -t 02:00:00",
        "#SBATCH --qos=normal",
        "--nworkers 8",
        "--nthreads 1",
    ):
        assert text in script, script
    assert sys.executable in script


def test_experiment_json_records_provenance(reference):
    _, out = reference
    info = json.loads((out / "experiment.json").read_text())
    assert info["seed"] == 17 and info["design"] == "lhs" and info["villagesim_version"]
    assert info["factors"][0] == {
        "path": "policy.publicity",
        "role": "lever",
        "spec": "[0.0, 1.0]",
        "kind": "float",
        "range": False,
    }
    assert (out / "experiment.toml").read_text().startswith('name = "tiny"')


def test_root_has_experiments_folder():
    assert (ROOT / "experiments").is_dir()


def test_a_driver_stopped_while_creating_the_folder_can_start_again(reference, tmp_path):
    path, out = reference
    folder = tmp_path / "s"
    for sub in ("runs", "timeseries", "failed"):
        (folder / sub).mkdir(parents=True)
    (folder / "design.parquet").write_bytes(b"half")  # no experiment.json yet: the manifest was not finished
    report = sweep(load_experiment(path), folder, max_runs=3, progress=False)
    assert report.ran == 3 and SweepStore(folder).info()["runs"] == 60
