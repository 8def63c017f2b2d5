"""The record of a run: the outputs of every step, model-wide and per village.

:class:`Recorder` keeps one row of sums per step (and per-village rows at an interval) and
turns them into the ``timeseries`` and ``villages`` tables; :class:`OutputCollector` is
Mesa's ``DataCollector`` with every output column as a model reporter.
"""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd

from villagesim.outputs.sums import COLUMNS, with_ratios


class Recorder:
    """Outputs of a run: one row per step for the total, per-village rows at an interval."""

    def __init__(self, n_villages: int, village_every: int, record_villages: bool = True) -> None:
        self.n_villages = n_villages
        self.village_every = village_every
        self.record_villages = record_villages
        self.steps: list[int] = []
        self.totals: list[np.ndarray] = []
        self.village_steps: list[int] = []
        self.village_rows: list[np.ndarray] = []

    def record(self, step: int, sums: np.ndarray) -> np.ndarray:
        """Store a step's per-village sums; return the total row (COLUMNS)."""
        total = with_ratios(sums.sum(axis=0))
        self.steps.append(step)
        self.totals.append(total)
        if self.record_villages and step % self.village_every == 0:
            self.village_steps.append(step)
            self.village_rows.append(with_ratios(sums).astype(np.float32))
        return total

    def timeseries(self, replicate: int = 0) -> pd.DataFrame:
        """One row per step: the model-wide outcomes."""
        df = pd.DataFrame(np.array(self.totals).reshape(-1, len(COLUMNS)), columns=COLUMNS)
        df.insert(0, "replicate", np.int32(replicate))
        df.insert(0, "step", np.asarray(self.steps, dtype=np.int32))
        return df

    def villages(self, replicate: int = 0) -> pd.DataFrame:
        """One row per recorded step and village."""
        if not self.village_rows:
            return pd.DataFrame(columns=["step", "replicate", "village", *COLUMNS])
        data = np.concatenate(self.village_rows)
        df = pd.DataFrame(data, columns=COLUMNS)
        df.insert(0, "village", np.tile(np.arange(self.n_villages, dtype=np.int32), len(self.village_steps)))
        df.insert(0, "replicate", np.int32(replicate))
        df.insert(0, "step", np.repeat(np.asarray(self.village_steps, dtype=np.int32), self.n_villages))
        return df


class OutputCollector(mesa.DataCollector):
    """Mesa's ``DataCollector`` with every output column as a model reporter, collected from
    ``model.latest`` in one pass.

    The same table as ``mesa.DataCollector(model_reporters={c: lambda m: m.latest.get(c, 0.0)})``
    (plain floats need no copy); reporters added otherwise are collected by Mesa.
    """

    def __init__(self, columns: list[str]) -> None:
        self._columns = list(columns)
        super().__init__(model_reporters={c: (lambda m, c=c: m.latest.get(c, 0.0)) for c in self._columns})

    def collect(self, model: mesa.Model) -> None:
        """Append the current outputs (``model.latest``) to the model variables."""
        if list(self.model_reporters) != self._columns or self.agent_reporters or self.agenttype_reporters:
            super().collect(model)
            return
        latest = model.latest
        for column, values in zip(self._columns, self.model_vars.values(), strict=True):
            values.append(latest.get(column, 0.0))
