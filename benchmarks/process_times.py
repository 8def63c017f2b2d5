"""Seconds per step spent in each process of the vectorised core (and in recording).

Usage: python benchmarks/process_times.py SCENARIO --steps N [--set path=value ...]

Wraps each process's ``run`` with a timer (CPU time of this process, which is robust to
other load on the machine) and prints one JSON object: milliseconds per step by process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()

    from bench import _parse_value, warm_up  # type: ignore[import-not-found]

    import villagesim.model as vm
    from villagesim.config.loading import load_scenario
    from villagesim.processes import STEP

    scenario = load_scenario(args.scenario).scenario
    if args.set:
        scenario = scenario.with_overrides({k: _parse_value(v) for k, _, v in (s.partition("=") for s in args.set)})
    warm_up(scenario)  # compiled kernels: compiled or loaded before the timing
    spent: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.process_time() - t

        return wrapper

    originals = [(p, p.run) for p in STEP]
    for p in STEP:
        p.run = timed(p.name, p.run)
    vm.village_sums = timed("record: village_sums", vm.village_sums)
    model = vm.VillageModel(scenario, steps=args.steps)
    collect = model.datacollector.collect
    model.datacollector.collect = timed("record: datacollector", collect)
    t0 = time.process_time()
    for _ in range(args.steps):
        model.step()
    total = time.process_time() - t0
    for p, run in originals:
        p.run = run
    ms = {k: round(1000 * v / args.steps, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    ms["other (streams, interventions, ratios)"] = round(1000 * total / args.steps - sum(ms.values()), 2)
    ms["total"] = round(1000 * total / args.steps, 2)
    print(json.dumps({"persons": len(model.world.persons), "ms_per_step": ms}))


if __name__ == "__main__":
    main()
