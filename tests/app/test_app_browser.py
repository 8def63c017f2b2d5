"""The browser page in a real browser: `villagesim app` driven by headless Debian Chromium.

The server runs with a dead HTTP(S) proxy, so any asset the local server does not hold and
would fetch from a CDN fails loudly (Solara's /_solara/cdn/ is a proxy); the browser's own
requests are checked to stay on 127.0.0.1. The test saves results/app_screenshot.png.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="Debian chromium not installed at /usr/bin/chromium (.ci/run installs it)"
    ),
    pytest.mark.usefixtures("compiled_kernels"),  # the page steps a model
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
LOCAL = {"127.0.0.1", "localhost"}
PIXEL_HASH = """
(selector) => {
  const img = document.querySelector(selector);
  if (!img || !img.complete || !img.naturalWidth) return null;
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (Math.imul(h, 31) + d[i] + 3 * d[i + 1] + 7 * d[i + 2]) >>> 0;
  return h;
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _villagesim_command() -> list[str]:
    script = Path(sys.executable).with_name("villagesim")
    if script.exists():
        return [str(script)]
    found = shutil.which("villagesim")
    return [found] if found else [sys.executable, "-m", "villagesim"]


@contextlib.contextmanager
def _serve(*args: str, log_name: str = "app_server.log", ready_status: int = 200):
    """`villagesim app ARGS` on a free port; yields (url, log path) once it answers."""
    port = _free_port()
    env = dict(
        os.environ,
        # a server-side fetch from a CDN (a missing asset) must fail, not silently succeed
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    log = ROOT / "results" / log_name
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*_villagesim_command(), "app", "--port", str(port), *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError as exc:
                if exc.code == ready_status:
                    break
                raise
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("villagesim app did not start:\n" + log.read_text())
                time.sleep(0.25)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server():
    """`villagesim app` on a free port; yields (url, log path)."""
    with _serve() as started:
        yield started


def test_page_runs_offline_levers_steps_and_refuses_bad_input(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded 2-core machine builds and steps slowly; 5 s is not enough

    url, log = server
    external, failed, console_errors = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(30_000)

        def on_request(request) -> None:
            if not request.url.startswith(("data:", "blob:")) and urlparse(request.url).hostname not in LOCAL:
                external.append(request.url)

        page.on("request", on_request)
        page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))

        page.goto(url, wait_until="domcontentloaded")
        step = page.get_by_role("button", name="Step", exact=True)
        step.wait_for()
        charts = page.locator("img.charts")
        charts.wait_for()
        page.locator("img.village-map").wait_for()
        week = page.locator(".week-counter")
        expect(week).to_contain_text("Week 0 of 520")
        before = charts.get_attribute("src")
        page.wait_for_function(f"({PIXEL_HASH})('img.charts') !== null")
        pixels_before = page.evaluate(PIXEL_HASH, "img.charts")

        # a lever: type an exact value into the publicity field
        publicity = page.locator(".lever").filter(has_text="Publicity").first.locator(".lever-value input")
        publicity.fill("0.8")
        publicity.press("Enter")
        expect(page.locator(".changed-levers")).to_contain_text("policy.publicity")
        # a switch lever and the baseline comparison
        page.get_by_label("Run a time bank").check(force=True)
        expect(page.locator(".changed-levers")).to_contain_text("policy.time_bank.enabled")
        page.locator(".compare-switch input").check(force=True)

        for n in range(1, 6):
            step.click()
            expect(week).to_contain_text(f"Week {n} of 520")
        expect(charts).not_to_have_attribute("src", before)
        page.wait_for_function(f"({PIXEL_HASH})('img.charts') !== null")
        assert page.evaluate(PIXEL_HASH, "img.charts") != pixels_before, "the charts' pixels did not change"
        expect(page.get_by_text("Dashed lines: baseline", exact=False)).to_be_visible()
        assert page.locator(".v-alert.error--text").count() == 0, "an error is shown on the page"

        # play a while so the charts show a trend, then pause
        page.get_by_role("button", name="Play", exact=True).click()
        page.wait_for_timeout(2500)
        page.get_by_role("button", name="Pause", exact=True).click()
        expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()
        page.wait_for_timeout(300)
        Path(ROOT / "results").mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1500, "height": 1900})  # the page scrolls inside its layout
        page.wait_for_timeout(300)
        page.screenshot(path=str(ROOT / "results" / "app_screenshot.png"))
        weeks_now = week.inner_text()

        # bad input 1: a value out of range is refused with a message; the run is untouched
        publicity.fill("3")
        publicity.press("Enter")
        expect(page.locator(".lever-error")).to_contain_text("policy.publicity")
        expect(page.locator(".lever-error")).to_contain_text("less than or equal to 1")
        expect(week).to_have_text(weeks_now)

        # bad input 2: an invalid uploaded file gets the same one-line error as the CLI
        bad = tmp_path / "bad.toml"
        bad.write_text('extends = "baseline.toml"\n[policy]\npublicity = "lots"\n', encoding="utf-8")
        page.locator(".scenario-upload input[type=file]").set_input_files(str(bad))
        error = page.locator(".upload-error")
        expect(error).to_contain_text("bad.toml:3: policy.publicity")
        expect(week).to_have_text(weeks_now)
        expect(page.locator(".changed-levers")).to_contain_text("policy.publicity")
        assert page.locator(".v-alert.error--text").count() >= 2  # the selector used above does find errors

        # the data download works
        with page.expect_download() as download:
            page.get_by_role("button", name="Run data (CSV)").click()
        csv_path = tmp_path / "run.csv"
        download.value.save_as(csv_path)
        header = csv_path.read_text().splitlines()[0]
        assert header.startswith("arm,step,replicate,") and "unmet_need_share" in header

        # the county: villages coloured by unmet need; a click on one opens it on the village map
        page.locator(".scenario-select").click()
        page.get_by_role("option", name="county", exact=True).click()
        county = page.locator("img.county-map")
        county.wait_for()
        expect(week).to_contain_text("Week 0 of 520")
        step.click()
        expect(week).to_contain_text("Week 1 of 520")
        chosen = page.locator(".village-select")

        def opened() -> int:
            return int(re.search(r"Village (\d+)", chosen.inner_text()).group(1))

        assert opened() == 1
        box = county.bounding_box()
        for fx, fy in [(0.45, 0.45), (0.55, 0.55), (0.4, 0.6), (0.6, 0.4), (0.5, 0.3), (0.3, 0.5), (0.7, 0.5), (0.5, 0.7)]:
            county.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
            page.wait_for_timeout(500)
            if opened() != 1:
                break
        assert opened() != 1, "a click on the county view did not open a village"
        expect(page.locator("img.village-map")).to_be_visible()
        browser.close()

    assert external == [], f"requests to outside hosts: {external}"
    assert failed == [], f"failed requests (an asset missing from the local server?): {failed}\n{log.read_text()[-2000:]}"
    assert not [e for e in console_errors if "Failed to load" in e or "404" in e], console_errors


