"""The browser page without a browser: Solara components rendered in-process (as Mesa's own
SolaraViz tests do), the paired run behind the page, uploads, downloads and the offline stack."""

from __future__ import annotations

import io
import time
import zipfile
from importlib.metadata import version
from pathlib import Path

import ipyvuetify as v
import numpy as np
import pandas as pd
import pytest
import solara

from villagesim.app.figures import CountyMap, county_positions, village_at
from villagesim.app.page import LeverPanel, Page, ScenarioFileInput, figures_zip
from villagesim.app.session import SLIDER_CAPS, PageRun, lever_specs, load_uploaded, shipped_scenarios, validate_seed
from villagesim.cli.main import main
from villagesim.config.schema import Scenario
from villagesim.errors import ScenarioError
from villagesim.model import VillageModel

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

ROOT = Path(__file__).resolve().parents[2]


def _schema_rows() -> dict[str, dict]:
    return {r["path"]: r for r in Scenario.parameter_table()}


@pytest.fixture
def small_run(small) -> PageRun:
    return PageRun(small)


@solara.component
def _LeverHarness(run: PageRun):
    tick = solara.use_reactive(0)
    errors = solara.use_reactive({})
    LeverPanel(run, tick, errors)


def _slider(rc, path: str):
    return rc.find(v.Slider, class_=f"lever-slider lever-{path.replace('.', '-')}").widget


def _lever_box(rc, path: str):
    """The typed-value field of a lever (the text field in the same lever block as its slider)."""
    target = f"lever-slider lever-{path.replace('.', '-')}"
    for block in rc.find(v.Sheet, class_="d-flex ma-0 lever").widgets:
        inside = list(_walk(block))
        if any(isinstance(w, v.Slider) and w.class_ == target for w in inside):
            return next(w for w in inside if isinstance(w, v.TextField))
    raise AssertionError(path)


def _type(field, text: str) -> None:
    """Type into a text field and press Enter, as a planner does."""
    field.v_model = text
    field.fire_event("keyup.enter", None)


def _settled(rc, timeout: float = 60.0) -> None:
    """Wait until no check or build runs for the page (the page's work is off its thread)."""
    deadline = time.monotonic() + timeout
    while rc.find(v.Alert, class_="busy-note").widgets:
        assert time.monotonic() < deadline, "the page's check or build did not finish"
        time.sleep(0.02)


def _upload(rc, *files: tuple[str, str]) -> None:
    """Upload files together, as the browser's file chooser does, and wait for the check."""
    rc.find(ScenarioFileInput).widget.vue_upload({"files": [{"name": n, "text": t} for n, t in files]})
    _settled(rc)


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", None) or []:
        if not isinstance(child, str):
            yield from _walk(child)


# ---------------------------------------------------------------------------- levers from the schema
def test_every_policy_lever_is_offered_with_the_schema_bounds():
    rows = _schema_rows()
    specs = {s.path: s for s in lever_specs()}
    policy = [p for p, r in rows.items() if p.startswith("policy.") and r["type"] in ("float", "int", "bool") and not r["fixed"]]
    assert set(policy) <= set(specs), "a policy lever of the schema is missing from the page"
    assert not any(r["fixed"] for p, r in rows.items() if p in specs), "a parameter fixed at build time is offered"
    for extra in ("hollowing_out.outmigration_rate", "committee.admin_burden"):
        assert extra in specs
    assert specs["policy.evaluation_regime"].kind == "choice"
    assert set(specs["policy.evaluation_regime"].choices) == {"count", "quality"}
    assert specs["policy.time_bank.enabled"].kind == "bool" and specs["policy.platform.enabled"].kind == "bool"
    for spec in specs.values():
        row = rows[spec.path]
        assert spec.unit == row["unit"]
        assert spec.bounds == {k: float(row[k]) for k in ("ge", "le", "gt", "lt") if k in row}
        if spec.kind in ("float", "int"):
            lo = row.get("ge", row.get("gt"))
            hi = row.get("le", row.get("lt"))
            assert spec.lo == lo
            assert spec.hi <= hi  # wide bounds (a budget up to 1e10) are capped on the slider only
            if spec.path not in SLIDER_CAPS and hi - lo <= 1e4:
                assert spec.hi == hi
    assert "宣传动员" in specs["policy.publicity"].label  # the Chinese term where the sources use one


