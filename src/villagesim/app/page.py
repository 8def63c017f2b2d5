"""The browser page: planners explore villages and pull levers while the model runs.

Served by ``villagesim app`` (:mod:`villagesim.cli.app`) with Solara. The page is built from
Solara components on the Vuetify-2 stack that Mesa 3.3's SolaraViz uses. It does not use
``SolaraViz`` itself: SolaraViz applies parameters only by building a new model on Reset,
while here a lever changes the *running* model (:meth:`PageRun.set_lever`), a
counterfactual run is stepped alongside, and a scenario can be uploaded; the run controls
follow Mesa's ``ModelController`` (a threaded play loop).

Everything shown is served by the local server: charts are matplotlib PNGs, there is no
Markdown (its KaTeX comes from a CDN) and no Vega/Altair.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

import ipyvuetify as v
import reacton.ipyvuetify as rv
import solara
import solara.lab
import traitlets

from villagesim.app.figures import (
    CARE_COLOURS,
    CHARTS,
    ChartBoard,
    CountyMap,
    VillageMap,
    chart,
    charts_figure,
    county_map,
    outcome_chart,
    outcome_choices,
    png,
    village_at,
    village_map,
)
from villagesim.app.session import (
    ARMS,
    CHOICE_LABELS,
    PAGE_LIMITS,
    CatalogueEntry,
    LeverSpec,
    PageRun,
    check_page_limits,
    grouped,
    in_worker,
    lever_specs,
    load_uploaded_files,
    shipped_scenarios,
    validate_seed,
)
from villagesim.config.loading import load_scenario, scenario_to_toml
from villagesim.config.schema import CARE_LEVELS, Scenario
from villagesim.errors import ScenarioError

ENV_SCENARIO = "VILLAGESIM_APP_SCENARIO"
"""Environment variable through which ``villagesim app SCENARIO`` names the scenario to open first."""

TITLE = "villagesim — try a mutual-aid elderly-care policy 互助养老 on simulated villages"
INTRO = (
    "Each dot on the map is a household or a person of a simulated village. Every week elders need help "
    "with daily living, meals, company and nursing; family, neighbours who volunteer and services meet part "
    "of it. Pick a scenario, press Play, and move a lever on the left: the change applies to the running "
    "village from the next week. Switch on 'Compare with baseline' to see the same village, with the same "
    "chance events, without your changes (dashed lines)."
)
COLOUR_BY = {"care": "care level", "unmet": "unmet need"}
INLINE_BUILD_PERSONS = 100_000
"""Villages up to this many persons are built at once (well under a second); bigger ones in a
worker thread while the page says so (:func:`villagesim.app.session.in_worker`)."""


# ---------------------------------------------------------------------------- small widgets
class ScenarioFileInput(v.VuetifyTemplate):
    """A button that opens the file chooser (or a drop zone) and sends the files' text to Python.

    Several files may be chosen or dropped together: a scenario and the files it extends.
    The browser sends at most ``max_files + 1`` files and ``max_bytes + 1`` bytes of each, so
    that a file too large is refused by the server without being sent whole.
    """

    template = traitlets.Unicode(
        """
<template>
  <div class="scenario-upload" @dragover.prevent @drop.prevent="dropped"
       style="border: 1px dashed #999; border-radius: 4px; padding: 6px 8px;">
    <label style="cursor: pointer; color: #1f4e9c; font-weight: 500;">
      Upload a scenario file (.toml), with the files it extends
      <input type="file" accept=".toml" multiple style="display: none" @change="chosen" />
    </label>
    <span style="color: #666; font-size: 0.85em"> or drop them here</span>
  </div>
