"""The outputs of MODEL.md §5, computed from the arrays with ``np.bincount`` by village.

Two kinds of column:

* **sums** (counts and hours) are computed per village and add up to the county total;
* **ratios** (shares and means) are computed from sums, per village and for the total, so the
  county's ``unmet_need_share`` is total unmet hours over total need hours, not a mean of
  village shares.

Columns a later feature fills (``time_bank_*``, ``facilities_*``, ``spend_*``) are present
from the start and zero until that feature runs; a process reports them through
``Week``-level ``extra`` sums (see :func:`village_sums`).
"""

from __future__ import annotations

import weakref

import numpy as np

from villagesim.population import AWAY, RESIDENT, World
from villagesim.processes.week import KINDS, SOURCES, Week, row_total

SUM_COLUMNS: list[str] = [
    "residents",
    "away",
    "elders",
    "elders_alone",
    "disabled_elders",
    "need_hours",
    *[f"need_{k}" for k in KINDS],
    *[f"met_hours_{s}" for s in SOURCES],
    "unmet_hours",
    "hidden_need_hours",
    "elders_with_unmet_need",
    "requests",
    "handled_requests",
    "matched_requests",
    "platform_requests",
    "volunteer_candidates",
    "active_volunteers",
    "volunteer_hours",
    "emergencies",
    "emergencies_late",
    "deaths",
    "outmigrations",
    "returns",
    "need_hours_alone",
    "unmet_hours_alone",
    # filled by the governance features; zero until they run
    "time_bank_credited",
    "time_bank_redeemed",
    "time_bank_expired",
    "time_bank_outstanding",
    "redemptions",
    "redemptions_failed",
    "ngo_hours",
    "ngo_villages_served",
    "platform_matched_requests",
    "requests_no_digital",
    "matched_requests_no_digital",
    "facilities_built",
    "facilities_operating",
    "facilities_idle",
    "spend_total",
    "spend_facility_building",
    "spend_facility_running",
    "spend_subsidies",
    "spend_ngo",
    "spend_publicity",
    "spend_platform",
]
"""Columns that add up across villages."""

_HIDDEN_SUMS = ["_trust_sum", "_awareness_sum", "_satisfaction_sum", "_answer_hours_sum"]

RATIO_COLUMNS: dict[str, tuple[str, str, float]] = {
    # name: (numerator, denominator, value when the denominator is zero)
    "unmet_need_share": ("unmet_hours", "need_hours", 0.0),
    "share_60plus": ("elders", "residents", 0.0),
    "mean_trust": ("_trust_sum", "elders", 0.0),
    "mean_awareness": ("_awareness_sum", "elders", 0.0),
    "mean_satisfaction": ("_satisfaction_sum", "elders", 0.0),
    "request_match_rate": ("matched_requests", "requests", 0.0),
    "mean_answer_hours": ("_answer_hours_sum", "emergencies", 0.0),
    "unmet_share_alone": ("unmet_hours_alone", "need_hours_alone", 0.0),
    "match_rate_no_digital": ("matched_requests_no_digital", "requests_no_digital", 0.0),
    "redemption_success_rate": ("_redemptions_ok", "redemptions", 1.0),
    "cost_per_met_hour": ("spend_total", "_met_hours_services", 0.0),
}
"""Columns derived from sums: per village and for the total."""

COLUMNS: list[str] = SUM_COLUMNS + list(RATIO_COLUMNS)
"""Every output column, in file order (after ``step``, ``replicate`` and, per village, ``village``)."""

KEY_OUTCOMES = [
    "unmet_need_share",
    "elders_with_unmet_need",
    "active_volunteers",
    "volunteer_hours",
    "matched_requests",
    "requests",
    "mean_trust",
    "mean_awareness",
    "mean_satisfaction",
    "met_hours_family",
    "met_hours_volunteer",
    "met_hours_peer",
    "deaths",
    "residents",
    "elders",
    "share_60plus",
    "spend_total",
    "cost_per_met_hour",
]
"""Outcomes summarised in ``summary.json`` and compared between arms."""


SUM_WITH_HIDDEN = SUM_COLUMNS + _HIDDEN_SUMS + ["_redemptions_ok", "_met_hours_services"]
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


def village_sums(world: World, week: Week, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Matrix (villages x sum columns incl. hidden ones) of this step's sums."""
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
    e_at = np.minimum(e_starts, max(len(e) - 1, 0))
    has_elders = e_count > 0
    every_village = bool(has_elders.all())  # then no segment is empty: nothing to blank out

    def put(name: str, weights: np.ndarray | None = None) -> None:
        if weights is None:
            out[:, index[name]] = e_count
        elif contiguous and len(e):
            sums = np.add.reduceat(weights, e_at, dtype=np.float64)
            out[:, index[name]] = sums if every_village else np.where(has_elders, sums, 0.0)
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


def with_ratios(sums: np.ndarray) -> np.ndarray:
    """Rows of sums (any leading shape, last axis = SUM_WITH_HIDDEN) -> rows of COLUMNS."""
    n_public = len(SUM_COLUMNS)
    out = np.empty((*sums.shape[:-1], len(COLUMNS)), dtype=sums.dtype if np.issubdtype(sums.dtype, np.floating) else np.float64)
    out[..., :n_public] = sums[..., :n_public]
    # every ratio at once, element by element the same division as one column at a time
    n, d = sums[..., _RATIO_NUM], sums[..., _RATIO_DEN]
    has = d > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[..., n_public:] = np.where(has, n / np.where(has, d, 1.0), _RATIO_EMPTY)
    return out