def test_rendered_sliders_carry_the_schema_bounds(small_run):
    box, rc = solara.render(_LeverHarness(small_run), handle_error=False)
    for spec in lever_specs():
        if spec.kind not in ("float", "int"):
            continue
        w = _slider(rc, spec.path)
        assert (w.min, w.max, w.step) == (spec.lo, spec.hi, spec.step), spec.path
    w = _slider(rc, "policy.publicity")
    assert (w.min, w.max) == (0.0, 1.0)
    w = _slider(rc, "hollowing_out.outmigration_rate")
    assert (w.min, w.max) == (0.0, 0.9)
    assert w.v_model == pytest.approx(small_run.run.scenario.hollowing_out.outmigration_rate)
    rc.close()


def test_changing_a_lever_changes_the_running_model_without_reset(small_run):
    run = small_run
    for _ in range(3):
        run.step()
    box, rc = solara.render(_LeverHarness(run), handle_error=False)
    _slider(rc, "policy.publicity").v_model = 0.7  # what the browser sends when the slider moves
    rc.find(v.Switch, label="Run a time bank").widget.v_model = True
    rc.find(v.Select, label="Evaluation regime 考核").widget.v_model = "quality"
    _type(_lever_box(rc, "committee.admin_burden"), "0.25")  # a typed exact value
    s = run.run.scenario
    assert s.policy.publicity == 0.7
    assert s.policy.time_bank.enabled is True
    assert s.policy.evaluation_regime == "quality"
    assert s.committee.admin_burden == 0.25
    assert run.week == 3, "a lever must change the running model, not rebuild it"
    assert set(run.levers) == {
        "policy.publicity",
        "policy.time_bank.enabled",
        "policy.evaluation_regime",
        "committee.admin_burden",
    }
    run.step()
    assert run.week == 4
    rc.close()


def test_a_value_typed_out_of_range_is_refused_with_a_message(small_run):
    run = small_run
    run.step()
    before = run.run.scenario
    box, rc = solara.render(_LeverHarness(run), handle_error=False)
    _type(_lever_box(rc, "policy.publicity"), "3")
    alert = rc.find(v.Alert, class_="lever-error")
    alert.assert_single()
    text = str(alert.widget.children)
    assert "policy.publicity" in text and "less than or equal to 1" in text
    assert run.run.scenario is before and run.week == 1 and run.levers == {}
    _type(_lever_box(rc, "policy.publicity"), "lots")
    assert "valid number" in str(rc.find(v.Alert, class_="lever-error").widget.children)
    _type(_lever_box(rc, "policy.publicity"), "0.5")  # a good value clears the message
    rc.find(v.Alert, class_="lever-error").assert_empty()
    assert run.run.scenario.policy.publicity == 0.5
    rc.close()


# ---------------------------------------------------------------------------- the whole page
def test_page_steps_resets_and_keeps_the_model_on_a_bad_upload(tmp_path):
    box, rc = solara.render(Page(), handle_error=False)
    step = rc.find(v.Btn, children=["Step"]).widget
    for _ in range(3):
        step.click()
    rc.find(v.Html, children=["Week 3 of 520 (year 0.1)"]).assert_single()
    _upload(rc, ("bad.toml", 'extends = "baseline.toml"\n[policy]\npublicity = 3\n'))
    err = str(rc.find(v.Alert, class_="upload-error").widget.children)
    assert "bad.toml:3: policy.publicity: Input should be less than or equal to 1" in err
    rc.find(v.Html, children=["Week 3 of 520 (year 0.1)"]).assert_single()  # the run goes on untouched
    step.click()
    rc.find(v.Html, children=["Week 4 of 520 (year 0.1)"]).assert_single()
    _upload(rc, ("mine.toml", 'extends = "baseline.toml"\nname = "mine"\n[run]\nsteps = 30\n'))
    rc.find(v.Alert, class_="upload-error").assert_empty()
    rc.find(v.Html, children=["Week 0 of 30 (year 0.0)"]).assert_single()  # the uploaded scenario runs
    rc.find(v.Btn, children=["Step"]).widget.click()
    seed = rc.find(v.TextField, label="Seed (same seed, same chance events; applies on Reset)").widget
    _type(seed, "-1")
    assert seed.error is True and "run.seed" in str(seed.messages) and "greater than or equal to 0" in str(seed.messages)
    rc.find(v.Btn, children=["Reset"]).widget.click()  # a refused seed keeps the run's seed
    rc.find(v.Html, children=["Week 0 of 30 (year 0.0)"]).assert_single()
    _type(seed, "7")
    assert seed.error is False and not seed.messages
    rc.close()