</template>
<script>
module.exports = {
  methods: {
    send(list) {
      const files = Array.from(list || []).slice(0, this.max_files + 1);
      if (!files.length) return;
      Promise.all(files.map((f) => f.slice(0, this.max_bytes + 1).text().then((text) => ({name: f.name, text}))))
        .then((sent) => this.upload({files: sent}));
    },
    chosen(event) { this.send(event.target.files); event.target.value = ""; },
    dropped(event) { this.send(event.dataTransfer.files); },
  },
};
</script>
"""
    ).tag(sync=True)
    max_bytes = traitlets.Int(PAGE_LIMITS.file_bytes).tag(sync=True)
    max_files = traitlets.Int(PAGE_LIMITS.files).tag(sync=True)
    on_upload = traitlets.Any(None, allow_none=True)

    def vue_upload(self, data: dict[str, Any]) -> None:
        """Called from the browser with ``{"files": [{"name": ..., "text": ...}, ...]}``
        (or one file as ``{"name": ..., "text": ...}``)."""
        if self.on_upload is None:
            return
        items = data.get("files") if isinstance(data.get("files"), list) else [data]
        self.on_upload([(str(f.get("name", "")), str(f.get("text", ""))) for f in items if isinstance(f, dict)])


class ClickableImage(v.VuetifyTemplate):
    """An image that reports where it was clicked (fractions of its width and height)."""

    template = traitlets.Unicode(
        """
<template>
  <img :src="src" :class="image_class" style="max-width: 100%; cursor: pointer"
       @click="pick({x: $event.offsetX / $event.target.clientWidth, y: $event.offsetY / $event.target.clientHeight})" />
