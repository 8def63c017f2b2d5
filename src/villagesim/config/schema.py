"""The scenario schema: every parameter typed, bounded, with its unit and source.

A scenario file (TOML) is validated against :class:`Scenario`. Each parameter is declared
with :func:`param`, which records its unit and where its default comes from: a row of
``calibration_targets.csv`` (named by its ``quantity``) or ``"assumption"``. The section and
lever names are the public contract of MODEL.md §4: add parameters freely, rename none
without a deprecation path.

``Scenario.parameter_table()`` lists every parameter with unit, bounds, default and source;
the docs, ``villagesim check`` and the browser page read it from there.
:func:`apply_overrides` (a validated copy with dotted-path values replaced) lives here too, so
that :meth:`Scenario.with_overrides` needs no other module; :mod:`.loading` imports this one.
"""

from __future__ import annotations

import difflib
import functools
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from villagesim.errors import ScenarioError

AGE_BANDS = [f"{a}-{a + 4}" for a in range(0, 85, 5)] + ["85+"]
"""Labels of the 18 five-year age bands of ``population.age_band_weights``."""

ELDER_BANDS = ["60-69", "70-79", "80+"]
"""Labels of the three elder age bands used by health and population parameters."""

CARE_LEVELS = ["none", "light", "moderate", "severe", "critical"]
"""Care levels 0..4 (need hours per level follow ``care_need_hours_per_week_by_level``)."""

Share = Annotated[float, Field(ge=0.0, le=1.0)]
NonNeg = Annotated[float, Field(ge=0.0, le=1e9)]
"""A non-negative finite number (a relative weight); the bound keeps sums and products finite."""
WeekHours = Annotated[float, Field(ge=0.0, le=168.0)]
"""Hours in one week: at most 168."""
Rmb = Annotated[float, Field(ge=0.0, le=1e8)]
"""An amount of money in RMB: at most 100 million per item."""


def param(
    default: Any,
    unit: str,
    source: str,
    doc: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    label: str | None = None,
    fixed: bool = False,
) -> Any:
    """Declare a scenario parameter.

    Args:
        default: the default value (lists are copied per instance).
        unit: unit of the value, in words (``"per year"``, ``"hours per week"``, ``"0..1"``).
        source: a ``quantity`` of calibration_targets.csv, or ``"assumption"``.
        doc: one sentence on what the parameter means.
        ge, le, gt, lt: bounds enforced by validation.
        min_length, max_length: length bounds for list parameters.
        label: a short human label for the browser page (defaults to the field name).
        fixed: the value is used only when the villages are built (an initial state, a
            trait drawn once, the network), so an intervention or a running model cannot
            change it. Every parameter of ``run`` and ``population`` is fixed.
    """
    extra: dict[str, Any] = {"unit": unit, "source": source}
    if label:
        extra["label"] = label
    if fixed:
        extra["fixed"] = True
    kwargs: dict[str, Any] = {
        "description": doc,
        "json_schema_extra": extra,
        "ge": ge,
        "le": le,
        "gt": gt,
        "lt": lt,
    }
    if min_length is not None:
        kwargs["min_length"] = min_length
    if max_length is not None:
        kwargs["max_length"] = max_length
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if isinstance(default, list):
        return Field(default_factory=lambda d=default: list(d), **kwargs)
    return Field(default, **kwargs)


