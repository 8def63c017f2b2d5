"""How big a run will be, before anything is allocated, and the limit above which it is refused.

A scenario of 5,000 villages of 100,000 persons validates field by field, yet needs far
more memory than any laptop has; 5,000 villages recorded every week for 100 years
records 26 million village rows. :func:`estimate` predicts persons, recorded rows and
memory from the scenario alone, and :func:`check_size` refuses a run whose prediction is
above the limit with one line that says how to proceed. ``villagesim check`` prints the
prediction; ``villagesim run`` and ``compare`` refuse above the limit unless
``--max-memory`` raises it; the browser page applies its own, smaller limits.

The bytes per person and per recorded row are measured (``tests/config/test_limits.py``
checks the estimate against the memory a model really allocates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from villagesim.errors import ScenarioError

if TYPE_CHECKING:
    from villagesim.config.schema import Scenario

__all__ = ["RunSize", "estimate", "memory_limit", "check_size", "BYTES_PER_PERSON", "BYTES_PER_VILLAGE_ROW"]

BYTES_PER_PERSON = 450
"""Peak bytes per registered person while a model is built and stepped (measured: 380-415)."""
BYTES_PER_VILLAGE_ROW = 900
"""Bytes per recorded village-row: ~420 while recording, doubled when the record becomes a table."""
BYTES_PER_STEP = 12_000
"""Bytes per step of the scenario-wide time series (measured ~10 kB)."""
BASE_BYTES = 300 * 2**20
"""What the interpreter, numpy, numba and Mesa take before a model exists."""
ENV_LIMIT = "VILLAGESIM_MAX_MEMORY_GIB"


@dataclass(frozen=True)
class RunSize:
    """The predicted size of a run.

    Attributes:
        persons: registered persons of one replicate.
        village_rows: per-village rows recorded over all replicates.
        steps: weekly steps of one replicate.
        replicates: replicates held in memory together (their records are gathered).
        bytes: predicted peak memory of the run, in bytes.
    """

    persons: int
    village_rows: int
    steps: int
    replicates: int
    bytes: int

    @property
    def gib(self) -> float:
        """Predicted peak memory in GiB."""
        return self.bytes / 2**30

    def describe(self) -> str:
        """One line for ``villagesim check``."""
        return (
            f"{self.persons:,} persons per replicate, {self.village_rows:,} recorded village rows; "
            f"about {_human(self.bytes)} of memory"
        )


def estimate(scenario: Scenario, *, concurrent: int = 1, record_villages: bool = True) -> RunSize:
    """Predict persons, recorded rows and peak memory of ``scenario`` without building it.

    Args:
        scenario: the validated scenario.
        concurrent: replicates built at the same time (worker processes on this machine).
        record_villages: whether per-village rows are kept (a sweep keeps only the totals).
    """
    pop = scenario.population
    run = scenario.run
    persons = int(pop.villages) * int(pop.residents_per_village)
    rows_per_replicate = int(pop.villages) * (int(run.steps) // int(run.village_report_every) + 1) if record_villages else 0
    village_rows = rows_per_replicate * int(run.replicates)
    in_flight = max(1, min(int(concurrent), int(run.replicates)))
    peak = (
        BASE_BYTES
        + in_flight * persons * BYTES_PER_PERSON
        + village_rows * BYTES_PER_VILLAGE_ROW
        + int(run.steps) * int(run.replicates) * BYTES_PER_STEP
    )
    return RunSize(persons=persons, village_rows=village_rows, steps=int(run.steps), replicates=int(run.replicates), bytes=peak)


def memory_limit() -> int:
    """The largest predicted memory a run may take, in bytes.

    ``VILLAGESIM_MAX_MEMORY_GIB`` if set, otherwise half of this machine's physical
    memory (8 GiB where it cannot be read).
    """
    text = os.environ.get(ENV_LIMIT)
    if text:
        try:
            gib = float(text)
        except ValueError:
            raise ScenarioError(f"{ENV_LIMIT} must be a number of GiB (got {text!r})") from None
        if not gib > 0:
            raise ScenarioError(f"{ENV_LIMIT} must be positive (got {text!r})")
        return int(gib * 2**30)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def check_size(
    scenario: Scenario,
    *,
    limit: int | None = None,
    concurrent: int = 1,
    record_villages: bool = True,
    file: str | None = None,
    how: str | None = None,
) -> RunSize:
    """Refuse a run predicted to need more than ``limit`` bytes, before anything is allocated.

    Args:
        scenario: the validated scenario.
        limit: bytes allowed; :func:`memory_limit` when None.
        concurrent: replicates built at the same time.
        record_villages: whether per-village rows are kept.
        file: the scenario file, named in the error.
        how: what the user can do to proceed, appended to the error (the command line
            says ``--max-memory``; the page says nothing can be raised there).

    Returns:
        the prediction, when it fits.

    Raises:
        ScenarioError: one line with persons, rows, predicted and allowed memory.
    """
    size = estimate(scenario, concurrent=concurrent, record_villages=record_villages)
    allowed = memory_limit() if limit is None else int(limit)
    if size.bytes > allowed:
        advice = how or (
            "use fewer villages, persons, steps or replicates, a larger run.village_report_every, "
            f"or raise the limit with --max-memory GIB (or {ENV_LIMIT})"
        )
        raise ScenarioError(
            f"this run would need about {_human(size.bytes)} of memory ({size.persons:,} persons, "
            f"{size.village_rows:,} recorded village rows), more than the {_human(allowed)} allowed; {advice}",
            file=file,
        )
    return size


def _human(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:,.1f} GiB"
    return f"{n / 2**20:,.0f} MiB"