</template>
"""
    ).tag(sync=True)
    src = traitlets.Unicode("").tag(sync=True)
    image_class = traitlets.Unicode("").tag(sync=True)
    on_pick = traitlets.Any(None, allow_none=True)

    def vue_pick(self, data: dict[str, float]) -> None:
        """Called from the browser with the click position."""
        if self.on_pick is not None:
            self.on_pick(float(data.get("x", -1)), float(data.get("y", -1)))


# ---------------------------------------------------------------------------- state
def initial_catalogue() -> tuple[dict[str, CatalogueEntry], str]:
    """The scenarios to offer and the one to open first (``$VILLAGESIM_APP_SCENARIO`` if set)."""
    entries = shipped_scenarios()
    first = "baseline" if "baseline" in entries else next(iter(entries), "")
    path = os.environ.get(ENV_SCENARIO)
    if path:
        scenario = load_scenario(path).scenario
        name = f"{scenario.name} (from {os.path.basename(path)})"
        entries = {name: CatalogueEntry(name, scenario, path), **entries}
        first = name
    if not entries:
        entries = {"defaults": CatalogueEntry("defaults", Scenario(name="defaults"), "schema defaults")}
        first = "defaults"
    return entries, first


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "share":
        return f"{100 * value:.0f}%"
    if kind == "rmb":
        return f"{value:,.0f} RMB"
    if kind == "ratio":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _diff(value: float | None, base: float | None, kind: str) -> str:
    if value is None or base is None:
        return ""
    d = value - base
    if kind == "share":
        return f"baseline {_fmt(base, kind)} ({100 * d:+.0f} points)"
    if kind == "ratio":
        return f"baseline {base:.2f} ({d:+.2f})"
    return f"baseline {_fmt(base, kind)} ({d:+,.0f})"


KPIS = [
    ("unmet_need_share", "Unmet need share", "share", "of elders' care hours this week"),
    ("elders_with_unmet_need", "Elders with unmet need", "count", "this week"),
    ("active_volunteers", "Active volunteers", "count", "helped this week"),
    ("mean_trust", "Trust in the committee", "ratio", "mean over elders, 0 to 1"),
    ("spend_total", "Spending", "rmb", "this week"),
]


# ---------------------------------------------------------------------------- components
def _locked(run: PageRun, f: Any, *args: Any) -> Any:
    """Call ``f`` while the run cannot step (the play thread steps while other threads draw)."""
    with run.lock:
        return f(*args)


def _moved(new: float, current: Any, spec: LeverSpec) -> bool:
    """Whether a slider value is a move by the planner rather than the slider snapping the
    current value onto its step grid (which must not change the model)."""
    try:
        return abs(float(new) - float(current)) > 0.5 * float(spec.step or 1) + 1e-12
    except (TypeError, ValueError):
        return True


@solara.component
def LeverControl(spec: LeverSpec, value: Any, error: str, on_set: Any) -> None:
    """One lever: a switch, a selector, or a slider with a field to type an exact value."""
    help_text = spec.description
    if spec.kind == "bool":
        solara.Switch(label=spec.label, value=bool(value), on_value=lambda x: on_set(spec.path, x), classes=["lever"])
    elif spec.kind == "choice":
        rv.Select(
            label=spec.label,
            items=[{"text": CHOICE_LABELS.get(c, str(c)), "value": c} for c in spec.choices],
            v_model=value,
            on_v_model=lambda x: on_set(spec.path, x),
            class_="lever",
        )
    else:
        with solara.Column(gap="0px", classes=["lever"]):
            solara.HTML(
                tag="div",
                unsafe_innerHTML=(
                    f"<b>{spec.label}</b> <span style='color:#666;font-size:0.85em'>({spec.unit}; "
                    f"allowed {spec.bounds_text()})</span>"
                ),
                attributes={"title": help_text},
            )
            with solara.Row(gap="6px", style={"align-items": "center"}):
                shown = min(max(float(value), spec.lo), spec.hi)
                cast = int if spec.kind == "int" else float
                with solara.Column(style={"flex": "1 1 auto"}):
                    rv.Slider(
                        v_model=cast(shown),
                        min=cast(spec.lo),
                        max=cast(spec.hi),
                        step=cast(spec.step or 1),
                        hide_details=True,
                        dense=True,
                        class_=f"lever-slider lever-{spec.path.replace('.', '-')}",
                        on_v_model=lambda x: _moved(x, shown, spec) and on_set(spec.path, cast(x)),
                    )
                solara.InputText(
                    label="value",
                    value=f"{value:g}" if isinstance(value, float) else str(value),
                    on_value=lambda text: on_set(spec.path, text),
                    error=bool(error),
                    dense=True,
                    classes=["lever-value"],
                    style={"max-width": "110px"},
                )
            if error:
                solara.Error(f"Not applied: {error}", dense=True, classes=["lever-error"])


@solara.component
def LeverPanel(run: PageRun, lever_tick: solara.Reactive[int], errors: solara.Reactive[dict[str, str]]) -> None:
    """All levers, grouped, with values read from the running model.

    Re-rendered only when a lever changes (by the planner or a scheduled intervention),
    not on every step, so that stepping stays fast.
    """
    lever_tick.value  # noqa: B018

    def on_set(path: str, value: Any) -> None:
        try:
            run.set_lever(path, value)
        except ScenarioError as exc:
            errors.value = {**errors.value, path: str(exc)}
            return
        if path in errors.value:
            errors.value = {k: e for k, e in errors.value.items() if k != path}
        lever_tick.value += 1

    for title, specs in grouped(lever_specs()):
        with solara.Card(title, margin=0, classes=["lever-group"], style={"margin-bottom": "10px"}):
            for spec in specs:
                LeverControl(spec, run.lever_value(spec.path), errors.value.get(spec.path, ""), on_set)


@solara.component
def Kpis(run: PageRun, week: int, compare: bool) -> None:
    """This week's key outcomes, with the baseline beside them when compared."""
    with solara.Row(gap="10px", style={"flex-wrap": "wrap"}):
        for column, label, kind, note in KPIS:
            value = run.latest(column)
            base = run.latest(column, ARMS[1]) if run.baseline is not None else None
            with solara.Card(margin=0, classes=[f"kpi kpi-{column}"], style={"min-width": "170px", "padding": "6px 10px"}):
                solara.HTML(tag="div", unsafe_innerHTML=f"<span style='color:#555'>{label}</span>")
                solara.HTML(
                    tag="div", unsafe_innerHTML=f"<span style='font-size:1.6em;font-weight:600'>{_fmt(value, kind)}</span>"
                )
                solara.HTML(
                    tag="div",
                    unsafe_innerHTML=f"<span style='color:#777;font-size:0.8em'>{note}<br>{_diff(value, base, kind)}</span>",
                )
    so_far = run.so_far()
    if so_far is not None:
        mine, base = so_far[ARMS[0]], so_far[ARMS[1]]
        solara.HTML(
            tag="div",
            unsafe_innerHTML=(
                f"<b>Over the {week} weeks so far</b>, with your levers compared with the baseline: unmet need share "
                f"{100 * mine['unmet_need_share']:.1f}% vs {100 * base['unmet_need_share']:.1f}% on average; active "
                f"volunteers {mine['active_volunteers']:.1f} vs {base['active_volunteers']:.1f} a week; spending "
                f"{mine['spend_total']:,.0f} RMB vs {base['spend_total']:,.0f} RMB in total."
            ),
            classes=["effect-so-far"],
        )