class Section(BaseModel):
    """A scenario section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    FIXED: ClassVar[bool] = False
    """Every parameter of the section is fixed when the villages are built (see :func:`param`)."""


class RunConfig(Section):
    """How long and how often to run."""

    FIXED: ClassVar[bool] = True

    steps: int = param(520, "weeks", "assumption", "Number of weekly steps (520 = 10 years).", ge=1, le=5200)
    seed: int = param(42, "integer", "assumption", "Root seed of the run's random streams.", ge=0, le=2**63 - 1)
    replicates: int = param(1, "runs", "assumption", "Independent replicates (seeds derived from `seed`).", ge=1, le=10000)
    village_report_every: int = param(
        1, "weeks", "assumption", "Interval at which per-village outcomes are recorded.", ge=1, le=520
    )


class PopulationConfig(Section):
    """The synthetic villages: size, age structure, households, geography, traits."""

    FIXED: ClassVar[bool] = True

    villages: int = param(1, "villages", "assumption", "Number of administrative villages.", ge=1, le=5000)
    residents_per_village: int = param(
        1000,
        "registered persons",
        "assumption",
        "Mean registered (户籍) population per village, including members working away.",
        ge=20,
        le=100000,
    )
    village_size_sigma: float = param(
        0.0, "log-scale sd", "assumption", "Spread of village sizes (lognormal sigma; 0 = all equal).", ge=0.0, le=2.0
    )
    hamlets_per_village: int = param(4, "hamlets", "assumption", "Natural villages (自然村) per village.", ge=1, le=40)
    village_radius_km: float = param(1.5, "km", "assumption", "Radius within which hamlet centres lie.", gt=0.0, le=30.0)
    hamlet_radius_km: float = param(
        0.2, "km", "assumption", "Spread (sd) of households around their hamlet centre.", gt=0.0, le=5.0
    )
    remoteness_km_min: float = param(
        2.0, "km", "assumption", "Smallest distance from a village to the township seat.", ge=0.0, le=300.0
    )
    remoteness_km_max: float = param(
        15.0, "km", "assumption", "Largest distance from a village to the township seat.", ge=0.0, le=300.0
    )
    age_band_weights: list[NonNeg] = param(
        [5.0, 5.6, 5.8, 5.2, 5.0, 5.6, 7.0, 6.4, 6.4, 8.0, 8.8, 7.8, 4.4, 4.4, 3.06, 1.96, 1.18, 0.79],
        "relative weight per 5-year band 0-4 .. 85+",
        "share_60plus_rural",
        "Age pyramid of the registered population; shaped so that the resident 60+ share "
        "after initial out-migration falls in the census range.",
        min_length=18,
        max_length=18,
    )
    married_share_by_band: list[Share] = param(
        [0.82, 0.68, 0.40],
        "share of elders per band 60-69, 70-79, 80+",
        "assumption",
        "Share of elders living as a married couple.",
        min_length=3,
        max_length=3,
    )
    coresidence_share: float = param(
        0.735,
        "share of elder households",
        "rural_elders_alone_or_spouse_only",
        "Elder households sharing a household with an adult child's household "
        "(tuned so that resident elders alone or with spouse only are near 41.4%).",
        ge=0.0,
        le=1.0,
    )
    children_households_mean: float = param(
        2.0, "households", "assumption", "Mean number of adult-child households linked to an elder household.", ge=0.0, le=8.0
    )
    digital_literacy_by_band: list[Share] = param(
        [0.35, 0.15, 0.05],
        "share of elders per band 60-69, 70-79, 80+",
        "assumption",
        "Elders able to use a smartphone platform on their own.",
        min_length=3,
        max_length=3,
    )
    trained_share: float = param(
        0.05, "share of adults", "assumption", "Adults with care training (can give professional care).", ge=0.0, le=1.0
    )
    party_member_share: float = param(0.08, "share of adults", "assumption", "Party members among adults 18+.", ge=0.0, le=1.0)
    initial_trust_mean: float = param(0.5, "0..1", "assumption", "Mean initial trust in the village committee.", ge=0.0, le=1.0)
    initial_awareness_mean: float = param(
        0.25,
        "0..1",
        "rural_elders_never_in_community_activity",
        "Mean initial awareness of mutual aid (74.4% of rural elders never take part in community activity).",
        ge=0.0,
        le=1.0,
    )

    @model_validator(mode="after")
    def _check(self) -> PopulationConfig:
        if self.remoteness_km_min > self.remoteness_km_max:
            raise ValueError("remoteness_km_min must not exceed remoteness_km_max")
        if sum(self.age_band_weights) <= 0:
            raise ValueError("age_band_weights must not all be zero")
        return self


class HollowingOutConfig(Section):
    """Out-migration of working-age villagers and return of older migrants (the hollowing-out lever)."""

    outmigration_rate: float = param(
        0.0808,
        "per year",
        "rural_population_change_2021",
        "Annual probability that a resident of migrating age leaves to work away.",
        ge=0.0,
        le=0.9,
        label="Out-migration rate",
    )
    return_rate: float = param(
        0.03,
        "per year",
        "migrant_workers_share_50plus_2024",
        "Annual probability that a migrant aged return_min_age or more comes back.",
        ge=0.0,
        le=0.9,
        label="Return rate",
    )
    migration_min_age: int = param(18, "years", "assumption", "Youngest age at which villagers leave to work.", ge=14, le=60)
    migration_max_age: int = param(
        49, "years", "migrant_workers_away_mean_age_2024", "Oldest age at which villagers leave.", ge=14, le=70
    )
    return_min_age: int = param(
        50, "years", "migrant_workers_share_50plus_2024", "Migrants return from this age on.", ge=30, le=80
    )
    initial_away_share: float = param(
        0.35,
        "share of registered persons aged 18-59",
        "share_60plus_rural",
        "Working-age registered villagers already away at the start (tuned to the resident 60+ share).",
        ge=0.0,
        le=0.95,
        fixed=True,
    )

    @model_validator(mode="after")
    def _check(self) -> HollowingOutConfig:
        if self.migration_min_age > self.migration_max_age:
            raise ValueError("migration_min_age must not exceed migration_max_age")
        return self


class HealthConfig(Section):
    """Mortality, disability (care level) transitions and emergencies."""

    death_rate_male_by_band: list[Annotated[float, Field(ge=0.0, le=1000.0)]] = param(
        [14.9, 23.2, 37.1, 60.1, 103.6, 172.6],
        "deaths per 1000 person-years, per band 60-64, 65-69, 70-74, 75-79, 80-84, 85-89",
        "death_rate_male_60_64",
        "Published (national, all care levels) death rate of men by 5-year age band.",
        min_length=6,
        max_length=6,
    )
    death_rate_female_by_band: list[Annotated[float, Field(ge=0.0, le=1000.0)]] = param(
        [7.0, 11.9, 21.2, 37.2, 70.3, 122.5],
        "deaths per 1000 person-years, per band 60-64, 65-69, 70-74, 75-79, 80-84, 85-89",
        "death_rate_female_60_64",
        "Published (national, all care levels) death rate of women by 5-year age band.",
        min_length=6,
        max_length=6,
    )
    rural_mortality_adjustment: float = param(
        1.0,
        "ratio to the national rates",
        "assumption",
        "Multiplier of the published national death rates for rural villages: 1 (the national rates; "
        "rural mortality is likely higher, 1.0-1.2 is the plausible range, but no rural rates by age are published).",
        ge=0.5,
        le=2.0,
    )
    gompertz_slope: float = param(
        0.095,
        "per year of age",
        "assumption",
        "Slope of log hazard with age outside the published bands: below 60 the 60-64 rate falls by it, "
        "from 90 the 85-89 rate rises by it.",
        ge=0.0,
        le=0.3,
    )
    mortality_multiplier_by_level: list[Annotated[float, Field(ge=0.0, le=100.0)]] = param(
        [1.0, 1.5, 2.2, 3.5, 6.0],
        "hazard ratio per care level 0..4",
        "assumption",
        "How much each care level raises the death hazard relative to level 0 (normalised so that the "
        "mean over the living of each age band and sex equals the published rate).",
        min_length=5,
        max_length=5,
    )
    adl_prevalence_by_band: list[Share] = param(
        [0.108, 0.212, 0.470],
        "share of elders per band 60-69, 70-79, 80+",
        "disability_adl_age_60_69; disability_adl_age_70_79; disability_adl_age_80plus",
        "Initial share of elders with any ADL disability (care level 1+).",
        min_length=3,
        max_length=3,
        fixed=True,
    )
    severity_shares: list[Share] = param(
        [0.45, 0.30, 0.17, 0.08],
        "share of disabled elders at levels 1..4",
        "disability_basic_adl_60plus",
        "Initial split of disabled elders over care levels 1 (light) to 4 (critical).",
        min_length=4,
        max_length=4,
        fixed=True,
    )
    onset_rate_by_band: list[Share] = param(
        [0.0251, 0.032, 0.1508],
        "per year, per band 60-69, 70-79, 80+",
        "adl_incidence_65plus; disability_adl_age_60_69; disability_adl_age_70_79; disability_adl_age_80plus",
        "Annual probability of moving from care level 0 to 1.",
        min_length=3,
        max_length=3,
    )
    progression_rate_by_band: list[Share] = param(
        [0.07, 0.10, 0.16],
        "per year, per band",
        "assumption",
        "Annual probability of moving from a care level 1-3 one level up.",
        min_length=3,
        max_length=3,
    )
    recovery_rate: float = param(
        0.0845,
        "per year",
        "adl_incidence_65plus; disability_adl_age_60_69; disability_adl_age_70_79; disability_adl_age_80plus",
        "Annual probability of recovering from level 1 to 0.",
        ge=0.0,
        le=1.0,
    )
    emergency_rate_by_level: list[Share] = param(
        [0.0005, 0.0015, 0.003, 0.005, 0.008],
        "per week, per care level 0..4",
        "assumption",
        "Weekly probability of a fall or acute illness.",
        min_length=5,
        max_length=5,
    )
    answer_prob_alone: float = param(
        0.45, "probability", "assumption", "An emergency of an elder living alone is answered in time.", ge=0.0, le=1.0
    )
    answer_prob_with_others: float = param(
        0.92, "probability", "assumption", "An emergency of an elder living with others is answered in time.", ge=0.0, le=1.0
    )
    answer_prob_alarm: float = param(
        0.95, "probability", "assumption", "An emergency of an elder wearing an alarm is answered in time.", ge=0.0, le=1.0
    )
    answer_hours_in_time: float = param(
        0.5, "hours", "assumption", "Typical time to answer an emergency answered in time.", ge=0.0, le=48.0
    )
    answer_hours_late: float = param(
        8.0, "hours", "assumption", "Typical time to answer an emergency answered late.", ge=0.0, le=168.0
    )
    unanswered_death_prob: float = param(
        0.08, "probability", "assumption", "Extra death probability of an emergency answered late.", ge=0.0, le=1.0
    )
    unanswered_worsen_prob: float = param(
        0.5, "probability", "assumption", "Probability that a late-answered emergency raises the care level.", ge=0.0, le=1.0
    )

    unmet_need_worsening_multiplier: float = param(
        0.02,
        "added ratio of the weekly worsening probability per unmet hour per week",
        "assumption",
        "Unmet need has consequences: an elder's onset (level 0 to 1) and progression (one level up) "
        "probabilities are multiplied by 1 + this x the hours of their need left unmet last week (0: no effect; "
        "0.02: 20 unmet hours a week raise them by 40%; after Gostoli & Silverman's unmetCareNeedBias).",
        ge=0.0,
        le=1.0,
    )
    unmet_need_death_multiplier: float = param(
        0.02,
        "added hazard ratio of death per unmet hour per week",
        "assumption",
        "Unmet need has consequences: an elder's death hazard is multiplied by 1 + this x the hours of their "
        "need left unmet last week, on top of the published rates (outside their normalisation; 0: no effect; "
        "0.02: a critically disabled elder left with 50 of 80 hours unmet dies twice as often, as "
        "Gostoli & Silverman's unmetCareNeedBias of 0.5 does at full unmet need).",
        ge=0.0,
        le=1.0,
    )

    @model_validator(mode="after")
    def _check(self) -> HealthConfig:
        if sum(self.severity_shares) <= 0:
            raise ValueError("severity_shares must not all be zero (they split disabled elders over care levels 1-4)")
        return self


class BirthsConfig(Section):
    """Births: a fertility schedule by the mother's age, scaled to a total fertility rate."""

    total_fertility_rate: float = param(
        1.8,
        "births per woman",
        "total_fertility_rate_rural_estimate",
        "Rural total fertility rate: the sum of the yearly birth rates by age over 15-49.",
        ge=0.0,
        le=8.0,
        label="Total fertility rate",
    )
    age_schedule: list[Share] = param(
        [0.04, 0.32, 0.34, 0.19, 0.08, 0.025, 0.005],
        "share of the TFR per band 15-19, 20-24, 25-29, 30-34, 35-39, 40-44, 45-49",
        "assumption",
        "Shape of fertility by the mother's age (peak at 20-29, the shape of the 2020 census; normalised to sum 1).",
        min_length=7,
        max_length=7,
    )
    left_behind_share: Share = param(
        0.6,
        "share of births to migrant mothers",
        "assumption",
        "Share of children born to mothers away who are sent back to grandparents in the village (left-behind "
        "children, 隔代抚养); the rest stay away with their parents.",
    )

    @model_validator(mode="after")
    def _check(self) -> BirthsConfig:
        if sum(self.age_schedule) <= 0:
            raise ValueError("age_schedule must not all be zero")
        return self


