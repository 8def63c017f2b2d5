"""``ReferenceModel``: the rules of villagesim, one Python object per villager.

This is the oracle for the vectorised core (:class:`villagesim.model.VillageModel`) and
the baseline for its speed. It reads the same scenario files, starts from the same
initial villages (:func:`villagesim.state.population.build_world` with the run's ``population``
stream, copied into :class:`~villagesim.reference.agents.Person` objects) and reports the
same output columns (those of :data:`REFERENCE_COLUMNS`), but steps the way a Mesa user
writes a model: ``AgentSet.shuffle_do`` of a method per process, households and family
lines tallied in loops, committees matching with loops. It does not import the
processes of the core; its rules are written from the ODD.

It is meant for villages of up to a few thousand persons (about 10^5 person-steps per
second). The two engines draw different random numbers, so they agree in distribution,
not draw for draw (``tests/test_equivalence.py``).

Covered: demography (deaths by band and sex, births) and hollowing-out, health and
emergencies, need, family care, asking, volunteering, manual matching by the committee, trust/awareness/satisfaction/burnout, and
the levers that act on them (``policy.incentive_per_hour``, ``publicity``,
``party_mobilisation``, ``liability_insurance``, ``wearable_alarms``, ``transparency``,
``committee.*``, ``hollowing_out.*``). Not modelled yet: money and institutions (budget and
its split, facilities, NGOs, the government's allocation and feedback), the time bank and
the platform. The reference refuses a scenario that switches those on
(:data:`UNSUPPORTED_LEVERS`) or lets institutions act (:data:`GOVERNANCE_INERT`, applied by
:func:`governance_inert`); it treats every lever as fully funded.

Example:
    >>> from villagesim.reference import ReferenceModel, governance_inert
    >>> from villagesim.config.schema import Scenario
    >>> s = governance_inert(Scenario.model_validate({"population": {"residents_per_village": 200}}))
    >>> model = ReferenceModel(s, steps=3)
    >>> for _ in range(3):
    ...     model.step()
    >>> 0.0 <= model.latest["unmet_need_share"] <= 1.0
    True
"""

from __future__ import annotations

import zlib
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd

from villagesim.config.loading import apply_overrides, load_scenario
from villagesim.config.schema import Scenario, check_lever, leaf_paths
from villagesim.constants import HOURS_PER_WEEK, WEEKS_PER_YEAR
from villagesim.errors import VillagesimError
from villagesim.reference.agents import AWAY, ELDER_AGE, GENERAL, RESIDENT, Committee, Household, Person
from villagesim.rng import Streams
from villagesim.state.population import build_world

REFERENCE_COLUMNS: list[str] = [
    "residents",
    "away",
    "elders",
    "elders_alone",
    "disabled_elders",
    "need_hours",
    "need_daily_living",
    "need_meals",
    "need_companionship",
    "need_professional",
    "met_hours_family",
    "met_hours_volunteer",
    "met_hours_peer",
    "unmet_hours",
    "hidden_need_hours",
    "elders_with_unmet_need",
    "requests",
    "handled_requests",
    "matched_requests",
    "volunteer_candidates",
    "active_volunteers",
    "volunteer_hours",
    "emergencies",
    "emergencies_late",
    "deaths",
    "outmigrations",
    "returns",
    "need_hours_alone",
    "unmet_hours_alone",
    "unmet_need_share",
    "share_60plus",
    "mean_trust",
    "mean_awareness",
    "mean_satisfaction",
    "request_match_rate",
    "mean_answer_hours",
    "unmet_share_alone",
]
"""Output columns the reference computes (a subset of :data:`villagesim.outputs.sums.COLUMNS`)."""

UNSUPPORTED_LEVERS: dict[str, Any] = {
    "policy.time_bank.enabled": False,
    "policy.platform.enabled": False,
    "policy.ngo_purchase_budget": 0.0,
    "behaviour.accident_rate_per_hour": 0.0,  # accidents, disputes, quits and fear are the core's alone
    "policy.digital_training": 0.0,
    "policy.participatory_planning": False,
}
"""Levers the reference does not model yet, with the only value it accepts."""

