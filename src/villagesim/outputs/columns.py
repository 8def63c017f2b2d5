"""The output registry: every column of ``timeseries.parquet`` and ``villages.parquet``, with
its unit, label and where it comes from.

Three kinds of column:

* **recorded** sums (:data:`RECORDED`), counted from the person table and the step's record
  by :func:`villagesim.outputs.sums.village_sums` (persons, need and met hours by source,
  requests, volunteers, demographic events);
* **reported** sums, declared by the process that reports them
  (``Process.outputs``, see :mod:`villagesim.processes.base`) and collected here from
  :data:`villagesim.processes.STEP` in step order; a new one is one edit in its process;
* **ratios** (:data:`RATIOS`), computed from the sums per village and for the total (so the
  county's ``unmet_need_share`` is total unmet hours over total need hours).

Sums add up across villages; names starting with ``_`` are hidden sums that only feed a
ratio. :data:`COLUMNS` is the file order (after ``step``, ``replicate`` and, per village,
``village``); :data:`CATALOGUE` maps each public column to its :class:`Column` (unit, label,
description, source).
"""

from __future__ import annotations

from dataclasses import dataclass

from villagesim.processes import STEP
from villagesim.processes.base import Output
from villagesim.processes.week import KINDS, MET_SOURCES, SOURCES


@dataclass(frozen=True)
class Column:
    """One public output column: what a planner or analyst reads about it."""

    name: str
    unit: str
    label: str
    description: str
    source: str  # "recorded", "ratio", or the name of the process reporting it


_SOURCE_LABELS = {s.name: s.label.split(" (")[0].lower() if s.name != "ngo" else "NGOs" for s in MET_SOURCES}

RECORDED: tuple[Output, ...] = (
    Output("residents", "persons", "Residents", "Persons living in the village this week."),
    Output("away", "persons", "Registered members away", "Registered persons working or living away (migrants)."),
    Output("elders", "persons", "Resident elders (60+)", "Residents aged 60 and over."),
    Output("elders_alone", "persons", "Elders living alone", "Resident elders with nobody else in their household."),
    Output("disabled_elders", "persons", "Elders needing care", "Resident elders at care level 1 or above."),
    Output("need_hours", "hours/week", "Care need", "Hours of care the resident elders need this week, all kinds."),
    *(
        Output(f"need_{k}", "hours/week", f"Need: {k.replace('_', ' ')}", f"Hours of {k.replace('_', ' ')} needed.")
        for k in KINDS
    ),
    *(
        Output(
            f"met_hours_{s}",
            "hours/week",
            f"Met by {_SOURCE_LABELS.get(s, s)}",
            f"Hours of need met by {_SOURCE_LABELS.get(s, s)}.",
        )
        for s in SOURCES
    ),
    Output("unmet_hours", "hours/week", "Unmet need", "Hours of need nobody met this week."),
    Output("hidden_need_hours", "hours/week", "Hidden unmet need", "Unmet hours of elders who did not ask for help."),
    Output("elders_with_unmet_need", "persons", "Elders with unmet need", "Resident elders with more than 0.01 h of unmet need."),
    Output("requests", "requests/week", "Requests for help", "Elders who asked for help this week."),
    Output("handled_requests", "requests/week", "Requests handled", "Requests the committee or the platform took up."),
    Output("matched_requests", "requests/week", "Requests matched", "Requests that got some help through a match."),
    Output(
        "volunteer_candidates", "persons", "Volunteer candidates", "Residents who could volunteer (18-59 and healthy young-old)."
    ),
    Output("active_volunteers", "persons", "Active volunteers", "Candidates who volunteered this week."),
    Output("volunteer_hours", "hours/week", "Volunteer hours served", "Hours volunteers served this week."),
    Output("emergencies", "events/week", "Emergencies", "Acute events of elders this week."),
    Output("emergencies_late", "events/week", "Emergencies answered late", "Emergencies nobody answered in time."),
    Output("deaths", "persons/week", "Deaths", "Residents who died this week."),
    Output("outmigrations", "persons/week", "Out-migrations", "Residents who left to work or live away."),
    Output("returns", "persons/week", "Returns", "Migrants who came back."),
    Output("need_hours_alone", "hours/week", "Need of elders living alone", "Care need of resident elders living alone."),
    Output(
        "unmet_hours_alone", "hours/week", "Unmet need of elders living alone", "Unmet hours of resident elders living alone."
    ),
    Output("_trust_sum", "sum of 0..1", "Trust, summed over elders", "Feeds mean_trust."),
    Output("_awareness_sum", "sum of 0..1", "Awareness, summed over elders", "Feeds mean_awareness."),
    Output("_satisfaction_sum", "sum of 0..1", "Satisfaction, summed over elders", "Feeds mean_satisfaction."),
    Output("_answer_hours_sum", "hours", "Hours to answer emergencies, summed", "Feeds mean_answer_hours."),
    Output(
        "_met_hours_services",
        "hours/week",
        "Hours met by services",
        "Met hours of every source but family; feeds cost_per_met_hour.",
    ),
)
"""Sums counted by :func:`~villagesim.outputs.sums.village_sums` from the state (in this order)."""


