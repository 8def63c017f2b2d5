"""Mortality by age band and sex, life expectancy at 60 and births against their published rates.

The target of a band's deaths is the published rate x the rural adjustment x the band's
realised care-level effect: the sum over the person-weeks lived in the band of the
person's multiplier over the band's expected multiplier under the initial prevalence
(which is 1 while the band's prevalence equals that of its 10-year band at the start).

Statistical tests state their tolerance: a count of events is compared with its expected
value within 4 Poisson standard deviations (``4 * sqrt(expected)``), per band; with 12
bands the chance of a false alarm is below 1e-3.
"""

from __future__ import annotations

import numpy as np
import pytest

from villagesim.config.schema import Scenario
from villagesim.processes import demography, health
from villagesim.processes.demography import (
    GROUPS,
    expected_multiplier,
    fertility_rate,
    life_expectancy_at_60,
    mortality_group,
)
from villagesim.processes.week import Week
from villagesim.rng import Streams
from villagesim.state.population import AWAY, DEAD, RESIDENT, build_world

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model

MALE = [14.9, 23.2, 37.1, 60.1, 103.6, 172.6]
FEMALE = [7.0, 11.9, 21.2, 37.2, 70.3, 122.5]
"""The published rates (calibration_targets.csv, WPP 2024 2015-2020), deaths per 1000 person-years."""


def _scenario(**sections) -> Scenario:
    data: dict = {"population": {"villages": 20, "residents_per_village": 5000}}
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return Scenario.model_validate(data)


def _run(s: Scenario, seed: int, weeks: int, watch=None):
    """Demography and health of ``s`` for ``weeks``; ``watch(world, week, alive_before, group_before)`` each week."""
    world = build_world(s, Streams(seed).named("population"))
    for t in range(1, weeks + 1):
        p = world.persons
        alive = p.status != DEAD
        group = mortality_group(p.age, p.female)
        level = p.care_level.copy()
        week = Week(step=t, n_villages=len(world.villages), n_persons=len(p))
        demography.run(world, s, Streams(seed).for_step("demography", t), week)
        health.run(world, s, Streams(seed).for_step("health", t), week)
        if watch is not None:
            watch(world, week, alive, group, level)
    return world


@pytest.mark.slow
def test_death_rates_by_band_and_sex_over_ten_years_match_the_published_rates():
    """About 22,000 elders for 10 years (with strong care-level effects and a rural adjustment
    of 1.15): deaths of each sex and 5-year band equal 1.15 x the published rate x the
    person-years weighted by the normalised level effect within 4 sd (that effect is not 1
    within a 5-year band when the multipliers are this strong: 60-64 has fewer disabled than
    60-69); the care level still sorts who dies."""
    adjust = 1.15
    s = _scenario(health={"rural_mortality_adjustment": adjust, "mortality_multiplier_by_level": [1.0, 2.0, 4.0, 8.0, 16.0]})
    deaths = np.zeros(2 * GROUPS)
    years = np.zeros(2 * GROUPS)
    effective = np.zeros(2 * GROUPS)
    mult = np.asarray(s.health.mortality_multiplier_by_level)
    by_level = np.zeros((2, 5))  # deaths and person-weeks of men 80-84 by care level

    def watch(world, week, alive, group, level):
        p = world.persons
        n = len(alive)
        died = alive & (p.status[:n] == DEAD)
        years[:] += np.bincount(group[alive], minlength=2 * GROUPS) / 52.0
        effect = mult[level[alive]] / expected_multiplier(p.age[:n][alive], s)
        effective[:] += np.bincount(group[alive], weights=effect, minlength=2 * GROUPS) / 52.0
        deaths[:] += np.bincount(group[died], minlength=2 * GROUPS)
        band = alive & (group == 5)
        by_level[0] += np.bincount(level[band & died], minlength=5)
        by_level[1] += np.bincount(level[band], minlength=5)

    _run(s, 11, 520, watch)
    for sex, published in ((0, MALE), (1, FEMALE)):
        for k, rate in enumerate(published):
            g = sex * GROUPS + k + 1
            expected = adjust * rate / 1000.0 * effective[g]
            assert expected > 150, (sex, k, expected)  # enough to mean it: sd at most 8% of the expectation
            assert abs(deaths[g] - expected) < 4 * np.sqrt(expected), (sex, k, deaths[g], expected)
    # within the band the multipliers act: level 3-4 die far more often than level 0
    rate_by_level = by_level[0] / np.maximum(by_level[1], 1)
    assert rate_by_level[3:].min() > 4 * rate_by_level[0], rate_by_level


def test_without_normalisation_the_band_rates_would_be_missed():
    """The same multipliers unnormalised would raise the rate of men 80-84 by the band's mean
    multiplier: far beyond the tolerance of the test above (so that test can fail)."""
    s = _scenario(health={"mortality_multiplier_by_level": [1.0, 2.0, 4.0, 8.0, 16.0]})
    world = build_world(s, Streams(11).named("population"))
    p = world.persons
    band = (p.age >= 80) & (p.age < 85) & ~p.female
    mult = np.asarray(s.health.mortality_multiplier_by_level)[p.care_level[band]]
    assert mult.mean() > 1.5