GOVERNANCE_INERT: dict[str, Any] = {
    "policy.budget": 1e9,
    "policy.split.facility_building": 0.0,
    "policy.split.facility_running": 0.0,
    "policy.split.ngo": 0.0,
    "policy.split.platform": 0.0,
    "policy.split.subsidies": 0.5,
    "policy.split.publicity": 0.5,
    "facilities.initial_coverage": [0.0, 0.0, 0.0],
    "facilities.idle_discouragement": 0.0,  # buildings the adaptive split puts up never open here
    "ngo.count": 0,
}
"""Overrides under which the core's money and institutions are inert: no facilities, no NGOs,
and every lever fully funded (so a lever acts as set). The reference models exactly this
case; comparisons and speed baselines apply it to both engines."""


def governance_inert(scenario: Scenario) -> Scenario:
    """``scenario`` with :data:`GOVERNANCE_INERT` applied (paths the schema lacks are skipped)."""
    known = leaf_paths()
    return apply_overrides(scenario, {k: v for k, v in GOVERNANCE_INERT.items() if k in known})


_RATIOS = {
    "unmet_need_share": ("unmet_hours", "need_hours"),
    "share_60plus": ("elders", "residents"),
    "mean_trust": ("_trust_sum", "elders"),
    "mean_awareness": ("_awareness_sum", "elders"),
    "mean_satisfaction": ("_satisfaction_sum", "elders"),
    "request_match_rate": ("matched_requests", "requests"),
    "mean_answer_hours": ("_answer_hours_sum", "emergencies"),
    "unmet_share_alone": ("unmet_hours_alone", "need_hours_alone"),
}


def check_supported(scenario: Scenario) -> None:
    """Raise :class:`VillagesimError` if the scenario pulls a lever the reference does not model."""
    known = leaf_paths()
    for path, allowed in {**UNSUPPORTED_LEVERS, **GOVERNANCE_INERT}.items():
        if path not in known:
            continue
        value = scenario.get(path)
        if path in GOVERNANCE_INERT and path != "policy.budget":
            ok = value == allowed or (isinstance(value, list) and list(value) == list(allowed))
        elif path == "policy.budget":
            ok = True  # money is not modelled: the reference acts as if every lever were fully funded
        else:
            ok = value == allowed
        if not ok:
            raise VillagesimError(
                f"{path}: the reference engine does not model this yet (needs {allowed!r}; "
                "see villagesim.reference.model.governance_inert)"
            )


def _beta_with_mean(rnd, mean: float, concentration: float) -> float:
    """A beta draw with this mean (clipped away from 0 and 1), as the villages are built."""
    m = min(max(mean, 1e-3), 1 - 1e-3)
    return rnd.betavariate(m * concentration, (1 - m) * concentration)


