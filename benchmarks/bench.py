"""Benchmark one engine of villagesim on one scenario.

Usage::

    python benchmarks/bench.py SCENARIO --steps N --engine vectorised|reference [--set path=value ...]

Runs ``SCENARIO`` for ``N`` weekly steps with data collection on (the Mesa
``DataCollector`` of the model collects every output column each step) and prints, as one
JSON object on its last line::

    {"persons": ..., "steps": ..., "person_steps_per_s": ..., "seconds_per_step": ...,
     "peak_rss_mb": ..., "engine": ..., ...}

``persons`` is the number of registered persons (rows of the person table: residents,
migrants away and, later, the dead); ``person_steps_per_s`` is ``persons * steps`` over the
seconds spent stepping (building the world is timed separately as ``setup_s``).
``peak_rss_mb`` is the peak resident memory of the whole process
(``getrusage(RUSAGE_SELF).ru_maxrss``), setup included. ``cpu_person_steps_per_s`` uses the
process's CPU time instead of wall time: the same figure on an idle machine, and the
one-core cost when other work shares the machine.

The vectorised core runs some loops as compiled kernels (:mod:`villagesim.jit`). They are
compiled on first use and cached on disk; before the timed steps a one-village copy of the
scenario is stepped a few times so that the compilation (or the loading of the cache) is
not timed; its seconds are reported as ``warmup_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# the benchmark measures the machine as it is: no OpenBLAS core-type or cache-size override
# (read when numpy loads, which happens below, after this)
for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_name, None)


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def warm_up(scenario, replicate: int = 0, steps: int = 4) -> float:
    """Step a one-village copy of ``scenario`` ``steps`` times (compiles or loads the
    vectorised core's kernels); returns the seconds it took."""
    from villagesim.model import VillageModel

    t0 = time.perf_counter()
    model = VillageModel(scenario.with_overrides({"population.villages": 1}), replicate=replicate, steps=steps)
    for _ in range(steps):
        model.step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", help="scenario TOML file")
    parser.add_argument("--steps", type=int, required=True, help="weekly steps to run")
    parser.add_argument("--engine", choices=["vectorised", "reference"], default="vectorised")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="scenario override (repeatable)")
    parser.add_argument("--replicate", type=int, default=0)
    parser.add_argument(
        "--inert-governance",
        action="store_true",
        help="make money and institutions inert (no facilities, no NGOs, levers fully funded), the case the "
        "reference models; always on for --engine reference",
    )
    args = parser.parse_args(argv)

    from villagesim.config.loading import load_scenario

    scenario = load_scenario(args.scenario).scenario
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = _parse_value(value.strip())
    if overrides:
        scenario = scenario.with_overrides(overrides)
    inert = args.inert_governance or args.engine == "reference"
    if inert:
        from villagesim.reference import governance_inert

        scenario = governance_inert(scenario)

    warmup_s = warm_up(scenario, args.replicate) if args.engine == "vectorised" else 0.0
    t0 = time.perf_counter()
    if args.engine == "vectorised":
        from villagesim.model import VillageModel

        model = VillageModel(scenario, replicate=args.replicate, steps=args.steps)
        persons = len(model.world.persons)
    else:
        from villagesim.reference import ReferenceModel

        model = ReferenceModel(scenario, replicate=args.replicate, steps=args.steps)
        persons = model.n_persons
    setup_s = time.perf_counter() - t0

    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        model.step()
    run_s = time.perf_counter() - t1
    cpu_s = time.process_time() - c1
    collected = len(model.datacollector.get_model_vars_dataframe())

    result = {
        "persons": persons,
        "steps": args.steps,
        "person_steps_per_s": round(persons * args.steps / run_s, 1),
        "seconds_per_step": round(run_s / args.steps, 6),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "engine": args.engine,
        "inert_governance": inert,
        "scenario": scenario.name,
        "villages": int(scenario.population.villages),
        "setup_s": round(setup_s, 3),
        "warmup_s": round(warmup_s, 3),
        "run_s": round(run_s, 3),
        "cpu_s": round(cpu_s, 3),
        "cpu_person_steps_per_s": round(persons * args.steps / cpu_s, 1),
        "rows_collected": collected,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pid": os.getpid(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
