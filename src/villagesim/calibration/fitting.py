"""Calibration: published targets, what the model says about them, and the fit of what no survey fixes.

Three parts:

* :data:`TARGETS` holds the figures of ``calibration_targets.csv`` that villagesim
  reproduces (value, accepted range, row name), so that validation needs no file outside
  the package.
* :func:`observe` runs one replicate (the whole model, or only demography and health,
  which draw from the same seeded streams and do not depend on care) and counts what the
  targets are about: resident age structure, ADL disability prevalence by age band, ADL
  incidence, living arrangements, resident population change and mutual-aid
  participation. Counts of several replicates pool by :meth:`Observation.pooled`.
* :func:`calibrate` fits, in order, with common random numbers (every candidate value is
  run on the same replicate numbers):

  1. *structure*: the weight of the 60+ age bands, the co-residence share and the
     out-migration rate, each by one-dimensional root finding (``scipy.optimize.brentq``)
     on the resident 60+ share at the start, the share of resident elders living alone
     or with a spouse only, and the annual change of the resident population;
  2. *health*: the ADL onset rate by age band and the recovery rate, by least squares
     (``scipy.optimize.least_squares``) on the ADL prevalence by band averaged over ten
     years and the ADL incidence at 65+;
  3. *behaviour*: the intercepts of volunteering and of asking for help and the rate at
     which experience moves trust, by maximum a posteriori estimation on a surrogate:
     a Latin-hypercube design around Gaussian priors is simulated, the logit of
     participation is regressed on the coefficients (quadratic, then linear on a local
     design around the first optimum), and ``scipy.optimize.minimize`` finds the mode
     of prior x likelihood. The posterior standard deviations come from the Laplace
     approximation (inverse Hessian at the mode); the fitted values are checked on
     held-out replicates.

*Participation* (target ``rural_elders_participating_in_mutual_aid``, 30%) is the share of
resident elders who, within a four-week window, were active volunteers in at least one
week or received help through a match (from a volunteer or a peer elder); it is averaged
over the 13 windows of the first year (the survey's "now") and over replicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.constants import WEEKS_PER_YEAR
from villagesim.model import VillageModel
from villagesim.processes import demography, health
from villagesim.processes.week import Week
from villagesim.runs.backends import Backend, backend_for, borrowed
from villagesim.runs.folder import ResultFolder, write_json
from villagesim.runs.stats import t_half_width
from villagesim.state.population import DEAD, ELDER_AGE, RESIDENT, World, _band3
from villagesim.version import __version__

PARTICIPATION_WINDOW_WEEKS = 4
"""Length of the window in which an elder counts as taking part in mutual aid ("the past month")."""
ELDER_BANDS = ("60-69", "70-79", "80+")
OLD_BANDS_FROM = 12
"""Index of the first 60+ band (60-64) in ``population.age_band_weights``."""


@dataclass(frozen=True)
class Target:
    """A published figure villagesim reproduces.

    Attributes:
        key: the statistic's name in villagesim (``share_60plus_start`` ...).
        quantity: the row of ``calibration_targets.csv`` (its ``quantity``).
        value: the published value, as a share or rate (percent / 100).
        low, high: the accepted range for validation, same unit.
        unit: unit in words.
        note: how the simulated statistic is defined and why this tolerance.
    """

    key: str
    quantity: str
    value: float
    low: float
    high: float
    unit: str
    note: str


TARGETS: list[Target] = [
    Target(
        "share_60plus_start",
        "share_60plus_rural",
        0.238,
        0.200,
        0.240,
        "share of residents",
        "Resident (常住) persons aged 60+ over all residents at week 0; accepted: the published range 20-24%.",
    ),
    Target(
        "share_65plus_start",
        "share_65plus_rural",
        0.177,
        0.138,
        0.180,
        "share of residents",
        "Resident persons aged 65+ over all residents at week 0; accepted: the published range.",
    ),
    Target(
        "share_60plus_10y",
        "share_60plus_hollowed_township",
        0.37,
        0.24,
        0.37,
        "share of residents",
        "Resident 60+ share after 10 years; plausibility bounds: above the 2020 "
        "rural range (the village keeps ageing) and not beyond the middle of the figure of a hollowed township (35-39%).",
    ),
    Target(
        "adl_60_69_start",
        "disability_adl_age_60_69",
        0.108,
        0.078,
        0.138,
        "share of resident elders 60-69",
        "Care level 1+ (any ADL disability) at week 0; accepted: within 3 points.",
    ),
    Target(
        "adl_70_79_start",
        "disability_adl_age_70_79",
        0.212,
        0.182,
        0.242,
        "share of resident elders 70-79",
        "Care level 1+ at week 0; accepted: within 3 points.",
    ),
    Target(
        "adl_80plus_start",
        "disability_adl_age_80plus",
        0.470,
        0.440,
        0.500,
        "share of resident elders 80+",
        "Care level 1+ at week 0; accepted: within 3 points.",
    ),
    Target(
        "adl_60_69_10y",
        "disability_adl_age_60_69",
        0.108,
        0.078,
        0.138,
        "share of resident elders 60-69",
        "Care level 1+, mean of the yearly values of years 1-10; accepted: within 3 points.",
    ),
    Target(
        "adl_70_79_10y",
        "disability_adl_age_70_79",
        0.212,
        0.182,
        0.242,
        "share of resident elders 70-79",
        "Care level 1+, mean of years 1-10; accepted: within 3 points.",
    ),
    Target(
        "adl_80plus_10y",
        "disability_adl_age_80plus",
        0.470,
        0.440,
        0.500,
        "share of resident elders 80+",
        "Care level 1+, mean of years 1-10; accepted: within 3 points.",
    ),
    Target(
        "adl_drift_10y",
        "disability_adl_age_60_69; disability_adl_age_70_79; disability_adl_age_80plus",
        0.0,
        0.0,
        0.06,
        "largest distance, share",
        "Largest distance of any band's yearly prevalence (years 1-10, mean over replicates) from its "
        "published figure; accepted: up to 6 points (prevalence stays plausible, no drift).",
    ),
    Target(
        "adl_incidence_65plus",
        "adl_incidence_65plus",
        0.050,
        0.047,
        0.064,
        "per person-year at risk",
        "Moves from care level 0 to 1+ of resident elders 65+ per person-year at level 0, years 1-10; "
        "accepted: the published range (CLHLS cohorts).",
    ),
    Target(
        "alone_or_spouse_start",
        "rural_elders_alone_or_spouse_only",
        0.414,
        0.364,
        0.464,
        "share of resident elders",
        "Resident elders whose household has no other resident, or only one other resident aged 60+ "
        "(the spouse), at week 0; accepted: within 5 points.",
    ),
    Target(
        "resident_change_per_year",
        "rural_population_change_2021",
        -0.023,
        -0.025,
        -0.015,
        "per year",
        "Geometric mean annual change of the resident population over the run; accepted: the published "
        "net-outflow range; calibrated to its middle, -2.0% (the point value -2.3% includes reclassification of rural areas).",
    ),
    Target(
        "death_rate_male_60_64",
        "death_rate_male_60_64",
        0.0149,
        0.01192,
        0.01788,
        "deaths per person-year",
        "Deaths of living males aged 60-64 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_male_65_69",
        "death_rate_male_60_64",
        0.0232,
        0.01856,
        0.02784,
        "deaths per person-year",
        "Deaths of living males aged 65-69 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_male_70_74",
        "death_rate_male_60_64",
        0.0371,
        0.02968,
        0.04452,
        "deaths per person-year",
        "Deaths of living males aged 70-74 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_male_75_79",
        "death_rate_male_60_64",
        0.0601,
        0.04808,
        0.07212,
        "deaths per person-year",
        "Deaths of living males aged 75-79 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_male_80_84",
        "death_rate_male_60_64",
        0.1036,
        0.08288,
        0.12432,
        "deaths per person-year",
        "Deaths of living males aged 80-84 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_male_85_89",
        "death_rate_male_60_64",
        0.1726,
        0.13808,
        0.20712,
        "deaths per person-year",
        "Deaths of living males aged 85-89 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_female_60_64",
        "death_rate_female_60_64",
        0.007,
        0.0056,
        0.0084,
        "deaths per person-year",
        "Deaths of living females aged 60-64 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_female_65_69",
        "death_rate_female_60_64",
        0.0119,
        0.00952,
        0.01428,
        "deaths per person-year",
        "Deaths of living females aged 65-69 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_female_70_74",
        "death_rate_female_60_64",
        0.0212,
        0.01696,
        0.02544,
        "deaths per person-year",
        "Deaths of living females aged 70-74 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_female_75_79",
        "death_rate_female_60_64",
        0.037200000000000004,
        0.02976,
        0.04464,
        "deaths per person-year",
        "Deaths of living females aged 75-79 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_female_80_84",
        "death_rate_female_60_64",
        0.0703,
        0.05624,
        0.08436,
        "deaths per person-year",
        "Deaths of living females aged 80-84 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "death_rate_female_85_89",
        "death_rate_female_60_64",
        0.1225,
        0.098,
        0.147,
        "deaths per person-year",
        "Deaths of living females aged 85-89 (resident or away) per person-year lived in the band, "
        "years 1-10 pooled; published national rate (the default rural adjustment is 1); accepted: within 20% (about 3 standard errors of the band with fewest deaths, women 60-64, pooled over 100 ten-year replicates).",
    ),
    Target(
        "life_expectancy_60",
        "life_expectancy_at_60_national",
        21.3,
        20.3,
        22.3,
        "years",
        "Remaining life expectancy at 60 of the life table of the simulated death rates (years 1-10 pooled; "
        "each 5-year band and 90+ at its rate; mean of men and women); accepted: within 1 year.",
    ),
    Target(
        "participation_year1",
        "rural_elders_participating_in_mutual_aid",
        0.300,
        0.250,
        0.350,
        "share of resident elders",
        "Resident elders who were active volunteers in at least one week, or received help through a "
        "match, within a four-week window; mean over the 13 windows of year 1; accepted: within 5 points.",
    ),
]
"""The targets of the validation report (values as shares or per person-year; the CSV gives
percent or deaths per 1000 person-years; life expectancy in years)."""

TARGET_BY_KEY = {t.key: t for t in TARGETS}


# ---------------------------------------------------------------------------- observation
@dataclass
class Observation:
    """Counts of one or more replicates (pool by adding, ratios at the end).

    Attributes:
        years: yearly snapshots taken (0 = start, then every 52 weeks).
        residents, elders, elders_65: resident counts per snapshot.
        band_elders, band_disabled: per snapshot x elder band.
        alone_or_spouse: elders living alone or with a spouse only, at the start.
        onset_events, at_risk_weeks: care level 0 -> 1+ among resident 65+, and weeks at level 0.
        part_num, part_den: per four-week window, elders taking part and resident elders.
        deaths, person_weeks: deaths and weeks lived (resident or away) per mortality group of
            :func:`villagesim.processes.demography.mortality_group` (sex x under 60, the 5-year
            bands 60-64 .. 85-89, 90+), over the run.
        under18: resident persons under 18 per snapshot.
        replicates: how many replicates were added.
    """

    years: int
    residents: np.ndarray
    elders: np.ndarray
    elders_65: np.ndarray
    band_elders: np.ndarray
    band_disabled: np.ndarray
    alone_or_spouse: float = 0.0
    onset_events: float = 0.0
    at_risk_weeks: float = 0.0
    part_num: np.ndarray = field(default_factory=lambda: np.zeros(0))
    part_den: np.ndarray = field(default_factory=lambda: np.zeros(0))
    deaths: np.ndarray = field(default_factory=lambda: np.zeros(2 * demography.GROUPS))
    person_weeks: np.ndarray = field(default_factory=lambda: np.zeros(2 * demography.GROUPS))
    under18: np.ndarray = field(default_factory=lambda: np.zeros(0))
    replicates: int = 1

    @staticmethod
    def pooled(items: Sequence[Observation]) -> Observation:
        """The sum of several replicates' counts."""
        first = items[0]
        out = Observation(
            years=first.years,
            residents=sum(o.residents for o in items),
            elders=sum(o.elders for o in items),
            elders_65=sum(o.elders_65 for o in items),
            band_elders=sum(o.band_elders for o in items),
            band_disabled=sum(o.band_disabled for o in items),
            alone_or_spouse=float(sum(o.alone_or_spouse for o in items)),
            onset_events=float(sum(o.onset_events for o in items)),
            at_risk_weeks=float(sum(o.at_risk_weeks for o in items)),
            part_num=sum(o.part_num for o in items) if len(first.part_num) else np.zeros(0),
            part_den=sum(o.part_den for o in items) if len(first.part_den) else np.zeros(0),
            deaths=sum(o.deaths for o in items),
            person_weeks=sum(o.person_weeks for o in items),
            under18=sum(o.under18 for o in items),
            replicates=sum(o.replicates for o in items),
        )
        return out

    # ---- statistics
    def share_60plus(self) -> np.ndarray:
        """Resident 60+ share per snapshot."""
        return self.elders / np.maximum(self.residents, 1)

    def share_65plus(self) -> np.ndarray:
        """Resident 65+ share per snapshot."""
        return self.elders_65 / np.maximum(self.residents, 1)

    def prevalence(self) -> np.ndarray:
        """ADL prevalence (care level 1+) per snapshot x band."""
        return self.band_disabled / np.maximum(self.band_elders, 1)

    def incidence(self) -> float:
        """Onsets per person-year at risk among resident 65+."""
        return float(self.onset_events / max(self.at_risk_weeks / WEEKS_PER_YEAR, 1e-9))

    def death_rates(self) -> np.ndarray:
        """Deaths per person-year per mortality group (0 where nobody lived in it)."""
        years = self.person_weeks / WEEKS_PER_YEAR
        return np.where(years > 0, self.deaths / np.maximum(years, 1e-12), 0.0)

    def life_expectancy_60(self) -> float:
        """Remaining life expectancy at 60 of the simulated rates: each 5-year band and 90+
        at its constant rate (the life table's usual step assumption; 90+ at the 85-89 rate
        where no death was seen in it, as in a single small replicate), mean of men and women."""
        rates = self.death_rates().reshape(2, demography.GROUPS)[:, 1:]
        out = []
        for m in rates:
            e, alive = 0.0, 1.0
            for k, rate in enumerate(m):
                if k == len(m) - 1:  # open group 90+ (at the 85-89 rate where nobody died in it)
                    rate = rate if rate > 0 else m[k - 1]
                    e += alive / rate if rate > 0 else 0.0
                    break
                survive = np.exp(-5.0 * rate)
                e += alive * (1.0 - survive) / rate if rate > 0 else 5.0 * alive
                alive *= survive
            out.append(e)
        return float(np.mean(out))

    def under18_share(self) -> np.ndarray:
        """Resident under-18 share per snapshot."""
        return self.under18 / np.maximum(self.residents, 1)

    def resident_change_per_year(self) -> float:
        """Geometric mean annual change of the resident population."""
        if self.years < 1:
            return 0.0
        return float((self.residents[-1] / self.residents[0]) ** (1.0 / self.years) - 1.0)

    def participation(self, first_windows: int | None = None) -> float:
        """Mean participation over the first ``first_windows`` four-week windows (all if None)."""
        num, den = self.part_num, self.part_den
        if first_windows is not None:
            num, den = num[:first_windows], den[:first_windows]
        if len(den) == 0:
            return float("nan")
        return float(np.mean(num / np.maximum(den, 1)))

    def statistics(self) -> dict[str, float]:
        """The simulated value of every target this observation covers."""
        prev = self.prevalence()
        out = {
            "share_60plus_start": float(self.share_60plus()[0]),
            "share_65plus_start": float(self.share_65plus()[0]),
            "adl_60_69_start": float(prev[0, 0]),
            "adl_70_79_start": float(prev[0, 1]),
            "adl_80plus_start": float(prev[0, 2]),
            "alone_or_spouse_start": float(self.alone_or_spouse / max(self.elders[0], 1)),
        }
        if self.years >= 1:
            later = prev[1:]
            target = np.array([0.108, 0.212, 0.470])
            out.update(
                {
                    "adl_60_69_10y": float(later[:, 0].mean()),
                    "adl_70_79_10y": float(later[:, 1].mean()),
                    "adl_80plus_10y": float(later[:, 2].mean()),
                    "adl_drift_10y": float(np.abs(later - target).max()),
                    "adl_incidence_65plus": self.incidence(),
                    "resident_change_per_year": self.resident_change_per_year(),
                    "share_60plus_end": float(self.share_60plus()[-1]),
                    "share_60plus_10y": float(self.share_60plus()[-1]),
                    "life_expectancy_60": self.life_expectancy_60(),
                }
            )
            rates = self.death_rates().reshape(2, demography.GROUPS)
            for sex, row in zip(("male", "female"), rates, strict=True):
                for k, b in enumerate(("60_64", "65_69", "70_74", "75_79", "80_84", "85_89")):
                    out[f"death_rate_{sex}_{b}"] = float(row[k + 1])
        if len(self.under18):
            out["under18_share_start"] = float(self.under18_share()[0])
            if self.years >= 1:
                out["under18_share_end"] = float(self.under18_share()[-1])
        if len(self.part_den):
            out["participation_year1"] = self.participation(WEEKS_PER_YEAR // PARTICIPATION_WINDOW_WEEKS)
        return out


def _snapshot(world: World) -> tuple[int, int, int, np.ndarray, np.ndarray, float, int]:
    p = world.persons
    res = p.status == RESIDENT
    elder = res & (p.age >= ELDER_AGE)
    band = _band3(p.age)
    band_elders = np.bincount(band[elder], minlength=3)
    band_disabled = np.bincount(band[elder & (p.care_level >= 1)], minlength=3)
    n_hh = len(world.households)
    hh_res = np.bincount(p.household[res], minlength=n_hh)
    hh_elders = np.bincount(p.household[elder], minlength=n_hh)
    hh = p.household[elder]
    alone_or_spouse = float(np.sum((hh_res[hh] == 1) | ((hh_res[hh] == 2) & (hh_elders[hh] == 2))))
    elders_65 = int((elder & (p.age >= 65)).sum())
    return (
        int(res.sum()),
        int(elder.sum()),
        elders_65,
        band_elders,
        band_disabled,
        alone_or_spouse,
        int((res & (p.age < 18)).sum()),
    )


def observe(scenario: Scenario, replicate: int, steps: int | None = None, *, care: bool = True) -> Observation:
    """Run one replicate and count what the targets are about.

    Args:
        scenario: the scenario (its seed and the replicate number select the streams).
        replicate: replicate number.
        steps: weeks to run (defaults to ``scenario.run.steps``).
        care: run the whole model (needed for participation); ``False`` runs only
            demography and health, which use the same streams and do not depend on care,
            so age structure, disability and population change are the same as in the
            whole model, at a fraction of the cost.
    """
    steps = int(steps if steps is not None else scenario.run.steps)
    model = VillageModel(scenario, replicate=replicate, steps=steps, record_villages=False)
    world = model.world
    p = world.persons
    years = steps // WEEKS_PER_YEAR
    snaps = [_snapshot(world)]
    onset = 0.0
    at_risk = 0.0
    n = len(p)
    n_windows = steps // PARTICIPATION_WINDOW_WEEKS if care else 0
    part_num = np.zeros(n_windows)
    part_den = np.zeros(n_windows)
    took_part = np.zeros(n, dtype=bool)
    deaths = np.zeros(2 * demography.GROUPS)
    person_weeks = np.zeros(2 * demography.GROUPS)
    for t in range(1, steps + 1):
        risk = (p.status == RESIDENT) & (p.age >= 65) & (p.care_level == 0)
        at_risk += float(risk.sum())
        alive = p.status != DEAD
        group = demography.mortality_group(p.age, p.female)[alive]
        person_weeks += np.bincount(group, minlength=2 * demography.GROUPS)
        alive_rows = np.flatnonzero(alive)
        if care:
            model.step()
            week = model.week
            if len(took_part) < len(p):  # births append rows
                took_part = np.r_[took_part, np.zeros(len(p) - len(took_part), dtype=bool)]
            took_part |= p.active
            took_part[week.elders[week.matched]] = True
        else:
            week = Week(step=t, n_villages=len(world.villages), n_persons=n)
            demography.run(world, model.scenario, model.streams.for_step(demography.NAME, t), week)
            health.run(world, model.scenario, model.streams.for_step(health.NAME, t), week)
        # births append rows: the masks of the week's start cover the first rows
        n0 = len(risk)
        deaths += np.bincount(group[p.status[alive_rows] == DEAD], minlength=2 * demography.GROUPS)
        onset += float(np.sum(risk & (p.status[:n0] == RESIDENT) & (p.care_level[:n0] >= 1)))
        if care and t % PARTICIPATION_WINDOW_WEEKS == 0:
            k = t // PARTICIPATION_WINDOW_WEEKS - 1
            if k < n_windows:
                elder = (p.status == RESIDENT) & (p.age >= ELDER_AGE)
                part_num[k] = float(np.sum(took_part & elder))
                part_den[k] = float(elder.sum())
            took_part[:] = False
        if t % WEEKS_PER_YEAR == 0 and t // WEEKS_PER_YEAR <= years:
            snaps.append(_snapshot(world))
    return Observation(
        years=years,
        residents=np.array([s[0] for s in snaps], dtype=float),
        elders=np.array([s[1] for s in snaps], dtype=float),
        elders_65=np.array([s[2] for s in snaps], dtype=float),
        band_elders=np.array([s[3] for s in snaps], dtype=float),
        band_disabled=np.array([s[4] for s in snaps], dtype=float),
        alone_or_spouse=snaps[0][5],
        onset_events=onset,
        at_risk_weeks=at_risk,
        part_num=part_num,
        part_den=part_den,
        deaths=deaths,
        person_weeks=person_weeks,
        under18=np.array([s[6] for s in snaps], dtype=float),
    )


def observe_many(
    scenario: Scenario,
    replicates: Sequence[int],
    steps: int | None = None,
    *,
    care: bool = True,
    workers: int = 1,
    backend: Backend | None = None,
) -> Observation:
    """Pooled observation of several replicates.

    Args:
        scenario: the scenario.
        replicates: replicate numbers.
        steps: weeks to run (default: the scenario's).
        care: run the care processes (off: demography and health only).
        workers: processes, when no ``backend`` is given (1: serial).
        backend: where the replicates run.
    """
    with borrowed(backend, workers) as b:
        items = b.map(observe_job, [(scenario, r, steps, care) for r in replicates])
    return Observation.pooled(items)


def observe_job(args: tuple[Scenario, int, int | None, bool]) -> Observation:
    """:func:`observe` of ``(scenario, replicate, steps, care)``: a task for a backend."""
    scenario, r, steps, care = args
    return observe(scenario, r, steps, care=care)


def build_statistics(scenario: Scenario, replicates: Sequence[int]) -> dict[str, float]:
    """Start-of-run statistics (age structure, disability, living arrangements) from building only."""
    return observe_many(scenario, replicates, steps=0, care=False).statistics()


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Prior:
    """A Gaussian prior of a behavioural coefficient (an assumption, stated in docs/calibration.md)."""

    path: str
    mean: float
    sd: float
    low: float
    high: float


BEHAVIOUR_PRIORS: list[Prior] = [
    Prior("behaviour.volunteer_intercept", -3.2, 1.0, -10.0, 3.0),
    Prior("behaviour.ask_intercept", -2.5, 1.0, -10.0, 3.0),
    Prior("behaviour.trust_experience_rate", 0.06, 0.03, 0.005, 0.3),
]
"""Coefficients fitted to participation, with their priors (means: the pre-calibration values)."""

PARTICIPATION_SD = 0.025
"""Standard deviation of the participation target (an approximate survey figure): 2.5 points."""


@dataclass(frozen=True)
class CalibrationSettings:
    """How much simulation the calibration spends.

    Attributes:
        structure_replicates: builds per candidate value of the structure stage.
        health_villages: villages per replicate in the health stage.
        health_replicates: replicates per candidate in the health stage.
        health_steps: weeks of the health stage.
        design_points: Latin-hypercube points of each behaviour design.
        design_replicates: replicates per design point.
        check_replicates: held-out replicates for the final check of participation.
        workers: processes for the behaviour stage.
    """

    structure_replicates: int = 40
    health_villages: int = 20
    health_replicates: int = 2
    health_steps: int = 520
    design_points: int = 24
    design_replicates: int = 8
    check_replicates: int = 20
    workers: int = 2

    @classmethod
    def quick(cls) -> CalibrationSettings:
        """A small version for tests (about a minute on 2 cores); not for shipping."""
        return cls(
            structure_replicates=8,
            health_villages=4,
            health_replicates=1,
            health_steps=260,
            design_points=12,
            design_replicates=3,
            check_replicates=4,
            workers=2,
        )


# ---------------------------------------------------------------------------- stage 1: structure
def scale_old_bands(weights: Sequence[float], factor: float) -> list[float]:
    """Age-band weights with the 60+ bands multiplied by ``factor``."""
    return [w * factor if i >= OLD_BANDS_FROM else w for i, w in enumerate(weights)]


def _brentq_on(fun: Callable[[float], float], lo: float, hi: float, xtol: float) -> float:
    from scipy.optimize import brentq

    f_lo, f_hi = fun(lo), fun(hi)
    if f_lo * f_hi > 0:  # target out of reach: the closer end
        return lo if abs(f_lo) < abs(f_hi) else hi
    return float(brentq(fun, lo, hi, xtol=xtol))


def fit_structure(scenario: Scenario, settings: CalibrationSettings, log: Callable[[str], None]) -> dict[str, Any]:
    """Stage 1: weight of the 60+ bands, co-residence share, out-migration rate."""
    reps = range(settings.structure_replicates)
    base_weights = list(scenario.population.age_band_weights)
    share_target = (TARGET_BY_KEY["share_60plus_start"].low + TARGET_BY_KEY["share_60plus_start"].high) / 2
    alone_target = TARGET_BY_KEY["alone_or_spouse_start"].value
    change = TARGET_BY_KEY["resident_change_per_year"]
    change_target = (change.low + change.high) / 2  # middle of the net-outflow range

    def share_gap(f: float) -> float:
        s = scenario.with_overrides({"population.age_band_weights": scale_old_bands(base_weights, f)})
        return build_statistics(s, reps)["share_60plus_start"] - share_target

    factor = _brentq_on(share_gap, 0.3, 2.0, 1e-3)
    weights = [round(w, 2) for w in scale_old_bands(base_weights, factor)]
    s1 = scenario.with_overrides({"population.age_band_weights": weights})
    log(
        f"structure: 60+ band weights x {factor:.3f} -> resident 60+ share {build_statistics(s1, reps)['share_60plus_start']:.4f}"
    )

    def alone_gap(c: float) -> float:
        s = s1.with_overrides({"population.coresidence_share": c})
        return build_statistics(s, reps)["alone_or_spouse_start"] - alone_target

    cores = round(_brentq_on(alone_gap, 0.0, 1.0, 1e-3), 3)
    s2 = s1.with_overrides({"population.coresidence_share": cores})
    log(f"structure: coresidence_share {cores} -> alone or spouse only {build_statistics(s2, reps)['alone_or_spouse_start']:.4f}")

    h_reps = range(settings.health_replicates)
    hs = s2.with_overrides({"population.villages": settings.health_villages})

    def change_gap(rate: float) -> float:
        s = hs.with_overrides({"hollowing_out.outmigration_rate": rate})
        return observe_many(s, h_reps, settings.health_steps, care=False).resident_change_per_year() - change_target

    outmig = round(_brentq_on(change_gap, 0.0, 0.3, 1e-4), 4)
    log(f"structure: outmigration_rate {outmig} -> resident change {change_gap(outmig) + change_target:+.4f} per year")
    return {
        "population.age_band_weights": weights,
        "population.coresidence_share": cores,
        "hollowing_out.outmigration_rate": outmig,
        "_old_band_factor": factor,
    }


# ---------------------------------------------------------------------------- stage 2: health
HEALTH_TOLERANCE = {"prevalence": 0.01, "incidence": 0.005}
"""Scales of the least-squares residuals: 1 point of prevalence, half a point of incidence."""


def fit_health(scenario: Scenario, settings: CalibrationSettings, log: Callable[[str], None]) -> dict[str, Any]:
    """Stage 2: onset rate by band and recovery rate to prevalence by band and incidence."""
    from scipy.optimize import least_squares

    hs = scenario.with_overrides({"population.villages": settings.health_villages})
    reps = range(settings.health_replicates)
    targets = np.array([0.108, 0.212, 0.470])
    incidence_target = TARGET_BY_KEY["adl_incidence_65plus"].value
    evaluations: list[dict[str, Any]] = []

    def simulate(x: np.ndarray) -> dict[str, float]:
        s = hs.with_overrides({"health.onset_rate_by_band": [float(v) for v in x[:3]], "health.recovery_rate": float(x[3])})
        return observe_many(s, reps, settings.health_steps, care=False).statistics()

    def residuals(x: np.ndarray) -> np.ndarray:
        st = simulate(x)
        prev = np.array([st["adl_60_69_10y"], st["adl_70_79_10y"], st["adl_80plus_10y"]])
        r = np.r_[
            (prev - targets) / HEALTH_TOLERANCE["prevalence"],
            (st["adl_incidence_65plus"] - incidence_target) / HEALTH_TOLERANCE["incidence"],
        ]
        evaluations.append({"x": [float(v) for v in x], "residuals": [float(v) for v in r]})
        return r

    h = scenario.health
    x0 = np.array([*h.onset_rate_by_band, h.recovery_rate], dtype=float)
    fit = least_squares(residuals, x0, bounds=([0.001] * 4, [0.6, 0.6, 0.9, 0.9]), diff_step=0.05, x_scale=x0, max_nfev=60)
    x = fit.x
    # approximate standard errors: the residual scales act as the targets' standard errors
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac)
        sd = [float(v) for v in np.sqrt(np.clip(np.diag(cov), 0, None))]
    except np.linalg.LinAlgError:
        sd = [float("nan")] * 4
    onset = [round(float(v), 4) for v in x[:3]]
    recovery = round(float(x[3]), 4)
    final = simulate(np.array([*onset, recovery]))
    log(
        "health: onset "
        + ", ".join(f"{v:.4f}" for v in onset)
        + f"; recovery {recovery:.4f} -> prevalence {final['adl_60_69_10y']:.3f}, {final['adl_70_79_10y']:.3f}, "
        f"{final['adl_80plus_10y']:.3f}; incidence 65+ {final['adl_incidence_65plus']:.4f}"
    )
    return {
        "health.onset_rate_by_band": onset,
        "health.recovery_rate": recovery,
        "_uncertainty": {
            "health.onset_rate_by_band": {"approximate_sd": sd[:3]},
            "health.recovery_rate": {"approximate_sd": sd[3]},
        },
        "_diagnostics": {
            "method": "scipy.optimize.least_squares (trf, finite differences, diff_step 0.05) with common random numbers",
            "evaluations": len(evaluations),
            "status": int(fit.status),
            "message": str(fit.message),
            "cost": float(fit.cost),
            "residuals_scaled": [float(v) for v in fit.fun],
            "residual_scales": HEALTH_TOLERANCE,
            "final": {k: final[k] for k in ("adl_60_69_10y", "adl_70_79_10y", "adl_80plus_10y", "adl_incidence_65plus")},
        },
    }


