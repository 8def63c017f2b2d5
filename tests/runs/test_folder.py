"""Results folders that cannot destroy: claiming, locking, recovery, checks before the run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import SCENARIOS, write
from villagesim.cli.main import main
from villagesim.errors import VillagesimError
from villagesim.runs import folder as folder_module
from villagesim.runs.folder import MARKER, ResultFolder, atomic_folder, safe_name

SRC = Path(__file__).resolve().parents[2] / "src"


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def make_result(path: Path, text: str = "{}") -> Path:
    with atomic_folder(path, kind="run") as tmp:
        (tmp / "summary.json").write_text(text)
    return path


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("villagesim: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def no_simulation(monkeypatch):
    """Make every simulation fail loudly: a refusal must come before it."""

    def boom(*args, **kwargs):
        raise AssertionError("the simulation ran before the folder was checked")

    from villagesim.calibration import fitting, validation
    from villagesim.experiments import compare
    from villagesim.runs import runner

    monkeypatch.setattr(runner, "run_scenario", boom)
    monkeypatch.setattr(compare, "compare", boom)
    monkeypatch.setattr(fitting, "calibrate", boom)
    monkeypatch.setattr(validation, "run_targets", boom)


# ------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("baseline", "baseline"),
        ("time_bank-2.v1", "time_bank-2.v1"),
        ("互助养老", "互助养老"),
        (".", "scenario"),
        ("..", "scenario"),
        ("", "scenario"),
        ("../victim", "victim"),
        ("x/../../../victim2", "x_.._.._.._victim2"),
        ("/etc/passwd", "etc_passwd"),
        ("a\\b", "a_b"),
        ("nul\x00byte", "nul_byte"),
        ("my policy", "my_policy"),
        (".hidden", "hidden"),
        ("CON", "_CON"),
    ],
)
def test_safe_name_is_one_harmless_component(name, expected):
    got = safe_name(name)
    assert got == expected
    assert "/" not in got and "\\" not in got and "\x00" not in got and got not in (".", "..")


def test_safe_name_is_bounded_and_cuts_between_characters():
    got = safe_name("村" * 500)
    assert len(got.encode("utf-8")) <= folder_module.NAME_BYTES and set(got) == {"村"}


# ------------------------------------------------------------------------- what may be replaced
def test_a_folder_that_is_not_a_result_is_refused_and_untouched(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.txt").write_text("my thesis")
    with pytest.raises(VillagesimError, match="not a villagesim results folder.*report.txt.*another --out"):
        with ResultFolder.claim(docs, kind="run"):
            pytest.fail("claimed a folder that is not a result")
    assert (docs / "report.txt").read_text() == "my thesis"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]  # no lock, no partial left


def test_a_file_and_a_symbolic_link_are_refused(tmp_path):
    (tmp_path / "f").write_text("data")
    with pytest.raises(VillagesimError, match="a file of that name exists"), ResultFolder.claim(tmp_path / "f", kind="run"):
        pass
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(VillagesimError, match="symbolic link"), ResultFolder.claim(tmp_path / "link", kind="run"):
        pass
    assert (tmp_path / "f").read_text() == "data" and (tmp_path / "link").is_symlink()


def test_empty_folder_marked_result_and_older_result_may_be_replaced(tmp_path):
    (tmp_path / "empty").mkdir()
    make_result(tmp_path / "empty", '{"new": 1}')
    marker = json.loads((tmp_path / "empty" / MARKER).read_text())
    assert marker["kind"] == "run" and "villagesim_version" in marker and "created" in marker
    make_result(tmp_path / "empty", '{"new": 2}')  # a marked result
    assert (tmp_path / "empty" / "summary.json").read_text() == '{"new": 2}'

    old = tmp_path / "old"  # written before the marker existed
    (old / "figures").mkdir(parents=True)
    for name in ("summary.json", "timeseries.parquet", "villages.parquet", "scenario.toml", "columns.csv"):
        (old / name).write_text("x")
    (old / "figures" / "mean_trust.png").write_bytes(b"png")
    make_result(old, '{"new": 3}')
    assert (old / "summary.json").read_text() == '{"new": 3}' and not (old / "figures").exists()

    cal = tmp_path / "calibration"  # docs/calibration as shipped: only fitted.json
    cal.mkdir()
    (cal / "fitted.json").write_text("{}")
    with atomic_folder(cal, kind="calibration") as tmp:
        (tmp / "fitted.json").write_text('{"fitted": {}}')
    assert json.loads((cal / MARKER).read_text())["kind"] == "calibration"


@pytest.mark.parametrize(
    "extra",
    ["notes.txt", "figures/photo.jpg", "thesis.docx"],
)
def test_an_older_result_with_anything_else_in_it_is_refused(tmp_path, extra):
    old = tmp_path / "old"
    (old / "figures").mkdir(parents=True)
    (old / "summary.json").write_text("{}")
    (old / extra).write_text("mine")
    with pytest.raises(VillagesimError, match="not a villagesim results folder"), ResultFolder.claim(old, kind="run"):
        pass
    assert (old / extra).read_text() == "mine"


def test_a_corrupt_marker_does_not_make_a_result(tmp_path):
    target = tmp_path / "t"
    target.mkdir()
    (target / MARKER).write_text("not json")
    (target / "mine.txt").write_text("x")
    with pytest.raises(VillagesimError), ResultFolder.claim(target, kind="run"):
        pass


def test_something_appearing_during_the_simulation_is_not_replaced(tmp_path):
    target = tmp_path / "t"
    with ResultFolder.claim(target, kind="run") as rf:
        target.mkdir()
        (target / "mine.txt").write_text("x")  # made by hand while the run was simulating
        with pytest.raises(VillagesimError, match="not a villagesim results folder"), rf.writing() as tmp:
            (tmp / "summary.json").write_text("{}")
    assert sorted(os.listdir(target)) == ["mine.txt"] and leftovers(tmp_path, "t") == []


# ------------------------------------------------------------------------- lock
def test_a_second_claim_on_the_same_folder_refuses_naming_the_holder(tmp_path):
    target = tmp_path / "res"
    with ResultFolder.claim(target, kind="run"):
        with pytest.raises(VillagesimError, match=rf"res is being written by another villagesim \(pid {os.getpid()}"):
            with ResultFolder.claim(target, kind="run"):
                pass
        with ResultFolder.claim(tmp_path / "other", kind="run"):  # another folder is free
            pass
    with ResultFolder.claim(target, kind="run"):  # released
        pass
    assert leftovers(tmp_path, "res") == []


def test_a_stale_lock_file_of_a_dead_process_does_not_block(tmp_path):
    (tmp_path / ".res.lock").write_text(json.dumps({"pid": dead_pid(), "command": "villagesim run x"}))
    make_result(tmp_path / "res")
    assert (tmp_path / "res" / "summary.json").exists() and leftovers(tmp_path, "res") == []


WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from villagesim.errors import VillagesimError
    from villagesim.runs.folder import ResultFolder
    target, go = Path(sys.argv[1]), Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    try:
        with ResultFolder.claim(target, kind="run") as rf:
            time.sleep(1.0)  # the simulation
            with rf.writing() as tmp:
                (tmp / "summary.json").write_text(str(os.getpid()))
    except VillagesimError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    print(os.getpid())
    """
)


