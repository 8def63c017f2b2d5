"""The vectorised core against the per-agent reference engine, in distribution.

Method (stated so that it can fail):

* A village of about 400 registered persons runs for 78 weeks, ``R = 30`` replicates per
  engine and configuration. Replicate ``r`` of both engines starts from the *same* initial
  village (both build it with the run's ``population`` stream); the weekly dynamics draw
  different random numbers, so the engines agree in distribution, not draw for draw.
* Outcomes at horizons 26, 52 and 78 weeks: the unmet need share, active volunteers,
  requests and hours of family care (each averaged over the 13 weeks ending at the
  horizon, to damp week-to-week noise), mean trust of elders and residents at the horizon,
  and cumulative deaths up to the horizon.
* Two tests per outcome and horizon: a paired t-test on the per-replicate difference
  (pairs share the initial village, which removes the between-village variance and makes
  the test sharp) and a two-sample Kolmogorov-Smirnov test on the two distributions. All
  p-values of one configuration are compared with a Bonferroni-corrected threshold
  ``ALPHA / m`` (family-wise ``ALPHA = 0.01``, ``m`` = number of tests of the
  configuration). A configuration passes when no test rejects.
* With 30 pairs, the paired t-test detects a systematic difference of about 0.8 standard
  deviations of the pairwise differences with high probability; ``test_detects_*`` show
  that a rule changed in one engine only (out-migration doubled; publicity ignored by
  awareness) is detected.

The configurations switch the levers that act in the core on and off:
``policy.incentive_per_hour``, ``policy.publicity``, ``policy.party_mobilisation``,
``policy.liability_insurance``, ``policy.wearable_alarms``, ``policy.transparency``,
``committee.admin_burden`` and ``hollowing_out.outmigration_rate``; ``care_strained`` sets
the consequences of unmet need high and makes carers' time budgets bind.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from villagesim.config.schema import Scenario
from villagesim.model import VillageModel
from villagesim.reference import ReferenceModel, governance_inert, run_reference
from villagesim.reference.agents import Person

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

R = 30
STEPS = 78
HORIZONS = (26, 52, 78)
WINDOW = 13
ALPHA = 0.01
FLOWS = ("unmet_need_share", "active_volunteers", "requests", "met_hours_family")
STATES = ("mean_trust", "residents")
CUMULATIVE = ("deaths",)

BASE = {"run": {"steps": STEPS, "seed": 7}, "population": {"residents_per_village": 400}}
CONFIGS: dict[str, dict[str, object]] = {
    "levers_off": {},
    "levers_on": {
        "policy.incentive_per_hour": 15.0,
        "policy.publicity": 1.0,
        "policy.party_mobilisation": 1.0,
        "policy.liability_insurance": True,
        "policy.wearable_alarms": 1.0,
        "policy.transparency": 1.0,
        "committee.admin_burden": 0.1,
    },
    "hollowing": {"hollowing_out.outmigration_rate": 0.3, "committee.admin_burden": 0.9},
    # unmet need with strong consequences (little family care: much need goes unmet),
    # disabled spouses giving little, carers whose week binds (long work, eager volunteers)
    "care_strained": {
        "health.unmet_need_worsening_multiplier": 0.3,
        "health.unmet_need_death_multiplier": 0.3,
        "care.paid_work_hours_working_age": 58.0,
        "care.coresident_adult_care_hours": 3.0,
        "care.nearby_child_care_hours": 0.0,
        "care.spouse_care_hours": 6.0,
        "care.carer_share_at_level_1": 0.2,
        "behaviour.availability_hours_working_age": 30.0,
        "behaviour.volunteer_intercept": 0.0,
        "committee.admin_burden": 0.0,
    },
}


def scenario(overrides: dict[str, object]) -> Scenario:
    """The test village with ``overrides``, the core's money and institutions made inert
    (no facilities or NGOs, every lever fully funded), which is what the reference models."""
    s = governance_inert(Scenario.model_validate(BASE))
    return s.with_overrides(overrides) if overrides else s


def outcomes(ts: pd.DataFrame) -> dict[tuple[str, int], float]:
    """The compared outcomes of one replicate's time series (indexed by step 1..STEPS)."""
    ts = ts.set_index("step")
    out: dict[tuple[str, int], float] = {}
    for h in HORIZONS:
        window = ts.loc[h - WINDOW + 1 : h]
        for name in FLOWS:
            out[(name, h)] = float(window[name].mean())
        for name in STATES:
            out[(name, h)] = float(ts.loc[h, name])
        for name in CUMULATIVE:
            out[(name, h)] = float(ts.loc[:h, name].sum())
    return out