def test_upload_errors_are_those_of_the_command_line(tmp_path, capsys):
    text = 'extends = "baseline.toml"\n\n[hollowing_out]\noutmigration_rate = "fast"\n'
    (tmp_path / "baseline.toml").write_bytes((ROOT / "scenarios" / "baseline.toml").read_bytes())
    path = tmp_path / "my.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["check", str(path)]) == 2
    cli_line = capsys.readouterr().err.strip()
    assert cli_line.startswith(f"villagesim: error: {path}:4: ")
    with pytest.raises(ScenarioError) as page_error:
        load_uploaded("my.toml", text)
    assert str(page_error.value) == "my.toml:" + cli_line.split(f"{path}:", 1)[1]
    with pytest.raises(ScenarioError, match="ending in .toml"):
        load_uploaded("notes.txt", "x")
    with pytest.raises(ScenarioError, match=r"my.toml:1: TOML syntax error"):
        load_uploaded("my.toml", "[policy\n")


def test_seed_field_is_validated_against_the_schema(small):
    assert validate_seed(" 7 ", small) == 7
    with pytest.raises(ScenarioError, match="run.seed"):
        validate_seed("-1", small)
    with pytest.raises(ScenarioError, match="run.seed"):
        validate_seed("abc", small)


# ---------------------------------------------------------------------------- the paired run
def test_baseline_is_the_same_seed_run_without_the_changed_levers(small):
    run = PageRun(small, compare=True)
    for _ in range(4):
        run.step()
    # a lever that costs nothing (money set mid-year may find the year's budget spoken for)
    run.set_lever("policy.party_mobilisation", 1.0)
    for _ in range(16):
        run.step()
    fresh = VillageModel(small)
    for _ in range(20):
        fresh.step()
    data = run.data()
    base = data[data["arm"] == "baseline"].drop(columns="arm").reset_index(drop=True)
    pd.testing.assert_frame_equal(base, fresh.timeseries())  # common random numbers: identical
    treated = data[data["arm"] == "with levers"].reset_index(drop=True)
    # the first four weeks ran before the change: identical in both arms
    pd.testing.assert_frame_equal(treated.iloc[:4].drop(columns="arm"), base.iloc[:4])
    assert not np.allclose(treated["active_volunteers"].iloc[4:], base["active_volunteers"].iloc[4:])
    so_far = run.so_far()
    assert so_far["baseline"]["unmet_need_share"] == pytest.approx(fresh.timeseries()["unmet_need_share"].mean())
    assert so_far["with levers"]["active_volunteers"] == pytest.approx(treated["active_volunteers"].mean())
    assert so_far["with levers"]["spend_total"] == pytest.approx(treated["spend_total"].sum())
    # switching the comparison on mid-run catches the baseline up to the same numbers
    late = PageRun(small)
    for _ in range(6):
        late.step()
    late.set_compare(True)
    assert late.baseline.steps == 6
    pd.testing.assert_frame_equal(late.baseline.timeseries(), fresh.timeseries().iloc[:6])


def test_reset_keeps_levers_and_rebuilds_from_week_zero(small):
    run = PageRun(small, seed=3)
    run.step()
    run.set_lever("policy.publicity", 0.6)
    again = PageRun(small, seed=run.seed, levers=run.levers)
    assert again.week == 0 and again.run.scenario.policy.publicity == 0.6 and again.run.scenario.run.seed == 3
    assert again.scenario.policy.publicity == small.policy.publicity  # the baseline arm keeps the file's value


def test_downloads_hold_the_run_data_and_figures(small):
    run = PageRun(small, compare=True)
    for _ in range(5):
        run.step()
    df = pd.read_csv(io.BytesIO(run.csv_bytes()))
    assert list(df.columns[:3]) == ["arm", "step", "replicate"] and len(df) == 10
    assert set(df["arm"]) == {"with levers", "baseline"}
    pq = pd.read_parquet(io.BytesIO(run.parquet_bytes()))
    assert pq.shape == df.shape
    with zipfile.ZipFile(io.BytesIO(figures_zip(run, 0, "unmet"))) as zf:
        names = zf.namelist()
        assert {"charts.png", "village_map.png", "chart_unmet.png", "chart_spending.png"} <= set(names)
        assert all(zf.read(n)[:8] == b"\x89PNG\r\n\x1a\n" for n in names)


