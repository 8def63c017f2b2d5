"""Options shared by the commands that read a scenario: ``--confine``, ``--max-memory``, warnings.

``--confine`` applies the browser page's reading rules on the command line: ``extends`` may
name only a file in the scenario's own folder, by its bare name (no folder, no ``..``, no
absolute path), which is what a shared server or a batch job that runs other people's
scenario files wants. ``--max-memory GIB`` raises (or lowers) the memory a run may be
predicted to take before it is refused (default: ``VILLAGESIM_MAX_MEMORY_GIB``, else half
of the machine's memory).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from villagesim.errors import VillagesimError

if TYPE_CHECKING:
    from villagesim.config.loading import LoadedScenario

WARNINGS_SHOWN = 10
"""At most this many warnings of one file are printed (then a count of the rest)."""


def add_confine(p: argparse.ArgumentParser) -> None:
    """Add ``--confine`` to a command that reads scenario files."""
    p.add_argument(
        "--confine",
        action="store_true",
        help="extends may name only a file in the scenario's own folder, by name (the page's rule)",
    )


def add_max_memory(p: argparse.ArgumentParser) -> None:
    """Add ``--max-memory GIB`` to a command that runs a scenario."""
    p.add_argument(
        "--max-memory",
        type=float,
        metavar="GIB",
        help="refuse a run predicted to need more memory than this (default: half the machine's memory)",
    )


def max_memory(args: argparse.Namespace) -> int | None:
    """``--max-memory`` in bytes, or None for the default limit."""
    gib = getattr(args, "max_memory", None)
    if gib is None:
        return None
    if not (math.isfinite(gib) and gib > 0):
        raise VillagesimError(f"--max-memory must be a positive number of GiB (got {gib})")
    return int(gib * 2**30)


def load(path: str | Path, args: argparse.Namespace, *, warn: bool = True) -> LoadedScenario:
    """Load a scenario under the command's reading rules and print its warnings to stderr."""
    from villagesim.config.loading import ReadRules, load_scenario

    path = Path(path)
    rules = None
    if getattr(args, "confine", False):
        rules = ReadRules.confined_to(path.parent, allowed=f"a scenario file in {path.parent or '.'}/")
    loaded = load_scenario(path, rules=rules)
    if warn:
        print_warnings(loaded.warnings)
    return loaded


def print_warnings(warnings: list[str]) -> None:
    """Print ``villagesim: warning: ...`` lines, at most :data:`WARNINGS_SHOWN` of them."""
    for line in warnings[:WARNINGS_SHOWN]:
        print(f"villagesim: warning: {line}", file=sys.stderr)
    if len(warnings) > WARNINGS_SHOWN:
        print(f"villagesim: warning: ... and {len(warnings) - WARNINGS_SHOWN:,} more warnings", file=sys.stderr)