@dataclass(frozen=True)
class Ratio:
    """A column derived from two sums: ``numerator / denominator`` (``empty`` when the
    denominator is not positive)."""

    name: str
    numerator: str
    denominator: str
    empty: float
    unit: str
    label: str
    description: str


RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "unmet_need_share", "unmet_hours", "need_hours", 0.0, "share (0-1)", "Unmet need share", "Unmet hours over need hours."
    ),
    Ratio(
        "share_60plus",
        "elders",
        "residents",
        0.0,
        "share (0-1)",
        "Share of residents aged 60+",
        "Resident elders over residents.",
    ),
    Ratio("mean_trust", "_trust_sum", "elders", 0.0, "0-1", "Mean trust in the committee", "Mean over resident elders."),
    Ratio("mean_awareness", "_awareness_sum", "elders", 0.0, "0-1", "Mean awareness of mutual aid", "Mean over resident elders."),
    Ratio("mean_satisfaction", "_satisfaction_sum", "elders", 0.0, "0-1", "Mean satisfaction", "Mean over resident elders."),
    Ratio(
        "request_match_rate",
        "matched_requests",
        "requests",
        0.0,
        "share (0-1)",
        "Share of requests matched",
        "Matched requests over requests.",
    ),
    Ratio(
        "mean_answer_hours",
        "_answer_hours_sum",
        "emergencies",
        0.0,
        "hours",
        "Mean hours to answer an emergency",
        "Over this week's emergencies.",
    ),
    Ratio(
        "unmet_share_alone",
        "unmet_hours_alone",
        "need_hours_alone",
        0.0,
        "share (0-1)",
        "Unmet need share, elders alone",
        "For elders living alone.",
    ),
    Ratio(
        "match_rate_no_digital",
        "matched_requests_no_digital",
        "requests_no_digital",
        0.0,
        "share (0-1)",
        "Match rate without digital access",
        "Matched over requests, elders without digital access.",
    ),
    Ratio(
        "digital_access_share",
        "_elders_digital_access",
        "elders",
        0.0,
        "share (0-1)",
        "Elders with digital access",
        "Resident elders who can use the platform on their own or through a family proxy, over elders.",
    ),
    Ratio(
        "redemption_success_rate",
        "_redemptions_ok",
        "redemptions",
        1.0,
        "share (0-1)",
        "Time-bank redemptions honoured",
        "Successful over all redemptions.",
    ),
    Ratio(
        "cost_per_met_hour",
        "spend_total",
        "_met_hours_services",
        0.0,
        "RMB/hour",
        "Spending per hour met by services",
        "All spending over hours met by every source but family.",
    ),
)
"""Columns derived from sums: per village and for the total."""


