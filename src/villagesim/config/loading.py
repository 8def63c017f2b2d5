"""Loading scenario files: TOML, ``extends``, interventions, and errors that name file, line and field.

A scenario file states only what differs from the file it ``extends`` (and, at the root,
from the schema defaults in :mod:`villagesim.config.schema`). Tables are merged key by key;
``[[intervention]]`` entries of a child are appended to those of its parent.

Every problem a planner can make becomes one :class:`~villagesim.errors.ScenarioError`
whose text is ``FILE:LINE: FIELD: what is wrong and what was expected``.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import hashlib
import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

# apply_overrides lives with the schema (Scenario.with_overrides calls it), so this module imports the
# schema and never the other way round; it stays importable from here
from villagesim.config.schema import (
    Scenario,
    _describe,
    _set_path,
    apply_overrides,
    check_lever,
    fixed_paths,
    leaf_paths,
)
from villagesim.errors import ScenarioError

__all__ = [
    "LoadedScenario",
    "ReadRules",
    "load_scenario",
    "read_text_file",
    "read_toml_file",
    "apply_overrides",
    "scenario_to_toml",
    "scenario_hash",
    "changed_parameters",
]

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


@dataclass
class LoadedScenario:
    """A validated scenario with where it came from.

    Attributes:
        scenario: the validated scenario.
        path: the file that was loaded.
        chain: the files of the ``extends`` chain, the loaded file first.
    """

    scenario: Scenario
    path: Path
    chain: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Things that are allowed but probably not meant (an intervention after the last
    step, one lever set twice in one week), one line each, ``FILE:LINE: FIELD: ...``."""


# --------------------------------------------------------------------- public API
def load_scenario(path: str | Path, *, rules: ReadRules | None = None) -> LoadedScenario:
    """Read, merge (``extends``) and validate a scenario file.

    Args:
        path: the scenario file.
        rules: which files ``extends`` may read (:class:`ReadRules`); by default any
            regular file relative to the scenario's folder.

    Raises:
        ScenarioError: for a missing file, a TOML syntax error, a wrong type, an
            out-of-range value, an unknown key or lever, a missing ``extends`` target,
            a cycle of ``extends``, or a file the rules do not allow.
    """
    path = Path(path)
    loader = _Loader(rules or ReadRules())
    data, provenance, chain = loader.chain(path)
    try:
        # strict: a file says what it means; "0.1" is not a number and 1 is not true
        scenario = Scenario.model_validate(data, strict=True)
    except ValidationError as exc:
        raise _explain(exc, provenance, path, loader) from None
    warnings = _check_interventions(scenario, provenance, loader)
    return LoadedScenario(scenario=scenario, path=path, chain=chain, warnings=warnings)


def scenario_to_toml(scenario: Scenario) -> str:
    """The fully resolved scenario as TOML text (no ``extends``)."""
    return tomli_w.dumps(scenario.model_dump(mode="json"))


def scenario_hash(scenario: Scenario) -> str:
    """A stable SHA-256 of the resolved scenario (what was run, seed included)."""
    blob = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def changed_parameters(scenario: Scenario) -> dict[str, tuple[Any, Any]]:
    """Parameters whose value differs from the schema default: ``{path: (default, value)}``."""
    out = {}
    for row in Scenario.parameter_table():
        value = scenario.get(row["path"])
        if value != row["default"]:
            out[row["path"]] = (row["default"], value)
    return out


# --------------------------------------------------------------------- loading
Provenance = dict[tuple, Path]

MAX_FILE_BYTES = 8_000_000
"""The largest scenario or experiment file read (bytes); a scenario file is a few kB, 10,000 interventions ~1.3 MB."""
MAX_EXTENDS_DEPTH = 32
"""The longest ``extends`` chain followed."""
MAX_NESTING = 12
"""The deepest nesting of tables and arrays accepted (the schema needs 4)."""
_BARE_NAME = re.compile(r"^[^/\\\x00-\x1f]+$")


