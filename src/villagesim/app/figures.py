"""Figures of the browser page: live charts, the village map and the county view (matplotlib).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (safe in
server threads) and :func:`png` turns it into bytes. Figures use fixed margins instead of
``tight_layout`` so that a step plus redraw stays fast (see benchmarks/app_responsiveness.py).
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pandas as pd
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from villagesim.config.schema import CARE_LEVELS
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.model import VillageModel
from villagesim.outputs.columns import CATALOGUE
from villagesim.outputs.figures import SOURCE_LABELS
from villagesim.outputs.sums import COLUMNS
from villagesim.processes.week import MET_SOURCES, SOURCES
from villagesim.state.population import ELDER_AGE, RESIDENT

DPI = 72
MAP_DPI = 84
TREATED_LABEL = "with your levers"
BASELINE_LABEL = "baseline (same seed, levers as loaded)"
SOURCE_COLOURS = [s.colour for s in MET_SOURCES]
CARE_COLOURS = ["#2b8cbe", "#a1d99b", "#fdae61", "#f46d43", "#a50026"]
HAMLET_COLOURS = ["#e5d8bd", "#cde3c4", "#d5d5ea", "#f2d4c9", "#d9ecf2", "#efe3a4", "#e0cfe6", "#cfe8e1"]

CHARTS: list[tuple[str, str]] = [
    ("unmet", "Unmet need share"),
    ("sources", "Care hours by source"),
    ("volunteers", "Active volunteers"),
    ("trust", "Mean trust in the committee"),
    ("facilities", "Facilities"),
    ("spending", "Spending"),
]
"""Keys and titles of the live charts, in display order."""


def png(fig: Figure, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    return buf.getvalue()


CHART_UNITS: dict[str, str] = {
    "unmet": "share of care hours unmet",
    "sources": "hours per week",
    "volunteers": "volunteers active in the week",
    "trust": "mean over elders (0 to 1)",
    "facilities": "number of facilities",
    "spending": "RMB per week",
}
"""The y-axis label (with unit) of each chart."""


def _in_weeks(ts: pd.DataFrame) -> bool:
    return not len(ts) or int(ts["step"].iloc[-1]) <= 2 * WEEKS_PER_YEAR


def _time_label(ts: pd.DataFrame) -> str:
    return "weeks since start" if _in_weeks(ts) else "years since start"


def _years(ts: pd.DataFrame, unit_of: pd.DataFrame | None = None) -> np.ndarray:
    """The time axis: weeks for the first two years, years after."""
    steps = ts["step"].to_numpy()
    return steps if _in_weeks(ts if unit_of is None else unit_of) else steps / WEEKS_PER_YEAR


def _lines(ax, treated: pd.DataFrame, baseline: pd.DataFrame | None, column: str, colour: str) -> None:
    if baseline is not None and len(baseline):
        ax.plot(_years(baseline), baseline[column].to_numpy(), color="#777777", linestyle="--", linewidth=1.4)
    if len(treated):
        ax.plot(_years(treated), treated[column].to_numpy(), color=colour, linewidth=1.8)


def _from_zero(ax) -> None:
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))


def draw_chart(ax, key: str, treated: pd.DataFrame, baseline: pd.DataFrame | None = None, legend: bool = False) -> None:
    """Draw one live chart (``key`` from :data:`CHARTS`) of the run and, dashed, its baseline."""
    with_base = baseline is not None and len(baseline) > 0
    # an explicit y skips matplotlib's automatic title placement, a large share of the draw time
    ax.set_title(dict(CHARTS)[key] if key != "facilities" else "Facilities (happiness homes etc.)", fontsize=11, y=1.01)
    ax.set_xlabel(_time_label(treated), fontsize=9)
    ax.set_ylabel(CHART_UNITS[key], fontsize=9)
    ax.tick_params(labelsize=8)
    ax.locator_params(nbins=4)
    ax.grid(alpha=0.3)
    if key == "unmet":
        _lines(ax, treated, baseline, "unmet_need_share", "#c44e52")
        ax.set_ylim(0, 1)
    elif key == "sources":
        if len(treated):
            ax.stackplot(
                _years(treated),
                *[treated[f"met_hours_{s}"].to_numpy() for s in SOURCES],
                treated["unmet_hours"].to_numpy(),
                labels=[SOURCE_LABELS[s].split(" (")[0] for s in SOURCES] + ["Unmet"],
                colors=SOURCE_COLOURS + ["#dddddd"],
            )
        if with_base:
            met = baseline[[f"met_hours_{s}" for s in SOURCES]].sum(axis=1).to_numpy()
            ax.plot(_years(baseline), met, color="black", linestyle="--", linewidth=1.2, label="baseline: all met hours")
        if legend:
            ax.legend(fontsize=6, loc="lower left", ncol=2, framealpha=0.8)
    elif key == "volunteers":
        _lines(ax, treated, baseline, "active_volunteers", "#55a868")
        _from_zero(ax)
    elif key == "trust":
        _lines(ax, treated, baseline, "mean_trust", "#4c72b0")
        ax.set_ylim(0, 1)
    elif key == "facilities":
        for column, colour, label in FACILITY_LINES:
            if len(treated):
                ax.plot(_years(treated), treated[column].to_numpy(), color=colour, linewidth=1.8, label=label)
            if with_base:
                ax.plot(_years(baseline), baseline[column].to_numpy(), color=colour, linestyle="--", linewidth=1.0)
        _from_zero(ax)
        if legend:
            ax.legend(fontsize=7, loc="upper left")
    elif key == "spending":
        _lines(ax, treated, baseline, "spend_total", "#8172b2")
        _from_zero(ax)
        if len(treated) and not treated["spend_total"].any() and not (with_base and baseline["spend_total"].any()):
            ax.text(0.5, 0.5, "no programme spending so far", transform=ax.transAxes, ha="center", color="#888888")
    else:
        raise KeyError(key)
    if legend and with_base and key not in ("sources", "facilities"):
        handles = [
            Line2D([], [], color=ax.lines[-1].get_color() if ax.lines else "black", linewidth=1.8, label=TREATED_LABEL),
            Line2D([], [], color="#777777", linestyle="--", label=BASELINE_LABEL),
        ]
        ax.legend(handles=handles, fontsize=7, loc="best")
    if not len(treated):
        ax.text(0.5, 0.5, "press Step or Play", transform=ax.transAxes, ha="center", va="center", color="#888888")


FACILITY_LINES = [
    ("facilities_built", "#8172b2", "built"),
    ("facilities_operating", "#55a868", "operating"),
    ("facilities_idle", "#c44e52", "idle"),
]


def charts_figure(treated: pd.DataFrame, baseline: pd.DataFrame | None = None, legend: bool = False) -> Figure:
    """All live charts in one figure (2 rows of 3): one image to draw per step keeps redraws fast."""
    fig = Figure(figsize=(13.8, 6.0), dpi=DPI)
    fig.subplots_adjust(left=0.06, right=0.985, top=0.94, bottom=0.09, hspace=0.42, wspace=0.28)
    for ax, (key, _title) in zip(fig.subplots(2, 3).flat, CHARTS, strict=True):
        draw_chart(ax, key, treated, baseline, legend=legend)
    return fig


def chart(key: str, treated: pd.DataFrame, baseline: pd.DataFrame | None = None, legend: bool = True) -> Figure:
    """One live chart as its own figure (for downloads)."""
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    fig.subplots_adjust(left=0.14, right=0.97, top=0.9, bottom=0.13)
    draw_chart(fig.subplots(), key, treated, baseline, legend=legend)
    return fig


# ---------------------------------------------------------------------------- village map
def facilities_of(model: VillageModel) -> dict[str, np.ndarray] | None:
    """The model's facilities as arrays (village, x, y, operating, kind), or None if it has none.

    Read defensively: the facility table may sit on the model's institutions or its world.
    """
    table = None
    for holder in (getattr(model, "institutions", None), model.world, getattr(model.world, "institutions", None)):
        table = getattr(holder, "facilities", None) if holder is not None else None
        if table is not None:
            break
    if table is None:
        return None

    def col(name: str) -> np.ndarray | None:
        try:
            value = table[name] if isinstance(table, pd.DataFrame | dict) else getattr(table, name)
        except (KeyError, AttributeError):
            return None
        return np.asarray(value)

    village, x, y = col("village"), col("x"), col("y")
    if village is None or x is None or y is None:
        return None
    n = len(village)
    operating = col("operating")
    built = col("built")
    kind = col("kind")
    keep = built.astype(bool) if built is not None else np.ones(n, dtype=bool)
    return {
        "village": village[keep],
        "x": x[keep],
        "y": y[keep],
        "operating": (operating.astype(bool) if operating is not None else np.zeros(n, dtype=bool))[keep],
        "kind": (kind if kind is not None else np.zeros(n, dtype=int))[keep],
    }


def _offsets(rows: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A fixed small offset per person row so that members of a household do not overlap."""
    angle = rows * 2.399963  # golden angle: neighbours in a household spread around it
    r = radius * (0.5 + 0.5 * ((rows * 0.618034) % 1.0))
    return r * np.cos(angle), r * np.sin(angle)