def test_county_view_colours_villages_and_a_click_opens_one(small_county):
    run = PageRun(small_county)
    for _ in range(2):
        run.step()
    share = run.village_unmet_share()
    assert share.shape == (10,) and np.nanmax(share) <= 1.0
    cmap = CountyMap(run.run)
    assert png_ok(cmap.render(share, 3))
    ax = cmap.fig.axes[0]
    x, y = county_positions(run.run)
    for target in (0, 7):
        fx, fy = cmap.fig.transFigure.inverted().transform(ax.transData.transform((x[target], y[target])))
        assert village_at(cmap.fig, run.run, float(fx), float(1 - fy)) == target
    assert village_at(cmap.fig, run.run, 0.01, 0.01) is None  # outside the map


def png_ok(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


# ---------------------------------------------------------------------------- command line and offline stack
def test_app_command_rejects_a_bad_scenario_or_port_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\npublicity = 2\n", encoding="utf-8")
    assert main(["app", str(bad), "--port", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: policy.publicity" in err
    assert main(["app", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_the_pinned_stack_serves_the_page_offline():
    """The front end comes from solara-assets of the same version (else Solara loads it from a
    CDN); Mesa 3.3's Vuetify-2 stack needs ipyvuetify < 2; the page uses no CDN-only component."""
    assert version("solara-assets") == version("solara")
    assert int(version("ipyvuetify").split(".")[0]) < 2
    import solara_assets  # noqa: F401  (the package holding the cdn files)

    source = "".join((ROOT / "src" / "villagesim" / "app" / name).read_text() for name in ("page.py", "figures.py", "session.py"))
    for forbidden in ("solara.Markdown", "import altair", "vega", "CommandConsole"):
        assert forbidden not in source, forbidden


def test_shipped_scenarios_are_offered():
    names = shipped_scenarios()
    assert {"baseline", "county"} <= set(names)


def test_a_slider_snapping_an_off_grid_value_does_not_change_the_model(small):
    """A scenario value between slider steps (0.0285 on a 0.01 grid) is snapped by the
    browser's slider on display; that must not count as the planner moving the lever."""
    run = PageRun(small.with_overrides({"hollowing_out.outmigration_rate": 0.0285}))
    box, rc = solara.render(_LeverHarness(run), handle_error=False)
    _slider(rc, "hollowing_out.outmigration_rate").v_model = 0.03  # the snap
    assert run.run.scenario.hollowing_out.outmigration_rate == 0.0285 and run.levers == {}
    _slider(rc, "hollowing_out.outmigration_rate").v_model = 0.05  # a real move
    assert run.run.scenario.hollowing_out.outmigration_rate == 0.05
    rc.close()


def test_the_scenario_named_on_the_command_line_opens_first_and_runs_to_its_end(tmp_path, monkeypatch):
    path = tmp_path / "short.toml"
    path.write_text('name = "short"\n[run]\nsteps = 3\n[population]\nresidents_per_village = 300\n', encoding="utf-8")
    monkeypatch.setenv("VILLAGESIM_APP_SCENARIO", str(path))
    box, rc = solara.render(Page(), handle_error=False)
    assert rc.find(v.Select, label="Scenario").widget.v_model == "short (from short.toml)"
    step = rc.find(v.Btn, children=["Step"]).widget
    for _ in range(3):
        step.click()
    rc.find(v.Html, children=["Week 3 of 3 (year 0.1) — finished; press Reset to start again"]).assert_single()
    assert step.disabled
    rc.find(v.Btn, children=["Reset"]).widget.click()
    rc.find(v.Html, children=["Week 0 of 3 (year 0.0)"]).assert_single()
    rc.close()


def test_the_app_server_is_set_up_without_telemetry():
    """`villagesim app` switches Solara's telemetry off before the server is imported."""
    import subprocess
    import sys

    code = (
        "from villagesim.cli.app import offline_environment; offline_environment()\n"
        "import solara.server.settings as s\n"
        "print(s.telemetry.mixpanel_enable, s.main.mode)\n"
    )
    env = {k: val for k, val in __import__("os").environ.items() if not k.startswith("SOLARA_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "production"]
