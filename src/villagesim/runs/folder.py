"""The results folder: safe claiming, atomic writes, provenance, reading back.

A command that writes a results folder does it in two phases::

    with ResultFolder.claim(out, kind="run", estimate=estimate_bytes(rows)) as rf:
        result = simulate(...)                  # minutes, perhaps
        with rf.writing() as tmp:               # a hidden sibling folder
            write_parquet(result.timeseries, tmp / TIMESERIES)
            ...
        # here ``out`` holds the whole new result

:meth:`ResultFolder.claim` does every check that can fail *before* the simulation runs, so
that a mistake costs a second, not the run: the path has no null byte and a name that fits
the file system; the target is absent, an empty folder, or a villagesim result (see below);
the parent can be created and written (a probe folder is made and removed); there is room
for the estimated size; and no other villagesim process is writing the same target. It then
holds a lock (``fcntl.flock`` on ``.NAME.lock`` beside the target, released by the kernel if
the process dies, so a stale lock never blocks) until the new result is in place, and it
cleans up after runs that were killed: ``.NAME.partial-PID`` folders of dead processes are
removed, and a ``.NAME.old-PID`` folder (a run killed while swapping the new result in) is
restored to ``NAME`` when ``NAME`` is missing, since it is the earlier result, or removed.

:meth:`ResultFolder.writing` yields ``.NAME.partial-PID``; when the block ends without error
it writes the marker file ``.villagesim-result`` (JSON: ``kind``, ``villagesim_version``,
``created``), ``fsync``s every file and folder, moves an earlier result aside, renames the
new folder to ``NAME``, ``fsync``s the parent and removes the earlier result. A run that fails
or is interrupted removes its partial folder and leaves an earlier result intact, so a folder
named like a result is always a whole result.

Which existing folder may be replaced: only a villagesim result. That is a folder holding
the marker, or (results written before the marker existed) a folder whose entries are all
files that one kind of result writes and that includes that kind's main file (for example
only ``summary.json``, ``timeseries.parquet``, ... and ``figures/`` of PNG files). An empty
folder may be used too. Anything else (a file, a symbolic link, a folder holding anything
else) is refused with one line, and is left untouched.

Every failure a user can cause (a folder that may not be replaced, a read-only or full disk,
a name too long, permission denied, a concurrent run) raises :class:`VillagesimError` with a
one-line message; no ``OSError`` leaves this module from these paths.

Names that come from a scenario file (not from ``--out``) go through :func:`safe_name`, so
that ``name = "../x"`` or ``name = "."`` cannot point outside ``results/``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import shutil
import sys
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from villagesim.errors import VillagesimError
from villagesim.version import __version__

try:  # POSIX; on Windows the lock uses msvcrt
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TIMESERIES = "timeseries.parquet"
VILLAGES = "villages.parquet"
SUMMARY = "summary.json"
SCENARIO = "scenario.toml"
FIGURES = "figures"
MARKER = ".villagesim-result"
"""The file that marks a folder as a villagesim result (JSON: kind, villagesim_version, created)."""

KNOWN_FILES: dict[str, tuple[str, frozenset[str]]] = {
    # kind: (its main file, every entry such a folder held before the marker existed)
    "run": (SUMMARY, frozenset({TIMESERIES, VILLAGES, SUMMARY, SCENARIO, "columns.csv", FIGURES})),
    "compare": (
        "comparison.csv",
        frozenset(
            {
                "comparison.csv",
                TIMESERIES,
                "replicate_outcomes.parquet",
                "baseline.toml",
                "intervention.toml",
                SUMMARY,
                FIGURES,
            }
        ),
    ),
    "calibration": ("fitted.json", frozenset({"fitted.json"})),
    "validation": ("validation.json", frozenset({"validation.json", "report.md", FIGURES})),
    "analysis": (
        "analysis.json",
        frozenset({"analysis.json", "sensitivity.csv", "points.csv", "discovery_trajectory.csv", "discovery_box.csv", FIGURES}),
    ),
}
"""What results written by versions without the marker look like; such folders may be replaced."""

NAME_BYTES = 120
"""Longest folder name (UTF-8 bytes) that :func:`safe_name` returns."""

FIGURE_BYTES = 8_000_000
"""Room kept for figures and small files when checking free space."""

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


# ---------------------------------------------------------------------------- names
def safe_name(name: str, fallback: str = "scenario") -> str:
    """A name from a scenario file turned into one harmless folder name.

    Keeps letters of any script (Chinese included), digits and ``-_.``; any other
    character (``/``, ``\\``, spaces, null bytes, controls) becomes ``_``. Leading dots are
    dropped (no ``.``, ``..`` or hidden folder), the result is at most :data:`NAME_BYTES`
    bytes of UTF-8, and an empty result becomes ``fallback``.
    """
    text = unicodedata.normalize("NFC", str(name))
    kept = "".join(c if (c.isalnum() or c in "-_.") else "_" for c in text)
    while "__" in kept:
        kept = kept.replace("__", "_")
    kept = kept.lstrip("._").rstrip("._ ")
    while len(kept.encode("utf-8")) > NAME_BYTES:
        kept = kept[:-1]
    kept = kept.rstrip("._ ")
    if not kept:
        return fallback
    if kept.split(".")[0].upper() in _WINDOWS_RESERVED:
        kept = "_" + kept
    return kept


def estimate_bytes(rows: int, columns: int = 80) -> int:
    """A generous estimate of a results folder's size: 8 bytes per value, plus figures."""
    return int(rows) * int(columns) * 8 + FIGURE_BYTES


