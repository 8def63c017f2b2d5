"""Which files a scenario may read: regular files only, bounded, and - confined - only by name.

Each case is a hostile or careless input that once read a server file, blocked a thread
for ever, exhausted memory or ended in a traceback; each must now be one line that names
no file the user did not give.
"""

from __future__ import annotations

import os
import threading

import pytest

from conftest import SCENARIOS, write
from villagesim.config.loading import MAX_EXTENDS_DEPTH, MAX_NESTING, ReadRules, load_scenario, read_text_file
from villagesim.errors import ScenarioError

SECRET = "s3cr3t-value-from-server-file"


def _one_line(path, rules=None) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, rules=rules)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


@pytest.fixture
def server_file(tmp_path):
    """A file elsewhere on the server whose value would fail validation (and so be echoed)."""
    secret = tmp_path / "server" / "private.toml"
    secret.parent.mkdir()
    secret.write_text(f'[run]\nsteps = "{SECRET}"\n', encoding="utf-8")
    return secret


@pytest.fixture
def upload(tmp_path):
    folder = tmp_path / "upload"
    folder.mkdir()
    return folder


def _confined(upload):
    return ReadRules.confined_to(upload, SCENARIOS)


@pytest.mark.parametrize(
    "target",
    [
        "/etc/passwd",
        "/etc/shadow",
        "../../../../etc/hostname",
        "/root",
        "/dev/zero",
        "..",
        ".",
        "sub/x.toml",
        "../server/private.toml",
    ],
)
def test_confined_extends_refuses_any_path(upload, server_file, target):
    path = write(upload, "mine.toml", f'extends = "{target}"\n')
    msg = _one_line(path, _confined(upload))
    assert msg.startswith("mine.toml:1: extends: ") and "not a path" in msg
    assert SECRET not in msg and str(upload) not in msg


def test_confined_extends_by_absolute_path_to_a_server_file_reads_nothing(upload, server_file):
    path = write(upload, "mine.toml", f'extends = "{server_file}"\n')
    msg = _one_line(path, _confined(upload))
    assert SECRET not in msg and "private.toml" not in msg.split("(got")[0]


def test_confined_extends_a_shipped_scenario_by_name(upload):
    for name in ("baseline", "baseline.toml"):
        path = write(upload, "mine.toml", f'extends = "{name}"\n[run]\nsteps = 12\n')
        s = load_scenario(path, rules=_confined(upload)).scenario
        assert s.run.steps == 12 and s.name == "baseline"


def test_confined_extends_a_file_uploaded_with_it(upload):
    write(upload, "parent.toml", 'extends = "baseline"\nname = "parent"\n[run]\nsteps = 30\n')
    path = write(upload, "child.toml", 'extends = "parent.toml"\nname = "child"\n')
    loaded = load_scenario(path, rules=_confined(upload))
    assert loaded.scenario.run.steps == 30 and [p.name for p in loaded.chain] == ["child.toml", "parent.toml", "baseline.toml"]


def test_confined_errors_name_files_without_their_folders(upload):
    write(upload, "parent.toml", '[run]\nsteps = "many"\n')
    path = write(upload, "child.toml", 'extends = "parent.toml"\n')
    msg = _one_line(path, _confined(upload))
    assert msg.startswith("parent.toml:2: run.steps: ") and str(upload) not in msg


def test_confined_unknown_name_lists_what_is_known(upload):
    path = write(upload, "mine.toml", 'extends = "someone_elses_upload.toml"\n')
    msg = _one_line(path, _confined(upload))
    assert "is not a shipped scenario or a file uploaded with this one" in msg and "baseline.toml" in msg


def test_confined_refuses_a_symlink_among_the_uploads(upload, server_file):
    (upload / "link.toml").symlink_to(server_file)
    path = write(upload, "mine.toml", 'extends = "link.toml"\n')
    msg = _one_line(path, _confined(upload))
    assert SECRET not in msg and "is not a shipped scenario" in msg


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_is_refused_at_once_never_waited_on(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    child = write(tmp_path, "child.toml", 'extends = "pipe.toml"\n')
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(_one_line(child)), daemon=True)
    reader.start()
    reader.join(timeout=30)  # a blocking open would never return: the join would time out
    assert not reader.is_alive(), "reading the named pipe blocked"
    assert "device, pipe or socket" in result[0]


def test_devices_folders_and_symlink_loops_are_one_line(tmp_path):
    assert "device, pipe or socket" in _one_line("/dev/zero")
    assert "found a folder" in _one_line(tmp_path)
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    assert "loop of symbolic links" in _one_line(loop)
    child = write(tmp_path, "child.toml", 'extends = "loop.toml"\n')
    assert "loop of symbolic links" in _one_line(child)


def test_reads_are_bounded_in_size(tmp_path):
    big = write(tmp_path, "big.toml", "# " + "x" * 9_000_000 + "\n")
    assert "file too large" in _one_line(big)
    small_limit = ReadRules(max_bytes=100)
    ok = write(tmp_path, "ok.toml", 'name = "ok"\n')
    assert read_text_file(ok, small_limit) == 'name = "ok"\n'
    assert "file too large" in _one_line(write(tmp_path, "b.toml", "#" * 200 + "\n"), small_limit)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "notepad.toml"
    path.write_bytes('\ufeffname = "notepad"\n[run]\nsteps = 5\n'.encode())
    assert load_scenario(path).scenario.run.steps == 5


def test_text_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "gbk.toml"
    path.write_bytes('name = "村"\n'.encode("gbk"))
    assert "not UTF-8" in _one_line(path)


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 3000 + "]" * 3000 + "\n",
        "x = " + "{ a = " * 3000 + "1" + " }" * 3000 + "\n",
        "a" + ".a" * 3000 + " = 1\n",
        "[" + ".".join(["t"] * 2000) + "]\nk = 1\n",
    ],
    ids=["arrays", "inline-tables", "dotted-key", "table-header"],
)
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, text):
    msg = _one_line(write(tmp_path, "deep.toml", text))
    assert "nested" in msg and str(MAX_NESTING) in msg


def test_a_long_extends_chain_is_one_line_not_a_recursion_error(tmp_path):
    n = 1200
    write(tmp_path, "f0.toml", 'name = "root"\n')
    for i in range(1, n):
        write(tmp_path, f"f{i}.toml", f'extends = "f{i - 1}.toml"\n')
    msg = _one_line(tmp_path / f"f{n - 1}.toml")
    assert f"longer than {MAX_EXTENDS_DEPTH} files" in msg


def test_an_ordinary_chain_still_merges_on_the_command_line(tmp_path):
    """Unconfined (the command line), extends may still name a file by relative or absolute path."""
    (tmp_path / "lib").mkdir()
    parent = write(tmp_path / "lib", "p.toml", "[run]\nsteps = 7\n")
    rel = write(tmp_path, "rel.toml", 'extends = "lib/p.toml"\n')
    absolute = write(tmp_path, "abs.toml", f'extends = "{parent}"\n')
    assert load_scenario(rel).scenario.run.steps == 7 and load_scenario(absolute).scenario.run.steps == 7
