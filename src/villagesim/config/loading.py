"""Loading scenario files: TOML, ``extends``, interventions, and errors that name file, line and field.

A scenario file states only what differs from the file it ``extends`` (and, at the root,
from the schema defaults in :mod:`villagesim.config.schema`). Tables are merged key by key;
``[[intervention]]`` entries of a child are appended to those of its parent.

Every problem a planner can make becomes one :class:`~villagesim.errors.ScenarioError`
whose text is ``FILE:LINE: FIELD: what is wrong and what was expected``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

# apply_overrides lives with the schema (Scenario.with_overrides calls it), so this module imports the
# schema and never the other way round; it stays importable from here
from villagesim.config.schema import Scenario, _describe, _suggest, apply_overrides, leaf_paths
from villagesim.errors import ScenarioError

__all__ = ["LoadedScenario", "load_scenario", "apply_overrides", "scenario_to_toml", "scenario_hash", "changed_parameters"]

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


# --------------------------------------------------------------------- public API
def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, merge (``extends``) and validate a scenario file.

    Raises:
        ScenarioError: for a missing file, a TOML syntax error, a wrong type, an
            out-of-range value, an unknown key or lever, a missing ``extends`` target
            or a cycle of ``extends``.
    """
    path = Path(path)
    data, provenance, chain = _load_chain(path, [])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, provenance, path) from None
    _check_interventions(scenario, data, provenance)
    return LoadedScenario(scenario=scenario, path=path, chain=chain)


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


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ScenarioError(f"scenario file not found: {path}")
    if path.is_dir():
        raise ScenarioError(f"expected a scenario file but found a folder: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read file: {exc}", file=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POSITION.search(msg)
        line = int(m.group(1)) if m else None
        msg = _TOML_POSITION.sub("", msg)
        col = f", column {m.group(2)}" if m else ""
        raise ScenarioError(f"TOML syntax error{col}: {msg}", file=path, line=line) from None


def _load_chain(path: Path, stack: list[Path]) -> tuple[dict[str, Any], Provenance, list[Path]]:
    raw = _read_toml(path)
    extends = raw.pop("extends", None)
    provenance: Provenance = {}
    chain = [path]
    base: dict[str, Any] = {}
    if extends is not None:
        if not isinstance(extends, str):
            raise ScenarioError(
                "expected the name of another scenario file (a string)",
                file=path,
                line=find_line(path, ("extends",)),
                field="extends",
            )
        parent = path.parent / extends
        if parent.resolve() in [p.resolve() for p in stack + [path]]:
            cycle = " -> ".join(p.name for p in stack + [path, parent])
            raise ScenarioError(f"cycle of extends: {cycle}", file=path, line=find_line(path, ("extends",)), field="extends")
        if not parent.exists():
            raise ScenarioError(
                f"extends a file that does not exist: {extends} (looked for {parent})",
                file=path,
                line=find_line(path, ("extends",)),
                field="extends",
            )
        base, provenance, parent_chain = _load_chain(parent, stack + [path])
        chain += parent_chain
    merged = _merge(base, raw)
    for leaf in _leaves(raw):
        provenance[leaf] = path
    if "intervention" in raw and isinstance(raw["intervention"], list):
        offset = len(base.get("intervention", [])) if isinstance(base.get("intervention"), list) else 0
        for i in range(len(raw["intervention"])):
            provenance[("intervention", offset + i)] = path
            provenance[("intervention", offset + i, "__local__")] = i  # type: ignore[assignment]
    return merged, provenance, chain


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
def _explain(exc: ValidationError, provenance: Provenance, root: Path) -> ScenarioError:
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    file, local_loc = _origin(loc, provenance, root)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ScenarioError(
        _describe(err) + more,
        file=file,
        line=find_line(file, local_loc),
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


def _check_interventions(scenario: Scenario, data: dict[str, Any], provenance: Provenance) -> None:
    known = leaf_paths()
    for i, item in enumerate(scenario.intervention):
        file, local = _origin(("intervention", i), provenance, Path(scenario.name))
        line = find_line(file, local)
        for key, value in item.set.items():
            if key not in known:
                raise ScenarioError(
                    f"unknown lever{_suggest(key, known)}", file=file, line=line, field=f"intervention[{local[1]}].set.{key}"
                )
            try:
                apply_overrides(scenario, {key: value})
            except ScenarioError as exc:
                raise ScenarioError(exc.message, file=file, line=line, field=f"intervention[{local[1]}].set.{key}") from None


# --------------------------------------------------------------------- line finding
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[A-Za-z0-9_\-]+""", key)
    return tuple(p.strip("\"'") for p in parts)


def find_line(file: Path | str | None, loc: tuple) -> int | None:
    """Best-effort 1-based line in ``file`` that sets the field at ``loc``.

    Tracks ``[table]`` and ``[[array]]`` headers; returns the line of the longest prefix
    of ``loc`` found (the key itself, else its table header).
    """
    if file is None:
        return None
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
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
