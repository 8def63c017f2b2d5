"""A sweep store that checks itself: damaged parts redone, one driver at a time, each run
once, one villagesim version per store, designs counted before they are built, Dask's
dashboard on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from test_sweep import assert_complete_and_equal, tiny_experiment

from conftest import write
from villagesim.cli.main import main
from villagesim.errors import VillagesimError
from villagesim.experiments.analysis import analyze
from villagesim.experiments.design import build_design, design_head, design_size, load_experiment
from villagesim.experiments.sweep import SweepStore, TaskResult, make_jobqueue_cluster, sweep
from villagesim.version import model_hash

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

SRC = Path(__file__).resolve().parents[2] / "src" / "villagesim"


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory) -> tuple[Path, Path]:
    """24 runs (2 x 4 points x 3 replicates) in 8 tasks of 3: (experiment file, sweep folder)."""
    folder = tmp_path_factory.mktemp("small")
    path = tiny_experiment(folder, samples=4, steps=12)
    sweep(load_experiment(path), folder / "sweep", runs_per_task=3, progress=False)
    return path, folder / "sweep"


@pytest.fixture
def copy(small_sweep, tmp_path) -> tuple[Path, Path]:
    """A copy of the small sweep to damage: (experiment file, folder)."""
    path, folder = small_sweep
    shutil.copytree(folder, tmp_path / "s")
    return path, tmp_path / "s"


def parts(folder: Path, sub: str) -> list[Path]:
    return sorted((folder / sub).glob("part-*.parquet"))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def resume(path: Path, folder: Path) -> tuple[object, list[str]]:
    lines: list[str] = []
    report = sweep(load_experiment(path), folder, runs_per_task=3, progress=False, notify=lines.append)
    return report, lines


# --------------------------------------------------------------------- damaged parts
def test_every_part_has_a_manifest_with_its_rows_and_checksum(small_sweep):
    _, folder = small_sweep
    manifests = sorted((folder / "manifests").glob("part-*.json"))
    assert len(manifests) == 8 == len(parts(folder, "runs")) == len(parts(folder, "timeseries"))
    entry = json.loads(manifests[0].read_text())
    assert entry["run_ids"] == [0, 1, 2]
    assert entry["files"]["runs/part-00000000-00000002-00003.parquet"]["rows"] == 3
    assert entry["files"]["timeseries/part-00000000-00000002-00003.parquet"]["rows"] == 3 * 12
    assert len(entry["files"]["runs/part-00000000-00000002-00003.parquet"]["sha256"]) == 64
    assert SweepStore(folder).verify().damaged == []


def test_a_truncated_runs_part_is_found_and_its_runs_redone(copy, small_sweep):
    path, folder = copy
    victim = parts(folder, "runs")[1]
    truncate(victim)
    with pytest.raises(VillagesimError, match="is damaged"):  # reading it: one line, not an Arrow traceback
        SweepStore(folder).summaries()
    report, lines = resume(path, folder)
    assert lines == [f"{folder}: 1 damaged part(s) found (runs/{victim.name}); their 3 run(s) will be redone"]
    assert report.ran == 3 and report.already == 21
    assert_complete_and_equal(folder, small_sweep[1])
    assert resume(path, folder)[1] == []  # repaired: nothing found the next time


def test_a_truncated_or_altered_series_part_is_found_and_redone(copy, small_sweep):
    path, folder = copy
    truncate(parts(folder, "timeseries")[2])
    flipped = parts(folder, "timeseries")[5]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    flipped.write_bytes(bytes(data))
    report, lines = resume(path, folder)
    assert len(lines) == 1 and "2 damaged part(s) found (timeseries/part-" in lines[0]
    assert lines[0].endswith("their 6 run(s) will be redone")
    assert report.ran == 6
    assert_complete_and_equal(folder, small_sweep[1])


def test_a_missing_series_part_or_manifest_redoes_the_task(copy, small_sweep):
    path, folder = copy
    parts(folder, "timeseries")[0].unlink()  # summaries without their series
    sorted((folder / "manifests").glob("part-*.json"))[3].unlink()  # a driver stopped before the manifest
    report, lines = resume(path, folder)
    assert lines == [
        f"{folder}: 1 damaged part(s) found (timeseries/part-00000000-00000002-00003.parquet); their 3 run(s) will be redone"
    ]
    assert report.ran == 6
    assert_complete_and_equal(folder, small_sweep[1])


@pytest.mark.parametrize("name", ["experiment.json", "design.parquet"])
def test_a_damaged_experiment_json_or_design_is_one_line(copy, name, capsys):
    path, folder = copy
    truncate(folder / name)
    with pytest.raises(VillagesimError, match=f"damaged sweep store: {name}"):
        resume(path, folder)
    assert main(["sweep", str(path), "--out", str(folder), "--workers", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "new --out" in err and "Traceback" not in err
    if name == "experiment.json":
        assert main(["analyze", str(folder)]) == 2
        assert "damaged sweep store" in capsys.readouterr().err


# --------------------------------------------------------------------- one driver
HOLD = """
import sys, time
from villagesim.experiments.sweep import SweepStore
with SweepStore(sys.argv[1]).locked():
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_driver_refuses_and_a_dead_ones_lock_does_not_block(copy, small_sweep, capsys):
    path, folder = copy
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(VillagesimError, match=rf"{folder} is in use by another sweep driver \(PID {holder.pid} on "):
            resume(path, folder)
        assert main(["sweep", str(path), "--out", str(folder), "--workers", "0", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"PID {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert f"PID {holder.pid}" in (folder / ".villagesim.lock").read_text()  # left behind by a killed driver...
    report, _ = resume(path, folder)  # ...and no obstacle
    assert report.ran == 0 and report.already == 24


# --------------------------------------------------------------------- each run once
def test_a_store_holding_a_run_twice_is_refused(copy):
    path, folder = copy
    first = parts(folder, "runs")[0].stem  # a task copied in under another name, with its manifest
    manifest = json.loads((folder / "manifests" / f"{first}.json").read_text())
    manifest["files"] = {k.replace(first, f"{first}-copy"): v for k, v in manifest["files"].items()}
    (folder / "manifests" / f"{first}-copy.json").write_text(json.dumps(manifest))
    for sub in ("runs", "timeseries"):
        shutil.copy(folder / sub / f"{first}.parquet", folder / sub / f"{first}-copy.parquet")
    with pytest.raises(VillagesimError, match="holds 3 run"):
        SweepStore(folder).summaries()
    with pytest.raises(VillagesimError, match="stored more than once"):
        analyze(folder)
    assert main(["analyze", str(folder)]) == 2
    with pytest.raises(VillagesimError, match="stores run 0 twice"):
        resume(path, folder)


def test_writing_a_run_already_stored_is_refused(copy):
    _, folder = copy
    store = SweepStore(folder)
    again = store.summaries().iloc[3:5]
    with pytest.raises(VillagesimError, match="run 3 is already stored"):
        store.write(TaskResult(again["run_id"].tolist(), again, None, [], 0.0))
    assert len(SweepStore(folder).summaries()) == 24


# --------------------------------------------------------------------- one version
@pytest.mark.parametrize(("key", "value"), [("villagesim_version", "0.0.1"), ("model_hash", "0" * 64)])
def test_resume_refuses_results_of_another_version_or_model(copy, key, value):
    path, folder = copy
    meta = folder / "experiment.json"
    info = json.loads(meta.read_text())
    info[key] = value
    meta.write_text(json.dumps(info))
    with pytest.raises(VillagesimError, match="results of two versions must not mix: run the sweep into a new --out"):
        resume(path, folder)


def test_experiment_json_records_the_model_hash(small_sweep):
    info = SweepStore(small_sweep[1]).info()
    assert info["model_hash"] == model_hash() and len(info["design_sha256"]) == 64


def test_the_model_hash_follows_the_rules_not_the_front_ends(tmp_path):
    root = tmp_path / "villagesim"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    assert model_hash(root) == model_hash()
    (root / "cli" / "main.py").write_text("# another front end\n", encoding="utf-8")
    assert model_hash(root) == model_hash()
    rule = sorted((root / "processes").glob("*.py"))[-1]
    rule.write_text(rule.read_text(encoding="utf-8") + "\n# a changed rule\n", encoding="utf-8")
    assert model_hash(root) != model_hash()


# --------------------------------------------------------------------- design sizes
def huge_grid(folder: Path) -> Path:
    """8 ranges x 10 levels: 10^8 points."""
    ranges = [
        ("hollowing_out.outmigration_rate", 0.01, 0.12),
        ("hollowing_out.return_rate", 0.0, 0.06),
        ("behaviour.ask_trust", 0.5, 3.5),
        ("behaviour.ask_awareness", 1.0, 4.0),
        ("behaviour.volunteer_intercept", -4.5, -2.0),
        ("behaviour.volunteer_norm", 0.5, 3.5),
        ("behaviour.trust_experience_rate", 0.02, 0.12),
        ("committee.admin_burden", 0.3, 0.85),
    ]
    write(folder, "village.toml", 'name = "village"\n[run]\nsteps = 10\n')
    body = "".join(f'"{p}" = {{ low = {lo}, high = {hi} }}\n' for p, lo, hi in ranges)
    return write(
        folder,
        "huge.toml",
        f'scenario = "village.toml"\nreplicates = 1\n[uncertainties]\n{body}[design]\nkind = "grid"\nlevels = 10\n',
    )


def test_a_dry_run_of_a_huge_grid_counts_it_without_building_it(tmp_path, capsys):
    path = huge_grid(tmp_path)
    exp = load_experiment(path)
    tracemalloc.start()
    try:
        assert design_size(exp) == (10**8, 10**8)
        code = main(["sweep", str(path), "--out", str(tmp_path / "s"), "--dry-run"])
        with pytest.raises(VillagesimError, match="100,000,000 runs"):
            build_design(exp)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.1f} MiB"  # the design itself would take gigabytes
    out, err = capsys.readouterr()
    assert "100000000 point(s) x 1 replicate(s) = 100000000 runs" in out and "first runs:" in out
    assert code == 2 and err.count("\n") == 1 and "--allow-large-design" in err
    assert not (tmp_path / "s").exists()
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--workers", "0"]) == 2  # refused before anything
    assert not (tmp_path / "s").exists()


DESIGNS = {
    "grid": 'levels = 3\n[levers]\n"policy.publicity" = [0.0, 0.5, 1.0]\n"policy.time_bank.enabled" = [false, true]\n',
    "lhs": 'samples = 7\n[levers]\n"policy.publicity" = [0.0, 1.0]\n',
    "sobol": "samples = 8\n",
    "morris": "samples = 5\nlevels = 4\n",
}


@pytest.mark.parametrize("kind", sorted(DESIGNS))
def test_the_counted_size_and_first_rows_are_those_of_the_built_design(tmp_path, kind):
    write(tmp_path, "village.toml", 'name = "village"\n[run]\nsteps = 10\n')
    path = write(
        tmp_path,
        f"{kind}.toml",
        'scenario = "village.toml"\nreplicates = 2\ncommon_random_numbers = false\n'
        '[uncertainties]\n"hollowing_out.outmigration_rate" = { low = 0.01, high = 0.12 }\n'
        '"behaviour.ask_trust" = { distribution = "normal", mean = 2.0, sd = 0.5, low = 0.5, high = 3.5 }\n'
        f'[design]\nkind = "{kind}"\n{DESIGNS[kind]}',
    )
    exp = load_experiment(path)
    design = build_design(exp)
    assert design_size(exp) == (len(design.points), len(design.runs))
    pd.testing.assert_frame_equal(design_head(exp, 7), design.runs.head(7), check_exact=True)


# --------------------------------------------------------------------- the dashboard
def test_a_local_cluster_listens_on_loopback_and_has_no_dashboard_unless_asked():
    pytest.importorskip("distributed")
    from villagesim.runs.backends import DaskBackend

    with DaskBackend.start(workers=1) as backend:
        scheduler = backend.cluster.scheduler
        assert scheduler.address.startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in backend.client.scheduler_info()["workers"])
        hosts = {s.getsockname()[0] for s in scheduler.http_server._sockets.values()}
        assert hosts == {"127.0.0.1"}, hosts  # the scheduler's HTTP routes too
        assert backend.dashboard_link is None and "dashboard" not in backend.describe()
    with DaskBackend.start(workers=1, dashboard="127.0.0.1:0") as backend:
        assert backend.dashboard_link.startswith("http://127.0.0.1:")
        assert "dashboard at http://127.0.0.1:" in backend.describe()


def test_a_batch_clusters_dashboard_is_on_loopback_unless_asked():
    cluster = make_jobqueue_cluster("slurm", cores=2)
    try:
        options = cluster.scheduler_spec["options"]
        assert options["dashboard_address"] == "127.0.0.1:0"
        assert "host" not in options  # the scheduler listens where the compute nodes reach it
    finally:
        cluster.close()
    cluster = make_jobqueue_cluster("slurm", cores=2, dashboard="0.0.0.0:8799")
    try:
        assert cluster.scheduler_spec["options"]["dashboard_address"] == "0.0.0.0:8799"
    finally:
        cluster.close()
