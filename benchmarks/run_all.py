"""Regenerate every benchmark figure of ``benchmarks/README.md`` with one command.

Usage::

    python benchmarks/run_all.py            # full set (about 3 minutes on one core)
    python benchmarks/run_all.py --quick    # fewer steps, for a smoke test

Each measurement is a fresh ``python benchmarks/bench.py ...`` process (so that its peak
resident memory is its own), run one after the other. Results go to
``benchmarks/results.json``, the plot to ``benchmarks/scaling.png``, and the tables
between the ``<!-- results:... -->`` markers of ``benchmarks/README.md`` are rewritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFECTURE = str(ROOT / "scenarios" / "prefecture.toml")
COLUMNS = (
    "engine",
    "persons",
    "villages",
    "steps",
    "person_steps_per_s",
    "cpu_person_steps_per_s",
    "seconds_per_step",
    "peak_rss_mb",
)
"""The figures of a run printed as it ends and shown in every table."""


def bench(engine: str, steps: int, sets: dict[str, object], inert: bool = False) -> dict:
    """One benchmark process; returns its JSON line."""
    cmd = [sys.executable, str(HERE / "bench.py"), PREFECTURE, "--steps", str(steps), "--engine", engine]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    if inert:
        cmd.append("--inert-governance")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"  # one core
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["set"] = sets
    print(json.dumps({k: result[k] for k in COLUMNS}), flush=True)
    return result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import numpy
    import scipy

    versions = f"numpy {numpy.__version__}, scipy {scipy.__version__}, numba {numba.__version__}"
    return f"{cpu}; Python {platform.python_version()}, {versions}; one core"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--from-results", action="store_true", help="redraw the plot and tables from results.json only")
    args = ap.parse_args()
    if args.from_results:
        saved = json.loads((HERE / "results.json").read_text(encoding="utf-8"))
        meta = saved.pop("meta")
        plot(saved, meta)
        write_readme(saved, meta)
        return
    q = args.quick
    runs: dict[str, list[dict]] = {"headline": [], "versus_reference": [], "persons": [], "villages": []}

    # headline: 10^4, 10^5, 10^6 persons (villages of ~1,000 persons, the prefecture's sizes)
    for villages, steps in ((10, 520), (100, 104), (1000, 520)):
        runs["headline"].append(bench("vectorised", 26 if q else steps, {"population.villages": villages}))
    # the two engines on the same scenarios (money and institutions inert: what the reference models)
    for villages, steps_ref, steps_vec in ((10, 104, 520), (100, 5, 104)):
        sets = {"population.villages": villages}
        runs["versus_reference"].append(bench("reference", 3 if q else steps_ref, sets))
        runs["versus_reference"].append(bench("vectorised", 26 if q else steps_vec, sets, inert=True))
    # time per step against persons (villages of ~1,000) ...
    for villages in (3, 10, 30, 100, 300, 1000, 2000):
        runs["persons"].append(bench("vectorised", 13 if q else 52, {"population.villages": villages}))
    # ... and against villages at ~10^5 persons
    for villages, size in ((20, 5000), (50, 2000), (100, 1000), (250, 400), (1000, 100)):
        sets = {"population.villages": villages, "population.residents_per_village": size}
        runs["villages"].append(bench("vectorised", 13 if q else 52, sets))

    meta = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "quick": q}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, **runs}, indent=1), encoding="utf-8")
    plot(runs, meta)
    write_readme(runs, meta)


def _cpu_per_step(r: dict) -> float:
    return r["cpu_s"] / r["steps"]


def plot(runs: dict, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [r["persons"] for r in runs["persons"]]
    ys = [_cpu_per_step(r) for r in runs["persons"]]
    a.loglog(xs, ys, "o-", label="vectorised (measured)")
    ref = [r for r in runs["versus_reference"] if r["engine"] == "reference"]
    a.loglog([r["persons"] for r in ref], [_cpu_per_step(r) for r in ref], "s--", label="per-agent reference")
    lin = [ys[-1] * x / xs[-1] for x in xs]
    a.loglog(xs, lin, ":", color="grey", label="proportional to persons")
    a.set_xlabel("registered persons")
    a.set_ylabel("CPU seconds per weekly step")
    a.set_title("Time per step vs persons (villages of ~1,000)")
    a.legend(fontsize=8)
    vs = [r["villages"] for r in runs["villages"]]
    b.semilogx(vs, [1000 * _cpu_per_step(r) for r in runs["villages"]], "o-")
    b.set_xlabel("villages (same ~10^5 persons in all)")
    b.set_ylabel("CPU milliseconds per weekly step")
    b.set_ylim(bottom=0)
    b.set_title("Time per step vs villages at ~10^5 persons")
    fig.suptitle(f"villagesim, one core — {meta['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "scaling.png", dpi=110)


def _table(rows: list[dict], extra: list[str] | None = None) -> str:
    cols = [*COLUMNS, *(extra or [])]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c in ("person_steps_per_s", "cpu_person_steps_per_s"):
                v = f"{v:.3g}"
            elif c == "seconds_per_step":
                v = f"{v:.4g}"
            elif c == "run_s":
                v = f"{v:.1f}"
            cells.append(str(v))
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


def write_readme(runs: dict, meta: dict) -> None:
    path = HERE / "README.md"
    text = path.read_text(encoding="utf-8")
    ref = {r["persons"]: r for r in runs["versus_reference"] if r["engine"] == "reference"}
    vec = {r["persons"]: r for r in runs["versus_reference"] if r["engine"] == "vectorised"}
    ratio_rows = "".join(
        f"| {n} | {ref[n]['cpu_person_steps_per_s']:.3g} | {vec[n]['cpu_person_steps_per_s']:.3g} | "
        f"{vec[n]['cpu_person_steps_per_s'] / ref[n]['cpu_person_steps_per_s']:.0f}x |\n"
        for n in sorted(ref)
        if n in vec
    )
    blocks = {
        "meta": f"Measured {meta['date']} on {meta['machine']}" + (" (quick run)" if meta["quick"] else "") + ".\n",
        "headline": _table(runs["headline"], ["run_s"]),
        "reference": _table(runs["versus_reference"], ["run_s"])
        + "\n| persons | reference person-steps/s (CPU) | vectorised person-steps/s (CPU) | speed-up |\n|---|---|---|---|\n"
        + ratio_rows,
        "persons": _table(runs["persons"]),
        "villages": _table(runs["villages"]),
    }
    for name, block in blocks.items():
        pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md lacks the markers of block {name!r}")
        text = pattern.sub(lambda m, b=block: m.group(1) + b + m.group(2), text)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
