"""Unmet need has consequences: last week's unmet hours raise an elder's chance of a worse
care level (onset, progression) and of death (``health.unmet_need_worsening_multiplier``,
``health.unmet_need_death_multiplier``).

The pattern test compares two arms on common random numbers (same seed and replicate) with
unmet need forced high (no family care, no volunteers): an effect holds when the paired 95%
t-interval of the difference over replicates excludes zero.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from conftest import SCENARIOS
from villagesim.config.loading import load_scenario
from villagesim.config.schema import Scenario
from villagesim.model import VillageModel
from villagesim.processes import demography, health
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import DEAD, ELDER_AGE, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

NO_CARE = {
    "care.spouse_care_hours": 0.0,
    "care.coresident_adult_care_hours": 0.0,
    "care.nearby_child_care_hours": 0.0,
    "behaviour.volunteer_intercept": -20.0,
    "population.residents_per_village": 1000,
}
"""Nobody in the family gives care and nobody volunteers: most need goes unmet."""


def _multipliers(value: float) -> dict:
    return {"health.unmet_need_worsening_multiplier": value, "health.unmet_need_death_multiplier": value}


def _arm(s: Scenario, replicate: int, steps: int, monkeypatch) -> tuple[float, float]:
    """Deaths of residents and care-level rises of surviving elders (onset, progression and
    worsening after a late answer) over the run."""
    rises = [0]
    original = health.PROCESS.run

    def counting(world, levers, rng, week):
        p = world.persons
        elder = (p.status == RESIDENT) & (p.age >= ELDER_AGE)
        before = p.care_level.copy()
        original(world, levers, rng, week)
        rises[0] += int(np.sum(elder & (p.status != DEAD) & (p.care_level > before)))

    monkeypatch.setattr(health.PROCESS, "run", counting)
    model = VillageModel(s, replicate=replicate, steps=steps)
    for _ in range(steps):
        model.step()
    monkeypatch.setattr(health.PROCESS, "run", original)
    return float(model.timeseries()["deaths"].sum()), float(rises[0])


def _ci(diff: np.ndarray) -> tuple[float, float]:
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return diff.mean() - half, diff.mean() + half


def test_unmet_need_raises_worsening_and_deaths(monkeypatch):
    """One village of 1,000 for two years, 10 replicates, no family care and no volunteers:
    with both multipliers at 0.05 per unmet hour, deaths and care-level rises exceed those
    with the multipliers at 0 (paired 95% CIs exclude zero)."""
    base = load_scenario(SCENARIOS / "baseline.toml").scenario.with_overrides(NO_CARE)
    off, on = base.with_overrides(_multipliers(0.0)), base.with_overrides(_multipliers(0.05))
    diffs = []
    for r in range(10):
        deaths_off, rises_off = _arm(off, r, 104, monkeypatch)
        deaths_on, rises_on = _arm(on, r, 104, monkeypatch)
        diffs.append((deaths_on - deaths_off, rises_on - rises_off))
    d = np.asarray(diffs)
    for k, what in enumerate(("deaths", "care-level rises")):
        low, high = _ci(d[:, k])
        assert low > 0, f"{what}: 95% CI of the paired difference ({low:.4g}, {high:.4g}) does not exclude 0"


def _week_of_health(s: Scenario, unmet: float, seed: int = 3):
    """Care levels and statuses after demography and health of one week, every elder's
    last-week unmet hours set to ``unmet``."""
    world = build_world(s, Streams(seed).named("population"))
    p = world.persons
    elder = (p.status == RESIDENT) & (p.age >= ELDER_AGE)
    p.unmet_hours[elder] = np.float32(unmet)
    week = Week(step=1, n_villages=len(world.villages), n_persons=len(p))
    demography.run(world, s, Streams(seed).for_step("demography", 1), week)
    health.run(world, s, Streams(seed).for_step("health", 1), week)
    return p.care_level.copy(), p.status.copy()


def test_no_effect_when_the_multipliers_are_zero():
    """At 0 the unmet hours change nothing (bit for bit); at 0.05 forty unmet hours a week
    (a factor 3) change who worsens and who dies."""
    s = Scenario.model_validate({"population": {"villages": 4, "residents_per_village": 5000}})
    zero = s.with_overrides(_multipliers(0.0))
    level_0, status_0 = _week_of_health(zero, 0.0)
    level_40, status_40 = _week_of_health(zero, 40.0)
    assert np.array_equal(level_0, level_40) and np.array_equal(status_0, status_40)
    on = s.with_overrides(_multipliers(0.05))
    level_on, status_on = _week_of_health(on, 40.0)
    assert (level_on > level_0).sum() > 0 and (status_on == DEAD).sum() > (status_0 == DEAD).sum()


def test_worsening_probability_scales_with_unmet_hours():
    """One week of 20,000 persons' elders, all at level 0 with 40 unmet hours and a multiplier
    of 0.5 per hour: onsets are 21 times the expected number without unmet need, within 4 sd."""
    s = Scenario.model_validate({"population": {"villages": 4, "residents_per_village": 5000}}).with_overrides(
        {**_multipliers(0.5), "health.emergency_rate_by_level": [0.0] * 5}
    )
    world = build_world(s, Streams(5).named("population"))
    p = world.persons
    elder = (p.status == RESIDENT) & (p.age >= ELDER_AGE)
    p.care_level[:] = 0
    p.unmet_hours[elder] = np.float32(40.0)
    band = (p.age[elder] >= 70).astype(int) + (p.age[elder] >= 80)
    weekly = 1 - (1 - np.asarray(s.health.onset_rate_by_band)) ** (1 / 52)
    expected = float(np.sum(np.minimum(21.0 * weekly[band], 1.0)))
    week = Week(step=1, n_villages=len(world.villages), n_persons=len(p))
    health.run(world, s, Streams(5).for_step("health", 1), week)
    onsets = int(np.sum(p.care_level[elder] == 1))
    assert expected > 50
    assert abs(onsets - expected) < 4 * np.sqrt(expected), (onsets, expected)