# ---------------------------------------------------------------------------- helpers
def _show(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: control characters escaped."""
    text = os.fspath(path)
    if any(not c.isprintable() for c in text):
        return repr(text)
    return text


def _reason(exc: OSError) -> str:
    reasons = {
        errno.ENAMETOOLONG: "a name is too long for this file system",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))


def _alive(pid: int) -> bool:
    """Whether a process of that id exists (conservatively yes where it cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # pragma: no cover - os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _suffix_pid(entry: str, prefix: str) -> int | None:
    if not entry.startswith(prefix):
        return None
    rest = entry[len(prefix) :]
    return int(rest) if rest.isdigit() else None


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # pragma: no cover - folders cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every folder (deepest first)."""
    folders = []
    for here, _dirs, files in os.walk(root):
        folders.append(Path(here))
        for name in files:
            fd = os.open(Path(here) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for folder in reversed(folders):
        _fsync_dir(folder)


def _is_result(folder: Path) -> tuple[bool, str]:
    """Whether an existing folder is a villagesim result; if not, what it holds."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError as exc:
        return False, f"it cannot be read: {_reason(exc)}"
    if not entries:
        return True, ""
    if MARKER in entries:
        try:
            info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and "kind" in info:
            return True, ""
    names = set(entries)
    for main, files in KNOWN_FILES.values():
        if main in names and names <= files and _only_figures(folder / FIGURES):
            return True, ""
    strange = [e for e in entries if not any(e in files for _m, files in KNOWN_FILES.values())] or entries
    shown = ", ".join(_show(e) for e in strange[:3]) + (", ..." if len(strange) > 3 else "")
    return False, f"it holds {shown}"


def _only_figures(folder: Path) -> bool:
    if not folder.exists():
        return True
    if folder.is_symlink() or not folder.is_dir():
        return False
    return all(p.suffix == ".png" and p.is_file() and not p.is_symlink() for p in folder.iterdir())


def _say(line: str) -> None:
    print(f"villagesim: {line}", file=sys.stderr)


# ---------------------------------------------------------------------------- the folder
class ResultFolder:
    """A claimed results folder: checked, locked, cleaned; see the module docstring.

    Make one with :meth:`claim`; write it with :meth:`writing`.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        kind: str,
        estimate: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        text = os.fspath(target)
        if "\x00" in text:
            raise VillagesimError(f"cannot write results to {_show(text)}: the path contains a null byte")
        if not text.strip():
            raise VillagesimError("cannot write results to an empty path: give a folder name")
        self.display = _show(text)
        self.kind = kind
        self.estimate = int(estimate)
        self.log = log or _say
        self.notes: list[str] = []
        absolute = Path(os.path.abspath(text))
        if Path(text).name in ("", ".", "..") or not absolute.name:  # the current folder, a parent, the root
            raise VillagesimError(f"cannot write results to {self.display}: give a folder below it, e.g. {text}/results")
        self.target = absolute
        self.parent = absolute.parent
        self.name = absolute.name
        self.partial = self.parent / f".{self.name}.partial-{os.getpid()}"
        self.lock_path = self.parent / f".{self.name}.lock"
        self.committed = False
        self._lock_fd: int | None = None
        self._claimed = False
        self._created: Path | None = None  # the topmost folder this claim created

    # ------------------------------------------------------------------ claim
    @classmethod
    @contextlib.contextmanager
    def claim(
        cls,
        target: str | os.PathLike[str],
        *,
        kind: str,
        estimate: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> Iterator[ResultFolder]:
        """Check, lock and clean ``target`` up front; yield the claim; release it at the end.

        Args:
            target: the results folder (anywhere; ``--out`` is the user's choice).
            kind: what it holds (``run``, ``compare``, ``calibration``, ``validation``, ...),
                recorded in the marker.
            estimate: bytes the result may take (:func:`estimate_bytes`); 0 skips the check.
            log: where notes go (a restored earlier result); default: one line on stderr.

        Raises:
            VillagesimError: with one line, if the folder may not or cannot be written.
        """
        rf = cls(target, kind=kind, estimate=estimate, log=log)
        try:
            rf._acquire()
            yield rf
        finally:
            rf._release()

    def _fail(self, what: str) -> VillagesimError:
        return VillagesimError(f"cannot write results to {self.display}: {what}")

    def _acquire(self) -> None:
        try:
            self._make_parent()
            self._check_name_length()
            self._lock()
            self._recover()
            self.check_target()
            self._probe()
            self._check_space()
        except OSError as exc:  # anything the steps below did not foresee: still one line
            raise self._fail(_reason(exc)) from None
        self._claimed = True

    def _make_parent(self) -> None:
        missing = None
        here = self.parent
        while not os.path.lexists(here) and here != here.parent:
            missing = here
            here = here.parent
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise self._fail(f"{_show(self.parent)} is a file, not a folder") from None
        except OSError as exc:
            raise self._fail(f"cannot create the folder {_show(self.parent)}: {_reason(exc)}") from None
        self._created = missing
        if not self.parent.is_dir():
            raise self._fail(f"{_show(self.parent)} is not a folder")

    def _check_name_length(self) -> None:
        try:
            limit = os.pathconf(self.parent, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):
            limit = 255
        longest = len(os.fsencode(f".{self.name}.partial-{9_999_999}"))
        if longest > limit:
            have = len(os.fsencode(self.name))
            raise self._fail(
                f"the folder name is too long ({have} bytes; at most {limit - (longest - have)} here): give a shorter --out"
            )

    def _lock(self) -> None:
        for _ in range(20):
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise self._fail(_reason(exc)) from None
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:  # pragma: no cover - Windows
                    import msvcrt

                    msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError as exc:
                holder = self._holder()
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, errno.EDEADLK):
                    raise VillagesimError(
                        f"{self.display} is being written by another villagesim ({holder}); "
                        "wait for it to finish, or give another --out"
                    ) from None
                self.notes.append(f"file locks do not work here ({_reason(exc)}): not guarded against a concurrent run")
                return
            if os.name != "nt":
                try:  # the holder before us may have removed the file we opened: lock the one on disk
                    same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
            self._lock_fd = fd
            info = {"pid": os.getpid(), "command": " ".join(sys.argv)[:200], "started": _now()}
            with contextlib.suppress(OSError):  # who holds it, for the message of a second run (a full disk: no matter)
                os.ftruncate(fd, 0)
                os.write(fd, (json.dumps(info) + "\n").encode("utf-8"))
            return
        raise self._fail(f"cannot take the lock {_show(self.lock_path)}")

    def _holder(self) -> str:
        try:
            info = json.loads(self.lock_path.read_text(encoding="utf-8"))
            command = " ".join(str(info.get("command", "")).split())
            if len(command) > 80:
                command = command[:77] + "..."
            return f"pid {info['pid']}, since {info.get('started', '?')}" + (f": {command}" if command else "")
        except (OSError, ValueError, KeyError, TypeError):
            return f"lock file {_show(self.lock_path)}"

    def _release(self) -> None:
        self._claimed = False
        shutil.rmtree(self.partial, ignore_errors=True)
        if self._lock_fd is not None:
            if os.name != "nt":
                with contextlib.suppress(OSError):
                    self.lock_path.unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        if not self.committed and self._created is not None:  # folders made for nothing
            here = self.parent
            while True:
                try:
                    here.rmdir()
                except OSError:
                    break
                if here == self._created:
                    break
                here = here.parent

    def _recover(self) -> None:
        """Remove the partial folders of dead runs; restore an earlier result a killed swap left aside."""
        partial, old = f".{self.name}.partial-", f".{self.name}.old-"
        olds = []
        try:
            entries = os.listdir(self.parent)
        except OSError as exc:
            raise self._fail(_reason(exc)) from None
        for entry in entries:
            pid = _suffix_pid(entry, partial)
            if pid is not None and (pid == os.getpid() or not _alive(pid)):
                _remove(self.parent / entry)
                continue
            pid = _suffix_pid(entry, old)
            if pid is not None and (pid == os.getpid() or not _alive(pid)):
                olds.append(self.parent / entry)
        if not olds:
            return
        olds.sort(key=lambda p: p.stat().st_mtime)
        if not os.path.lexists(self.target):
            keep = olds.pop()
            try:
                os.replace(keep, self.target)
            except OSError as exc:
                raise self._fail(f"cannot restore the earlier result from {_show(keep)}: {_reason(exc)}") from None
            note = f"restored the earlier result {self.display} from {keep.name} (a run was killed while replacing it)"
            self.notes.append(note)
            self.log(note)
        for path in olds:
            _remove(path)

    def check_target(self) -> None:
        """Refuse (one line) unless the target is absent, an empty folder or a villagesim result."""
        t = self.target
        if t.is_symlink():
            raise self._fail("it is a symbolic link; give the folder it points to, or another --out")
        if not t.exists():
            return
        if not t.is_dir():
            raise self._fail("a file of that name exists; give another --out, or move or remove the file yourself")
        ok, what = _is_result(t)
        if not ok:
            raise self._fail(
                f"it exists and is not a villagesim results folder ({what}); it was left untouched: "
                "give another --out, or move or remove it yourself"
            )

    def _probe(self) -> None:
        try:
            self.partial.mkdir()
            (self.partial / MARKER).write_bytes(b"")
        except FileExistsError:
            pass
        except OSError as exc:
            raise self._fail(_reason(exc)) from None
        finally:
            shutil.rmtree(self.partial, ignore_errors=True)

    def _check_space(self) -> None:
        if self.estimate <= 0:
            return
        try:
            free = shutil.disk_usage(self.parent).free
        except OSError:
            return
        if free < self.estimate:
            raise self._fail(
                f"not enough free space (about {self.estimate / 1e6:,.0f} MB needed, {free / 1e6:,.0f} MB free "
                f"on the disk of {_show(self.parent)}); free some space or give another --out"
            )

    # ------------------------------------------------------------------ write
    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """Yield the partial folder; on success it becomes the target (replacing an earlier result).

        Raises:
            VillagesimError: a file could not be written (disk full, ...); nothing is left behind.
        """
        if not self._claimed:
            raise RuntimeError("ResultFolder.writing() outside its claim")
        shutil.rmtree(self.partial, ignore_errors=True)
        try:
            self.partial.mkdir()
        except OSError as exc:
            raise self._fail(_reason(exc)) from None
        try:
            yield self.partial
            marker = {"kind": self.kind, "villagesim_version": __version__, "created": _now()}
            (self.partial / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            _fsync_tree(self.partial)
            self.check_target()  # something may have appeared there while the simulation ran
            self._swap()
        except OSError as exc:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise self._fail(f"{_reason(exc)}; nothing was written (an earlier result there is kept)") from exc
        except BaseException:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise
        self.committed = True

    def _swap(self) -> None:
        old = None
        if os.path.lexists(self.target):
            old = self.parent / f".{self.name}.old-{os.getpid()}"
            _remove(old)
            os.replace(self.target, old)
        try:
            os.replace(self.partial, self.target)
        except BaseException:
            if old is not None:
                os.replace(old, self.target)
            raise
        _fsync_dir(self.parent)
        if old is not None:
            _remove(old)


@contextlib.contextmanager
def atomic_folder(target: Path, kind: str = "result") -> Iterator[Path]:
    """Claim ``target`` and yield a temporary folder that becomes it when the block ends without error.

    The one-phase form of :class:`ResultFolder` (checks, lock and writing together), for
    writers whose work before writing is short.
    """
    with ResultFolder.claim(target, kind=kind) as rf, rf.writing() as tmp:
        yield tmp


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(seed: int, scenario_hash: str) -> dict[str, Any]:
    """What produced a result: versions, seed, scenario hash, time, machine."""
    import mesa

    return {
        "villagesim_version": __version__,
        "mesa_version": mesa.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "seed": int(seed),
        "scenario_hash": scenario_hash,
        "created": _now(),
    }


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet (zstd), without the pandas index."""
    df.to_parquet(path, index=False, compression="zstd")


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write JSON with NaN as null."""

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, float | np.floating) and not np.isfinite(x):
            return None
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.floating):
            return float(x)
        return x

    path.write_text(json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_run(folder: str | Path) -> dict[str, Any]:
    """Read a results folder back: ``{"timeseries", "villages", "summary"}``."""
    folder = Path(folder)
    if not (folder / SUMMARY).exists():
        raise VillagesimError(f"not a villagesim results folder (no {SUMMARY}): {folder}")
    return {
        "timeseries": pd.read_parquet(folder / TIMESERIES),
        "villages": pd.read_parquet(folder / VILLAGES),
        "summary": json.loads((folder / SUMMARY).read_text(encoding="utf-8")),
    }