UNMET_VMAX = 20.0
"""Top of the unmet-need colour scale (hours per week; more is drawn in the darkest red)."""


class VillageMap:
    """The map of one village, built once and updated week by week.

    Households (pale discs, one colour per hamlet 自然村), resident elders coloured by care
    level or by unmet need, active volunteers, facilities (filled: operating; hollow: idle)
    and this week's matches (a line from the helper's home to the elder's). Only what moves
    is replaced on :meth:`update`, which keeps a redraw cheap.
    """

    def __init__(self, model: VillageModel, village: int = 0, colour_by: str = "care", legend: bool = False) -> None:
        self.model, self.village, self.colour_by = model, int(village), colour_by
        self.lock = threading.Lock()
        self.blit: Blitter | None = None
        world = model.world
        hh = world.households
        unmet = colour_by == "unmet"
        fig = Figure(figsize=(8.2, 5.6) if legend else (6.2, 5.6), dpi=MAP_DPI)
        fig.subplots_adjust(left=0.1, right=0.72 if legend else (0.8 if unmet else 0.97), top=0.93, bottom=0.09)
        ax = fig.subplots()
        self.fig, self.ax = fig, ax
        in_v = np.flatnonzero(hh.village == village)
        hamlet = hh.hamlet[in_v] - world.villages.hamlet_start[village]
        ax.scatter(
            hh.x[in_v],
            hh.y[in_v],
            s=150,
            c=[HAMLET_COLOURS[h % len(HAMLET_COLOURS)] for h in hamlet],
            edgecolors="none",
            zorder=1,
        )
        self.labels = []
        for h in range(int(world.villages.hamlet_count[village])):
            g = world.villages.hamlet_start[village] + h
            label = ax.annotate(
                f"hamlet {h + 1}",
                (world.villages.hamlet_x[g], world.villages.hamlet_y[g]),
                textcoords="offset points",
                xytext=(-20, 14),
                fontsize=9,
                color="#6b5b3a",
                zorder=7,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7, "edgecolor": "none"},
            )
            self.labels.append(label)
        empty = np.zeros((0, 2))
        if colour_by == "unmet":
            self.elders = ax.scatter(
                empty[:, 0],
                empty[:, 1],
                s=22,
                c=[],
                cmap="Reds",
                vmin=0,
                vmax=UNMET_VMAX,
                edgecolors="#555555",
                linewidths=0.3,
                zorder=4,
            )
            cax = fig.add_axes((0.75 if legend else 0.82, 0.55, 0.025, 0.35))
            cb = fig.colorbar(self.elders, cax=cax, extend="max")
            cb.set_label("elder's unmet need\n(hours per week)", fontsize=8)
            cb.ax.tick_params(labelsize=7)
        else:
            self.elders = ax.scatter(empty[:, 0], empty[:, 1], s=22, edgecolors="#555555", linewidths=0.3, zorder=4)
        self.volunteers = ax.scatter(empty[:, 0], empty[:, 1], s=30, marker="^", color="#238b45", edgecolors="white", zorder=5)
        self.matches = LineCollection([], colors="#238b45", linewidths=1.0, alpha=0.7, zorder=3)
        ax.add_collection(self.matches)
        self.operating = ax.scatter(empty[:, 0], empty[:, 1], s=110, marker="s", color="#6a51a3", edgecolors="black", zorder=6)
        self.idle = ax.scatter(
            empty[:, 0], empty[:, 1], s=110, marker="s", facecolors="white", edgecolors="#6a51a3", linewidths=2, zorder=6
        )
        if len(in_v):
            pad = 0.15
            x0, x1 = float(hh.x[in_v].min()) - pad, float(hh.x[in_v].max()) + pad
            y0, y1 = float(hh.y[in_v].min()) - pad, float(hh.y[in_v].max()) + pad
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("km east", fontsize=9)
        ax.set_ylabel("km north", fontsize=9)
        ax.tick_params(labelsize=8)
        self.title = ax.set_title("", fontsize=11, y=1.01)
        if legend:
            handles = []
            if colour_by != "unmet":
                handles += [
                    Line2D([], [], marker="o", linestyle="", color=CARE_COLOURS[i], markersize=6, label=f"elder: care {name}")
                    for i, name in enumerate(CARE_LEVELS)
                ]
            handles += [
                Line2D([], [], marker="^", linestyle="", color="#238b45", markersize=7, label="active volunteer"),
                Line2D([], [], color="#238b45", label="match this week"),
                Line2D(
                    [],
                    [],
                    marker="s",
                    linestyle="",
                    color="#6a51a3",
                    markeredgecolor="black",
                    markersize=8,
                    label="facility operating",
                ),
                Line2D(
                    [],
                    [],
                    marker="s",
                    linestyle="",
                    markerfacecolor="white",
                    markeredgecolor="#6a51a3",
                    markersize=8,
                    label="facility idle",
                ),
                Line2D([], [], marker="o", linestyle="", color=HAMLET_COLOURS[0], markersize=9, label="household"),
            ]
            ax.legend(
                handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.04, 0.5) if colour_by == "unmet" else (1.02, 1.0)
            )
        self.update()

    def update(self, title: str = "") -> None:
        """Redraw what changed since the last week: elders, volunteers, matches, facilities."""
        model, village = self.model, self.village
        world = model.world
        p, hh = world.persons, world.households
        rows = np.flatnonzero((p.village == village) & (p.status == RESIDENT))
        elders = rows[p.age[rows] >= ELDER_AGE]
        dx, dy = _offsets(elders, 0.05)
        home = p.household[elders]
        self.elders.set_offsets(np.c_[hh.x[home] + dx, hh.y[home] + dy])
        if self.colour_by == "unmet":
            self.elders.set_array(np.minimum(p.unmet_hours[elders], UNMET_VMAX))
        else:
            self.elders.set_facecolor(CARE_RGBA[p.care_level[elders].astype(int)])
        vol = rows[p.active[rows]]
        vx, vy = _offsets(vol, 0.05)
        self.volunteers.set_offsets(np.c_[hh.x[p.household[vol]] + vx, hh.y[p.household[vol]] + vy])
        segments = np.zeros((0, 2, 2))
        week = model.week
        if week is not None and len(week.pair_elder):
            pe, ph = week.pair_elder, week.pair_helper
            mine = p.village[pe] == village
            pe, ph = pe[mine], ph[mine]
            ox, oy = _offsets(pe, 0.05)
            hx, hy = _offsets(ph, 0.05)
            segments = np.stack(
                [
                    np.c_[hh.x[p.household[ph]] + hx, hh.y[p.household[ph]] + hy],
                    np.c_[hh.x[p.household[pe]] + ox, hh.y[p.household[pe]] + oy],
                ],
                axis=1,
            )
        self.matches.set_segments(list(segments))
        fac = facilities_of(model)
        if fac is not None:
            here = fac["village"] == village
            op, idle = here & fac["operating"], here & ~fac["operating"]
            self.operating.set_offsets(np.c_[fac["x"][op], fac["y"][op]])
            self.idle.set_offsets(np.c_[fac["x"][idle], fac["y"][idle]])
        self.title.set_text(title or f"Village {village + 1}, week {model.steps}")

    def render(self) -> bytes:
        """PNG of the map as it is now (thread-safe; households and axes are kept as a bitmap)."""
        with self.lock:
            self.update()
            if self.blit is None:
                self.blit = Blitter(self.fig)
            moving = [self.matches, self.elders, self.volunteers, self.operating, self.idle, self.title]
            return self.blit.render(moving + self.labels)  # labels last: readable on top of the dots