class ReferenceModel(mesa.Model):
    """The villages of a scenario as one Mesa agent per villager.

    Args:
        scenario: a :class:`~villagesim.config.schema.Scenario`, a path to a scenario file, or
            ``None`` for the schema defaults.
        replicate: replicate number; with the seed it selects the initial villages (the
            same as the vectorised model's) and the random numbers of the dynamics.
        seed: root seed (defaults to ``scenario.run.seed``).
        steps: horizon in weeks (defaults to ``scenario.run.steps``).
    """

    def __init__(
        self,
        scenario: Scenario | str | Path | None = None,
        *,
        replicate: int = 0,
        seed: int | None = None,
        steps: int | None = None,
    ) -> None:
        if scenario is None:
            scenario = Scenario()
        elif isinstance(scenario, str | Path):
            scenario = load_scenario(scenario).scenario
        if seed is not None:
            scenario = apply_overrides(scenario, {"run.seed": int(seed)})
        check_supported(scenario)
        streams = Streams(scenario.run.seed, replicate)
        dynamics = np.random.SeedSequence(scenario.run.seed, spawn_key=(replicate, zlib.crc32(b"reference")))
        super().__init__(rng=np.random.default_rng(dynamics))
        self.scenario = scenario
        self.replicate = replicate
        self.horizon = int(steps if steps is not None else scenario.run.steps)
        self._pending = deque(sorted(scenario.intervention, key=lambda i: i.step))
        self._apply_interventions(0)

        world = build_world(self.scenario, streams.named("population"))
        self.n_persons = len(world.persons)
        self.households = self._copy_households(world)
        self.lineages: dict[int, list[Household]] = defaultdict(list)
        for hh in self.households:
            self.lineages[hh.lineage].append(hh)
        self.lineage_tally: dict[int, dict[str, float]] = {}
        self._copy_persons(world)
        self.committees = [Committee(self, v) for v in range(len(world.villages))]
        del world

        self.tally: defaultdict[str, float] = defaultdict(float)
        self.latest: dict[str, float] = {}
        self.rows: list[dict[str, float]] = []
        self.datacollector = mesa.DataCollector(
            model_reporters={c: (lambda m, c=c: m.latest.get(c, 0.0)) for c in REFERENCE_COLUMNS}
        )

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _copy_households(world) -> list[Household]:
        h = world.households
        p = world.persons
        out = [
            Household(i, int(v), int(hm), float(x), float(y))
            for i, (v, hm, x, y) in enumerate(zip(h.village.tolist(), h.hamlet.tolist(), h.x.tolist(), h.y.tolist(), strict=True))
        ]
        nb = h.neighbours.tocsr()
        indptr, indices = nb.indptr.tolist(), nb.indices.tolist()
        for i, hh in enumerate(out):
            hh.neighbours = [out[j] for j in indices[indptr[i] : indptr[i + 1]]]
        for hid, lin in zip(p.household.tolist(), p.lineage.tolist(), strict=True):
            out[hid].lineage = lin
        return out

    def _copy_persons(self, world) -> None:
        p = world.persons
        cols = {
            name: getattr(p, name).tolist()
            for name in (
                "household age female status care_level trained party altruism opportunity_cost availability "
                "trust awareness satisfaction tb_trust lottery"
            ).split()
        }
        for i in range(len(p)):
            state = {k: v[i] for k, v in cols.items()}
            hh = self.households[state.pop("household")]
            if state["status"] != RESIDENT and state["status"] != 1:
                continue  # dead at the start: none in a fresh world
            Person(self, hh, **state)

    # ------------------------------------------------------------------ stepping
    def count(self, name: str, value: float = 1.0) -> None:
        """Add to this step's tally of events (deaths, emergencies, ...)."""
        self.tally[name] += value

    def step(self) -> None:
        """One week: the processes of MODEL.md §3 in order, each agent by its own method."""
        t = self.steps
        self._apply_interventions(t)
        self.tally = defaultdict(float)
        persons = self.agents_by_type[Person]

        # 1. demography and hollowing-out: everyone ages, deaths and moves person by person,
        # then the births
        for a in persons:
            a.age += 1.0 / WEEKS_PER_YEAR
        self.mothers = []
        persons.shuffle_do("demography")
        self._births()
        persons = self.agents_by_type[Person]
        # 2. health: care-level moves, then emergencies (who lives with whom: after this week's moves)
        for hh in self.households:
            hh.count_residents()
        elders = persons.select(lambda a: a.is_elder)
        elders.shuffle_do("health_transition")
        elders.shuffle_do("health_emergency")
        # 3. need
        for hh in self.households:
            hh.count_residents()
        elders = persons.select(lambda a: a.is_elder)
        elders.shuffle_do("assess_need")
        # 4. family care first
        self._tally_family(elders)
        elders.shuffle_do("receive_family_care")
        for hh in self.households:
            hh.tally["family_received"] = sum(m.met["family"] for m in hh.members if m.is_elder)
            hh.tally["elders_here"] = sum(1 for m in hh.members if m.is_elder)
        for a in persons:
            a.budget_week()
        # 5. asking for help
        elders.shuffle_do("ask_for_help")
        # 6. volunteer supply (the norm looks at last week's volunteers)
        for a in persons:
            a.candidate = a.could_volunteer()
        for hh in self.households:
            cands = [m for m in hh.members if m.candidate]
            hh.tally["candidates"] = len(cands)
            hh.tally["active_candidates"] = sum(1 for m in cands if m.active)
        persons.shuffle_do("decide_to_volunteer")
        # 7. matching by the committees
        for c in self.committees:
            c.requests, c.volunteers = [], []
        for e in elders:
            if e.asked:
                self.committees[e.household.village].requests.append(e)
        for a in persons:
            if a.active:
                self.committees[a.household.village].volunteers.append(a)
        self.agents_by_type[Committee].shuffle_do("match")
        # 11. trust, awareness, satisfaction (neighbours as they were before this week's update)
        for hh in self.households:
            hh.tally["elders"] = hh.tally["elder_trust"] = hh.tally["elders_helped"] = 0.0
        for e in elders:
            hh = e.household
            hh.tally["elders"] += 1
            hh.tally["elder_trust"] += e.trust
            hh.tally["elders_helped"] += e.matched
        for a in persons:
            a.unmet_hours = 0.0  # this week's, set by update_views for the resident elders
        elders.shuffle_do("update_views")
        persons.do("rest")
        # 12. record
        self._record(t, persons, elders)
        if t >= self.horizon:
            self.running = False

    def _births(self) -> None:
        """A child for each of this week's mothers: with a resident mother at home; with a
        mother away, sent back (``left_behind_share``) to the lowest-numbered household of
        her family line with a resident elder, else to her own household if someone lives
        there, else (and for the rest) away with her. Places are chosen before any child
        is added."""
        s = self.scenario
        rnd = self.random
        places = []
        for mother in self.mothers:
            home, status = mother.household, mother.status
            u_back = rnd.random()
            if status == AWAY and u_back < s.births.left_behind_share:
                grand = [
                    hh
                    for hh in self.lineages[home.lineage]
                    if any(m.status == RESIDENT and m.age >= ELDER_AGE for m in hh.members)
                ]
                if grand:
                    home, status = min(grand, key=lambda hh: hh.hid), RESIDENT
                elif any(m.status == RESIDENT for m in home.members):
                    status = RESIDENT
            places.append((home, status))
        pop, beh = s.population, s.behaviour
        for home, status in places:
            Person(
                self,
                home,
                age=0.0,
                female=rnd.random() < 0.5,
                status=status,
                care_level=0,
                trained=False,
                party=False,
                altruism=rnd.betavariate(beh.altruism_alpha, beh.altruism_beta),
                opportunity_cost=min(1.0, max(0.0, beh.opportunity_cost_working_age + rnd.gauss(0.0, 0.15))),
                availability=rnd.gammavariate(2.0, 1.0) * beh.availability_hours_working_age / 2.0,
                trust=_beta_with_mean(rnd, pop.initial_trust_mean, 10.0),
                awareness=_beta_with_mean(rnd, pop.initial_awareness_mean, 6.0),
                satisfaction=0.5,
                tb_trust=0.5,
                lottery=rnd.random(),
            )
            self.count("births")

    def _tally_family(self, elders) -> None:
        for hh in self.households:
            hh.tally["family_capacity"] = sum(m.family_contribution() for m in hh.members)
            hh.tally["adults"] = sum(1 for m in hh.members if m.is_working_age)
            hh.tally["elder_need"] = 0.0
        for e in elders:
            e.household.tally["elder_need"] += sum(e.remaining[k] for k in GENERAL)
        c = self.scenario.care
        # what a working-age adult's budget leaves for elders of the line elsewhere (the same for all)
        budget = max(HOURS_PER_WEEK - c.sleep_self_care_hours - c.paid_work_hours_working_age, 0.0)
        hours = min(c.nearby_child_care_hours, budget - min(c.coresident_adult_care_hours, budget))
        self.lineage_tally = {}
        for lin, hhs in self.lineages.items():
            adults = sum(hh.tally["adults"] for hh in hhs)
            n_elders, spare, need = 0, 0.0, 0.0
            for hh in hhs:
                for m in hh.members:
                    if m.is_elder:
                        n_elders += 1
                        spare += max(adults - hh.tally["adults"], 0.0) * hours
                        need += sum(m.remaining[k] for k in GENERAL)
            self.lineage_tally[lin] = {"capacity": spare / n_elders if n_elders else 0.0, "need": need, "elders": n_elders}

    def _record(self, t: int, persons, elders) -> None:
        s = self.tally
        s["residents"] = sum(1 for a in persons if a.status == RESIDENT)
        s["away"] = sum(1 for a in persons if a.status != RESIDENT)
        s["volunteer_candidates"] = sum(1 for a in persons if a.candidate)
        s["active_volunteers"] = sum(1 for a in persons if a.active)
        s["volunteer_hours"] = sum(a.served_hours for a in persons)
        for e in elders:
            need = sum(e.need)
            unmet = sum(e.remaining)
            s["elders"] += 1
            s["elders_alone"] += e.alone
            s["disabled_elders"] += e.care_level >= 1
            s["need_hours"] += need
            for k, kind in enumerate(("daily_living", "meals", "companionship", "professional")):
                s[f"need_{kind}"] += e.need[k]
            for src in ("family", "volunteer", "peer"):
                s[f"met_hours_{src}"] += e.met[src]
            s["unmet_hours"] += unmet
            s["hidden_need_hours"] += 0.0 if e.asked else unmet
            s["elders_with_unmet_need"] += unmet > 0.01
            s["requests"] += e.asked
            s["handled_requests"] += e.handled
            s["matched_requests"] += e.matched
            if e.alone:
                s["need_hours_alone"] += need
                s["unmet_hours_alone"] += unmet
            s["_trust_sum"] += e.trust
            s["_awareness_sum"] += e.awareness
            s["_satisfaction_sum"] += e.satisfaction
        row = {c: float(s[c]) for c in REFERENCE_COLUMNS if c not in _RATIOS}
        for name, (num, den) in _RATIOS.items():
            row[name] = float(s[num] / s[den]) if s[den] > 0 else 0.0
        self.latest = {c: row[c] for c in REFERENCE_COLUMNS}
        self.rows.append({"step": t, **self.latest})
        self.datacollector.collect(self)

    def _apply_interventions(self, t: int) -> None:
        due: dict[str, Any] = {}
        while self._pending and self._pending[0].step <= t:
            due.update(self._pending.popleft().set)
        if due:
            self.scenario = apply_overrides(self.scenario, due)
            check_supported(self.scenario)

    def set_lever(self, path: str, value: Any) -> None:
        """Change a lever of the running model (validated; fixed parameters refused)."""
        check_lever(path)
        self.scenario = apply_overrides(self.scenario, {path: value})
        check_supported(self.scenario)

    # ------------------------------------------------------------------ outputs
    def timeseries(self) -> pd.DataFrame:
        """One row per step so far: ``step``, ``replicate`` and :data:`REFERENCE_COLUMNS`."""
        df = pd.DataFrame(self.rows, columns=["step", *REFERENCE_COLUMNS])
        df.insert(1, "replicate", self.replicate)
        return df

    def elders(self) -> list[Person]:
        """The resident elders now."""
        return [a for a in self.agents_by_type[Person] if a.is_elder]


def run_reference(scenario: Scenario, replicate: int = 0, steps: int | None = None) -> pd.DataFrame:
    """Run one replicate of the reference engine; return its time series."""
    model = ReferenceModel(scenario, replicate=replicate, steps=steps)
    for _ in range(model.horizon):
        model.step()
    return model.timeseries()


__all__ = [
    "ReferenceModel",
    "REFERENCE_COLUMNS",
    "UNSUPPORTED_LEVERS",
    "GOVERNANCE_INERT",
    "governance_inert",
    "check_supported",
    "run_reference",
    "ELDER_AGE",
]