class CareConfig(Section):
    """Weekly need by kind and what the family covers."""

    daily_living_hours_by_level: list[WeekHours] = param(
        [0.0, 5.0, 10.0, 20.0, 50.0],
        "hours per week, per care level 0..4",
        "care_need_hours_per_week_by_level",
        "Daily-living help needed (with meals and professional care the total is 0, 8, 16, 30, 80).",
        min_length=5,
        max_length=5,
    )
    meals_hours_by_level: list[WeekHours] = param(
        [0.0, 2.0, 3.0, 5.0, 10.0],
        "hours per week, per care level 0..4",
        "care_need_hours_per_week_by_level",
        "Meal preparation or delivery needed.",
        min_length=5,
        max_length=5,
    )
    professional_hours_by_level: list[WeekHours] = param(
        [0.0, 1.0, 3.0, 5.0, 20.0],
        "hours per week, per care level 0..4",
        "care_need_hours_per_week_by_level",
        "Nursing or medical care: only trained volunteers or NGOs can give it.",
        min_length=5,
        max_length=5,
    )
    companionship_hours_alone: float = param(
        3.0, "hours per week", "assumption", "Companionship needed by an elder living alone.", ge=0.0, le=40.0
    )
    companionship_hours_not_alone: float = param(
        0.5, "hours per week", "assumption", "Companionship needed by an elder living with others.", ge=0.0, le=40.0
    )
    spouse_care_hours: float = param(
        20.0, "hours per week", "assumption", "Care a co-resident spouse at care level 0-1 can give.", ge=0.0, le=100.0
    )
    coresident_adult_care_hours: float = param(
        10.0, "hours per week", "assumption", "Care each co-resident working-age adult can give.", ge=0.0, le=100.0
    )
    nearby_child_care_hours: float = param(
        3.0,
        "hours per week",
        "assumption",
        "Care each adult child living in another household of the village can give.",
        ge=0.0,
        le=100.0,
    )
    sleep_self_care_hours: float = param(
        70.0,
        "hours per week",
        "assumption",
        "A resident's week not free for work or care (sleep, meals, hygiene: 10 hours a day); the rest of the "
        "168 hours is shared by paid work, family care (drawn first) and volunteering.",
        ge=0.0,
        le=168.0,
    )
    paid_work_hours_working_age: float = param(
        40.0,
        "hours per week",
        "assumption",
        "Paid work and farming of a resident working-age adult (18-59), taken from their week before family care "
        "and volunteering.",
        ge=0.0,
        le=168.0,
    )
    carer_share_at_level_1: float = param(
        0.5,
        "share of spouse_care_hours",
        "assumption",
        "A carer's own disability reduces what they give (as the UK social-care ABMs do): an elder at care level 1 "
        "gives this share of spouse_care_hours, at level 0 all of it, at level 2 or more none.",
        ge=0.0,
        le=1.0,
    )


