"""The output registry is built from the processes' declarations: a column a process
declares and reports appears in the results files, the figures and the page by itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from villagesim.outputs import columns
from villagesim.processes import STEP

ROOT = Path(__file__).resolve().parents[2]

NEW_COLUMN = textwrap.dedent(
    """
    import dataclasses
    import numpy as np
    import villagesim.processes as processes
    from villagesim.processes import ngo
    from villagesim.processes.base import Output

    # a contributor edits one process: declares the column and reports it
    def run(world, levers, rng, week, _old=ngo.run):
        _old(world, levers, rng, week)
        week.report("elders_visited", np.bincount(world.persons.village[week.elders], minlength=week.n_villages).astype(float))

    new = dataclasses.replace(ngo.PROCESS, run=run, outputs=(*ngo.PROCESS.outputs, Output("elders_visited", "persons", "Elders visited", "test column")))
    processes.STEP = tuple(new if p is ngo.PROCESS else p for p in processes.STEP)
    ngo.PROCESS = new

    import villagesim.model as model_module
    model_module.STEP = processes.STEP
    from villagesim.app.figures import outcome_choices
    from villagesim.model import VillageModel
    from villagesim.outputs.columns import CATALOGUE, COLUMNS
    from villagesim.outputs.figures import reported_columns

    m = VillageModel(steps=3)
    for _ in range(3):
        m.step()
    ts = m.timeseries()
    assert "elders_visited" in COLUMNS
    assert ts["elders_visited"].iloc[-1] == ts["elders"].iloc[-1], (ts["elders_visited"], ts["elders"])
    assert "elders_visited" in m.village_outcomes().columns
    assert "elders_visited" in reported_columns()
    assert "Elders visited (persons)" in outcome_choices()
    assert CATALOGUE["elders_visited"].source == "ngo"
    print("ok")
    """
)


def test_a_column_declared_in_one_process_reaches_files_figures_and_page():
    proc = subprocess.run([sys.executable, "-c", NEW_COLUMN], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_every_column_has_a_unit_and_label():
    for name in columns.COLUMNS:
        col = columns.CATALOGUE[name]
        assert col.unit and col.label and col.description, name


def test_reported_columns_come_from_the_step_in_order():
    declared = [o.name for p in STEP for o in p.outputs if not o.hidden]
    reported = [o.name for o, _ in columns.REPORTED if not o.hidden]
    assert reported == list(dict.fromkeys(declared))
    assert set(reported) <= set(columns.SUM_COLUMNS)


def test_ratios_are_computed_from_declared_sums():
    for ratio in columns.RATIOS:
        assert ratio.numerator in columns.SUM_WITH_HIDDEN and ratio.denominator in columns.SUM_WITH_HIDDEN


def test_data_dictionary_lists_every_column_with_its_unit(tmp_path, capsys, monkeypatch):
    from villagesim.cli import main

    rows = columns.dictionary()
    assert [r["name"] for r in rows[3:]] == columns.COLUMNS
    assert main(["outputs", "--format", "csv"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "name,unit,label,source,description" and len(printed) == len(rows) + 1
    out = tmp_path / "run"
    monkeypatch.chdir(ROOT)
    assert main(["run", "scenarios/baseline.toml", "--steps", "3", "--out", str(out), "--quiet"]) == 0
    import pandas as pd

    written = pd.read_csv(out / "columns.csv")
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert set(ts.columns) <= set(written["name"])
