"""Outputs of every shipped scenario, frame by frame, to check a refactoring changes no bit.

    python benchmarks/identity.py snapshot DIR     # run every scenario, store its frames in DIR
    python benchmarks/identity.py compare OLD NEW  # every frame identical? exit 1 if not

Run ``snapshot`` on the commit before a change (e.g. from a ``git worktree`` with
``PYTHONPATH=WORKTREE/src``) and on the commit after it, then ``compare`` the two folders.
Each scenario runs two replicates; the timeseries, the per-village frame, Mesa's
``DataCollector`` table, the final person table and the last week's matched pairs are stored.
The county and prefecture run fewer weeks (their full horizon adds no new code path).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path.cwd()  # run from the repository root
STEPS = {"county.toml": 104, "prefecture.toml": 30}
EXTRA = [
    # (name, scenario, overrides, steps): code paths the shipped files reach only in part
    ("prefecture10", "prefecture.toml", {"population.villages": 10}, 200),
    ("ngo30", "ngo_purchase.toml", {"population.villages": 30}, 156),
    ("quality_small", "quality_kpi.toml", {"population.villages": 12, "population.residents_per_village": 150}, 156),
]


def _person_frame(world) -> pd.DataFrame:
    p = world.persons
    cols = {}
    for name, value in vars(p).items():
        if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == len(p.age):
            cols[name] = value
    return pd.DataFrame(cols)


def _run(path: Path, replicate: int, steps: int, overrides: dict | None = None) -> dict[str, pd.DataFrame]:
    from villagesim.model import VillageModel

    levers = {k.replace(".", "__"): v for k, v in (overrides or {}).items()}
    model = VillageModel(path, replicate=replicate, steps=steps, **levers)
    for _ in range(steps):
        model.step()
    frames = {
        "timeseries": model.timeseries(),
        "villages": model.village_outcomes(),
        "datacollector": model.datacollector.get_model_vars_dataframe().reset_index(drop=True),
        "persons": _person_frame(model.world),
    }
    week = model.week
    frames["pairs"] = pd.DataFrame({k: getattr(week, k) for k in ("pair_elder", "pair_helper", "pair_hours", "pair_channel")})
    inst = model.world.institutions
    fac = inst.facilities
    frames["facilities"] = pd.DataFrame({k: v for k, v in vars(fac).items() if isinstance(v, np.ndarray)})
    t = inst.treasury
    money = {f"pool_{k}": [float(v)] for k, v in t.pools.items()}
    money.update(
        allocated_year=[t.allocated_year],
        spent_year=[t.spent_year],
        tb_credited=[inst.tb_credited],
        tb_redeemed=[inst.tb_redeemed],
        tb_expired=[inst.tb_expired],
    )
    frames["institutions"] = pd.DataFrame(money)
    return frames


def cases():
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        yield path.stem, path, None, STEPS.get(path.name)
    for name, file, overrides, steps in EXTRA:
        yield name, ROOT / "scenarios" / file, overrides, steps


def snapshot(out: Path) -> None:
    import tomllib

    out.mkdir(parents=True, exist_ok=True)
    for name, path, overrides, steps in cases():
        if steps is None:
            steps = tomllib.loads(path.read_text(encoding="utf-8")).get("run", {}).get("steps", 520)
        for r in (0, 1):
            for kind, frame in _run(path, r, steps, overrides).items():
                frame.columns = [str(c) for c in frame.columns]
                frame.to_parquet(out / f"{name}.r{r}.{kind}.parquet")
        print(f"{name}: {steps} steps x 2 replicates", flush=True)


def compare(old: Path, new: Path) -> int:
    bad = 0
    files = sorted(p.name for p in old.glob("*.parquet"))
    for f in files:
        a = pd.read_parquet(old / f)
        if not (new / f).exists():
            print(f"MISSING {f}")
            bad += 1
            continue
        b = pd.read_parquet(new / f)
        common = [c for c in a.columns if c in b.columns]
        lost = [c for c in a.columns if c not in b.columns]
        if lost or a.shape[0] != b.shape[0]:
            print(f"DIFFERENT SHAPE {f}: lost columns {lost}, rows {a.shape[0]} vs {b.shape[0]}")
            bad += 1
            continue
        for c in common:
            x, y = a[c].to_numpy(), b[c].to_numpy()
            if x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                print(f"DIFFERENT {f}: column {c}")
                bad += 1
                break
    print(f"{len(files)} frames compared, {bad} different")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "snapshot":
        snapshot(Path(sys.argv[2]))
    else:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
