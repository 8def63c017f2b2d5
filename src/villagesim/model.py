"""``VillageModel``: the Mesa model of villagesim.

A step is the list of processes of MODEL.md §3, run in order over the arrays of the
person table (:mod:`villagesim.processes`), then the outputs are recorded. Institutions
(one ``VillageCommittee`` per village) are Mesa agents; elders and volunteers are Mesa
agents created on demand as views on the person table.

Example:
    >>> from villagesim.model import VillageModel
    >>> model = VillageModel(steps=4)
    >>> for _ in range(4):
    ...     model.step()
    >>> 0.0 <= model.latest["unmet_need_share"] <= 1.0
    True
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd
from mesa.agent import AgentSet

from villagesim.agents import NGO, Elder, Government, PersonView, VillageCommittee, Volunteer
from villagesim.config.loading import apply_overrides, load_scenario
from villagesim.config.schema import Scenario, check_lever
from villagesim.outputs.recorder import OutputCollector, Recorder
from villagesim.outputs.sums import COLUMNS, village_sums
from villagesim.processes import STEP
from villagesim.processes.volunteering import candidates_mask
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.institutions import init_institutions
from villagesim.state.population import ELDER_AGE, RESIDENT, World, build_world


class VillageModel(mesa.Model):
    """The villages of a scenario, stepped week by week.

    Args:
        scenario: a :class:`~villagesim.config.schema.Scenario`, a path to a scenario file, or
            ``None`` for the schema defaults.
        replicate: replicate number; with the seed it selects the random streams.
        seed: root seed (defaults to ``scenario.run.seed``).
        steps: horizon in weeks (defaults to ``scenario.run.steps``); ``running`` turns
            False after it.
        record_villages: keep per-village outputs (off for the browser page of a large run).
        **levers: parameter overrides by dotted path written with ``__`` (e.g.
            ``policy__publicity=0.5``), as the browser page passes them.
    """

    def __init__(
        self,
        scenario: Scenario | str | Path | None = None,
        *,
        replicate: int = 0,
        seed: int | None = None,
        steps: int | None = None,
        record_villages: bool = True,
        **levers: Any,
    ) -> None:
        if scenario is None:
            scenario = Scenario()
        elif isinstance(scenario, str | Path):
            scenario = load_scenario(scenario).scenario
        if levers:
            scenario = apply_overrides(scenario, {k.replace("__", "."): v for k, v in levers.items()})
        if seed is not None:
            scenario = apply_overrides(scenario, {"run.seed": int(seed)})
        self.streams = Streams(scenario.run.seed, replicate)
        super().__init__(rng=self.streams.mesa_rng())
        self.base_scenario = scenario
        self.scenario = scenario
        self.replicate = replicate
        self.horizon = int(steps if steps is not None else scenario.run.steps)
        self._pending = deque(sorted(scenario.intervention, key=lambda i: i.step))
        self.applied_interventions: list[tuple[int, dict[str, Any]]] = []
        self._apply_interventions(0)
        self.world: World = build_world(self.scenario, self.streams.named("population"))
        self.world.institutions = init_institutions(self.world, self.scenario, self.streams.named("institutions"))
        for process in STEP:
            if process.init is not None:
                process.init(self.world, self.scenario, self.streams.for_step(process.stream_key, 0))
        self.world.institutions.intended = self.scenario
        n_v = len(self.world.villages)
        self.committees = [VillageCommittee(self, v) for v in range(n_v)]
        self.government = Government(self)
        self.ngos = [NGO(self, i) for i in range(self.scenario.ngo.count)]
        self.effective = self.scenario
        self.recorder = Recorder(n_v, self.scenario.run.village_report_every, record_villages)
        self.week: Week | None = None
        self.latest: dict[str, float] = {}
        self.datacollector = OutputCollector(COLUMNS)
        self._views: dict[tuple[type, int], PersonView] = {}

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """One week: interventions due, the processes of :data:`~villagesim.processes.STEP`
        in order (ODD §3), then the record."""
        t = self.steps  # Mesa has already counted this step (1-based)
        self._apply_interventions(t)
        week = Week(step=t, n_villages=len(self.world.villages), n_persons=len(self.world.persons))
        for process in STEP:
            # "intended": the planner's levers; "funded": what the funding process left on
            levers = self.scenario if process.levers == "intended" else week.levers
            # the stream is built only if the process draws this step (same numbers either way)
            process.run(self.world, levers, self.streams.lazy_for_step(process.stream_key, t), week)
        self.effective = week.levers
        self.week = week
        total = self.recorder.record(t, village_sums(self.world, week, week.extra))
        self.latest = dict(zip(COLUMNS, total.tolist(), strict=True))
        self.datacollector.collect(self)
        if t >= self.horizon:
            self.running = False

    def _apply_interventions(self, t: int) -> None:
        """Apply the interventions due by step ``t`` to the planner's levers (the funding
        process of the step then reacts to the change)."""
        due: dict[str, Any] = {}
        while self._pending and self._pending[0].step <= t:
            item = self._pending.popleft()
            due.update(item.set)  # same lever twice in one week: the later one wins (check warns)
            self.applied_interventions.append((t, dict(item.set)))
        if due:  # one validation per week, however many interventions fall due
            self.scenario = apply_overrides(self.scenario, due)

    def set_lever(self, path: str, value: Any) -> None:
        """Change a lever of the running model from the next step on (validated; raises
        ScenarioError if invalid). The next step's funding process re-splits the unspent
        money over the uses that now need it. A parameter used only when the villages are
        built (``population.*``, ``run.*``, initial shares) is refused."""
        check_lever(path)
        self.scenario = apply_overrides(self.scenario, {path: value})

    # ------------------------------------------------------------------ agents on demand
    def _view(self, cls: type[PersonView], row: int) -> PersonView:
        view = self._views.get((cls, row))
        if view is None:
            view = cls(self, row)
            self._views[(cls, row)] = view
        return view

    def elders(self) -> AgentSet:
        """Mesa ``Elder`` agents of the resident elders (created on demand)."""
        p = self.world.persons
        rows = np.flatnonzero((p.status == RESIDENT) & (p.age >= ELDER_AGE))
        return AgentSet([self._view(Elder, r) for r in rows], random=self.random)

    def volunteers(self) -> AgentSet:
        """Mesa ``Volunteer`` agents of the current volunteer candidates (created on demand)."""
        rows = np.flatnonzero(candidates_mask(self.world, self.scenario) & (self.world.persons.age < ELDER_AGE))
        young_old = np.flatnonzero(candidates_mask(self.world, self.scenario) & (self.world.persons.age >= ELDER_AGE))
        return AgentSet([self._view(Volunteer, r) for r in np.r_[rows, young_old]], random=self.random)

    # ------------------------------------------------------------------ outputs
    def timeseries(self) -> pd.DataFrame:
        """The model-wide outcomes, one row per step so far."""
        return self.recorder.timeseries(self.replicate)

    def village_outcomes(self) -> pd.DataFrame:
        """Per-village outcomes at the recording interval."""
        return self.recorder.villages(self.replicate)
