"""The results folder: atomic writes, provenance, reading back.

A run writes everything into a hidden sibling folder ``.NAME.partial-PID`` and renames it
to ``NAME`` only when every file is complete. A run that fails or is interrupted removes
its partial folder, so a folder named like a result is always a whole result. An existing
folder of the same name is replaced only after the new one is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from villagesim.errors import VillagesimError
from villagesim.version import __version__

TIMESERIES = "timeseries.parquet"
VILLAGES = "villages.parquet"
SUMMARY = "summary.json"
SCENARIO = "scenario.toml"
FIGURES = "figures"


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``target`` when the block ends without error."""
    target = Path(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VillagesimError(f"cannot create the results folder {parent}: {exc.strerror}") from None
    if target.exists() and not target.is_dir():
        raise VillagesimError(f"cannot write results to {target}: a file of that name exists")
    tmp = parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if target.exists():
            old = parent / f".{target.name}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def provenance(seed: int, scenario_hash: str) -> dict[str, Any]:
    """What produced a result: versions, seed, scenario hash, time, machine."""
    import mesa

    return {
        "villagesim_version": __version__,
        "mesa_version": mesa.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "seed": int(seed),
        "scenario_hash": scenario_hash,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet (zstd), without the pandas index."""
    df.to_parquet(path, index=False, compression="zstd")


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write JSON with NaN as null."""

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, float | np.floating) and not np.isfinite(x):
            return None
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.floating):
            return float(x)
        return x

    path.write_text(json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_run(folder: str | Path) -> dict[str, Any]:
    """Read a results folder back: ``{"timeseries", "villages", "summary"}``."""
    folder = Path(folder)
    if not (folder / SUMMARY).exists():
        raise VillagesimError(f"not a villagesim results folder (no {SUMMARY}): {folder}")
    return {
        "timeseries": pd.read_parquet(folder / TIMESERIES),
        "villages": pd.read_parquet(folder / VILLAGES),
        "summary": json.loads((folder / SUMMARY).read_text(encoding="utf-8")),
    }