def _legend_html() -> str:
    def dot(colour: str, shape: str = "50%") -> str:
        return (
            f"<span style='display:inline-block;width:11px;height:11px;border-radius:{shape};"
            f"background:{colour};border:1px solid #555;margin:0 4px 0 10px'></span>"
        )

    care = "".join(f"{dot(c)}{name}" for c, name in zip(CARE_COLOURS, CARE_LEVELS, strict=True))
    return (
        "<div style='font-size:0.85em;line-height:1.9'>"
        f"<b>Elders by care level:</b>{care}<br>"
        f"{dot('#e5d8bd')}household (colour: hamlet 自然村)"
        "<span style='color:#238b45;margin-left:10px'>▲</span> active volunteer"
        "<span style='color:#238b45;margin-left:10px'>―</span> match this week (helper → elder)"
        f"{dot('#6a51a3', '0')}facility operating (幸福院 etc.){dot('#ffffff', '0')}facility idle"
        "</div>"
    )


@solara.component
def MapView(run: PageRun, week: int, village: solara.Reactive[int], colour_by: solara.Reactive[str]) -> None:
    """The village map and, for several villages, the county view (click a village to open it)."""
    n_v = len(run.run.world.villages)
    v_now = min(village.value, n_v - 1)
    board = solara.use_memo(lambda: VillageMap(run.run, v_now, colour_by.value), dependencies=[run, v_now, colour_by.value])
    map_png = solara.use_memo(lambda: _locked(run, board.render), dependencies=[board, run.week])
    county = solara.use_memo(lambda: CountyMap(run.run) if n_v > 1 else None, dependencies=[run, n_v])
    share = _locked(run, run.village_unmet_share) if county is not None else None
    county_src = solara.use_memo(
        lambda: (
            "data:image/png;base64," + base64.b64encode(_locked(run, county.render, share, v_now)).decode()
            if county is not None
            else ""
        ),
        dependencies=[county, run.week, v_now],
    )

    def on_pick(fx: float, fy: float) -> None:
        if county is None:
            return
        hit = village_at(county.fig, run.run, fx, fy)
        if hit is not None:
            village.value = hit

    with solara.Row(gap="16px", style={"flex-wrap": "wrap", "align-items": "flex-start"}):
        with solara.Column(gap="4px", style={"width": "540px", "flex": "0 0 auto"}):
            with solara.Row(gap="12px", style={"align-items": "center"}):
                solara.ToggleButtonsSingle(
                    value=colour_by.value,
                    on_value=colour_by.set,
                    children=[solara.Button(f"Colour elders by {label}", value=k, text=True) for k, label in COLOUR_BY.items()],
                )
            solara.Image(map_png, classes=["village-map"])
            solara.HTML(tag="div", unsafe_innerHTML=_legend_html())
        if county is not None:
            with solara.Column(gap="4px", style={"width": "540px", "flex": "0 0 auto"}):
                solara.HTML(
                    tag="div",
                    unsafe_innerHTML=(
                        "<b>County view</b>: one disc per village, coloured by this week's unmet need share "
                        "(green: little unmet, red: most unmet). <b>Click a village</b> to open it on the map, "
                        "or pick it from the list."
                    ),
                    style="max-width: 460px",
                )
                ClickableImage.element(src=county_src, image_class="county-map", on_pick=on_pick)
                labels = [f"Village {i + 1}" for i in range(n_v)]
                solara.Select(
                    label="Open village",
                    values=labels,
                    value=labels[v_now],
                    on_value=lambda s: village.set(labels.index(s)),
                    classes=["village-select"],
                )
                worst = [int(i) for i in (-share).argsort(kind="stable")[:5] if share[i] == share[i]]
                if worst and run.week > 0:
                    solara.Text(
                        "Most unmet need this week: " + ", ".join(f"village {i + 1} ({100 * share[i]:.0f}%)" for i in worst),
                        style={"font-size": "0.85em", "color": "#555"},
                    )