def test_two_concurrent_writers_one_refuses_at_once_and_nothing_is_lost(tmp_path):
    target, go = tmp_path / "res", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)  # both started, waiting
    go.touch()
    done = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    codes = sorted(code for code, _out, _err in done)
    assert codes == [0, 2], done
    winner = next(out.strip() for code, out, _ in done if code == 0)
    loser = next(err for code, _, err in done if code == 2)
    assert "res is being written by another villagesim (pid " + winner in loser and loser.count("\n") == 1
    assert (target / "summary.json").read_text() == winner
    assert leftovers(tmp_path, "res") == []


# ------------------------------------------------------------------------- killed runs
def test_partial_folders_of_dead_runs_are_removed(tmp_path):
    pid = dead_pid()
    stale = tmp_path / f".res.partial-{pid}"
    stale.mkdir()
    (stale / "timeseries.parquet").write_text("half")
    other = tmp_path / f".other.partial-{pid}"  # another target's: not ours to clean
    other.mkdir()
    make_result(tmp_path / "res")
    assert not stale.exists() and other.exists() and leftovers(tmp_path, "res") == []


def test_an_earlier_result_left_aside_by_a_killed_swap_is_restored(tmp_path):
    pid = dead_pid()
    aside = tmp_path / f".res.old-{pid}"
    make_result(aside, '{"earlier": true}')
    notes = []
    with ResultFolder.claim(tmp_path / "res", kind="run", log=notes.append) as rf:
        assert json.loads((tmp_path / "res" / "summary.json").read_text()) == {"earlier": True}
        assert rf.notes == notes and "restored the earlier result" in notes[0]
        with pytest.raises(RuntimeError), rf.writing():  # this run fails too: the earlier result stays
            raise RuntimeError("boom")
    assert json.loads((tmp_path / "res" / "summary.json").read_text()) == {"earlier": True}
    assert leftovers(tmp_path, "res") == []


