"""How long the browser page takes for one step plus redraw.

Two measurements, for the 1,000-resident baseline village and the 200-village county:

1. **server**: the page rendered in-process (``solara.render``); the time of a click on
   Step, which steps the model (and its baseline when compared) and redraws the headline
   numbers, the map(s) and the charts. Wall clock and CPU time of this process.
2. **browser** (when Debian's Chromium is at /usr/bin/chromium): ``villagesim app`` on a free
   port, driven by Playwright; the time from the Step click until the chart and map images
   in the page have been replaced and decoded.

Usage::

    python benchmarks/app_responsiveness.py [--steps 30] [--no-browser]

The figures depend on the machine and on what else runs on it; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def _summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"median {statistics.median(ms):6.1f} ms   p90 {p90:6.1f} ms   max {ms[-1]:6.1f} ms   (n={len(ms)})"


def server_side(scenario: str, compare: bool, steps: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of Step clicks on the in-process page."""
    import ipyvuetify as v
    import solara

    from villagesim.app.page import Page

    box, rc = solara.render(Page(), handle_error=False)
    for w in rc.find(v.Select).widgets:
        if w.label == "Scenario":
            w.v_model = scenario
    if compare:
        rc.find(v.Switch, label="Compare with baseline (same seed, without your lever changes)").widget.v_model = True
    step = rc.find(v.Btn, children=["Step"]).widget
    for _ in range(3):  # warm-up: first draws build the figures
        step.click()
    wall, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        step.click()
        wall.append(1000 * (time.perf_counter() - t))
        cpu.append(1000 * (time.process_time() - c))
    rc.close()
    return wall, cpu


STEP_AND_WAIT = """
async (selectors) => {
  const imgs = selectors.map(s => document.querySelector(s)).filter(Boolean);
  const before = imgs.map(i => i.src);
  const button = Array.from(document.querySelectorAll('button')).find(b => b.textContent.trim() === 'Step');
  const t0 = performance.now();
  button.click();
  await new Promise((resolve) => {
    const check = () => {
      const done = imgs.every((img, k) => img.src !== before[k] && img.complete);
      if (done) resolve(); else requestAnimationFrame(check);
    };
    check();
  });
  return performance.now() - t0;
}
"""


def browser_side(steps: int) -> dict[str, list[float]]:
    """Milliseconds from a Step click to the redrawn images, per scenario, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).with_name("villagesim")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "villagesim"]
    proc = subprocess.Popen([*cmd, "app", "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    out: dict[str, list[float]] = {}
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("villagesim app did not start") from None
                time.sleep(0.25)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator("img.charts").wait_for()
            page.locator("img.village-map").wait_for()
            for name, selectors in (
                ("baseline", ["img.charts", "img.village-map"]),
                ("county", ["img.charts", "img.village-map", "img.county-map"]),
            ):
                if name != "baseline":
                    page.locator(".scenario-select").click()
                    page.get_by_role("option", name=name, exact=True).click()
                    page.locator("img.county-map").wait_for()
                    page.wait_for_timeout(1000)
                for _ in range(3):
                    page.evaluate(STEP_AND_WAIT, selectors)
                out[name] = [page.evaluate(STEP_AND_WAIT, selectors) for _ in range(steps)]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="Step clicks measured per case")
    parser.add_argument("--no-browser", action="store_true", help="only the in-process measurement")
    args = parser.parse_args()
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (1 min) at start")
    print("server side: Step click = model step(s) + redraw of numbers, map(s) and charts")
    for scenario in ("baseline", "county"):
        for compare in (False, True):
            wall, cpu = server_side(scenario, compare, args.steps)
            label = f"{scenario:9s} {'with baseline' if compare else 'alone':13s}"
            print(f"  {label} wall {_summary(wall)}")
            print(f"  {'':23s} cpu  {_summary(cpu)}")
    if args.no_browser or not os.path.exists(CHROMIUM):
        print("browser: skipped" + ("" if args.no_browser else f" ({CHROMIUM} not found)"))
        return
    print("browser (headless Chromium): Step click until the new images are in the page")
    for name, ms in browser_side(args.steps).items():
        print(f"  {name:9s} {_summary(ms)}")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at end")


if __name__ == "__main__":
    main()