@dataclass(frozen=True)
class ReadRules:
    """Which files a scenario may read, and how much of them.

    Unconfined (the command line's default), ``extends`` names a file relative to the
    scenario's folder, or an absolute path. Confined (the browser page, and the command
    line's ``--confine``), ``extends`` may only be a bare file name - ``baseline`` or
    ``baseline.toml``, no folder, no ``..`` - looked up in ``folders`` in order (the files
    uploaded with the scenario, then the shipped scenarios), and errors name files by
    their name only, never a folder of the server.

    Everywhere, only regular files are read (no folders, devices, named pipes or
    sockets), at most ``max_bytes`` of them, and a symlink loop is one error line.

    Attributes:
        confined: whether ``extends`` is restricted to bare names in ``folders``.
        folders: where bare names are looked up when confined.
        max_bytes: the largest file read.
    """

    confined: bool = False
    folders: tuple[Path, ...] = ()
    max_bytes: int = MAX_FILE_BYTES
    allowed: str = "a shipped scenario or a file uploaded with this one"

    @classmethod
    def confined_to(cls, *folders: str | Path, max_bytes: int = MAX_FILE_BYTES, allowed: str | None = None) -> ReadRules:
        """Rules that let ``extends`` name only files in ``folders``, by bare name.

        ``allowed`` says in errors what may be named (default: the page's wording).
        """
        rules = cls(confined=True, folders=tuple(Path(f) for f in folders), max_bytes=max_bytes)
        return rules if allowed is None else dataclasses.replace(rules, allowed=allowed)

    def shown(self, path: Path | str | None) -> str | None:
        """How a file is named in an error: its bare name when confined."""
        if path is None:
            return None
        return Path(path).name if self.confined else str(path)


