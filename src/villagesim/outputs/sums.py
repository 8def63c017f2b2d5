"""The outputs of MODEL.md §5, computed from the arrays with ``np.bincount`` by village.

Two kinds of column:

* **sums** (counts and hours) are computed per village and add up to the county total;
* **ratios** (shares and means) are computed from sums, per village and for the total, so the
  county's ``unmet_need_share`` is total unmet hours over total need hours, not a mean of
  village shares.

Columns are listed, with their units, in :mod:`villagesim.outputs.columns`. Those the
processes report (``time_bank_*``, ``facilities_*``, ``spend_*`` ...) arrive as per-village
``week.extra`` sums (``week.report``) and are added here; the rest are counted here.

The per-village sums of a step are two compiled passes (:mod:`villagesim.jit`), one over
the persons and one over the elders, that give the numbers of the array formulation
:func:`village_sums_plain` to the bit (its ``np.add.reduceat`` sums are reproduced with
numpy's own pairwise summation order).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np

from villagesim.jit import formula_of, njit
from villagesim.outputs.columns import COLUMNS, KEY_OUTCOMES, RATIO_COLUMNS, SUM_COLUMNS, SUM_WITH_HIDDEN
from villagesim.processes.week import KINDS, SOURCES, Week, row_total
from villagesim.state.population import AWAY, RESIDENT, World

# the column registry (names, order, ratios); re-exported here for earlier imports
__all__ = ["COLUMNS", "KEY_OUTCOMES", "RATIO_COLUMNS", "SUM_COLUMNS", "SUM_WITH_HIDDEN", "village_sums", "with_ratios"]
_INDEX = {c: i for i, c in enumerate(SUM_WITH_HIDDEN)}


_LAYOUTS: dict[int, tuple[weakref.ref, int, int, np.ndarray, bool]] = {}


def _person_layout(village: np.ndarray, n_v: int) -> tuple[np.ndarray, bool]:
    """First row of each village and whether rows are sorted by village with none empty.

    Rows never move and a person's village never changes, so this is worked out once per
    person table (remembered while the table's ``village`` array lives).
    """
    key = id(village)
    known = _LAYOUTS.get(key)
    if known is not None and known[0]() is village and known[1] == n_v and known[2] == len(village):
        return known[3], known[4]
    starts = np.searchsorted(village, np.arange(n_v)) if len(village) else np.zeros(n_v, dtype=np.int64)
    contiguous = len(village) > 0 and bool(np.all(np.diff(starts) > 0)) and bool(np.all(village[1:] >= village[:-1]))
    for stale in [k for k, v in _LAYOUTS.items() if v[0]() is None]:
        del _LAYOUTS[stale]
    _LAYOUTS[key] = (weakref.ref(village), n_v, len(village), starts, contiguous)
    return starts, contiguous


@njit
def _block_sum(a, lo, n):
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]`` (read as float64) for ``n <= 128`` (no split)."""
    b = a[lo : lo + n]
    if n < 8:
        res = -0.0
        for i in range(n):
            res += np.float64(b[i])
        return res
    r0, r1, r2, r3 = np.float64(b[0]), np.float64(b[1]), np.float64(b[2]), np.float64(b[3])
    r4, r5, r6, r7 = np.float64(b[4]), np.float64(b[5]), np.float64(b[6]), np.float64(b[7])
    whole = n - n % 8
    for i in range(8, whole, 8):
        r0 += np.float64(b[i])
        r1 += np.float64(b[i + 1])
        r2 += np.float64(b[i + 2])
        r3 += np.float64(b[i + 3])
        r4 += np.float64(b[i + 4])
        r5 += np.float64(b[i + 5])
        r6 += np.float64(b[i + 6])
        r7 += np.float64(b[i + 7])
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(whole, n):
        res += np.float64(b[i])
    return res


@njit
def _pairwise_sum(a, lo, n, frames, sums):
    """``a[lo:lo + n]`` (read as float64) summed in numpy's pairwise order.

    The order of numpy's ``pairwise_sum`` (``loops_utils.h``), which its add reductions and
    ``np.add.reduceat`` use for each run of values: fewer than 8 values left to right from
    -0.0; up to 128 in 8 interleaved partial sums, combined as
    ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the rest left to right;
    more than 128 split in two halves (the first a multiple of 8 long), each summed so and
    the two added. The halving is walked with an explicit stack (no recursion, which numba's
    on-disk cache does not handle): ``frames`` (int64, 3 x 64) and ``sums`` (float64, 64)
    are its scratch space (``_pairwise_scratch()``).
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    # frames of the halving: first item, length, what is done (0: nothing, 1: first half)
    frame_lo, frame_n, frame_done = frames[0], frames[1], frames[2]
    frame_lo[0], frame_n[0], frame_done[0] = lo, n, 0
    depth, n_sums = 1, 0
    while depth > 0:
        top = depth - 1
        m = frame_n[top]
        if m <= 128:
            sums[n_sums] = _block_sum(a, frame_lo[top], m)
            n_sums += 1
            depth -= 1
            continue
        half = m // 2
        half -= half % 8
        if frame_done[top] == 0:
            frame_done[top] = 1
            frame_lo[depth], frame_n[depth], frame_done[depth] = frame_lo[top], half, 0
            depth += 1
        elif frame_done[top] == 1:
            frame_done[top] = 2
            frame_lo[depth], frame_n[depth], frame_done[depth] = frame_lo[top] + half, m - half, 0
            depth += 1
        else:
            sums[n_sums - 2] = sums[n_sums - 2] + sums[n_sums - 1]
            n_sums -= 1
            depth -= 1
    return sums[0]


@njit
def _segment_sum(a, n, frames, sums):
    """``np.add.reduceat``'s sum of ``a[:n]`` (``n >= 1``) with ``dtype=np.float64``: the first
    value plus the pairwise sum of the rest."""
    if n == 1:
        return np.float64(a[0])
    return np.float64(a[0]) + _pairwise_sum(a, 1, n - 1, frames, sums)


@njit
def _pairwise_scratch():
    """Scratch space of :func:`_pairwise_sum` (frames, partial sums)."""
    return np.empty((3, 64), dtype=np.int64), np.empty(64, dtype=np.float64)


class PersonRows(NamedTuple):
    """The person columns and the week's person masks :func:`_person_sums` reads (one entry
    per person row)."""

    village: np.ndarray
    status: np.ndarray
    candidates: np.ndarray
    active: np.ndarray
    emergency: np.ndarray
    late: np.ndarray
    died: np.ndarray
    left: np.ndarray
    returned: np.ndarray
    served_hours: np.ndarray
    answer_hours: np.ndarray


class ElderRows(NamedTuple):
    """The week's elder rows and the person columns :func:`_elder_sums` reads: ``elders``
    (person rows), per elder ``alone``, ``need`` and ``remaining`` (elders x kinds), ``met``
    (sources x elders), ``asked``, ``handled``, ``matched``; per person ``village``,
    ``care_level``, ``trust``, ``awareness``, ``satisfaction``."""

    elders: np.ndarray
    alone: np.ndarray
    need: np.ndarray
    remaining: np.ndarray
    met: np.ndarray
    asked: np.ndarray
    handled: np.ndarray
    matched: np.ndarray
    village: np.ndarray
    care_level: np.ndarray
    trust: np.ndarray
    awareness: np.ndarray
    satisfaction: np.ndarray


@njit
def _person_sums(out, columns, starts, rows, resident, away):
    """Person counts and hours per village into ``out`` (villages x sum columns); ``rows`` is
    a :class:`PersonRows`.

    ``columns`` gives the out columns of: residents, away, volunteer candidates, active
    volunteers, emergencies, late emergencies, deaths, outmigrations, returns (counts over
    the contiguous rows ``starts[v]:starts[v + 1]`` of each village, as ``np.add.reduceat``
    of the masks), then volunteer hours (``served_hours`` where positive) and the hours to
    answer emergencies, summed in float64 in row order by ``village`` as ``np.bincount``.
    Returns False, having written nothing, if a row's village is not one of ``out``'s rows
    (``np.bincount`` would have made a longer array).
    """
    village, status, candidates, active, emergency, late, died, left, returned, served_hours, answer_hours = rows
    n_v = out.shape[0]
    n = len(village)
    volunteer_hours = np.zeros(n_v, dtype=np.float64)
    answer = np.zeros(n_v, dtype=np.float64)
    for r in range(n):
        v = village[r]
        if v < 0 or v >= n_v:
            return False
        if served_hours[r] > 0:
            volunteer_hours[v] += np.float64(served_hours[r])
        if emergency[r]:
            answer[v] += np.float64(answer_hours[r])
    for v in range(n_v):
        lo = starts[v]
        hi = starts[v + 1] if v + 1 < n_v else n
        c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = 0
        for r in range(lo, hi):
            c0 += status[r] == resident
            c1 += status[r] == away
            c2 += candidates[r]
            c3 += active[r]
            c4 += emergency[r]
            c5 += late[r]
            c6 += died[r]
            c7 += left[r]
            c8 += returned[r]
        out[v, columns[0]] = c0
        out[v, columns[1]] = c1
        out[v, columns[2]] = c2
        out[v, columns[3]] = c3
        out[v, columns[4]] = c4
        out[v, columns[5]] = c5
        out[v, columns[6]] = c6
        out[v, columns[7]] = c7
        out[v, columns[8]] = c8
    for v in range(n_v):
        out[v, columns[9]] = volunteer_hours[v]
        out[v, columns[10]] = answer[v]
    return True


_PERSON_COLUMNS = np.array(
    [
        _INDEX[c]
        for c in (
            "residents",
            "away",
            "volunteer_candidates",
            "active_volunteers",
            "emergencies",
            "emergencies_late",
            "deaths",
            "outmigrations",
            "returns",
            "volunteer_hours",
            "_answer_hours_sum",
        )
    ],
    dtype=np.int64,
)

_ELDER_COLUMNS = np.array(
    [
        _INDEX[c]
        for c in (
            "elders_alone",
            "disabled_elders",
            "need_hours",
            *[f"need_{k}" for k in KINDS],
            *[f"met_hours_{s}" for s in SOURCES],
            "_met_hours_services",
            "unmet_hours",
            "hidden_need_hours",
            "elders_with_unmet_need",
            "requests",
            "handled_requests",
            "matched_requests",
            "need_hours_alone",
            "unmet_hours_alone",
            "_trust_sum",
            "_awareness_sum",
            "_satisfaction_sum",
        )
    ],
    dtype=np.int64,
)


@njit
def _elder_sums(out, columns, elders_column, rows, unmet_floor):
    """Elder sums per village into ``out`` (villages x sum columns), as
    :func:`village_sums_plain` computes them for persons stored by village; ``rows`` is an
    :class:`ElderRows`.

    Each elder's values, in the order of ``columns`` (``_ELDER_COLUMNS``): alone,
    ``care_level >= 1``, total need (left to right over the kinds, in ``need``'s dtype, as
    ``row_total``), need by kind, met hours by source (rows of ``met``, ``SOURCES``
    order), met hours of the services (float64, from 0.0, sources after family in order),
    unmet hours (``row_total(remaining)``), unmet where not asked, ``unmet > unmet_floor``,
    asked, handled, matched, need and unmet where alone (products in the arrays' dtypes),
    trust, awareness, satisfaction. Elders (rows sorted by village) are cut into one
    segment per village, and each segment is summed as ``np.add.reduceat(values, at,
    dtype=np.float64)`` sums it: its first value plus the pairwise sum of the rest (the 0/1 flags, whose sums are exact
    in any order, are counted); villages without elders get 0.
    ``elders_column`` gets the number of elders. Returns False, having written nothing,
    if the elders are not sorted by village.
    """
    elders, alone, need, remaining, met, asked, handled, matched, village, care_level, trust, awareness, satisfaction = rows
    n_v = out.shape[0]
    n_e = len(elders)
    for i in range(1, n_e):
        if village[elders[i]] < village[elders[i - 1]]:
            return False
    # the first elder of each village (np.searchsorted on the sorted villages)
    first = np.empty(n_v + 1, dtype=np.int64)
    i = 0
    for v in range(n_v):
        while i < n_e and village[elders[i]] < v:
            i += 1
        first[v] = i
    first[n_v] = n_e
    n_values = len(columns)
    n_kinds = need.shape[1]
    # the segment of village v: its elders, from its first to the next village's first
    seg_lo = first[:n_v]
    seg_n = np.empty(n_v, dtype=np.int64)
    longest = 1
    for v in range(n_v):
        seg_n[v] = first[v + 1] - first[v]
        longest = max(longest, seg_n[v])
    # per segment: counts of the flags, values worked out per elder (the rest are read
    # straight from ``need`` and ``met``)
    c_met = 3 + n_kinds
    c_after = c_met + met.shape[0]
    counted = np.array([0, 1, c_after + 3, c_after + 4, c_after + 5, c_after + 6])
    worked = np.array([2, c_after, c_after + 1, c_after + 2, c_after + 7, c_after + 8, c_after + 9, c_after + 10, c_after + 11])
    counts = np.zeros(len(counted), dtype=np.int64)
    values = np.empty((len(worked), longest), dtype=np.float64)
    frames, partial = _pairwise_scratch()
    for v in range(n_v):
        out[v, elders_column] = first[v + 1] - first[v]
        if first[v + 1] == first[v]:
            for k in range(n_values):
                out[v, columns[k]] = 0.0
            continue
        lo, n = seg_lo[v], seg_n[v]
        counts[:] = 0
        for j in range(n):
            i = lo + j
            row = elders[i]
            need_total = need[i, 0]
            for k in range(1, n_kinds):
                need_total += need[i, k]
            unmet = remaining[i, 0]
            for k in range(1, remaining.shape[1]):
                unmet += remaining[i, k]
            services = 0.0
            for s in range(1, met.shape[0]):
                services += np.float64(met[s, i])
            counts[0] += alone[i]
            counts[1] += care_level[row] >= 1
            counts[2] += unmet > unmet_floor
            counts[3] += asked[i]
            counts[4] += handled[i]
            counts[5] += matched[i]
            values[0, j] = need_total
            values[1, j] = services
            values[2, j] = unmet
            values[3, j] = unmet * np.float32(not asked[i])
            values[4, j] = need_total * np.float32(alone[i])
            values[5, j] = unmet * np.float32(alone[i])
            values[6, j] = trust[row]
            values[7, j] = awareness[row]
            values[8, j] = satisfaction[row]
        # 0/1 flags: their float64 sums are the counts, in any order
        for k in range(len(counted)):
            out[v, columns[counted[k]]] = counts[k]
        for k in range(len(worked)):
            out[v, columns[worked[k]]] = _segment_sum(values[k], n, frames, partial)
        for k in range(n_kinds):
            out[v, columns[3 + k]] = _segment_sum(need[lo : lo + n, k], n, frames, partial)
        for s in range(met.shape[0]):
            out[v, columns[c_met + s]] = _segment_sum(met[s, lo : lo + n], n, frames, partial)
    return True


def village_sums(world: World, week: Week, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Matrix (villages x sum columns incl. hidden ones) of this step's sums.

    Persons are stored sorted by village (rows never move, and build_world creates them
    village by village), so a per-village sum is a sum over contiguous rows; where rows are
    not so stored, :func:`village_sums_plain` does the work.
    """
    p = world.persons
    n_v = week.n_villages
    starts, contiguous = _person_layout(p.village, n_v)
    out = None
    flags = (week.alone, week.asked, week.handled, week.matched)
    if (
        contiguous
        and len(week.elders)
        and week.need.ndim == 2
        and week.remaining.ndim == 2
        and all(f.dtype == np.bool_ for f in flags)
    ):
        out = np.zeros((n_v, len(SUM_WITH_HIDDEN)), dtype=np.float64)
        persons = PersonRows(
            village=p.village,
            status=p.status,
            candidates=week.candidates,
            active=p.active,
            emergency=week.emergency,
            late=week.late,
            died=week.died,
            left=week.left,
            returned=week.returned,
            served_hours=p.served_hours,
            answer_hours=week.answer_hours,
        )
        elders = ElderRows(
            elders=week.elders,
            alone=week.alone,
            need=week.need,
            remaining=week.remaining,
            met=np.array([week.met_of(s) for s in SOURCES]),
            asked=week.asked,
            handled=week.handled,
            matched=week.matched,
            village=p.village,
            care_level=p.care_level,
            trust=p.trust,
            awareness=p.awareness,
            satisfaction=p.satisfaction,
        )
        unmet_floor = np.result_type(week.remaining.dtype, 0.01).type(0.01)
        done = _person_sums(out, _PERSON_COLUMNS, starts, persons, RESIDENT, AWAY) and _elder_sums(
            out, _ELDER_COLUMNS, _INDEX["elders"], elders, unmet_floor
        )
        if not done:
            out = None
    if out is None:
        out = village_sums_plain(world, week)
    for name, values in (extra or {}).items():
        out[:, _INDEX[name]] += values
    return out


@formula_of("village_sums", check="village sums")
def village_sums_plain(world: World, week: Week, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """:func:`village_sums` as array code: a numpy call per column."""
    p = world.persons
    n_v = week.n_villages
    out = np.zeros((n_v, len(SUM_WITH_HIDDEN)), dtype=np.float64)
    index = _INDEX

    # Persons are stored sorted by village (rows never move, and build_world creates them
    # village by village), so a per-village sum is a segmented sum over contiguous rows
    # (np.add.reduceat), far cheaper than a gather and np.bincount per column. Where rows are
    # not sorted (a world built otherwise) np.bincount is used.
    starts, contiguous = _person_layout(p.village, n_v)

    def count(name: str, mask: np.ndarray) -> None:
        if contiguous:
            out[:, index[name]] = np.add.reduceat(mask, starts, dtype=np.int64)
        else:
            out[:, index[name]] = np.bincount(p.village[mask], minlength=n_v)

    e = week.elders
    ve = p.village[e]
    # elders (rows in increasing order) are sorted by village too: segmented sums again
    e_starts = np.searchsorted(ve, np.arange(n_v))
    e_count = np.diff(e_starts, append=len(e))
    has_elders = e_count > 0
    every_village = bool(has_elders.all())
    # segments start at the first elder of each village that has elders (a village without
    # elders would cut a segment of one value from its neighbour's)
    e_at = e_starts if every_village else e_starts[has_elders]

    def put(name: str, weights: np.ndarray | None = None) -> None:
        if weights is None:
            out[:, index[name]] = e_count
        elif contiguous and len(e):
            sums = np.add.reduceat(weights, e_at, dtype=np.float64)
            if every_village:
                out[:, index[name]] = sums
            else:
                out[:, index[name]] = 0.0
                out[has_elders, index[name]] = sums
        else:
            out[:, index[name]] = np.bincount(ve, weights=weights, minlength=n_v)

    count("residents", p.status == RESIDENT)
    count("away", p.status == AWAY)
    need = row_total(week.need)
    unmet = row_total(week.remaining)
    put("elders")
    put("elders_alone", week.alone)
    put("disabled_elders", p.care_level[e] >= 1)
    put("need_hours", need)
    for k, kind in enumerate(KINDS):
        put(f"need_{kind}", week.need[:, k])
    services = np.zeros(len(e))
    for s in SOURCES:
        met = week.met_of(s)
        put(f"met_hours_{s}", met)
        if s != "family":
            services += met
    put("_met_hours_services", services)
    put("unmet_hours", unmet)
    put("hidden_need_hours", unmet * ~week.asked)
    put("elders_with_unmet_need", unmet > 0.01)
    put("requests", week.asked)
    put("handled_requests", week.handled)
    put("matched_requests", week.matched)
    put("need_hours_alone", need * week.alone)
    put("unmet_hours_alone", unmet * week.alone)
    put("_trust_sum", p.trust[e])
    put("_awareness_sum", p.awareness[e])
    put("_satisfaction_sum", p.satisfaction[e])
    count("volunteer_candidates", week.candidates)
    count("active_volunteers", p.active)
    served = np.flatnonzero(p.served_hours > 0)
    out[:, index["volunteer_hours"]] = np.bincount(p.village[served], weights=p.served_hours[served], minlength=n_v)
    count("emergencies", week.emergency)
    count("emergencies_late", week.late)
    em = np.flatnonzero(week.emergency)
    out[:, index["_answer_hours_sum"]] = np.bincount(p.village[em], weights=week.answer_hours[em], minlength=n_v)
    count("deaths", week.died)
    count("outmigrations", week.left)
    count("returns", week.returned)
    for name, values in (extra or {}).items():
        out[:, index[name]] += values
    return out


_RATIO_NUM = np.array([_INDEX[num] for num, _, _ in RATIO_COLUMNS.values()], dtype=np.intp)
_RATIO_DEN = np.array([_INDEX[den] for _, den, _ in RATIO_COLUMNS.values()], dtype=np.intp)
_RATIO_EMPTY = np.array([empty for _, _, empty in RATIO_COLUMNS.values()], dtype=np.float64)


@njit
def _ratios_into(sums, out, num, den, empty):
    """``out`` rows: the public sums of each row of ``sums``, then ``num / den`` per ratio
    (float64 division; ``empty`` where the denominator is not positive), as
    ``np.where(d > 0, n / np.where(d > 0, d, 1.0), empty)``."""
    n_public = out.shape[1] - len(num)
    for r in range(sums.shape[0]):
        for c in range(n_public):
            out[r, c] = sums[r, c]
        for k in range(len(num)):
            d = sums[r, den[k]]
            out[r, n_public + k] = sums[r, num[k]] / d if d > 0 else empty[k]


def with_ratios(sums: np.ndarray) -> np.ndarray:
    """Rows of sums (any leading shape, last axis = SUM_WITH_HIDDEN) -> rows of COLUMNS."""
    if sums.dtype == np.float64 and sums.ndim in (1, 2) and sums.shape[-1] == len(SUM_WITH_HIDDEN):
        rows = sums.reshape(-1, sums.shape[-1])
        out = np.empty((rows.shape[0], len(COLUMNS)), dtype=np.float64)
        _ratios_into(rows, out, _RATIO_NUM, _RATIO_DEN, _RATIO_EMPTY)
        return out[0] if sums.ndim == 1 else out
    return with_ratios_plain(sums)


@formula_of("with_ratios", check="ratios")
def with_ratios_plain(sums: np.ndarray) -> np.ndarray:
    """:func:`with_ratios` as array code (any dtype and leading shape)."""
    n_public = len(SUM_COLUMNS)
    out = np.empty((*sums.shape[:-1], len(COLUMNS)), dtype=sums.dtype if np.issubdtype(sums.dtype, np.floating) else np.float64)
    out[..., :n_public] = sums[..., :n_public]
    # every ratio at once, element by element the same division as one column at a time
    n, d = sums[..., _RATIO_NUM], sums[..., _RATIO_DEN]
    has = d > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[..., n_public:] = np.where(has, n / np.where(has, d, 1.0), _RATIO_EMPTY)
    return out
