"""The per-step scratch record shared by the processes of one step.

A :class:`Week` is created at the start of each step and discarded after the outputs are
recorded. Arrays indexed "per elder" follow ``Week.elders`` (row numbers of resident
elders after demography and health); arrays "per person" follow the person table.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from villagesim.jit import njit
from villagesim.processes.base import Output

KINDS = ("daily_living", "meals", "companionship", "professional")
"""Kinds of need, the columns of ``Week.need``."""
DAILY, MEALS, COMPANION, PROFESSIONAL = range(4)
GENERAL_KINDS = [DAILY, MEALS, COMPANION]
"""Kinds any volunteer or family member can give."""

SPEND_SUBSIDIES = Output(
    "spend_subsidies",
    "RMB/week",
    "Spending on subsidies",
    "Incentives per volunteer hour, alarms, insurance premiums and time-bank guaranteed care.",
)
"""Reported by two processes: matching (guaranteed care) and finance (the rest)."""


@dataclass(frozen=True)
class Source:
    """A source of met hours: its name (``met_hours_<name>``), label and chart colour."""

    name: str
    label: str
    colour: str


MET_SOURCES: tuple[Source, ...] = (
    Source("family", "Family", "#4c72b0"),
    Source("volunteer", "Volunteers", "#55a868"),
    Source("peer", "Peer elders (young-old)", "#8fd694"),
    Source("facility", "Facilities (happiness homes etc.)", "#c44e52"),
    Source("ngo", "NGOs", "#8172b2"),
    Source("time_bank", "Time-bank redemptions", "#ccb974"),
)
"""Sources of met hours, in the order of the outputs (family first: the rest are "services").
A new source is one entry here and the ``week.add_met`` call of the process giving it."""

SOURCES = tuple(s.name for s in MET_SOURCES)
"""Names of the sources of met hours (``met_hours_<source>``)."""


@dataclass
class Week:
    """Scratch state of one step."""

    step: int
    n_villages: int
    n_persons: int
    # the levers as funded this week (set by the funding process; a Scenario)
    levers: Any = None
    # demography and health events (per person masks; per village counts derive from them)
    died: np.ndarray | None = None
    left: np.ndarray | None = None
    returned: np.ndarray | None = None
    born: np.ndarray | None = None  # per person: rows added by this week's births
    emergency: np.ndarray | None = None
    late: np.ndarray | None = None
    answer_hours: np.ndarray | None = None  # per person, hours to answer this week's emergency
    # household composition after demography
    household_residents: np.ndarray | None = None  # per household
    # elders and their need
    elders: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    alone: np.ndarray | None = None  # per elder
    need: np.ndarray | None = None  # per elder x kind, hours
    remaining: np.ndarray | None = None  # per elder x kind, hours not yet met
    met: dict[str, np.ndarray] = field(default_factory=dict)  # source -> per elder hours
    # help-seeking
    asked: np.ndarray | None = None  # per elder bool
    requested_hours: np.ndarray | None = None  # per elder, hours asked for
    matched: np.ndarray | None = None  # per elder bool: got any help through a match
    # time budgets (family process): hours given to family care, hours left to volunteer
    family_hours: np.ndarray | None = None  # per person
    free_hours: np.ndarray | None = None  # per person
    # volunteering
    candidates: np.ndarray | None = None  # per person bool
    # matches of this step: elder row, helper row, hours (for maps and checks)
    pair_elder: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_helper: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_hours: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    pair_channel: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))  # 0 manual, 1 platform
    handled: np.ndarray | None = None  # per elder bool: the committee took the request up
    # per-village sums reported by the governance processes (names from metrics.SUM_COLUMNS or hidden ones)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def report(self, name: str, per_village: np.ndarray) -> None:
        """Add a per-village amount to output column ``name`` for this step."""
        if name in self.extra:
            self.extra[name] = self.extra[name] + per_village
        else:
            self.extra[name] = np.asarray(per_village, dtype=np.float64).copy()

    def add_met(self, source: str, per_elder_hours: np.ndarray) -> None:
        """Add hours met from ``source`` (per elder)."""
        if source in self.met:
            self.met[source] = self.met[source] + per_elder_hours
        else:
            self.met[source] = per_elder_hours.astype(np.float32, copy=True)

    def met_of(self, source: str) -> np.ndarray:
        """Hours met from ``source`` per elder (zeros if none)."""
        if source in self.met:
            return self.met[source]
        return np.zeros(len(self.elders), dtype=np.float32)


def row_total(a: np.ndarray) -> np.ndarray:
    """Sum over the columns of a (rows x kinds) array, column by column.

    The same numbers as ``a.sum(axis=1)`` (left to right, in the array's dtype) at a
    fraction of its cost for a few columns and many rows: numpy's axis-1 reduction pays a
    loop start per row.
    """
    if a.ndim != 2 or a.shape[1] == 0:
        return a.sum(axis=1)
    out = a[:, 0].copy()
    for k in range(1, a.shape[1]):
        out += a[:, k]
    return out


def rank_within(groups: np.ndarray) -> np.ndarray:
    """For an array sorted by group, the 0-based position of each element within its group."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    positions = np.arange(n)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(groups[1:], groups[:-1], out=new[1:])
    # the start of each element's group: the last group start at or before it
    return positions - np.maximum.accumulate(np.where(new, positions, 0))


def neighbour_rows(neighbours) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The arrays of a CSR neighbour matrix for the kernels: ``indptr``, ``indices``, ``data``
    and whether every stored entry is 1.0 (worked out once per matrix).

    Row ``i`` of ``neighbours @ values`` as scipy computes it is the sum, from 0.0, of
    ``data[jj] * values[indices[jj]]`` for ``jj`` in ``indptr[i]:indptr[i + 1]`` in that order;
    where every entry is 1.0 each product is the value itself.
    """
    if neighbours.format != "csr":
        raise TypeError("the neighbour matrix must be CSR")
    state = _state(neighbours)
    return neighbours.indptr, neighbours.indices, neighbours.data, state.ones


class _NeighbourCounts:
    """What :func:`neighbour_count_sum` keeps about one neighbour matrix."""

    def __init__(self, matrix) -> None:
        self.matrix = weakref.ref(matrix)
        # products with whole numbers are summed exactly in any order only for 0/1 entries
        self.exact = bool(np.all((matrix.data == 0.0) | (matrix.data == 1.0)))
        # columns of the matrix: its rows where it is symmetric (a neighbour graph is), no copy
        columns = matrix if (matrix != matrix.T).nnz == 0 else matrix.tocsc()
        self.indptr, self.indices, self.data = columns.indptr, columns.indices, columns.data
        self.ones = bool(np.all(matrix.data == 1.0))
        self.last: dict[str, tuple[np.ndarray, np.ndarray]] = {}


_NEIGHBOUR_COUNTS: dict[int, _NeighbourCounts] = {}


def _state(neighbours) -> _NeighbourCounts:
    """What is kept about ``neighbours`` (made on first use)."""
    state = _NEIGHBOUR_COUNTS.get(id(neighbours))
    if state is None or state.matrix() is not neighbours:
        for stale in [k for k, v in _NEIGHBOUR_COUNTS.items() if v.matrix() is None]:
            del _NEIGHBOUR_COUNTS[stale]
        state = _NeighbourCounts(neighbours)
        _NEIGHBOUR_COUNTS[id(neighbours)] = state
    return state


@njit
def _count_product(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    counts: np.ndarray,
    last_counts: np.ndarray,
    last_product: np.ndarray,
) -> np.ndarray:
    """``matrix @ counts`` for whole-number ``counts`` and a 0/1 matrix given by its columns
    (``indptr``, ``indices``, ``data`` of its CSC form, or of its CSR form if symmetric).

    Every partial sum is a whole number, exact in any order, so this equals the sparse product.
    Worked out as ``last_product`` plus the columns of the households whose count changed since
    ``last_counts``, or, where that touches more entries, as the sum of the columns of the
    non-zero counts.
    """
    n = len(counts)
    changed = 0
    nonzero = 0
    for h in range(n):
        # without branches (which households changed is not predictable)
        length = indptr[h + 1] - indptr[h]
        changed += length * (counts[h] != last_counts[h])
        nonzero += length * (counts[h] != 0.0)
    # one array for both ways (an array variable assigned in two branches compiles to slow code)
    out = np.zeros(n, dtype=np.float64)
    if changed <= nonzero:
        out[:] = last_product
        for h in range(n):
            if counts[h] != last_counts[h]:
                change = counts[h] - last_counts[h]
                for jj in range(indptr[h], indptr[h + 1]):
                    out[indices[jj]] += change * data[jj]
    else:
        for h in range(n):
            if counts[h] != 0.0:
                for jj in range(indptr[h], indptr[h + 1]):
                    out[indices[jj]] += counts[h] * data[jj]
    return out


def neighbour_count_sum(neighbours, key: str, counts: np.ndarray) -> np.ndarray:
    """``neighbours @ counts`` for a per-household vector of counts.

    ``counts`` must hold whole numbers (as ``np.bincount`` of a mask gives): then every
    entry of the product with a 0/1 matrix is a whole number, summed exactly in any order,
    so this gives the same numbers as the sparse product. It is worked out from the last
    product under the same ``key`` plus the product of the change (only the households
    whose count changed), or over the non-zero counts only: a pass over a few columns of
    the matrix instead of all of it (:func:`_count_product`). Falls back to the product
    itself where the matrix holds entries other than 0 and 1.
    The returned array must not be modified.
    """
    n = neighbours.shape[0]
    state = _state(neighbours)
    counts = np.array(counts, dtype=np.float64)  # a copy: kept as the last counts
    if not state.exact:
        return neighbours @ counts
    last = state.last.get(key)
    if last is None or last[0].shape != counts.shape:
        last = (np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.float64))
    product = _count_product(state.indptr, state.indices, state.data, counts, last[0], last[1])
    state.last[key] = (counts, product)
    return product
