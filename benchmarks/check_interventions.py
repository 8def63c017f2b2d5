"""How the time to load and check a scenario grows with its number of interventions.

Writes scenario files with N ``[[intervention]]`` entries (two levers each, about three per
week, so same-week duplicates are warned) and times :func:`villagesim.config.loading.load_scenario`
on each: reading, validation of every entry and of the scenario as each week leaves it.
Prints one line per N and, last, a JSON object with the seconds and the ratio of the
largest to the smallest per intervention (1 = linear; the earlier key-by-key check was
quadratic: 250 -> 3.3 s, 1,000 -> 28 s, 10,000 > 400 s).

    python benchmarks/check_interventions.py            # N = 250, 1000, 10000
    python benchmarks/check_interventions.py 250 20000
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from villagesim.config.loading import load_scenario


def write(path: Path, n: int) -> None:
    lines = ['name = "many"', "[run]", "steps = 5200"]
    for i in range(n):
        hours = f"[0.0, 5.0, 10.0, 20.0, {50 + i % 7}.0]"
        lines += [
            "[[intervention]]",
            f"step = {(i // 3) % 5200}",
            f'set = {{ "policy.publicity" = {(i % 10) / 10}, "care.daily_living_hours_by_level" = {hours} }}',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(sizes: list[int]) -> dict:
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"many_{n}.toml"
            write(path, n)
            start = time.perf_counter()
            loaded = load_scenario(path)
            seconds[n] = time.perf_counter() - start
            print(f"{n:>7,} interventions: {seconds[n]:6.2f} s ({len(loaded.warnings):,} warnings)")
    lo, hi = min(sizes), max(sizes)
    ratio = (seconds[hi] / hi) / (seconds[lo] / lo)
    return {"seconds": seconds, "per_intervention_ratio_largest_to_smallest": round(ratio, 2)}


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [250, 1000, 10000]
    print(json.dumps(main(sizes)))