def test_an_old_folder_beside_a_present_result_is_removed(tmp_path):
    make_result(tmp_path / "res", '{"newer": true}')
    aside = tmp_path / f".res.old-{dead_pid()}"
    make_result(aside, '{"earlier": true}')
    make_result(tmp_path / "res", '{"newest": true}')
    assert not aside.exists() and json.loads((tmp_path / "res" / "summary.json").read_text()) == {"newest": True}


def test_a_run_killed_while_writing_is_cleaned_up_by_the_next(tmp_path):
    code = textwrap.dedent(
        """
        import os, signal, sys
        from villagesim.runs.folder import ResultFolder
        with ResultFolder.claim(sys.argv[1], kind="run") as rf, rf.writing() as tmp:
            (tmp / "timeseries.parquet").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    make_result(tmp_path / "res", '{"earlier": true}')
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "res")], env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == -signal.SIGKILL
    assert [n for n in leftovers(tmp_path, "res") if ".partial-" in n]  # what the kill left
    make_result(tmp_path / "res", '{"next": true}')
    assert leftovers(tmp_path, "res") == [] and json.loads((tmp_path / "res" / "summary.json").read_text()) == {"next": True}


# ------------------------------------------------------------------------- checks before the run
def test_null_byte_and_too_long_name_are_one_line_and_create_nothing(tmp_path):
    with pytest.raises(VillagesimError, match="null byte"), ResultFolder.claim(f"{tmp_path}/a\x00b", kind="run"):
        pass
    with pytest.raises(VillagesimError, match="too long"), ResultFolder.claim(tmp_path / "new" / ("x" * 250), kind="run"):
        pass
    with pytest.raises(VillagesimError, match="too long"), ResultFolder.claim(tmp_path / ("y" * 300) / "r", kind="run"):
        pass
    assert list(tmp_path.iterdir()) == []  # not even the parent it created


def test_a_file_in_the_path_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(VillagesimError, match="not a folder"), ResultFolder.claim(tmp_path / "f" / "res", kind="run"):
        pass
    with pytest.raises(VillagesimError, match="not a folder"), ResultFolder.claim(tmp_path / "f" / "a" / "r", kind="run"):
        pass


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_one_line_before_anything(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(VillagesimError, match="permission denied"), ResultFolder.claim(ro / "res", kind="run"):
            pass
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_a_read_only_file_system_is_one_line_before_running(tmp_path, capsys, monkeypatch, no_simulation):
    """As root a chmod does not stop writes; the file system's answer is imitated instead."""

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["run", str(SCENARIOS / "baseline.toml"), "--out", str(tmp_path / "new" / "res"), "--quiet"]) == 2
    assert "the file system is read-only" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_not_enough_free_space_is_refused_before_anything(tmp_path):
    with (
        pytest.raises(VillagesimError, match="not enough free space"),
        ResultFolder.claim(tmp_path / "r", kind="run", estimate=10**18),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_is_one_line_and_keeps_the_earlier_result(tmp_path):
    make_result(tmp_path / "res", '{"earlier": true}')
    with ResultFolder.claim(tmp_path / "res", kind="run") as rf:
        with pytest.raises(VillagesimError, match="no space left on the device; nothing was written"), rf.writing() as tmp:
            (tmp / "summary.json").write_text("half")
            raise OSError(28, "No space left on device")
    assert json.loads((tmp_path / "res" / "summary.json").read_text()) == {"earlier": True}
    assert leftovers(tmp_path, "res") == []


def test_every_file_and_folder_is_synced_before_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with ResultFolder.claim(tmp_path / "res", kind="run") as rf, rf.writing() as tmp:
        (tmp / "figures").mkdir()
        (tmp / "figures" / "a.png").write_bytes(b"png")
        (tmp / "summary.json").write_text("{}")
    if os.path.exists("/proc/self/fd"):
        partial = str(tmp_path / f".res.partial-{os.getpid()}")
        assert {partial + "/figures/a.png", partial + "/summary.json", partial + "/" + MARKER, partial, str(tmp_path)} <= set(
            synced
        )
        assert synced[-1] == str(tmp_path)  # the parent, after the rename
    else:
        assert len(synced) >= 6


def test_writing_outside_a_claim_is_a_programming_error(tmp_path):
    rf = ResultFolder(tmp_path / "res", kind="run")
    with pytest.raises(RuntimeError), rf.writing():
        pass


# ------------------------------------------------------------------------- the command line
def tiny_scenario(tmp_path: Path, name: str, file: str = "s.toml") -> Path:
    return write(
        tmp_path,
        file,
        f"name = {json.dumps(name)}\nextends = {json.dumps((SCENARIOS / 'baseline.toml').as_posix())}\n"
        "[run]\nsteps = 3\n[population]\nresidents_per_village = 200\n",
    )


def test_cli_run_out_a_folder_that_is_not_a_result_refuses_before_running(tmp_path, capsys, no_simulation):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.txt").write_text("mine")
    assert main(["run", str(SCENARIOS / "baseline.toml"), "--out", str(docs), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert str(docs) in err and "report.txt" in err and "--out" in err
    assert (docs / "report.txt").read_text() == "mine" and sorted(os.listdir(docs)) == ["report.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]


@pytest.mark.parametrize(
    ("out", "match"),
    [
        ("a\x00b", "null byte"),
        ("x" * 300, "too long"),
        ("", "give a folder below it"),
        (".", "give a folder below it"),
        ("a/..", "below it"),
    ],
    ids=["null-byte", "too-long", "empty", "dot", "dotdot"],
)
def test_cli_bad_out_is_one_line_before_running(tmp_path, capsys, monkeypatch, no_simulation, out, match):
    monkeypatch.chdir(tmp_path)
    for cmd in (
        ["run", str(SCENARIOS / "baseline.toml")],
        ["compare", str(SCENARIOS / "baseline.toml"), str(SCENARIOS / "publicity.toml")],
    ):
        assert main([*cmd, "--out", out, "--quiet"]) == 2
        assert match in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_cli_calibrate_and_validate_refuse_before_running(tmp_path, capsys, no_simulation):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.txt").write_text("mine")
    assert main(["calibrate", str(SCENARIOS / "baseline.toml"), "--out", str(docs), "--quiet"]) == 2
    assert "not a villagesim results folder" in one_line_error(capsys)
    assert main(["validate", "--out", str(docs), "--scenarios", str(SCENARIOS), "--quiet"]) == 2
    assert "not a villagesim results folder" in one_line_error(capsys)
    assert sorted(os.listdir(docs)) == ["report.txt"]


def test_cli_run_refuses_while_another_writes_the_same_folder(tmp_path, capsys, no_simulation):
    out = tmp_path / "res"
    with ResultFolder.claim(out, kind="run"):
        assert main(["run", str(SCENARIOS / "baseline.toml"), "--out", str(out), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert f"{out} is being written by another villagesim (pid {os.getpid()}" in err


@pytest.mark.usefixtures("compiled_kernels")
def test_cli_scenario_names_stay_inside_results(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier = make_result(tmp_path / "results" / "earlier", '{"earlier": true}')
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.docx").write_text("years of work")
    for name in (".", "../victim", "..", "/tmp/abs"):
        assert main(["run", str(tiny_scenario(tmp_path, name)), "--quiet"]) == 0, capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "results")) == ["earlier", "scenario", "tmp_abs", "victim"]
    assert (earlier / "summary.json").read_text() == '{"earlier": true}'
    assert sorted(os.listdir(victim)) == ["thesis.docx"]
    assert json.loads((tmp_path / "results" / "victim" / MARKER).read_text())["kind"] == "run"
    assert main(["run", str(tiny_scenario(tmp_path, "../victim")), "--quiet"]) == 0  # its own result: replaced

    base = tiny_scenario(tmp_path, "x/../../../victim2", "b.toml")
    inter = write(tmp_path, "i.toml", 'name = "../../y"\nextends = "b.toml"\n[policy]\npublicity = 0.5\n')
    assert main(["compare", str(base), str(inter), "--replicates", "2", "--window", "2", "--quiet"]) == 0
    made = sorted(os.listdir(tmp_path / "results"))
    assert "compare-x_.._.._.._victim2-vs-y" in made
    assert json.loads((tmp_path / "results" / "compare-x_.._.._.._victim2-vs-y" / MARKER).read_text())["kind"] == "compare"
    assert not (tmp_path.parent / "victim2").exists() and not list(tmp_path.parent.glob("*victim2*"))
    assert not [p for p in (tmp_path / "results").iterdir() if p.name.startswith(".")]  # no locks, no partials