class BehaviourConfig(Section):
    """Coefficients of asking for help, volunteering, trust and awareness: the uncertain part."""

    # asking for help (logit scale)
    ask_intercept: float = param(
        -2.56,
        "logit",
        "assumption; rural_elders_participating_in_mutual_aid",
        "Baseline log-odds of asking for help with unmet need.",
        ge=-20,
        le=20,
    )
    ask_awareness: float = param(
        2.5, "logit per unit awareness", "assumption", "Effect of awareness of mutual aid on asking.", ge=-20, le=20
    )
    ask_trust: float = param(
        2.0, "logit per unit trust", "assumption", "Effect of trust in the committee on asking.", ge=-20, le=20
    )
    ask_need: float = param(
        0.6, "logit per log(1 + hours)", "assumption", "Effect of the size of the unmet need on asking.", ge=-20, le=20
    )
    # volunteering (logit scale)
    volunteer_intercept: float = param(
        -2.65, "logit", "rural_elders_participating_in_mutual_aid", "Baseline log-odds of volunteering in a week.", ge=-20, le=20
    )
    volunteer_altruism: float = param(3.0, "logit per unit altruism", "assumption", "Effect of altruism.", ge=-20, le=20)
    volunteer_incentive: float = param(
        0.05, "logit per RMB per hour", "assumption", "Effect of cash incentive per hour served.", ge=-5, le=5
    )
    volunteer_credit: float = param(
        1.2,
        "logit per credit-hour valued x trust",
        "assumption",
        "Effect of time-bank credit, weighted by trust it will be honoured.",
        ge=-20,
        le=20,
    )
    volunteer_norm: float = param(
        2.0,
        "logit per share of neighbours volunteering",
        "assumption",
        "Effect of neighbours volunteering (norm, 德治).",
        ge=-20,
        le=20,
    )
    volunteer_party: float = param(
        1.5,
        "logit for a mobilised party member",
        "assumption",
        "Effect of party mobilisation on party members (党建引领).",
        ge=-20,
        le=20,
    )
    volunteer_blame_fear: float = param(
        0.5, "logit", "assumption", "Fear of blame for accidents, removed by liability insurance.", ge=-20, le=20
    )
    volunteer_publicity: float = param(
        0.5,
        "logit at full publicity",
        "assumption",
        "Potential volunteers' awareness of the mutual-aid programme raised by publicity (宣传动员).",
        ge=-20,
        le=20,
    )
    volunteer_party_norm: float = param(
        0.3,
        "logit at full party mobilisation",
        "assumption",
        "Social norm of volunteering raised for everyone by the party's ideological work (思想引领).",
        ge=-20,
        le=20,
    )
    accident_rate_per_hour: float = param(
        0.0,
        "accidents per service hour",
        "assumption",
        "Chance of an accident (a fall, an injury) per hour of volunteer service; 0 switches accidents off.",
        ge=0.0,
        le=0.1,
    )
    volunteer_fear: float = param(
        2.0, "logit per unit fear", "assumption", "Effect of fear of blame after disputes nearby.", ge=-20, le=20
    )
    fear_spread: float = param(
        0.5,
        "0..1 per dispute",
        "assumption",
        "How far an uninsured accident's dispute moves the fear of the volunteer's neighbours toward 1.",
        ge=0.0,
        le=1.0,
    )
    fear_decay: float = param(0.02, "per week", "assumption", "Share of fear forgotten each week.", ge=0.0, le=1.0)
    volunteer_opportunity_cost: float = param(
        2.0, "logit per unit opportunity cost", "assumption", "Effect of the value of time in paid work.", ge=-20, le=20
    )
    volunteer_burnout: float = param(3.0, "logit per unit burnout", "assumption", "Effect of accumulated burnout.", ge=-20, le=20)
    burnout_per_hour: float = param(0.015, "per hour served", "assumption", "Burnout added per hour served.", ge=0.0, le=1.0)
    burnout_recovery: float = param(0.05, "per week", "assumption", "Share of burnout that fades each week.", ge=0.0, le=1.0)
    availability_hours_working_age: float = param(
        3.0, "hours per week", "assumption", "Mean hours a working-age volunteer offers in an active week.", ge=0.0, le=60.0
    )
    availability_hours_young_old: float = param(
        5.0, "hours per week", "assumption", "Mean hours a young-old volunteer offers in an active week.", ge=0.0, le=60.0
    )
    young_old_max_age: int = param(74, "years", "assumption", "Oldest age at which a healthy elder volunteers.", ge=60, le=90)
    altruism_alpha: float = param(2.0, "Beta shape", "assumption", "Altruism ~ Beta(alpha, beta).", gt=0.0, le=100.0, fixed=True)
    altruism_beta: float = param(4.0, "Beta shape", "assumption", "Altruism ~ Beta(alpha, beta).", gt=0.0, le=100.0, fixed=True)
    opportunity_cost_working_age: float = param(
        0.6,
        "0..1",
        "assumption",
        "Mean opportunity cost of a working-age resident.",
        ge=0.0,
        le=1.0,
        fixed=True,
    )
    opportunity_cost_young_old: float = param(
        0.15,
        "0..1",
        "assumption",
        "Mean opportunity cost of a young-old elder.",
        ge=0.0,
        le=1.0,
        fixed=True,
    )
    # trust, awareness, satisfaction
    trust_experience_rate: float = param(
        0.06,
        "per request",
        "assumption; rural_elders_participating_in_mutual_aid",
        "How far one request's outcome moves trust toward it.",
        ge=0.0,
        le=1.0,
    )
    trust_neighbour_rate: float = param(
        0.02, "per week", "assumption", "How far trust moves toward neighbours' mean each week.", ge=0.0, le=1.0
    )
    service_quality: float = param(
        0.85, "0..1", "assumption", "Quality of help from volunteers as experienced by the elder.", ge=0.0, le=1.0
    )
    awareness_publicity_rate: float = param(
        0.03, "per week at full publicity", "assumption", "Awareness gain from publicity.", ge=0.0, le=1.0
    )
    awareness_word_of_mouth: float = param(
        0.05,
        "per week per share of neighbours helped",
        "assumption",
        "Awareness gain from neighbours who were helped.",
        ge=0.0,
        le=1.0,
    )
    awareness_decay: float = param(0.002, "per week", "assumption", "Share of awareness forgotten each week.", ge=0.0, le=1.0)
    awareness_help_rate: float = param(
        0.06,
        "per week helped",
        "assumption",
        "How far being helped moves an elder's awareness toward 1 (the same default as trust_experience_rate).",
        ge=0.0,
        le=1.0,
    )
    satisfaction_rate: float = param(
        0.1, "per week", "assumption", "How fast satisfaction follows the share of need met.", ge=0.0, le=1.0
    )
    neighbour_radius_km: float = param(
        0.3,
        "km",
        "assumption",
        "Households within this distance are neighbours.",
        gt=0.0,
        le=10.0,
        fixed=True,
    )
    max_neighbours: int = param(
        10,
        "households",
        "assumption",
        "At most this many nearest households are neighbours.",
        ge=1,
        le=100,
        fixed=True,
    )