def _reported() -> tuple[tuple[Output, str], ...]:
    """Outputs the processes of the step declare, in step order (a column two processes
    report, such as ``spend_subsidies``, once, declared alike by both)."""
    seen: dict[str, tuple[Output, str]] = {}
    for process in STEP:
        for out in process.outputs:
            if out.name in seen:
                if seen[out.name][0] != out:
                    raise ValueError(f"output {out.name!r} declared differently by {seen[out.name][1]} and {process.name}")
                continue
            seen[out.name] = (out, process.name)
    recorded = {o.name for o in RECORDED}
    clash = recorded & set(seen)
    if clash:
        raise ValueError(f"outputs reported by a process and also recorded: {sorted(clash)}")
    return tuple(seen.values())


REPORTED: tuple[tuple[Output, str], ...] = _reported()
"""(output, process name) for each column a process reports, in step order."""

_ALL_SUMS: tuple[tuple[Output, str], ...] = tuple((o, "recorded") for o in RECORDED) + REPORTED

SUM_COLUMNS: list[str] = [o.name for o, _ in _ALL_SUMS if not o.hidden]
"""Public columns that add up across villages."""

HIDDEN_SUMS: list[str] = [o.name for o, _ in _ALL_SUMS if o.hidden]
"""Hidden sums (feed ratios only)."""

SUM_WITH_HIDDEN: list[str] = SUM_COLUMNS + HIDDEN_SUMS
"""Every sum, public first: the columns of :func:`~villagesim.outputs.sums.village_sums`."""

RATIO_COLUMNS: dict[str, tuple[str, str, float]] = {r.name: (r.numerator, r.denominator, r.empty) for r in RATIOS}
"""name: (numerator, denominator, value when the denominator is zero)."""

COLUMNS: list[str] = SUM_COLUMNS + list(RATIO_COLUMNS)
"""Every public output column, in file order."""

CATALOGUE: dict[str, Column] = {
    **{o.name: Column(o.name, o.unit, o.label, o.description, src) for o, src in _ALL_SUMS if not o.hidden},
    **{r.name: Column(r.name, r.unit, r.label, r.description, "ratio") for r in RATIOS},
}
"""Unit, label, description and source of every public column."""

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


def label(name: str) -> str:
    """A column's label with its unit, e.g. ``"Unmet need (hours/week)"``; the name itself
    for a column not in the catalogue."""
    col = CATALOGUE.get(name)
    return f"{col.label} ({col.unit})" if col else name


def dictionary() -> list[dict[str, str]]:
    """The data dictionary: one row per public column (name, unit, label, source, meaning),
    in file order, after the index columns of the results files."""
    index = [
        {"name": "step", "unit": "week", "label": "Week", "source": "index", "description": "Week of the run, from 1."},
        {"name": "replicate", "unit": "", "label": "Replicate", "source": "index", "description": "Replicate number."},
        {
            "name": "village",
            "unit": "",
            "label": "Village",
            "source": "index",
            "description": "Village index (villages.parquet only).",
        },
    ]
    rows = [
        {"name": c.name, "unit": c.unit, "label": c.label, "source": c.source, "description": c.description}
        for c in (CATALOGUE[n] for n in COLUMNS)
    ]
    return index + rows


def write_dictionary(path) -> None:
    """Write :func:`dictionary` as CSV (``columns.csv`` beside a run's files)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["name", "unit", "label", "source", "description"])
        writer.writeheader()
        writer.writerows(dictionary())


def _check() -> None:
    for r in RATIOS:
        for part in (r.numerator, r.denominator):
            if part not in SUM_WITH_HIDDEN:
                raise ValueError(f"ratio {r.name}: {part!r} is not a sum column")
    if len(set(COLUMNS)) != len(COLUMNS):
        raise ValueError("duplicate output column names")


_check()