# ---------------------------------------------------------------------------- stage 3: behaviour
def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q))


def _expit(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _features(z: np.ndarray, quadratic: bool) -> np.ndarray:
    z = np.atleast_2d(z)
    cols = [np.ones(len(z)), *z.T]
    if quadratic:
        d = z.shape[1]
        for i in range(d):
            for j in range(i, d):
                cols.append(z[:, i] * z[:, j])
    return np.column_stack(cols)


def _theta(z: np.ndarray) -> dict[str, float]:
    return {pr.path: float(np.clip(pr.mean + zi * pr.sd, pr.low, pr.high)) for pr, zi in zip(BEHAVIOUR_PRIORS, z, strict=True)}


def participation_at(
    scenario: Scenario,
    values: dict[str, float],
    replicates: Sequence[int],
    workers: int = 1,
    backend: Backend | None = None,
) -> tuple[float, np.ndarray]:
    """Participation in year 1 (pooled) and per replicate, for coefficient values.

    Args:
        scenario: the scenario.
        values: parameter values (dotted paths) to set.
        replicates: replicate numbers.
        workers: processes, when no ``backend`` is given (1: serial).
        backend: where the replicates run.
    """
    s = scenario.with_overrides(values)
    windows = WEEKS_PER_YEAR // PARTICIPATION_WINDOW_WEEKS
    with borrowed(backend, workers) as b:
        items = b.map(observe_job, [(s, r, WEEKS_PER_YEAR, True) for r in replicates])
    per_rep = np.array([o.participation(windows) for o in items])
    return Observation.pooled(items).participation(windows), per_rep


def _design_values(scenario: Scenario, zs: np.ndarray, reps: Sequence[int], backend: Backend) -> np.ndarray:
    jobs = []
    for z in zs:
        s = scenario.with_overrides(_theta(z))
        jobs.extend((s, r, WEEKS_PER_YEAR, True) for r in reps)
    items = backend.map(observe_job, jobs)
    windows = WEEKS_PER_YEAR // PARTICIPATION_WINDOW_WEEKS
    k = len(list(reps))
    return np.array([Observation.pooled(items[i * k : (i + 1) * k]).participation(windows) for i in range(len(zs))])


def _map_on_surrogate(beta: np.ndarray, quadratic: bool, target: float, z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode of prior (standard normal in z) x Gaussian likelihood of the target; Laplace covariance."""
    from scipy.optimize import minimize

    def neg_log_post(z: np.ndarray) -> float:
        p = float(_expit(_features(z, quadratic) @ beta)[0])
        return 0.5 * ((p - target) / PARTICIPATION_SD) ** 2 + 0.5 * float(z @ z)

    res = minimize(neg_log_post, z0, method="BFGS")
    z = res.x
    d = len(z)
    eps = 1e-3
    hess = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            e_i, e_j = np.eye(d)[i] * eps, np.eye(d)[j] * eps
            hess[i, j] = (
                neg_log_post(z + e_i + e_j)
                - neg_log_post(z + e_i - e_j)
                - neg_log_post(z - e_i + e_j)
                + neg_log_post(z - e_i - e_j)
            ) / (4 * eps * eps)
    cov = np.linalg.inv(hess)
    return z, cov


def fit_behaviour(scenario: Scenario, settings: CalibrationSettings, log: Callable[[str], None]) -> dict[str, Any]:
    """Stage 3: volunteering and asking intercepts and trust experience rate to participation.

    The runs of every round and of the check share one backend of ``settings.workers`` processes.
    """
    with backend_for(settings.workers) as backend:
        return _fit_behaviour(scenario, settings, log, backend)


def _fit_behaviour(
    scenario: Scenario, settings: CalibrationSettings, log: Callable[[str], None], backend: Backend
) -> dict[str, Any]:
    from scipy.stats import qmc

    target = TARGET_BY_KEY["participation_year1"].value
    reps = list(range(settings.design_replicates))
    d = len(BEHAVIOUR_PRIORS)
    rounds = []
    z_centre = np.zeros(d)
    cov = np.eye(d)
    for k, (half_width, quadratic) in enumerate(((2.0, True), (0.75, False))):
        sampler = qmc.LatinHypercube(d=d, seed=1000 + k)
        zs = z_centre + (sampler.random(settings.design_points) * 2 - 1) * half_width
        values = _design_values(scenario, zs, reps, backend)
        X = _features(zs, quadratic)
        y = _logit(values)
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        fitted = X @ beta
        ss_res = float(np.sum((y - fitted) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
        dof = max(len(y) - X.shape[1], 1)
        z_centre, cov = _map_on_surrogate(beta, quadratic, target, z_centre)
        rounds.append(
            {
                "design": "Latin hypercube",
                "centre_z": [float(v) for v in (zs.mean(axis=0))],
                "half_width_prior_sd": half_width,
                "points": len(zs),
                "replicates_per_point": len(reps),
                "surrogate": "logit(participation) ~ "
                + ("quadratic" if quadratic else "linear")
                + " in standardised coefficients",
                "r_squared": 1 - ss_res / ss_tot,
                "residual_sd_logit": float(np.sqrt(ss_res / dof)),
                "participation_range": [float(values.min()), float(values.max())],
                "mode_z": [float(v) for v in z_centre],
            }
        )
        log(
            f"behaviour round {k + 1}: {len(zs)} points x {len(reps)} replicates, participation "
            f"{values.min():.3f}-{values.max():.3f}, surrogate R^2 {rounds[-1]['r_squared']:.3f}"
        )
    theta = _theta(z_centre)
    # reported to about a tenth of the posterior standard deviation
    theta = {k: round(v, 2 if abs(BEHAVIOUR_PRIORS[i].mean) >= 1 else 3) for i, (k, v) in enumerate(theta.items())}
    sd = {pr.path: float(np.sqrt(cov[i, i]) * pr.sd) for i, pr in enumerate(BEHAVIOUR_PRIORS)}
    check_reps = list(range(10_000, 10_000 + settings.check_replicates))
    pooled, per_rep = participation_at(scenario, theta, check_reps, backend=backend)
    n = len(per_rep)
    half = t_half_width(per_rep)
    log(
        "behaviour: "
        + ", ".join(f"{k.split('.')[-1]} {v:.4f} (sd {sd[k]:.4f})" for k, v in theta.items())
        + f" -> participation on {n} held-out replicates {pooled:.3f} +/- {half:.3f}"
    )
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    return {
        **theta,
        "_uncertainty": {
            k: {"posterior_sd": sd[k], "prior_mean": pr.mean, "prior_sd": pr.sd, "sd_ratio": sd[k] / pr.sd}
            for k, pr in zip(theta, BEHAVIOUR_PRIORS, strict=True)
        },
        "_diagnostics": {
            "method": "maximum a posteriori on a regression surrogate of a Latin-hypercube design with common random "
            "numbers (scipy.optimize.minimize, BFGS); Laplace approximation for the posterior",
            "target": target,
            "target_sd": PARTICIPATION_SD,
            "rounds": rounds,
            "posterior_correlation": corr.round(3).tolist(),
            "check": {
                "replicates": check_reps[0:1] + check_reps[-1:],
                "participation_pooled": pooled,
                "participation_mean": float(per_rep.mean()),
                "ci95_half_width": half,
                "within_tolerance": bool(abs(pooled - target) <= TARGET_BY_KEY["participation_year1"].high - target),
            },
        },
    }


# ---------------------------------------------------------------------------- driver
def calibrate(
    scenario: Scenario, settings: CalibrationSettings | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the three stages on a scenario (normally the baseline) and return fitted values and diagnostics.

    The result's ``fitted`` maps dotted parameter paths to values that a scenario can set
    directly (``scenario.with_overrides(result["fitted"])``).
    """
    settings = settings or CalibrationSettings()
    start = time.perf_counter()
    structure = fit_structure(scenario, settings, log)
    s1 = scenario.with_overrides({k: v for k, v in structure.items() if not k.startswith("_")})
    health_fit = fit_health(s1, settings, log)
    s2 = s1.with_overrides({k: v for k, v in health_fit.items() if not k.startswith("_")})
    behaviour = fit_behaviour(s2, settings, log)
    fitted = {k: v for part in (structure, health_fit, behaviour) for k, v in part.items() if not k.startswith("_")}
    return {
        "villagesim_version": __version__,
        "scenario": scenario.name,
        "seed": scenario.run.seed,
        "settings": settings.__dict__,
        "participation_definition": (
            "share of resident elders who, within a four-week window, were active volunteers in at least one week "
            "or received help through a match; mean over the 13 windows of year 1"
        ),
        "fitted": fitted,
        "uncertainty": {**health_fit["_uncertainty"], **behaviour["_uncertainty"]},
        "diagnostics": {
            "structure": {
                "old_band_factor": structure["_old_band_factor"],
                "method": "scipy.optimize.brentq, common random numbers",
            },
            "health": health_fit["_diagnostics"],
            "behaviour": behaviour["_diagnostics"],
        },
        "runtime_seconds": round(time.perf_counter() - start, 1),
    }


def write_result(result: dict[str, Any], folder: Path | ResultFolder) -> None:
    """Write ``fitted.json`` (values, uncertainty, diagnostics) into ``folder``, atomically.

    ``folder`` is a path, or a :class:`ResultFolder` claimed before the calibration ran
    (as ``villagesim calibrate`` does, so that a folder it may not replace costs nothing).
    """
    if not isinstance(folder, ResultFolder):
        with ResultFolder.claim(folder, kind="calibration") as claimed:
            write_result(result, claimed)
        return
    with folder.writing() as tmp:
        write_json(result, tmp / "fitted.json")