def run_vectorised(s: Scenario, replicate: int) -> pd.DataFrame:
    model = VillageModel(s, replicate=replicate, steps=STEPS, record_villages=False)
    for _ in range(STEPS):
        model.step()
    return model.timeseries()


@cache
def table(engine: str, config: str) -> pd.DataFrame:
    """Replicates x (outcome, horizon) for one engine and configuration (cached per session)."""
    s = scenario(CONFIGS[config])
    run = run_vectorised if engine == "vectorised" else run_reference
    rows = [outcomes(run(s, r) if engine == "vectorised" else run(s, r, STEPS)) for r in range(R)]
    return pd.DataFrame(rows)


def compare(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Paired t-test and two-sample KS per column; Bonferroni over all of them."""
    rows = []
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        d = x - y
        if np.allclose(d, 0.0):
            p_t = 1.0
        else:
            p_t = float(stats.ttest_rel(x, y).pvalue)
        p_ks = float(stats.ks_2samp(x, y, method="asymp").pvalue)
        rows.append({"outcome": col[0], "horizon": col[1], "mean_a": x.mean(), "mean_b": y.mean(), "p_t": p_t, "p_ks": p_ks})
    df = pd.DataFrame(rows)
    threshold = ALPHA / (2 * len(df))
    df["rejected"] = (df["p_t"] < threshold) | (df["p_ks"] < threshold)
    return df


def assert_equivalent(df: pd.DataFrame) -> None:
    bad = df[df["rejected"]]
    assert bad.empty, f"engines differ (Bonferroni alpha={ALPHA}):\n{bad.to_string()}"


def test_reference_matches_core_with_levers_off() -> None:
    assert_equivalent(compare(table("vectorised", "levers_off"), table("reference", "levers_off")))


@pytest.mark.slow
@pytest.mark.parametrize("config", ["levers_on", "hollowing", "care_strained"])
def test_reference_matches_core_with_levers(config: str) -> None:
    assert_equivalent(compare(table("vectorised", config), table("reference", config)))


@pytest.mark.slow
def test_levers_change_outcomes_in_both_engines() -> None:
    """The comparison is not vacuous: the configurations differ from each other in both engines."""
    for engine in ("vectorised", "reference"):
        df = compare(table(engine, "levers_on"), table(engine, "levers_off"))
        assert df["rejected"].any(), engine
        df = compare(table(engine, "hollowing"), table(engine, "levers_off"))
        assert df["rejected"].any(), engine


def test_detects_doubled_outmigration_in_one_engine() -> None:
    """Out-migration doubled in the reference only (0.3 -> 0.6 a year) must be detected."""
    s = scenario({**CONFIGS["hollowing"], "hollowing_out.outmigration_rate": 0.6})
    altered = pd.DataFrame([outcomes(run_reference(s, r, STEPS)) for r in range(R)])
    df = compare(table("vectorised", "hollowing"), altered)
    assert df["rejected"].any(), df.to_string()


@pytest.mark.slow
def test_detects_a_changed_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule changed in the reference only (awareness ignores publicity) must be detected."""
    original = Person.update_views

    def without_publicity(self: Person) -> None:
        saved = self.model.scenario
        self.model.scenario = saved.model_copy(update={"policy": saved.policy.model_copy(update={"publicity": 0.0})})
        try:
            original(self)
        finally:
            self.model.scenario = saved

    monkeypatch.setattr(Person, "update_views", without_publicity)
    s = scenario(CONFIGS["levers_on"])
    altered = pd.DataFrame([outcomes(run_reference(s, r, STEPS)) for r in range(R)])
    df = compare(table("vectorised", "levers_on"), altered)
    assert df["rejected"].any(), df.to_string()


def test_reference_is_deterministic_and_starts_from_the_core_world() -> None:
    s = scenario({})
    a, b = ReferenceModel(s, replicate=3, steps=5), ReferenceModel(s, replicate=3, steps=5)
    for _ in range(5):
        a.step()
        b.step()
    pd.testing.assert_frame_equal(a.timeseries(), b.timeseries())
    core = VillageModel(s, replicate=3, steps=1)
    assert a.n_persons == len(core.world.persons)