@solara.component
def Charts(run: PageRun, week: int, compare: bool) -> None:
    """The live charts (one image, redrawn each week)."""
    board = solara.use_memo(lambda: ChartBoard(run.horizon), dependencies=[run])

    def render() -> bytes:
        data = run.data()
        return board.render(data[data["arm"] == ARMS[0]], data[data["arm"] == ARMS[1]] if compare else None)

    charts_png = solara.use_memo(render, dependencies=[run, run.week, compare])
    if compare:
        solara.HTML(
            tag="div",
            unsafe_innerHTML=(
                "<b>Solid lines: with your levers. Dashed lines: baseline</b> (the same village and chance events "
                "with the levers as the scenario file sets them)."
            ),
        )
    solara.Image(charts_png, classes=["charts"], width="100%")
    solara.HTML(
        tag="div",
        unsafe_innerHTML=(
            "<span style='font-size:0.85em;color:#555'>Care hours by source, from the bottom: family (blue), "
            "volunteers (green), peer elders (light green), facilities (red), NGOs (purple), time-bank "
            "redemptions (yellow), unmet (grey). Facilities: built (purple), operating (green), idle (red); "
            "dashed: baseline. Spending is the programme's spending in the week (building, running, subsidies, "
            "NGOs, publicity, platform).</span>"
        ),
    )


@solara.component
def OutcomeChart(run: PageRun, week: int, compare: bool) -> None:
    """Any output column of the registry, chosen by its label (with unit)."""
    choices = solara.use_memo(outcome_choices, dependencies=[])
    default = next((k for k, c in choices.items() if c == "unmet_need_share"), next(iter(choices)))
    chosen = solara.use_reactive(default)

    def render() -> bytes:
        data = run.data()
        base = data[data["arm"] == ARMS[1]] if compare else None
        return png(outcome_chart(choices[chosen.value], data[data["arm"] == ARMS[0]], base))

    image = solara.use_memo(render, dependencies=[run, run.week, compare, chosen.value])
    with solara.Card("Any outcome", margin=0):
        solara.Select(label="Outcome", values=list(choices), value=chosen.value, on_value=chosen.set, classes=["outcome-select"])
        solara.Image(image, classes=["outcome-chart"], width="640px")


def figures_zip(run: PageRun, village: int, colour_by: str) -> bytes:
    """The current figures at print resolution, with legends, as a ZIP of PNG files."""
    with run.lock:
        return _figures_zip(run, village, colour_by)


def _figures_zip(run: PageRun, village: int, colour_by: str) -> bytes:
    data = run.data()
    treated = data[data["arm"] == ARMS[0]]
    baseline = data[data["arm"] == ARMS[1]] if run.baseline is not None else None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("charts.png", png(charts_figure(treated, baseline, legend=True), dpi=110))
        for key, _title in CHARTS:
            zf.writestr(f"chart_{key}.png", png(chart(key, treated, baseline), dpi=110))
        zf.writestr("village_map.png", png(village_map(run.run, village, colour_by, legend=True), dpi=110))
        if len(run.run.world.villages) > 1:
            zf.writestr("county.png", png(county_map(run.run, run.village_unmet_share(), village), dpi=110))
    return buf.getvalue()