class CommitteeConfig(Section):
    """The village committee (村两委) as matchmaker."""

    staff_hours_per_week: float = param(
        24.0, "hours per week", "assumption", "Committee staff time per village before administrative burden.", ge=0.0, le=400.0
    )
    admin_burden: float = param(
        0.6,
        "share of staff time",
        "assumption",
        "Share of staff time taken by tasks from above (上面千条线，下面一根针).",
        ge=0.0,
        le=1.0,
        label="Administrative burden",
    )
    hours_per_request: float = param(0.5, "hours", "assumption", "Staff time to handle one request manually.", gt=0.0, le=10.0)
    walking_distance_km: float = param(1.0, "km", "assumption", "Farthest a volunteer walks to help.", gt=0.0, le=20.0)
    local_knowledge: float = param(
        0.7, "probability", "assumption", "A manual match attempt looks in the elder's own hamlet first.", ge=0.0, le=1.0
    )
    attempts_per_request: int = param(4, "attempts", "assumption", "Volunteers the committee tries per request.", ge=1, le=50)


class BudgetSplitConfig(Section):
    """Shares of the budget by use (normalised to sum to 1) under a fixed allocation,
    and the starting point of an adaptive one."""

    facility_building: float = param(0.40, "share of budget", "assumption", "Capital for new facilities.", ge=0.0, le=1.0)
    facility_running: float = param(
        0.20, "share of budget", "assumption", "Running funds and paid managers of facilities.", ge=0.0, le=1.0
    )
    subsidies: float = param(
        0.20,
        "share of budget",
        "assumption",
        "Service subsidies: volunteer incentives, alarms, insurance, time-bank guarantee.",
        ge=0.0,
        le=1.0,
    )
    ngo: float = param(
        0.05, "share of budget", "assumption", "Purchase of NGO services (added to ngo_purchase_budget).", ge=0.0, le=1.0
    )
    publicity: float = param(0.10, "share of budget", "assumption", "Publicity and mobilisation campaigns.", ge=0.0, le=1.0)
    platform: float = param(0.05, "share of budget", "assumption", "Running the information platform.", ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> BudgetSplitConfig:
        if sum(self.shares()) <= 0:
            raise ValueError("budget shares must not all be zero")
        return self

    def shares(self) -> list[float]:
        """Shares in the order of ``BUDGET_USES``."""
        return [getattr(self, name) for name in BUDGET_USES]


BUDGET_USES = ["facility_building", "facility_running", "subsidies", "ngo", "publicity", "platform"]
"""Budget categories, in the order of the ``spend_*`` outputs."""


class GovernmentConfig(Section):
    """How the township/county government decides and what things cost."""

    adaptation_rate: float = param(
        0.5, "per year", "assumption", "How far an adaptive split moves toward the KPI's target each year.", ge=0.0, le=1.0
    )
    count_building_share: float = param(
        0.6,
        "share of budget",
        "assumption",
        "Building share a government judged on facilities counted steers toward.",
        ge=0.0,
        le=1.0,
    )
    quality_building_share: float = param(
        0.25,
        "share of budget",
        "assumption",
        "Building share under the quality regime while there is something left to build.",
        ge=0.0,
        le=1.0,
    )
    count_upgrades: bool = param(
        True,
        "switch",
        "assumption",
        "Under the count regime, building money left once every facility slot is built goes into "
        "upgrading existing buildings (spent, no new service; reported as building_upgrades); "
        "off: it stays unspent.",
    )
    feedback_delay_max_years: int = param(
        2,
        "years",
        "assumption",
        "Delay of the villages' yearly reports to the government without any feedback mechanism "
        "(times 1 - feedback_mechanism, rounded).",
        ge=0,
        le=10,
    )
    feedback_loss_max: float = param(
        0.5,
        "probability per village report",
        "assumption",
        "Chance that a village's yearly report never reaches the government without any feedback "
        "mechanism (times 1 - feedback_mechanism).",
        ge=0.0,
        le=1.0,
    )
    feedback_noise_max: float = param(
        0.3,
        "relative sd",
        "assumption",
        "Relative error of the reported met need, satisfaction and facility use without any feedback "
        "mechanism (times 1 - feedback_mechanism); facility counts are reported exactly.",
        ge=0.0,
        le=2.0,
    )
    paid_care_price_per_hour: float = param(
        25.0,
        "RMB per hour",
        "service_subsidy_per_hour_rmb",
        "Price of an hour of paid care (time-bank guarantee).",
        ge=0.0,
        le=1000.0,
    )
    publicity_cost_per_village_year: float = param(
        8000.0, "RMB per village per year at full effort", "assumption", "Cost of publicity.", ge=0.0, le=1e7
    )
    platform_cost_per_village_year: float = param(
        4000.0,
        "RMB per village per year",
        "assumption",
        "Cost of running the platform incl. information collectors.",
        ge=0.0,
        le=1e7,
    )
    digital_training_cost_per_trainee: float = param(
        200.0,
        "RMB per trainee",
        "assumption",
        "Cost of a digital-skills course (数字技能培训) for one elder, paid from the platform's budget use.",
        ge=0.0,
        le=1e5,
    )
    digital_training_success: float = param(
        0.6,
        "share of trainees",
        "assumption",
        "Trainees who can use the platform on their own after the course.",
        ge=0.0,
        le=1.0,
    )
    alarm_cost_per_year: float = param(
        300.0, "RMB per alarm per year", "assumption", "Cost of a wearable alarm and its service.", ge=0.0, le=1e5
    )
    insurance_premium_per_volunteer_year: float = param(
        60.0, "RMB per enrolled volunteer per year", "assumption", "Liability insurance premium.", ge=0.0, le=1e5
    )
    insurance_claim_cost: float = param(
        2000.0, "RMB per claim", "assumption", "What the insurance pays out per accident (medical costs).", ge=0.0, le=1e6
    )


class FacilitiesConfig(Section):
    """Happiness homes (幸福院), mutual-aid points (互助点) and canteens (老年食堂).

    Lists are per kind in the order happiness home, mutual-aid point, canteen.
    """

    initial_coverage: list[Share] = param(
        [0.7129, 0.0, 0.0],
        "share of villages per kind",
        "happiness_homes_village_coverage_shaanxi_2020",
        "Villages that already have a facility of each kind at the start (built, not necessarily running).",
        min_length=3,
        max_length=3,
        fixed=True,
    )
    build_cost: list[Rmb] = param(
        [80000.0, 20000.0, 50000.0], "RMB per facility", "assumption", "Capital cost of one facility.", min_length=3, max_length=3
    )
    running_cost_per_year: list[Rmb] = param(
        [10000.0, 2000.0, 20000.0],
        "RMB per year",
        "assumption",
        "Running cost (utilities, food, upkeep) without a paid manager.",
        min_length=3,
        max_length=3,
    )
    capacity_hours: list[Annotated[float, Field(ge=0.0, le=10000.0)]] = param(
        [80.0, 25.0, 60.0],
        "hours of service per week",
        "assumption",
        "Service an operating facility gives.",
        min_length=3,
        max_length=3,
    )
    max_per_village: list[Annotated[int, Field(ge=0, le=50)]] = param(
        [1, 4, 1],
        "facilities per village",
        "assumption",
        "Most facilities of each kind in one village.",
        min_length=3,
        max_length=3,
    )
    manager_wage_per_year: float = param(9600.0, "RMB per year", "assumption", "Wage of a paid facility manager.", ge=0.0, le=1e6)
    volunteer_manager_rate: float = param(
        0.5, "per year", "assumption", "Rate at which an unmanaged facility finds a volunteer manager.", ge=0.0, le=52.0
    )
    party_manager_rate: float = param(
        3.0,
        "per year at full mobilisation",
        "assumption",
        "Rate at which a party member takes on an unmanaged facility.",
        ge=0.0,
        le=52.0,
    )
    quality_recruitment_boost: float = param(
        2.0,
        "multiplier",
        "assumption",
        "Committees judged on service quality recruit managers this much faster.",
        ge=1.0,
        le=20.0,
    )
    manager_quit_rate: float = param(0.4, "per year", "assumption", "Rate at which unpaid managers give up.", ge=0.0, le=52.0)
    reach_km: float = param(1.0, "km", "assumption", "Elders within this distance use a facility.", gt=0.0, le=50.0)
    idle_discouragement: float = param(
        0.005,
        "share of trust per week",
        "assumption",
        "Trust lost each week by elders within reach_km of a built but idle facility "
        "(消磨了老年人参与互助养老的积极性; 0.005: about a tenth of trust lost in a year "
        "beside an idle building); 0 = off.",
        ge=0.0,
        le=1.0,
    )


class NGOConfig(Section):
    """Social organisations (社会组织) that sell professional care to the government."""

    count: int = param(2, "NGOs", "assumption", "NGOs active in the county (at the township seat).", ge=0, le=100)
    hours_per_week: float = param(
        150.0, "hours per week per NGO", "assumption", "Professional hours an NGO can deliver.", ge=0.0, le=1e5
    )
    cost_per_hour: float = param(25.0, "RMB per hour", "assumption", "An NGO's own cost of an hour of care.", ge=0.0, le=1000.0)
    travel_cost_per_km: float = param(
        1.5, "RMB per km", "assumption", "Travel cost per km of a visit (one way).", ge=0.0, le=100.0
    )
    hours_per_visit: float = param(2.0, "hours", "assumption", "Hours of care delivered per visit.", gt=0.0, le=24.0)
    quality: float = param(0.9, "0..1", "assumption", "Quality of NGO care as experienced by the elder.", ge=0.0, le=1.0)


class TimeBankConfig(Section):
    """Time bank (时间银行): credits for hours served, redeemed when care is needed."""

    enabled: bool = param(False, "switch", "assumption", "Run a time bank.", label="Time bank")
    credit_per_hour: float = param(
        1.0, "credit-hours per hour served", "time_bank_exchange_rate", "Credit earned per hour served.", ge=0.0, le=10.0
    )
    redemption_guarantee: float = param(
        0.0, "0..1", "assumption", "Backing when no volunteer is found for a redemption.", ge=0.0, le=1.0
    )
    account_cap_hours: float = param(
        1500.0, "hours", "time_bank_account_cap_nanjing", "Largest balance an account can hold.", ge=0.0, le=100000.0
    )
    honour_rate: float = param(
        1.0,
        "probability",
        "assumption",
        "The bank's operator processes a redemption request at all (institutional reliability).",
        ge=0.0,
        le=1.0,
    )
    initial_trust: float = param(
        0.5,
        "0..1",
        "assumption",
        "Villagers' initial trust that credit will be honoured.",
        ge=0.0,
        le=1.0,
        fixed=True,
    )
    trust_rate: float = param(
        0.3,
        "per redemption",
        "assumption",
        "How far one redemption outcome moves the family's trust in the bank.",
        ge=0.0,
        le=1.0,
    )
    word_of_mouth: float = param(
        0.05,
        "per week",
        "assumption",
        "How fast trust in the bank follows the village's recent redemption success.",
        ge=0.0,
        le=1.0,
    )


class PlatformConfig(Section):
    """Information platform (互助养老网络信息平台) for village-wide matching."""

    enabled: bool = param(False, "switch", "assumption", "Deploy the matching platform.", label="Information platform")
    offline_channel_coverage: float = param(
        0.0,
        "share of elders without digital access",
        "assumption",
        "Elders without digital access reached by an information collector or offline desk.",
        ge=0.0,
        le=1.0,
        label="Offline channel coverage",
    )
    rounds: int = param(
        2, "rounds", "assumption", "Assignment rounds per week (a volunteer can take one request per round).", ge=1, le=10
    )


class PolicyConfig(Section):
    """The levers a planner pulls (off in the baseline)."""

    budget: float = param(
        120000.0,
        "RMB per year",
        "assumption",
        "Budget of the mutual-aid programme for all villages of the scenario.",
        ge=0.0,
        le=1e10,
        label="Budget",
    )
    allocation: Literal["fixed", "adaptive"] = param(
        "adaptive",
        "choice",
        "assumption",
        "Fixed budget split, or adaptive toward the evaluation KPI (today's practice).",
        label="Budget allocation",
    )
    evaluation_regime: Literal["count", "quality"] = param(
        "count",
        "choice",
        "assumption",
        "What the government is evaluated on: facilities counted, or service quality.",
        label="Evaluation regime",
    )
    incentive_per_hour: float = param(
        0.0,
        "RMB per hour",
        "service_subsidy_per_hour_rmb",
        "Cash paid per volunteer hour.",
        ge=0.0,
        le=200.0,
        label="Incentive per hour",
    )
    publicity: float = param(
        0.0, "0..1 effort", "assumption", "Publicity and mobilisation effort (宣传动员).", ge=0.0, le=1.0, label="Publicity"
    )
    party_mobilisation: float = param(
        0.0,
        "0..1",
        "assumption",
        "Party-building mobilisation of members (党建引领).",
        ge=0.0,
        le=1.0,
        label="Party mobilisation",
    )
    liability_insurance: bool = param(
        False, "switch", "assumption", "Insurance that lifts volunteers' fear of blame.", label="Liability insurance"
    )
    transparency: float = param(
        0.0,
        "0..1",
        "assumption",
        "Openness of village affairs (村务公开): speeds trust recovery.",
        ge=0.0,
        le=1.0,
        label="Transparency",
    )
    ngo_purchase_budget: float = param(
        0.0,
        "RMB per year",
        "assumption",
        "Earmarked budget for purchasing NGO services.",
        ge=0.0,
        le=1e10,
        label="NGO purchase budget",
    )
    ngo_price_per_hour: float = param(
        40.0,
        "RMB per hour",
        "assumption",
        "Contract price the government pays NGOs per hour of care.",
        ge=0.0,
        le=1000.0,
        label="NGO contract price",
    )
    wearable_alarms: float = param(
        0.0,
        "share of at-risk elders",
        "assumption",
        "At-risk elders (alone or care level 2+) equipped with an alarm.",
        ge=0.0,
        le=1.0,
        label="Wearable alarms",
    )
    feedback_mechanism: float = param(
        0.0,
        "0..1",
        "assumption",
        "Multi-actor feedback (互通机制): cuts delay and loss of feedback.",
        ge=0.0,
        le=1.0,
        label="Feedback mechanism",
    )
    unspent_funds: Literal["lapse", "carry_over"] = param(
        "lapse",
        "choice",
        "assumption",
        "Money left at a budget year's end (pools and facilities' balances): it lapses "
        "(today's practice) or is carried over into next year's budget.",
        label="Unspent funds",
    )
    inactive_uses: Literal["resplit", "hold"] = param(
        "resplit",
        "choice",
        "assumption",
        "Money of uses with nothing to pay for under the current levers: re-split over the other "
        "uses in proportion to their shares (today's practice), or held unspent by its use.",
        label="Money of unused uses",
    )
    participatory_planning: bool = param(
        False,
        "switch",
        "assumption",
        "Participatory planning: facilities are built where elders' stated needs are (kind and "
        "site, most need per RMB first) instead of by the top-down rule of the evaluation regime.",
        label="Participatory planning",
    )
    digital_training: float = param(
        0.0,
        "trainees per 1000 elders per year",
        "assumption",
        "Digital-skills training (数字技能培训) for elders without a smartphone, those without a "
        "family proxy first; paid per trainee from the platform's budget use.",
        ge=0.0,
        le=1000.0,
        label="Digital-skills training",
    )
    split: BudgetSplitConfig = Field(default_factory=BudgetSplitConfig)
    time_bank: TimeBankConfig = Field(default_factory=TimeBankConfig)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)