def test_an_exposed_page_needs_its_token_and_takes_a_scenario_with_the_file_it_extends(tmp_path):
    """`--expose --token`: the page and its live connection (websocket) work once the address
    with the token was opened; without it the server answers 401. Two files uploaded
    together: the scenario and the file it extends."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded 2-core machine builds and steps slowly; 5 s is not enough

    base = tmp_path / "base.toml"
    base.write_text('extends = "baseline"\n[policy]\npublicity = 0.7\n', encoding="utf-8")
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "base"\nname = "mine"\n[run]\nsteps = 40\n', encoding="utf-8")
    with _serve("--expose", "--token", "t0ken", log_name="app_server_exposed.log", ready_status=401) as (url, log):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            stranger = browser.new_page()
            assert stranger.goto(url).status == 401
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url + "?token=t0ken", wait_until="domcontentloaded")
            assert page.url == url  # the token left the address (it is in a cookie now)
            step = page.get_by_role("button", name="Step", exact=True)
            step.wait_for()
            page.locator(".scenario-upload input[type=file]").set_input_files([str(mine), str(base)])
            expect(page.locator(".upload-note")).to_contain_text("Loaded mine.toml: mine. (extends base.toml)")
            week = page.locator(".week-counter")
            expect(week).to_contain_text("Week 0 of 40")
            step.click()
            expect(week).to_contain_text("Week 1 of 40")
            browser.close()