@solara.component
def Downloads(run: PageRun, week: int, name: str, village: int, colour_by: str) -> None:
    """Download the run's data, the figures and the scenario as run."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", run.run.scenario.name or name).strip("_") + f"_week{run.week}"
    with solara.Row(gap="8px", style={"flex-wrap": "wrap"}):
        solara.FileDownload(run.csv_bytes, filename=f"{stem}.csv", label="Run data (CSV)")
        solara.FileDownload(run.parquet_bytes, filename=f"{stem}.parquet", label="Run data (Parquet)")
        solara.FileDownload(
            lambda: figures_zip(run, village, colour_by), filename=f"{stem}_figures.zip", label="Figures (PNG, zip)"
        )
        solara.FileDownload(
            lambda: scenario_to_toml(run.run.scenario).encode(), filename=f"{stem}_scenario.toml", label="Scenario as run (TOML)"
        )


@solara.component
def RunCard(
    run: PageRun,
    week: int,
    lever_version: int,
    playing: solara.Reactive[bool],
    interval_ms: solara.Reactive[int],
    on_step: Any,
    on_reset: Any,
    on_undo: Any,
    step_error: solara.Reactive[str],
    busy: bool = False,
) -> None:
    """Step, play/pause, reset, speed, and where the run is (the run's buttons wait while a worker builds)."""
    with solara.Card("Run", margin=0):
        solara.Text(
            f"Week {run.week} of {run.horizon} (year {run.week / 52:.1f})"
            + ("" if run.running else " — finished; press Reset to start again"),
            classes=["week-counter"],
        )
        with solara.Row(gap="6px"):
            solara.Button("Step", on_click=on_step, color="primary", disabled=busy or playing.value or not run.running)
            solara.Button(
                "Pause" if playing.value else "Play",
                on_click=(lambda: playing.set(False)) if playing.value else (lambda: playing.set(True)),
                color="primary",
                disabled=busy or not run.running,
            )
            solara.Button("Reset", on_click=on_reset, color="primary", outlined=True, disabled=busy)
        solara.SliderInt("Speed (ms between weeks)", value=interval_ms, min=0, max=1000, step=50)
        changed = ", ".join(sorted(run.levers)) if run.levers else "none"
        solara.Text(f"Levers you changed: {changed}", style={"font-size": "0.85em", "color": "#555"}, classes=["changed-levers"])
        solara.Button("Undo all lever changes", on_click=on_undo, text=True, disabled=not run.levers)
        if step_error.value:
            solara.Error(step_error.value)


@solara.component
def Page() -> None:
    """The whole page (one model per browser session)."""
    catalogue0, first = solara.use_memo(initial_catalogue, dependencies=[])
    catalogue = solara.use_reactive(catalogue0)
    choice = solara.use_reactive(first)
    entry = catalogue.value[choice.value]
    run = solara.use_reactive(solara.use_memo(lambda: PageRun(entry.scenario), dependencies=[]))
    tick = solara.use_reactive(0)  # +1 per step: outputs redraw
    lever_tick = solara.use_reactive(0)  # +1 when a lever changes: the lever panel redraws
    playing = solara.use_reactive(False)
    interval_ms = solara.use_reactive(100)
    compare = solara.use_reactive(False)
    seed_text = solara.use_reactive(str(run.value.seed))
    seed_error = solara.use_reactive("")
    upload_error = solara.use_reactive("")
    upload_note = solara.use_reactive("")
    lever_errors = solara.use_reactive({})
    village = solara.use_reactive(0)
    colour_by = solara.use_reactive("care")
    step_error = solara.use_reactive("")

    busy = solara.use_reactive("")  # what a worker is checking or building for this session, if anything
    job_id = solara.use_ref(0)  # the latest job: an older one that finishes late is dropped

    def install(new_run: PageRun) -> None:
        run.value = new_run
        lever_errors.value = {}
        step_error.value = ""
        tick.value += 1
        lever_tick.value += 1

    def work(job: int, what: Any) -> None:
        """Run a check or build in the page's workers (this runs in the session's task thread)."""
        try:
            what(lambda: job_id.current == job)
        finally:
            if job_id.current == job:
                busy.value = ""

    worker = solara.lab.use_task(work, dependencies=None, prefer_threaded=True, raise_error=False)

    def start(note: str, what: Any) -> None:
        """Start ``what(is_current)`` off this session's thread, showing ``note`` meanwhile."""
        job_id.current += 1
        busy.value = note
        worker(job_id.current, what)

    def rebuild(scenario_entry: CatalogueEntry, seed: int | None, levers: dict[str, Any]) -> None:
        playing.value = False
        try:
            size = check_page_limits(scenario_entry.scenario)
        except ScenarioError as exc:
            step_error.value = str(exc)
            return
        with_baseline = compare.value
        if size.persons <= INLINE_BUILD_PERSONS:
            job_id.current += 1  # a build in flight no longer applies
            busy.value = ""
            install(PageRun(scenario_entry.scenario, seed=seed, levers=levers, compare=with_baseline))
            return

        def build(is_current: Any) -> None:
            try:
                new_run = in_worker(PageRun, scenario_entry.scenario, seed=seed, levers=levers, compare=with_baseline)
            except (ScenarioError, MemoryError) as exc:
                if is_current():
                    step_error.value = f"The villages were not built: {exc}"
                return
            if is_current():
                install(new_run)

        start(f"Building {size.persons:,} persons' villages…", build)

    def do_step() -> None:
        before = run.value.run.scenario
        try:
            run.value.step()
        except Exception as exc:  # a failing step must not kill the page; show it, log it and stop
            traceback.print_exc()
            step_error.value = f"The model stopped with an error: {exc}"
            playing.value = False
        tick.value += 1
        if run.value.run.scenario is not before:  # a scheduled intervention changed a lever
            lever_tick.value += 1

    def play_loop() -> None:
        while playing.value and run.value.running:
            started = time.perf_counter()
            do_step()
            time.sleep(max(0.0, interval_ms.value / 1000 - (time.perf_counter() - started)))
        playing.value = False

    solara.lab.use_task(play_loop, dependencies=[playing.value], prefer_threaded=True)

    def pick_scenario(name: str) -> None:
        choice.value = name
        chosen = catalogue.value[name]
        seed_text.value = str(chosen.scenario.run.seed)
        seed_error.value = ""
        village.value = 0
        rebuild(chosen, chosen.scenario.run.seed, {})

    def on_upload(files: list[tuple[str, str]]) -> None:
        names = ", ".join(name for name, _text in files) or "the upload"
        upload_error.value = ""
        upload_note.value = ""
        with_baseline = compare.value

        def check_and_build(is_current: Any) -> None:
            try:
                chosen, scenario = in_worker(load_uploaded_files, files)
                if is_current():
                    busy.value = f"Building the villages of {chosen}…"
                new_run = in_worker(PageRun, scenario, compare=with_baseline) if is_current() else None
            except (ScenarioError, MemoryError) as exc:
                if is_current():
                    upload_error.value = str(exc)
                return
            if new_run is None or not is_current():
                return
            others = [name for name, _text in files if Path(name).name != chosen]
            label = f"uploaded: {chosen}"
            catalogue.value = {**catalogue.value, label: CatalogueEntry(label, scenario, chosen)}
            upload_note.value = f"Loaded {chosen}: {scenario.name}." + (f" (extends {', '.join(others)})" if others else "")
            playing.value = False
            choice.value = label
            seed_text.value = str(scenario.run.seed)
            seed_error.value = ""
            village.value = 0
            install(new_run)

        start(f"Checking {names}…", check_and_build)

    def on_seed(text: str) -> None:
        seed_text.value = text
        try:
            validate_seed(text, entry.scenario)
        except ScenarioError as exc:
            seed_error.value = str(exc)
            return
        seed_error.value = ""

    def do_reset() -> None:
        seed = run.value.seed if seed_error.value else validate_seed(seed_text.value, entry.scenario)
        rebuild(entry, seed, run.value.levers)

    def undo_levers() -> None:
        rebuild(entry, run.value.seed, {})

    def on_compare(on: bool) -> None:
        compare.value = on
        current = run.value
        if not on or current.run.world.persons.village.size <= INLINE_BUILD_PERSONS:
            current.set_compare(on)
            tick.value += 1
            return

        def build_baseline(is_current: Any) -> None:
            in_worker(current.set_compare, True)  # catches up to the current week
            if run.value is current:
                tick.value += 1

        start("Building the baseline villages…", build_baseline)

    r = run.value
    tick.value  # noqa: B018  (one subscriber: a step re-renders once, and only what depends on the week)
    solara.Title("villagesim: mutual-aid elderly care")
    with solara.Column(style={"padding": "8px 16px"}, gap="6px"):
        solara.HTML(tag="h2", unsafe_innerHTML=TITLE, style="margin: 4px 0")
        solara.HTML(tag="p", unsafe_innerHTML=INTRO, style="max-width: 1100px; color: #333; margin: 0")
        with solara.Columns([3, 9], gutters_dense=True):
            with solara.Column(gap="10px"):
                with solara.Card("Scenario", margin=0):
                    solara.Select(
                        label="Scenario",
                        values=list(catalogue.value),
                        value=choice.value,
                        on_value=pick_scenario,
                        classes=["scenario-select"],
                    )
                    if entry.scenario.description:
                        solara.Text(entry.scenario.description, style={"font-size": "0.85em", "color": "#555"})
                    ScenarioFileInput.element(on_upload=on_upload)
                    if busy.value:
                        solara.Info(busy.value, dense=True, classes=["busy-note"])
                        rv.ProgressLinear(indeterminate=True, height=3)
                    if upload_error.value:
                        solara.Error(f"The file was not loaded: {upload_error.value}", classes=["upload-error"])
                    elif upload_note.value and not busy.value:
                        solara.Success(upload_note.value, dense=True, classes=["upload-note"])
                    solara.InputText(
                        "Seed (same seed, same chance events; applies on Reset)",
                        value=seed_text.value,
                        on_value=on_seed,
                        error=seed_error.value or False,
                        classes=["seed-input"],
                    )
                    solara.Switch(
                        label="Compare with baseline (same seed, without your lever changes)",
                        value=compare.value,
                        on_value=on_compare,
                        classes=["compare-switch"],
                    )
                RunCard(
                    r,
                    r.week,
                    lever_tick.value,
                    playing,
                    interval_ms,
                    do_step,
                    do_reset,
                    undo_levers,
                    step_error,
                    bool(busy.value),
                )
                solara.HTML(
                    tag="div",
                    unsafe_innerHTML=(
                        "<b>Levers</b><br><span style='font-size:0.85em;color:#555'>A change applies to the running "
                        "village from the next week. Type an exact value in the box and press Enter; values outside the "
                        "allowed range are refused and the village keeps running unchanged.</span>"
                    ),
                )
                LeverPanel(r, lever_tick, lever_errors)
            with solara.Column(gap="10px"):
                Kpis(r, r.week, compare.value)
                MapView(r, r.week, village, colour_by)
                Charts(r, r.week, compare.value)
                OutcomeChart(r, r.week, compare.value)
                with solara.Card("Download", margin=0):
                    Downloads(r, r.week, choice.value, min(village.value, len(r.run.world.villages) - 1), colour_by.value)