def read_text_file(path: str | Path, rules: ReadRules | None = None, *, what: str = "scenario file") -> str:
    """Read a small UTF-8 text file safely: a regular file, bounded in size, BOM removed.

    The file is opened without blocking and checked on its open descriptor, so a named
    pipe, a device or a file swapped for one after the check is refused, never waited on.

    Raises:
        ScenarioError: a missing file, a folder, a special file, a symlink loop, a file
            too large, or one that is not UTF-8 text.
    """
    rules = rules or ReadRules()
    path = Path(path)
    shown = rules.shown(path)
    if "\x00" in str(path):
        raise ScenarioError(f"a file name cannot contain a null byte: {shown!r}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ScenarioError(f"{what} not found: {shown}") from None
    except IsADirectoryError:
        raise ScenarioError(f"expected a {what} but found a folder: {shown}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ScenarioError(f"cannot read {shown}: a loop of symbolic links") from None
        raise ScenarioError(f"cannot read {what}: {exc.strerror}", file=shown) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError(f"expected a {what} but found a folder: {shown}")
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"expected a {what} but found a device, pipe or socket: {shown}")
        if info.st_size > rules.max_bytes:
            raise ScenarioError(f"file too large ({info.st_size:,} bytes; at most {rules.max_bytes:,} are read)", file=shown)
        chunks, size = [], 0
        while size <= rules.max_bytes:  # the size can change after fstat: read no more than the bound
            chunk = os.read(fd, min(65536, rules.max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > rules.max_bytes:
            raise ScenarioError(f"file too large (more than {rules.max_bytes:,} bytes)", file=shown)
    except OSError as exc:
        raise ScenarioError(f"cannot read {what}: {exc.strerror}", file=shown) from None
    finally:
        os.close(fd)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8", file=shown) from None
    return text.removeprefix("\ufeff")  # Notepad's byte-order mark


def read_toml_file(path: str | Path, rules: ReadRules | None = None, *, what: str = "scenario file") -> dict[str, Any]:
    """Read and parse a TOML file with :func:`read_text_file`'s rules; errors name file and line."""
    rules = rules or ReadRules()
    return parse_toml(read_text_file(path, rules, what=what), rules.shown(path))


def parse_toml(text: str, shown: str | None) -> dict[str, Any]:
    """Parse TOML text; a syntax error, or nesting deeper than :data:`MAX_NESTING`, is one line."""
    if _nesting_bound_exceeded(text):
        raise ScenarioError(f"tables or arrays nested more than {MAX_NESTING} deep", file=shown)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POSITION.search(msg)
        line = int(m.group(1)) if m else None
        msg = _TOML_POSITION.sub("", msg)
        col = f", column {m.group(2)}" if m else ""
        raise ScenarioError(f"TOML syntax error{col}: {msg}", file=shown, line=line) from None
    except RecursionError:
        raise ScenarioError(f"tables or arrays nested more than {MAX_NESTING} deep", file=shown) from None
    depth = _depth(data)
    if depth > MAX_NESTING:
        raise ScenarioError(f"tables or arrays nested {depth} deep (at most {MAX_NESTING})", file=shown)
    return data


def _nesting_bound_exceeded(text: str) -> bool:
    """A cheap upper bound on bracket nesting, so that the parser never recurses deeply.

    Brackets inside strings count too, which can only over-estimate; the bound is then
    loose (4x the limit) so that ordinary text in strings never trips it.
    """
    depth = best = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return best > 4 * MAX_NESTING


def _depth(data: Any) -> int:
    """Nesting depth of parsed TOML, without recursion."""
    best, todo = 0, [(data, 0)]
    while todo:
        node, d = todo.pop()
        if isinstance(node, dict):
            todo += [(v, d + 1) for v in node.values()]
        elif isinstance(node, list):
            todo += [(v, d + 1) for v in node]
        else:
            best = max(best, d)
            continue
        best = max(best, d)
        if best > MAX_NESTING:
            return best
    return best


class _Loader:
    """Follows one ``extends`` chain under a set of :class:`ReadRules`."""

    def __init__(self, rules: ReadRules) -> None:
        self.rules = rules
        self.texts: dict[Path, str] = {}

    def read(self, path: Path) -> dict[str, Any]:
        text = read_text_file(path, self.rules)
        self.texts[path] = text
        return parse_toml(text, self.rules.shown(path))

    def line(self, path: Path, loc: tuple) -> int | None:
        return find_line(path, loc, text=self.texts.get(path))

    def parent_of(self, path: Path, extends: str) -> Path:
        """The file that ``extends`` names, under the rules."""
        where = dict(file=self.rules.shown(path), line=self.line(path, ("extends",)), field="extends")
        if not self.rules.confined:
            if "\x00" in extends:
                raise ScenarioError("a file name cannot contain a null byte", **where)
            parent = path.parent / extends
            if not parent.exists() and not parent.is_symlink():
                raise ScenarioError(f"extends a file that does not exist: {extends} (looked for {parent})", **where)
            return parent
        if not _BARE_NAME.match(extends) or extends in (".", "..") or extends.startswith("."):
            raise ScenarioError(
                f"extends may name only {self.rules.allowed}, by its name (such as baseline.toml), not a path (got {extends!r})",
                **where,
            )
        names = [extends] if extends.endswith(".toml") else [extends + ".toml", extends]
        for folder in self.rules.folders:
            for name in names:
                candidate = folder / name
                if candidate.is_file() and not candidate.is_symlink():
                    return candidate
        known = sorted({p.name for f in self.rules.folders if f.is_dir() for p in f.glob("*.toml")})
        raise ScenarioError(
            f"extends {extends!r}, which is not {self.rules.allowed}" + (f" (known: {', '.join(known)})" if known else ""),
            **where,
        )

    def chain(self, path: Path) -> tuple[dict[str, Any], Provenance, list[Path]]:
        """Read ``path`` and its ancestors (iteratively) and merge them, the root first."""
        files: list[Path] = []
        raws: list[dict[str, Any]] = []
        seen: list[Path] = []
        current = path
        while True:
            raw = self.read(current)
            files.append(current)
            raws.append(raw)
            seen.append(_identity(current))
            extends = raw.pop("extends", None)
            if extends is None:
                break
            where = dict(file=self.rules.shown(current), line=self.line(current, ("extends",)), field="extends")
            if not isinstance(extends, str):
                raise ScenarioError("expected the name of another scenario file (a string)", **where)
            if len(files) >= MAX_EXTENDS_DEPTH:
                raise ScenarioError(f"a chain of extends longer than {MAX_EXTENDS_DEPTH} files", **where)
            parent = self.parent_of(current, extends)
            if _identity(parent) in seen:
                cycle = " -> ".join(p.name for p in files + [parent])
                raise ScenarioError(f"cycle of extends: {cycle}", **where)
            current = parent
        merged: dict[str, Any] = {}
        provenance: Provenance = {}
        for file, raw in zip(reversed(files), reversed(raws), strict=True):
            offset = len(merged.get("intervention", [])) if isinstance(merged.get("intervention"), list) else 0
            merged = _merge(merged, raw)
            for leaf in _leaves(raw):
                provenance[leaf] = file
            if "intervention" in raw and isinstance(raw["intervention"], list):
                for i in range(len(raw["intervention"])):
                    provenance[("intervention", offset + i)] = file
                    provenance[("intervention", offset + i, "__local__")] = i  # type: ignore[assignment]
        return merged, provenance, files


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: read_text_file refuses it with one line
        return path.absolute()


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "intervention" and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _leaves(data: dict[str, Any], prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and key != "set":
            out.append(prefix + (key,))
            out += _leaves(value, prefix + (key,))
        else:
            out.append(prefix + (key,))
    return out


# --------------------------------------------------------------------- errors
def _explain(exc: ValidationError, provenance: Provenance, root: Path, loader: _Loader) -> ScenarioError:
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    file, local_loc = _origin(loc, provenance, root)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ScenarioError(
        _describe(err) + more,
        file=loader.rules.shown(file),
        line=loader.line(file, local_loc),
        field=".".join(str(p) for p in loc) or None,
    )


def _origin(loc: tuple, provenance: Provenance, root: Path) -> tuple[Path, tuple]:
    """The file that set the value at ``loc`` (longest matching prefix), and loc within it."""
    for n in range(len(loc), 0, -1):
        prefix = loc[:n]
        if prefix in provenance and isinstance(provenance[prefix], Path):
            local = loc
            if loc[:1] == ("intervention",) and len(loc) > 1:
                idx = provenance.get(("intervention", loc[1], "__local__"), loc[1])
                local = ("intervention", idx) + loc[2:]
            return provenance[prefix], local
    # a section-level check (cross-field): the most derived file that touched the section
    for key, value in provenance.items():
        if isinstance(value, Path) and key[: len(loc)] == loc:
            return value, loc
    return root, loc


def _check_interventions(scenario: Scenario, provenance: Provenance, loader: _Loader) -> list[str]:
    """Validate the scenario as it will be after each week's interventions; return warnings.

    Interventions are applied in the order the model applies them (by week, then in file
    order) to one running copy of the parameters, and the copy is validated once per week
    that has interventions, so the check is linear in their number and catches values that
    are invalid only together (``migration_max_age`` below ``migration_min_age`` set by two
    interventions, every budget share 0 at week 500).
    """
    items = scenario.intervention
    if not items:
        return []
    known, fixed = leaf_paths(), fixed_paths()
    where = _InterventionPlaces(scenario, provenance, loader)
    for i, item in enumerate(items):
        for key in item.set:
            if key not in known or key in fixed:  # the places are looked up only for a refusal
                check_lever(key, **where.of(i, key))

    warnings: list[str] = []
    steps = scenario.run.steps
    for i, item in enumerate(items):
        if item.step > steps:
            place = where.of(i, "step")
            warnings.append(
                str(
                    ScenarioError(
                        f"week {item.step} is after the last step (run.steps = {steps}): this change never takes effect",
                        **place,
                    )
                )
            )

    data = scenario.model_dump(exclude={"intervention"})
    order = sorted(range(len(items)), key=lambda k: items[k].step)  # stable: file order within a week
    start = 0
    while start < len(order):
        week = items[order[start]].step
        end = start
        setter: dict[str, int] = {}
        while end < len(order) and items[order[end]].step == week:
            i = order[end]
            for key, value in items[i].set.items():
                if key in setter:  # an earlier intervention of this week set it (a dict holds a key once)
                    first = where.of(setter[key], key)
                    warnings.append(
                        str(
                            ScenarioError(
                                f"set again in week {week} (also at line {first['line']}); the later value wins",
                                **where.of(i, key),
                            )
                        )
                    )
                setter[key] = i
                _set_path(data, key.split("."), value)
            end += 1
        try:
            Scenario.model_validate(data, strict=True)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = tuple(str(p) for p in err["loc"])
            culprit, key = _responsible(loc, setter, [order[k] for k in range(start, end)], items)
            field = ".".join(loc)
            raise ScenarioError(
                f"{_describe(err)}; in the scenario as it is from week {week} on"
                + (f" ({field})" if not key.startswith(field) else ""),
                **where.of(culprit, key),
            ) from None
        start = end
    return warnings


def _responsible(loc: tuple[str, ...], setter: dict[str, int], group: list[int], items: list) -> tuple[int, str]:
    """The intervention of one week (and its key) that made the field at ``loc`` invalid."""
    for n in range(len(loc), 0, -1):  # the key that set the field, or the list holding it
        key = ".".join(loc[:n])
        if key in setter:
            return setter[key], key
    section = ".".join(loc)  # a check across a section's fields: the last change inside it
    for i in reversed(group):
        for key in reversed(list(items[i].set)):
            if key.startswith(section + ".") or not section:
                return i, key
    last = group[-1]
    return last, next(iter(items[last].set), "step")


class _InterventionPlaces:
    """File, line and field of ``[[intervention]]`` entries, found once per file (linear)."""

    _HEADER = re.compile(r"^\s*\[\[\s*intervention\s*\]\]")

    def __init__(self, scenario: Scenario, provenance: Provenance, loader: _Loader) -> None:
        self.provenance = provenance
        self.loader = loader
        self.root = Path(scenario.name)
        self.headers: dict[Path, list[int]] = {}
        self.lines: dict[Path, list[str]] = {}

    def of(self, i: int, key: str) -> dict[str, Any]:
        file, local = _origin(("intervention", i), self.provenance, self.root)
        k = local[1] if len(local) > 1 else i
        line = None
        if file not in self.headers:
            self.lines[file] = self.loader.texts.get(file, "").splitlines()
            self.headers[file] = [n for n, ln in enumerate(self.lines[file], start=1) if self._HEADER.match(ln)]
        headers = self.headers[file]
        if isinstance(k, int) and k < len(headers):
            line = headers[k]
            text_lines = self.lines[file]
            stop = headers[k + 1] if k + 1 < len(headers) else len(text_lines) + 1
            body = range(line + 1, min(stop, line + 200))
            if key == "step":
                wanted = [re.compile(r"^\s*step\s*=")]
            else:  # the key's own line (a multi-line `set` table), else the `set = {...}` line
                wanted = [re.compile(rf"""["']{re.escape(key)}["']\s*="""), re.compile(r"^\s*set\s*=")]
            for pattern in wanted:
                found = next((n for n in body if pattern.search(text_lines[n - 1])), None)
                if found is not None:
                    line = found
                    break
        else:
            line = self.loader.line(file, local)
        field = f"intervention[{k}].step" if key == "step" else f"intervention[{k}].set.{key}"
        return {"file": self.loader.rules.shown(file), "line": line, "field": field}


# --------------------------------------------------------------------- line finding
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[A-Za-z0-9_\-]+""", key)
    return tuple(p.strip("\"'") for p in parts)


def find_line(file: Path | str | None, loc: tuple, *, text: str | None = None) -> int | None:
    """Best-effort 1-based line in ``file`` that sets the field at ``loc``.

    Tracks ``[table]`` and ``[[array]]`` headers; returns the line of the longest prefix
    of ``loc`` found (the key itself, else its table header).
    """
    if text is None:
        if file is None:
            return None
        try:
            text = read_text_file(file)
        except ScenarioError:
            return None
    lines = text.splitlines()
    table: tuple = ()
    counts: dict[tuple, int] = {}
    best, best_len = None, 0
    for number, line in enumerate(lines, start=1):
        m = _HEADER.match(line)
        if m and not _KEY.match(line):
            parts = _split_key(m.group(2))
            if m.group(1) == "[[":
                idx = counts.get(parts, -1) + 1
                counts[parts] = idx
                table = parts + (idx,)
            else:
                table = parts
            path = table
        else:
            k = _KEY.match(line)
            if not k:
                continue
            path = table + _split_key(k.group(1))
        n = _common(path, loc)
        if n > best_len or (n == best_len and n == len(path) and best is None):
            best, best_len = number, n
    return best


def _common(path: tuple, loc: tuple) -> int:
    if len(path) > len(loc):
        return 0
    for a, b in zip(path, loc, strict=False):
        if a != b and str(a) != str(b):
            return 0
    return len(path)