CARE_RGBA = np.array([to_rgba(c) for c in CARE_COLOURS])


def village_map(model: VillageModel, village: int = 0, colour_by: str = "care", title: str = "", legend: bool = False) -> Figure:
    """The map of one village this week as a figure (see :class:`VillageMap`)."""
    vm = VillageMap(model, village, colour_by, legend=legend)
    vm.update(title)
    return vm.fig


def county_positions(model: VillageModel) -> tuple[np.ndarray, np.ndarray]:
    """Where each village is drawn: distance and bearing from the township seat (km)."""
    v = model.world.villages
    return v.remoteness_km * np.cos(v.angle), v.remoteness_km * np.sin(v.angle)


COUNTY_AXES = (0.1, 0.1, 0.68, 0.8)
"""Axes rectangle of the county view (figure fractions), used to map a click to a village."""


class CountyMap:
    """The county view: one disc per village (size: registered residents), coloured by this
    week's unmet need share, the open village ringed. Colours, ring and title are redrawn
    on the kept background (see :class:`Blitter`).
    """

    def __init__(self, model: VillageModel) -> None:
        self.model = model
        self.lock = threading.Lock()
        x, y = county_positions(model)
        fig = Figure(figsize=(6.2, 5.4), dpi=MAP_DPI)
        ax = fig.add_axes(COUNTY_AXES)
        self.fig, self.ax = fig, ax
        size = model.world.villages.size.astype(float)
        self.discs = ax.scatter(
            x,
            y,
            s=12 + 60 * size / max(size.max(), 1.0),
            c=np.zeros(len(x)),
            cmap="RdYlGn_r",
            vmin=0,
            vmax=1,
            edgecolors="#444444",
            linewidths=0.4,
        )
        ax.scatter([0], [0], marker="*", s=160, color="black")
        ax.annotate("township seat", (0, 0), textcoords="offset points", xytext=(6, 6), fontsize=8)
        self.ring = ax.scatter([], [], s=260, facecolors="none", edgecolors="#1f4e9c", linewidths=2)
        self.label = ax.annotate("", (0, 0), textcoords="offset points", xytext=(8, -12), fontsize=9, color="#1f4e9c")
        lim = float(max(np.abs(x).max(initial=1), np.abs(y).max(initial=1))) * 1.08
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("km east of the township seat", fontsize=9)
        ax.set_ylabel("km north", fontsize=9)
        ax.tick_params(labelsize=8)
        self.title = ax.set_title("", fontsize=11, y=1.01)
        cax = fig.add_axes((0.84, 0.2, 0.03, 0.6))
        cb = fig.colorbar(self.discs, cax=cax)
        cb.set_label("unmet need share this week", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        self.blit: Blitter | None = None

    def update(self, unmet_share: np.ndarray, selected: int | None = None) -> None:
        """Colour the villages by ``unmet_share`` and ring the ``selected`` one."""
        x, y = county_positions(self.model)
        self.discs.set_array(np.nan_to_num(unmet_share, nan=0.0))
        if selected is not None:
            self.ring.set_offsets([[x[selected], y[selected]]])
            self.label.xy = (x[selected], y[selected])
            self.label.set_text(f"village {selected + 1}")
        else:
            self.ring.set_offsets(np.zeros((0, 2)))
            self.label.set_text("")
        self.title.set_text(f"County: {len(x)} villages, week {self.model.steps}")

    def render(self, unmet_share: np.ndarray, selected: int | None = None) -> bytes:
        """PNG of the county view now (thread-safe)."""
        with self.lock:
            self.update(unmet_share, selected)
            if self.blit is None:
                self.blit = Blitter(self.fig)
            return self.blit.render([self.discs, self.ring, self.label, self.title])


def county_map(model: VillageModel, unmet_share: np.ndarray, selected: int | None = None) -> Figure:
    """The county view as a figure (see :class:`CountyMap`)."""
    cm = CountyMap(model)
    cm.update(unmet_share, selected)
    return cm.fig


def village_at(fig: Figure, model: VillageModel, fx: float, fy: float) -> int | None:
    """The village nearest to a click at figure fractions (``fx`` from the left, ``fy`` from the top).

    Returns None when the click is outside the map or far from any village.
    """
    ax = fig.axes[0]
    ax.apply_aspect()
    bbox = ax.get_position()
    if not (bbox.x0 <= fx <= bbox.x1 and bbox.y0 <= 1 - fy <= bbox.y1):
        return None
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    data_x = x0 + (fx - bbox.x0) / bbox.width * (x1 - x0)
    data_y = y0 + (1 - fy - bbox.y0) / bbox.height * (y1 - y0)
    x, y = county_positions(model)
    d = np.hypot(x - data_x, y - data_y)
    best = int(np.argmin(d))
    return best if d[best] <= 0.06 * (x1 - x0) else None


# ---------------------------------------------------------------------------- fast redraw
class Blitter:
    """Fast redraw of a figure whose axes stay put: the static part is drawn once and kept
    as a bitmap; each redraw restores it and draws only the moving artists on top.

    Call :meth:`invalidate` when something static changes (an axis limit, a label).
    """

    def __init__(self, fig: Figure) -> None:
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.background = None

    def invalidate(self) -> None:
        """Draw the static part afresh on the next :meth:`render`."""
        self.background = None

    def render(self, moving: list) -> bytes:
        """PNG of the figure with the ``moving`` artists drawn on the kept background."""
        if self.background is None:
            for artist in moving:
                artist.set_visible(False)
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            for artist in moving:
                artist.set_visible(True)
        else:
            self.canvas.restore_region(self.background)
        for artist in moving:
            (artist.axes or self.fig).draw_artist(artist)
        width, height = self.canvas.get_width_height()
        image = PIL.Image.frombuffer("RGBA", (width, height), bytes(self.canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=1)
        return buf.getvalue()


def _nice_top(value: float) -> float:
    """A round upper axis limit comfortably above ``value`` (1, 2 or 5 times a power of ten)."""
    target = max(float(value), 1.0) * 1.3
    mag = 10 ** np.floor(np.log10(target))
    for m in (1, 2, 5, 10):
        if target <= m * mag:
            return float(m * mag)
    return float(10 * mag)


class ChartBoard:
    """The live charts of one run, kept between steps and redrawn by blitting.

    The time axis shows the first year and doubles its span when the run outgrows it; a
    count axis only grows (to a round number) when the data outgrow it. The axes thus
    rarely change, and a step redraws only the lines (see :class:`Blitter`). Downloads use
    :func:`charts_figure`, which adds legends.

    Args:
        horizon: weeks the run lasts (the extent of the time axis).
    """

    def __init__(self, horizon: int = 520) -> None:
        self.lock = threading.Lock()
        self.fig = Figure(figsize=(13.8, 6.0), dpi=DPI)
        self.fig.subplots_adjust(left=0.06, right=0.985, top=0.94, bottom=0.09, hspace=0.42, wspace=0.28)
        self.blit = Blitter(self.fig)
        self.axes = dict(zip([k for k, _ in CHARTS], self.fig.subplots(2, 3).flat, strict=True))
        self.horizon = int(horizon)
        self.extent = 0  # weeks shown on the time axis: a year, doubled as the run goes on
        self.scale = 1.0
        self.lines: dict[str, list] = {}
        self.notes: dict[str, Any] = {}
        self.tops: dict[str, float] = {}
        self._stack: list = []
        for key, ax in self.axes.items():
            draw_chart(ax, key, _EMPTY, None)  # titles, labels and styles as in the downloaded figures
            for artist in list(ax.lines) + list(ax.texts) + list(ax.collections):
                artist.remove()
            self.tops[key] = 1.0
            ax.set_ylim(0, 1.0)
            self.notes[key] = ax.text(
                0.5, 0.5, "press Step or Play", transform=ax.transAxes, ha="center", va="center", color="#888888"
            )
        for key, _column, colour in _LINE_CHARTS:
            ax = self.axes[key]
            self.lines[key] = [
                ax.plot([], [], color="#777777", linestyle="--", linewidth=1.4)[0],
                ax.plot([], [], color=colour, linewidth=1.8)[0],
            ]
        ax = self.axes["facilities"]
        self.lines["facilities"] = [ax.plot([], [], color=c, linewidth=1.8)[0] for _col, c, _l in FACILITY_LINES] + [
            ax.plot([], [], color=c, linestyle="--", linewidth=1.0)[0] for _col, c, _l in FACILITY_LINES
        ]
        self.lines["sources"] = [self.axes["sources"].plot([], [], color="black", linestyle="--", linewidth=1.2)[0]]

    def _time_axis(self, week: int) -> None:
        """Show the first year; double the span whenever the run outgrows it (up to the horizon)."""
        extent = self.extent or min(self.horizon, int(WEEKS_PER_YEAR))
        while week > extent and extent < self.horizon:
            extent = min(self.horizon, extent * 2)
        if extent == self.extent:
            return
        self.extent = extent
        weeks = extent <= 2 * WEEKS_PER_YEAR
        self.scale = 1.0 if weeks else 1.0 / WEEKS_PER_YEAR
        for ax in self.axes.values():
            ax.set_xlim(0, extent * self.scale)
            ax.set_xlabel("weeks since start" if weeks else "years since start", fontsize=9)
        self.blit.invalidate()

    def render(self, treated: pd.DataFrame, baseline: pd.DataFrame | None = None) -> bytes:
        """PNG of the charts for this data (thread-safe)."""
        with self.lock:
            self._update(treated, baseline)
            moving = [a for lines in self.lines.values() for a in lines] + list(self._stack) + list(self.notes.values())
            return self.blit.render(moving)

    def _update(self, treated: pd.DataFrame, baseline: pd.DataFrame | None) -> None:
        base = baseline if baseline is not None and len(baseline) else _EMPTY
        self._time_axis(int(treated["step"].iloc[-1]) if len(treated) else 0)
        t = treated["step"].to_numpy() * self.scale
        b = base["step"].to_numpy() * self.scale
        for key, column, _colour in _LINE_CHARTS:
            dashed, solid = self.lines[key]
            dashed.set_data(b, base[column].to_numpy())
            solid.set_data(t, treated[column].to_numpy())
        for i, (column, _c, _l) in enumerate(FACILITY_LINES):
            self.lines["facilities"][i].set_data(t, treated[column].to_numpy())
            self.lines["facilities"][i + 3].set_data(b, base[column].to_numpy())
        ax = self.axes["sources"]
        for coll in self._stack:
            coll.remove()
        self._stack = (
            ax.stackplot(
                t,
                *[treated[f"met_hours_{s}"].to_numpy() for s in SOURCES],
                treated["unmet_hours"].to_numpy(),
                colors=SOURCE_COLOURS + ["#dddddd"],
            )
            if len(treated)
            else []
        )
        met = base[[f"met_hours_{s}" for s in SOURCES]].to_numpy().sum(axis=1)
        self.lines["sources"][0].set_data(b, met)
        spending = bool(len(treated)) and not treated["spend_total"].any() and not base["spend_total"].any()
        data_top = {
            "sources": max(
                float(treated[[f"met_hours_{s}" for s in SOURCES] + ["unmet_hours"]].to_numpy().sum(axis=1).max(initial=0.0)),
                float(met.max(initial=0.0)),
            ),
            "facilities": max(
                [_top(treated, c) for c, _k, _l in FACILITY_LINES] + [_top(base, c) for c, _k, _l in FACILITY_LINES]
            ),
        }
        for key, column, _colour in _LINE_CHARTS:
            data_top[key] = max(_top(treated, column), _top(base, column))
        for key, ax in self.axes.items():
            if key not in ("unmet", "trust") and (
                data_top[key] > self.tops[key] or self.tops[key] == 1.0 and data_top[key] > 0.77
            ):
                self.tops[key] = _nice_top(data_top[key])
                ax.set_ylim(0, self.tops[key])
                self.blit.invalidate()
            note = self.notes[key]
            if not len(treated):
                note.set_text("press Step or Play")
            elif key == "spending" and spending:
                note.set_text("no programme spending so far")
            else:
                note.set_text("")


def _top(df: pd.DataFrame, column: str) -> float:
    return float(df[column].to_numpy().max(initial=0.0))


_LINE_CHARTS = [
    ("unmet", "unmet_need_share", "#c44e52"),
    ("volunteers", "active_volunteers", "#55a868"),
    ("trust", "mean_trust", "#4c72b0"),
    ("spending", "spend_total", "#8172b2"),
]

_EMPTY = pd.DataFrame({c: pd.Series(dtype=float) for c in ["step", *COLUMNS]})


def outcome_choices() -> dict[str, str]:
    """Every public output column of the registry, label (unit) -> column name: the list of
    the page's "any outcome" chart (a column a process declares appears by itself)."""
    return {f"{col.label} ({col.unit})": name for name, col in CATALOGUE.items()}


def outcome_chart(column: str, treated: pd.DataFrame, baseline: pd.DataFrame | None = None) -> Figure:
    """One output column over time (and, dashed, its baseline), titled and labelled from the
    output registry."""
    col = CATALOGUE.get(column)
    fig = Figure(figsize=(6.8, 2.8), dpi=DPI)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.12, right=0.98, top=0.88, bottom=0.18)
    ax.set_title(col.label if col else column, fontsize=10)
    ax.set_ylabel(col.unit if col else "", fontsize=9)
    ax.set_xlabel(_time_label(treated), fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if column in treated.columns:
        _lines(ax, treated, baseline if baseline is not None and column in baseline.columns else None, column, "#4c72b0")
    if not len(treated):
        ax.text(0.5, 0.5, "press Step or Play", transform=ax.transAxes, ha="center", va="center", color="#888888")
    return fig