def test_life_expectancy_at_60_of_the_rates_is_the_published_one():
    """Within 0.5 year of 21.3 (men 19.3, women 23.3) with the rural adjustment at 1; the
    90+ extrapolation (the 85-89 rate rising by ``gompertz_slope``) accounts for the rest."""
    s = Scenario()
    assert s.health.rural_mortality_adjustment == 1.0
    assert abs(life_expectancy_at_60(s) - 21.3) < 0.5
    assert abs(life_expectancy_at_60(s, female=False) - 19.3) < 0.5
    assert abs(life_expectancy_at_60(s, female=True) - 23.3) < 0.5
    higher = s.with_overrides({"health.rural_mortality_adjustment": 1.2})
    assert life_expectancy_at_60(higher) < life_expectancy_at_60(s) - 1.0


def test_births_follow_the_fertility_schedule():
    """Births over two years within 4 sd of the expected number (TFR x share / 5 per
    woman-year of each 5-year band of the mother), the schedule summing to the TFR, and
    newborns start as the children of a fresh village do."""
    s = _scenario(births={"total_fertility_rate": 1.8})
    ages = np.arange(15.0, 50.0, 0.01)
    assert fertility_rate(ages, s).sum() * 0.01 == pytest.approx(1.8, rel=1e-3)
    expected = [0.0]

    def watch(world, week, alive, group, level):
        p = world.persons
        n = len(alive)
        # women alive after the week's deaths, at the age at which they could give birth
        fertile = alive & p.female[:n] & (p.status[:n] != DEAD)
        expected[0] += float(np.sum(-np.expm1(-fertility_rate(p.age[:n][fertile], s) / 52.0)))

    n0 = len(build_world(s, Streams(5).named("population")).persons)
    world = _run(s, 5, 104, watch)
    p = world.persons
    n_born = len(p) - n0  # births append rows
    assert expected[0] > 1000
    assert abs(n_born - expected[0]) < 4 * np.sqrt(expected[0]), (n_born, expected[0])
    new = slice(n0, len(p))
    assert np.all(p.care_level[new] == 0) and not p.trained[new].any() and not p.party[new].any()
    assert np.all(p.age[new] < 2.0 + 1e-4) and not p.digital[new].any()
    assert np.array_equal(world.households.village[p.household[new]], p.village[new])
    assert 0.45 < p.female[new].mean() < 0.55


def _newborns_away(share: float) -> int:
    s = _scenario(births={"left_behind_share": share}, hollowing_out={"initial_away_share": 0.6})
    world = build_world(s, Streams(3).named("population"))
    n0 = len(world.persons)
    for t in range(1, 27):
        week = Week(step=t, n_villages=len(world.villages), n_persons=len(world.persons))
        demography.run(world, s, Streams(3).for_step("demography", t), week)
    return int(np.sum(world.persons.status[n0:] == AWAY))


def test_children_of_migrant_mothers_are_left_behind_at_the_stated_share():
    """The same mothers (same seed) with ``left_behind_share`` 0, 0.5 and 1: at 0 every child
    of a mother away stays away; at 1 only those with no home in the village (no resident elder
    of the family line, nobody in the mother's household); at 0.5 halfway, within 4 sd."""
    none, half, all_back = _newborns_away(0.0), _newborns_away(0.5), _newborns_away(1.0)
    assert none > 200
    assert all_back < 0.3 * none, (none, all_back)
    mid = (none + all_back) / 2
    sd = np.sqrt((none - all_back) * 0.25)
    assert abs(half - mid) < 4 * sd, (none, half, all_back)


def test_same_seed_same_births():
    s = _scenario(population={"villages": 2, "residents_per_village": 2000})
    a = _run(s, 9, 52).persons
    b = _run(s, 9, 52).persons
    assert len(a) == len(b) > 4000
    assert np.array_equal(a.age, b.age) and np.array_equal(a.household, b.household) and np.array_equal(a.status, b.status)


def under18_shares(s: Scenario, seed: int, years: int = 10) -> list[float]:
    """Resident under-18 share at the start and at the end of each year."""
    shares = []

    def share(world):
        p = world.persons
        res = p.status == RESIDENT
        return float(np.sum(res & (p.age < 18)) / max(res.sum(), 1))

    world = build_world(s, Streams(seed).named("population"))
    shares.append(share(world))
    for t in range(1, 52 * years + 1):
        week = Week(step=t, n_villages=len(world.villages), n_persons=len(world.persons))
        demography.run(world, s, Streams(seed).for_step("demography", t), week)
        if t % 52 == 0:
            shares.append(share(world))
    return shares


UNDER18_BAND = (0.18, 0.35)
"""Plausible resident under-18 share: from the national 0-14 share of the 2020 census (18%;
rural villages have more children) to a little above the share the villages start with (28%)."""


def test_births_keep_the_under18_share_plausible_over_ten_years():
    s = _scenario(population={"villages": 10, "residents_per_village": 1000})
    shares = under18_shares(s, 21)
    assert all(UNDER18_BAND[0] <= x <= UNDER18_BAND[1] for x in shares), shares


def test_without_births_the_under18_share_leaves_the_band():
    """The check above fails when births are switched off: the children grow up and none follow."""
    s = _scenario(population={"villages": 10, "residents_per_village": 1000}, births={"total_fertility_rate": 0.0})
    shares = under18_shares(s, 21)
    assert shares[-1] < UNDER18_BAND[0], shares
