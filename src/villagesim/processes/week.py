"""The per-step scratch record shared by the processes of one step.

A :class:`Week` is created at the start of each step and discarded after the outputs are
recorded. Arrays indexed "per elder" follow ``Week.elders`` (row numbers of resident
elders after demography and health); arrays "per person" follow the person table.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

KINDS = ("daily_living", "meals", "companionship", "professional")
"""Kinds of need, the columns of ``Week.need``."""
DAILY, MEALS, COMPANION, PROFESSIONAL = range(4)
GENERAL_KINDS = [DAILY, MEALS, COMPANION]
"""Kinds any volunteer or family member can give."""

SOURCES = ("family", "volunteer", "peer", "facility", "ngo", "time_bank")
"""Sources of met hours recorded in the outputs (``met_hours_<source>``)."""


@dataclass
class Week:
    """Scratch state of one step."""

    step: int
    n_villages: int
    n_persons: int
    # demography and health events (per person masks; per village counts derive from them)
    died: np.ndarray | None = None
    left: np.ndarray | None = None
    returned: np.ndarray | None = None
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


class _NeighbourCounts:
    """What :func:`neighbour_count_sum` keeps about one neighbour matrix."""

    def __init__(self, matrix) -> None:
        self.matrix = weakref.ref(matrix)
        # products with whole numbers are summed exactly in any order only for 0/1 entries
        self.exact = bool(np.all((matrix.data == 0.0) | (matrix.data == 1.0)))
        # columns of the matrix: its rows where it is symmetric (a neighbour graph is), no copy
        columns = matrix if (matrix != matrix.T).nnz == 0 else matrix.tocsc()
        self.indptr, self.indices, self.data = columns.indptr, columns.indices, columns.data
        self.ones = bool(np.all(self.data == 1.0))
        self.last: dict[str, tuple[np.ndarray, np.ndarray]] = {}


_NEIGHBOUR_COUNTS: dict[int, _NeighbourCounts] = {}
_COLUMNS_SHARE = 1.0 / 24.0
"""Above this share of the matrix's entries a pass over whole columns costs more than the product
(a gather and a ``bincount`` per entry against streaming the matrix once)."""


def _columns_product(state: _NeighbourCounts, n: int, values: np.ndarray, nonzero: np.ndarray) -> np.ndarray | None:
    """``matrix @ values`` summed over the columns of the non-zero entries only (``None``
    where that is dearer than the product)."""
    starts = state.indptr[nonzero]
    lengths = state.indptr[nonzero + 1] - starts
    total = int(lengths.sum())
    if total > _COLUMNS_SHARE * len(state.indices):
        return None
    if total == 0:
        return np.zeros(n, dtype=np.float64)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
    weights = np.repeat(values[nonzero], lengths)
    if not state.ones:
        weights = weights * state.data[offsets]
    return np.bincount(state.indices[offsets], weights=weights, minlength=n)


def neighbour_count_sum(neighbours, key: str, counts: np.ndarray) -> np.ndarray:
    """``neighbours @ counts`` for a per-household vector of counts.

    ``counts`` must hold whole numbers (as ``np.bincount`` of a mask gives): then every
    entry of the product with a 0/1 matrix is a whole number, summed exactly in any order,
    so this gives the same numbers as the sparse product. It is worked out from the last
    product under the same ``key`` plus the product of the change (only the households
    whose count changed), or over the non-zero counts only: a pass over a few columns of
    the matrix instead of all of it. Falls back to the product itself where that saves
    nothing or the matrix holds entries other than 0 and 1.
    The returned array must not be modified.
    """
    n = neighbours.shape[0]
    state = _NEIGHBOUR_COUNTS.get(id(neighbours))
    if state is None or state.matrix() is not neighbours:
        for stale in [k for k, v in _NEIGHBOUR_COUNTS.items() if v.matrix() is None]:
            del _NEIGHBOUR_COUNTS[stale]
        state = _NeighbourCounts(neighbours)
        _NEIGHBOUR_COUNTS[id(neighbours)] = state
    counts = np.asarray(counts, dtype=np.float64)
    if not state.exact:
        return neighbours @ counts
    product = None
    last = state.last.get(key)
    if last is not None and last[0].shape == counts.shape:
        change = np.flatnonzero(counts != last[0])
        change_product = _columns_product(state, n, counts - last[0], change)
        if change_product is not None:
            product = last[1] + change_product
    if product is None:
        product = _columns_product(state, n, counts, np.flatnonzero(counts))
    if product is None:
        product = neighbours @ counts
    state.last[key] = (counts.copy(), product)
    return product