class Intervention(Section):
    """A lever change at a given step: ``set`` maps dotted parameter paths to new values."""

    step: int = param(0, "week", "assumption", "Step at which the change takes effect.", ge=0, le=5200)
    set: dict[str, Any] = Field(default_factory=dict, description="Dotted parameter path -> new value.")
    note: str = Field("", description="Why this change (free text).")


class Scenario(Section):
    """A whole scenario: what a planner edits in a TOML file."""

    name: str = Field("scenario", description="Short name of the scenario.")
    description: str = Field("", description="The question the scenario answers.")
    run: RunConfig = Field(default_factory=RunConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    hollowing_out: HollowingOutConfig = Field(default_factory=HollowingOutConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    births: BirthsConfig = Field(default_factory=BirthsConfig)
    care: CareConfig = Field(default_factory=CareConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    committee: CommitteeConfig = Field(default_factory=CommitteeConfig)
    government: GovernmentConfig = Field(default_factory=GovernmentConfig)
    facilities: FacilitiesConfig = Field(default_factory=FacilitiesConfig)
    ngo: NGOConfig = Field(default_factory=NGOConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    intervention: list[Intervention] = Field(default_factory=list, description="Lever changes at given steps.")

    # ------------------------------------------------------------------ access
    def get(self, path: str) -> Any:
        """Value at a dotted path, e.g. ``scenario.get("policy.platform.enabled")``."""
        node: Any = self
        for part in path.split("."):
            node = getattr(node, part)
        return node

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A validated copy with dotted-path values replaced.

        Raises:
            ScenarioError: naming the path when it is unknown or the value is invalid.
        """
        return apply_overrides(self, overrides)

    @classmethod
    def parameter_table(cls) -> list[dict[str, Any]]:
        """Every leaf parameter: path, type, default, unit, source, bounds, description."""
        rows: list[dict[str, Any]] = []
        _collect(cls, "", rows)
        return rows


def _collect(model: type[BaseModel], prefix: str, rows: list[dict[str, Any]], fixed: bool = False) -> None:
    fixed = fixed or bool(getattr(model, "FIXED", False))
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            _collect(ann, path + ".", rows, fixed)
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "unit" not in extra:
            continue
        bounds: dict[str, Any] = {}
        for meta in field.metadata:
            for key in ("ge", "le", "gt", "lt"):
                if getattr(meta, key, None) is not None:
                    bounds[key] = getattr(meta, key)
        default = field.get_default(call_default_factory=True)
        rows.append(
            {
                "path": path,
                "type": getattr(ann, "__name__", str(ann)),
                "default": default,
                "unit": extra.get("unit", ""),
                "source": extra.get("source", ""),
                "label": extra.get("label", name.replace("_", " ").capitalize()),
                "description": field.description or "",
                "fixed": fixed or bool(extra.get("fixed", False)),
                **bounds,
            }
        )


@functools.cache
def _table() -> tuple[dict[str, Any], ...]:
    return tuple(Scenario.parameter_table())


def leaf_paths() -> set[str]:
    """All dotted parameter paths a scenario file, ``--set`` or the Python API may set."""
    return {row["path"] for row in _table()}


def fixed_paths() -> set[str]:
    """Parameters used only when the villages are built: no intervention can change them."""
    return {row["path"] for row in _table() if row["fixed"]}


def check_lever(path: str, *, file: str | None = None, line: int | None = None, field: str | None = None) -> None:
    """Refuse a change during a run to ``path`` when it is unknown or fixed when the villages are built.

    Raises:
        ScenarioError: naming the path, with a suggestion for a misspelt one.
    """
    known = leaf_paths()
    if path not in known:
        raise ScenarioError(f"unknown lever{_suggest(path, known)}", file=file, line=line, field=field or path)
    if path in fixed_paths():
        raise ScenarioError(
            f"{path} is fixed when the villages are built, so it cannot change during a run; "
            f"set it in the scenario's [{path.rsplit('.', 1)[0]}] table instead",
            file=file,
            line=line,
            field=field or path,
        )


def lever_paths() -> set[str]:
    """Parameters an intervention or a running model may change (all but the fixed ones)."""
    return {row["path"] for row in _table() if not row["fixed"]}


# --------------------------------------------------------------------- overrides
def apply_overrides(
    scenario: Scenario,
    overrides: dict[str, Any],
    *,
    file: str | None = None,
    line: int | None = None,
    strict: bool = False,
) -> Scenario:
    """Return a validated copy of ``scenario`` with dotted-path values replaced.

    The interventions are carried over, not validated again, so the cost does not grow
    with their number (a model applies one override per intervention while it runs).

    Args:
        scenario: the scenario to change.
        overrides: ``{dotted path: value}``.
        file, line: named in an error (``"command line"`` for ``--seed`` and the like).
        strict: no conversions (a scenario file's rule): ``"0.1"`` is not a number and
            ``1`` is not ``true``. Python callers and samplers may pass ``3.0`` for an
            integer parameter when ``strict`` is False.

    Raises:
        ScenarioError: when a path is not a parameter or a value is invalid.
    """
    data = scenario.model_dump(exclude={"intervention"})
    known = leaf_paths()
    for key, value in overrides.items():
        if key not in known:
            raise ScenarioError(f"unknown lever or parameter{_suggest(key, known)}", file=file, line=line, field=key)
        _set_path(data, key.split("."), value)
    try:
        changed = Scenario.model_validate(data, strict=strict)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(_describe(err), file=file, line=line, field=path) from None
    if scenario.intervention:
        changed = changed.model_copy(update={"intervention": scenario.intervention})
    return changed


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        return f"unknown key{_suggest(str(loc[-1]), _siblings(loc))}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    given = err.get("input")
    if kind != "missing" and not isinstance(given, dict | list):
        msg += f" (got {given!r})"
    unit = _unit(loc)
    if unit:
        msg += f"; unit: {unit}"
    return msg


def _siblings(loc: tuple) -> list[str]:
    """Allowed keys of the section holding ``loc``."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fld = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if fld is None:
            return []
        ann = fld.annotation
        args = getattr(ann, "__args__", ())
        if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            ann = args[0]
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _unit(loc: tuple) -> str | None:
    path = ".".join(str(p) for p in loc if not isinstance(p, int))
    for row in _table():
        if row["path"] == path:
            bounds = [f"{k} {row[k]}" for k in ("ge", "gt", "le", "lt") if k in row]
            return row["unit"] + (f", bounds {', '.join(bounds)}" if bounds else "")
    return None


def _suggest(name: str, options: list[str] | set[str]) -> str:
    options = sorted(options)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f" '{name}'; did you mean '{close[0]}'?"
    if len(options) <= 12 and options:
        return f" '{name}'; expected one of: {', '.join(options)}"
    return f" '{name}'"
