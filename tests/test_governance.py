"""Levers act through mechanisms: the patterns of MODEL.md §6 and the conservation laws.

Pattern tests compare two arms on common random numbers (same seed, same replicate
numbers) and use paired differences over replicates. Unless a test says otherwise, an
effect "holds" when the paired 95% t-interval of the difference excludes zero in the
expected direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import SCENARIOS
from villagesim.config.loading import load_scenario
from villagesim.config.schema import Intervention, Scenario
from villagesim.model import VillageModel
from villagesim.runs.runner import run_scenario

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # steps a model


def scenario(name: str = "baseline", **overrides) -> Scenario:
    s = load_scenario(SCENARIOS / f"{name}.toml").scenario
    return s.with_overrides(overrides) if overrides else s


def series(s: Scenario, replicates: int, steps: int) -> pd.DataFrame:
    return run_scenario(s, replicates=replicates, steps=steps, record_villages=False).timeseries


def per_replicate(ts: pd.DataFrame, column: str, from_step: int = 0) -> np.ndarray:
    return ts[ts.step > from_step].groupby("replicate")[column].mean().to_numpy()


def ci(diff: np.ndarray) -> tuple[float, float]:
    """Paired 95% t-interval of the mean difference."""
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return diff.mean() - half, diff.mean() + half


def assert_positive(diff: np.ndarray, what: str) -> None:
    low, high = ci(diff)
    assert low > 0, f"{what}: 95% CI of the paired difference ({low:.4g}, {high:.4g}) does not exclude 0"


SMALL = {"population.residents_per_village": 600}


@pytest.mark.slow
def test_count_kpi_builds_more_idles_more_serves_less_than_quality():
    """Eight villages sharing one budget, 5 years, 8 replicates: under the count KPI more
    facilities are built and more stand idle; under the quality KPI facilities, NGOs and
    subsidies deliver more service hours."""
    common = {
        "population.villages": 8,
        "population.residents_per_village": 400,
        "policy.budget": 150000.0,
        "policy.allocation": "adaptive",
    }
    count = series(scenario(**common, **{"policy.evaluation_regime": "count"}), 8, 260)
    quality = series(scenario(**common, **{"policy.evaluation_regime": "quality"}), 8, 260)
    assert_positive(per_replicate(count, "facilities_built", 208) - per_replicate(quality, "facilities_built", 208), "built")
    assert_positive(per_replicate(count, "facilities_idle", 52) - per_replicate(quality, "facilities_idle", 52), "idle")
    for ts in (count, quality):
        ts["service_hours"] = ts["met_hours_facility"] + ts["met_hours_ngo"] + ts["met_hours_time_bank"]
    assert_positive(per_replicate(quality, "service_hours", 52) - per_replicate(count, "service_hours", 52), "service")


FEEDBACK_COMMON = {
    "population.villages": 8,
    "population.residents_per_village": 400,
    "policy.budget": 60000.0,
    "policy.allocation": "adaptive",
}


@pytest.mark.parametrize("regime", ["count", "quality"])
def test_feedback_changes_the_run_in_both_regimes(regime):
    """Reports reach the government late, lost or noisy unless the feedback mechanism
    works, in both regimes: the run differs between feedback_mechanism 0 and 1."""
    runs = [
        series(scenario(**FEEDBACK_COMMON, **{"policy.evaluation_regime": regime, "policy.feedback_mechanism": fm}), 1, 156)
        for fm in (0.0, 1.0)
    ]
    cols = ["met_hours_facility", "facilities_idle", "spend_facility_running"]
    assert not np.allclose(runs[0][cols].to_numpy(), runs[1][cols].to_numpy())


@pytest.mark.slow
def test_feedback_raises_the_quality_regimes_advantage():
    """Eight villages sharing a tight budget (60,000 RMB/yr), 5 years, 8 paired replicates:
    the quality regime's advantage over the count regime in met hours (and its lead in
    unmet need share) is larger with a working feedback channel (feedback_mechanism 1) than
    without (0). Measured: difference-in-differences of met hours 14.5 h/week, 95% CI
    (6.9, 22.2); of the unmet share -0.0055 (-0.0085, -0.0025). With reports ignored (never
    delivered) both are exactly 0 and the test fails."""
    arms = {}
    for regime in ("count", "quality"):
        for fm in (0.0, 1.0):
            s = scenario(**FEEDBACK_COMMON, **{"policy.evaluation_regime": regime, "policy.feedback_mechanism": fm})
            ts = series(s, 8, 260)
            ts["met"] = ts[[c for c in ts if c.startswith("met_hours_")]].sum(axis=1)
            ts["unmet_share"] = ts["unmet_hours"] / ts["need_hours"]
            arms[regime, fm] = ts

    def advantage(column: str, fm: float) -> np.ndarray:
        return per_replicate(arms["quality", fm], column, 52) - per_replicate(arms["count", fm], column, 52)

    assert_positive(advantage("met", 1.0) - advantage("met", 0.0), "feedback raises quality's lead in met hours")
    assert_positive(advantage("unmet_share", 0.0) - advantage("unmet_share", 1.0), "feedback lowers quality's unmet share")


@pytest.mark.slow
def test_time_bank_raises_volunteering_only_while_redemption_is_trusted():
    """Years 3-5, 6 replicates: a reliable time bank raises active volunteers by more than
    20% of the baseline; one whose redemptions mostly fail raises them by less than a third
    of the reliable bank's effect, with a redemption success rate below 40%."""
    base = series(scenario(**SMALL), 6, 260)
    good = series(scenario("time_bank", **SMALL), 6, 260)
    bad = series(scenario("time_bank_untrusted", **SMALL), 6, 260)
    v0, v1, v2 = (per_replicate(ts, "active_volunteers", 104) for ts in (base, good, bad))
    assert_positive(v1 - v0, "trusted time bank")
    assert (v1 - v0).mean() > 0.2 * v0.mean()
    assert (v2 - v0).mean() < (v1 - v0).mean() / 3
    assert_positive(v1 - v2, "trusted vs failing")
    rate_good = good["redemptions"].sum() - good["redemptions_failed"].sum()
    assert rate_good / good["redemptions"].sum() > 0.8
    assert bad["redemptions_failed"].sum() / bad["redemptions"].sum() > 0.6


@pytest.mark.slow
def test_platform_raises_matches_but_not_for_the_digitally_excluded_without_offline_channel():
    """Years 1-3, 6 replicates: the platform raises matched requests; for elders without
    digital access (own or by a family proxy) the gain in their match rate is less than
    half of what an offline channel covering all of them brings."""
    steps = 156
    base = series(scenario(**SMALL), 6, steps)
    on = {"policy.platform.enabled": True}
    online = series(scenario(**SMALL, **on, **{"policy.platform.offline_channel_coverage": 0.0}), 6, steps)
    offline = series(scenario(**SMALL, **on, **{"policy.platform.offline_channel_coverage": 1.0}), 6, steps)
    assert_positive(per_replicate(online, "matched_requests") - per_replicate(base, "matched_requests"), "platform")

    def rate(ts):
        g = ts.groupby("replicate")
        return (g["matched_requests_no_digital"].sum() / g["requests_no_digital"].sum()).to_numpy()

    gain_online = rate(online) - rate(base)
    gain_offline = rate(offline) - rate(base)
    assert_positive(gain_offline, "offline channel")
    assert gain_online.mean() < 0.5 * gain_offline.mean()


DIGITAL_TRAINING = 300.0  # trainee places per 1000 elders per year; set to 0 to see the test fail


@pytest.mark.slow
def test_digital_training_raises_platform_reach_of_elders_without_a_smartphone():
    """Years 1-2, 6 replicates, platform on (no offline channel), enough platform money: digital
    training raises the share of elders with digital access and the requests that reach the
    platform, and fewer requests come from elders without digital access."""
    steps = 104
    common = {**SMALL, "policy.platform.enabled": True, "policy.split.platform": 0.3}
    base = series(scenario(**common), 6, steps)
    trained = series(scenario(**common, **{"policy.digital_training": DIGITAL_TRAINING}), 6, steps)
    assert trained["digital_trained"].sum() > 0
    share = per_replicate(trained, "digital_access_share", 52) - per_replicate(base, "digital_access_share", 52)
    assert_positive(share, "digital access")
    reach = per_replicate(trained, "platform_requests") - per_replicate(base, "platform_requests")
    assert_positive(reach, "platform reach")
    excluded = per_replicate(base, "requests_no_digital") - per_replicate(trained, "requests_no_digital")
    assert_positive(excluded, "requests without digital access")


IDLE_DISCOURAGEMENT = 0.01  # share of trust per week; set to 0 to see the test fail


@pytest.mark.slow
def test_idle_facilities_lower_trust_more_than_operating_ones():
    """Years 1-2, 6 replicates: with idle facilities discouraging (today's staffing: most
    built facilities idle) elders' mean trust falls against the same run without the
    mechanism, and by more than where facilities mostly operate (volunteer managers found at
    once, running money): a paired difference in differences."""
    operating = {
        "facilities.volunteer_manager_rate": 50.0,
        "facilities.manager_quit_rate": 0.0,
        "policy.split.facility_running": 0.5,
    }
    on = {"facilities.idle_discouragement": IDLE_DISCOURAGEMENT}
    drops = []
    for context in ({}, operating):
        off_ts = series(scenario(**SMALL, **context, **{"facilities.idle_discouragement": 0.0}), 6, 104)
        on_ts = series(scenario(**SMALL, **context, **on), 6, 104)
        drops.append(per_replicate(off_ts, "mean_trust", 52) - per_replicate(on_ts, "mean_trust", 52))
        if not context:
            assert off_ts["facilities_idle"].mean() > off_ts["facilities_operating"].mean()
    assert_positive(drops[0], "trust lost near idle facilities")
    assert_positive(drops[0] - drops[1], "idle vs operating facilities")


PARTICIPATORY = True  # set to False to see the test fail


@pytest.mark.slow
def test_participatory_planning_raises_facility_use():
    """Four villages, years 2-3, 8 replicates, today's count KPI: facilities built where elders'
    stated needs are give more hours of service per facility built, and fewer stand idle,
    than the top-down choice (cheapest first, most elders' villages first)."""
    common = {"population.villages": 4, "population.residents_per_village": 400, "policy.evaluation_regime": "count"}
    top_down = series(scenario(**common), 8, 156)
    asked = series(scenario(**common, **{"policy.participatory_planning": PARTICIPATORY}), 8, 156)
    for ts in (top_down, asked):
        ts["use"] = ts["met_hours_facility"] / ts["facilities_built"].clip(lower=1)
    assert_positive(per_replicate(asked, "use", 52) - per_replicate(top_down, "use", 52), "use per facility")
    idle = per_replicate(top_down, "facilities_idle", 52) - per_replicate(asked, "facilities_idle", 52)
    assert_positive(idle, "idle facilities")
    hours = per_replicate(asked, "met_hours_facility", 52) - per_replicate(top_down, "met_hours_facility", 52)
    assert_positive(hours, "facility hours")


@pytest.mark.slow
def test_publicity_raises_requests_and_brings_hidden_need_to_light():
    """Years 1-3, 6 replicates: more requests, less hidden need."""
    base = series(scenario(**SMALL), 6, 156)
    pub = series(scenario("publicity", **SMALL), 6, 156)
    assert_positive(per_replicate(pub, "requests") - per_replicate(base, "requests"), "requests")
    assert_positive(per_replicate(base, "hidden_need_hours") - per_replicate(pub, "hidden_need_hours"), "hidden need")


def _insurance_arms(accident_rate: float, replicates: int = 8, steps: int = 156) -> tuple:
    """Active volunteers (years 2-3) and quits per replicate, uninsured and insured, with
    accidents at ``accident_rate`` per service hour, the fixed blame term off (so only the
    accidents can tell the arms apart) and every lever funded."""
    common = {**SMALL, "behaviour.volunteer_blame_fear": 0.0, "behaviour.accident_rate_per_hour": accident_rate}
    common["policy.budget"] = 1e9
    arms = [series(scenario(**common, **{"policy.liability_insurance": on}), replicates, steps) for on in (False, True)]
    active = [per_replicate(ts, "active_volunteers", 52) for ts in arms]
    quits = [ts.groupby("replicate")["volunteer_quits"].sum().to_numpy() for ts in arms]
    return active, quits


@pytest.mark.slow
def test_liability_insurance_keeps_volunteers_through_fewer_quits():
    """Years 2-3, 8 replicates, accidents at 1 in 500 service hours: without insurance
    accidents become disputes, the volunteer quits and neighbours fear blame; insured there
    are no quits and more volunteers stay active. (With accidents off the two arms are the
    same run: the paired difference is 0 and the test would fail.)"""
    (bare, insured), (quits_bare, quits_insured) = _insurance_arms(0.002)
    assert_positive(quits_bare - quits_insured, "quits")
    assert_positive(insured - bare, "active volunteers")


@pytest.mark.slow
def test_publicity_raises_active_volunteers():
    """Years 1-3, 6 replicates: publicity (80% effort) raises potential volunteers'
    awareness of the programme, so more of them volunteer."""
    base = series(scenario(**SMALL), 6, 156)
    pub = series(scenario("publicity", **SMALL), 6, 156)
    assert_positive(per_replicate(pub, "active_volunteers") - per_replicate(base, "active_volunteers"), "volunteers")


@pytest.mark.slow
def test_administrative_burden_lowers_manual_matching():
    """Years 1-2, 6 replicates: burden 0.9 vs 0.3 on the committee."""
    low = series(scenario(**SMALL, **{"committee.admin_burden": 0.3}), 6, 104)
    high = series(scenario(**SMALL, **{"committee.admin_burden": 0.9}), 6, 104)
    assert_positive(per_replicate(low, "matched_requests") - per_replicate(high, "matched_requests"), "burden")
    assert_positive(per_replicate(low, "handled_requests") - per_replicate(high, "handled_requests"), "handled")


def test_ngos_reach_central_villages_before_remote_ones():
    """At one price, NGOs serve every village closer than the break-even distance and none
    beyond; within reach, a tight budget goes to the nearest villages first."""
    s = scenario(
        "ngo_purchase",
        **{
            "population.villages": 12,
            "population.residents_per_village": 300,
            "population.remoteness_km_min": 1.0,
            "population.remoteness_km_max": 30.0,
            "policy.ngo_purchase_budget": 60000.0,
            "policy.ngo_price_per_hour": 45.0,
        },
    )
    model = VillageModel(s, steps=52)
    for _ in range(52):
        model.step()
    vs = model.village_outcomes()
    hours = vs.groupby("village")["ngo_hours"].sum().to_numpy()
    elders = vs.groupby("village")["elders"].mean().to_numpy()
    remote = model.world.villages.remoteness_km
    ngo = s.ngo
    break_even = (45.0 - ngo.cost_per_hour) * ngo.hours_per_visit / (2 * ngo.travel_cost_per_km)
    assert np.all(hours[remote > break_even] == 0)
    served = hours > 0
    assert served.any()
    # central first: every village served lies nearer than every reachable village left out
    left_out = ~served & (remote <= break_even)
    if left_out.any():
        assert remote[served].max() < remote[left_out].min()
    rho = stats.spearmanr(remote[remote <= break_even], (hours / elders)[remote <= break_even]).statistic
    assert rho < 0, rho


# ---------------------------------------------------------------- conservation
ALL_LEVERS = {
    "population.villages": 3,
    "population.residents_per_village": 500,
    "policy.incentive_per_hour": 10.0,
    "policy.publicity": 0.6,
    "policy.party_mobilisation": 0.5,
    "policy.liability_insurance": True,
    "policy.wearable_alarms": 0.5,
    "policy.ngo_purchase_budget": 40000.0,
    "policy.ngo_price_per_hour": 60.0,
    "policy.time_bank.enabled": True,
    "policy.time_bank.redemption_guarantee": 0.5,
    "policy.time_bank.account_cap_hours": 20.0,
    "policy.platform.enabled": True,
    "policy.platform.offline_channel_coverage": 0.5,
    "behaviour.accident_rate_per_hour": 0.005,  # insured: claims paid from the subsidies
}


@pytest.fixture(scope="module")
def all_levers():
    s = scenario(**ALL_LEVERS)
    model = VillageModel(s, steps=156)
    facility_cap, ngo_cap, served = [], [], []
    cap = np.asarray(s.facilities.capacity_hours)
    for _ in range(156):
        model.step()
        fac = model.world.institutions.facilities
        facility_cap.append(bool(np.all(fac.hours_served <= cap[fac.kind] + 1e-6)))
        ngo_cap.append(model.latest["ngo_hours"] <= s.ngo.count * s.ngo.hours_per_week + 1e-6)
        p = model.world.persons
        served.append(bool(np.all(p.served_hours <= p.availability + 1e-4)))
    return s, model, facility_cap, ngo_cap, served


def test_met_hours_never_exceed_need_or_supply(all_levers):
    s, model, facility_cap, ngo_cap, served = all_levers
    ts = model.timeseries()
    met = ts[[c for c in ts.columns if c.startswith("met_hours_")]].sum(axis=1)
    np.testing.assert_allclose(met + ts["unmet_hours"], ts["need_hours"], rtol=1e-4)
    assert (ts["unmet_hours"] >= -1e-6).all()
    assert all(facility_cap) and all(ngo_cap) and all(served)
    assert (ts["met_hours_volunteer"] + ts["met_hours_peer"] <= ts["volunteer_hours"] + 1e-3).all()


def test_money_spent_never_exceeds_budget(all_levers):
    s, model, *_ = all_levers
    ts = model.timeseries()
    year = (ts["step"] - 1) // 52
    per_year = ts.groupby(year)["spend_total"].sum()
    assert (per_year <= s.policy.budget + s.policy.ngo_purchase_budget + 1e-6).all()
    assert per_year.min() > 0
    parts = ts[[c for c in ts.columns if c.startswith("spend_") and c != "spend_total"]].sum(axis=1)
    np.testing.assert_allclose(parts, ts["spend_total"], rtol=1e-9, atol=1e-6)


def test_time_bank_credit_is_conserved(all_levers):
    s, model, *_ = all_levers
    ts = model.timeseries()
    issued = ts["time_bank_credited"].sum()
    redeemed = ts["time_bank_redeemed"].sum()
    expired = ts["time_bank_expired"].sum()
    outstanding = ts["time_bank_outstanding"].iloc[-1]
    assert issued > 100 and redeemed > 0 and expired > 0
    assert issued == pytest.approx(redeemed + outstanding + expired, rel=1e-4)
    inst = model.world.institutions
    assert inst.tb_credited == pytest.approx(issued, rel=1e-4)


# The levers the "every lever" test switches: every policy parameter of the schema, so a
# lever added to the schema is tested without editing this file. A lever that acts only
# with another switched on gets that context; a value the rule below cannot pick (a lever
# off at 0 with no upper bound in sight) is given here.
LEVER_CONTEXT = {
    "policy.time_bank.": {"policy.time_bank.enabled": True},
    "policy.platform.": {"policy.platform.enabled": True},
    # NGOs enter only where the price covers travel: a price that reaches any village
    "policy.ngo_purchase_budget": {"policy.ngo_price_per_hour": 120.0},
    "policy.split.ngo": {"policy.ngo_purchase_budget": 100000.0, "policy.ngo_price_per_hour": 120.0},
    "policy.split.platform": {"policy.platform.enabled": True},
    # feedback acts through the yearly budget decision: villages sharing a budget too small to
    # fund every facility, so which ones the government knows of matters (the count regime)
    "policy.feedback_mechanism": {
        "run.steps": 156,
        "population.villages": 8,
        "policy.budget": 60000.0,
    },
    # what and where to build is a choice where villages share the budget
    "policy.participatory_planning": {"population.villages": 4},
    # money left at the first year's end is carried into the second
    "policy.unspent_funds": {"run.steps": 110},
}
LEVER_VALUE = {
    "policy.incentive_per_hour": 20.0,
    "policy.ngo_purchase_budget": 100000.0,
    "policy.budget": 20000.0,
    "policy.digital_training": 300.0,
    # the default cap (1,500 h) binds after years; a cap of 2 h makes credit expire at once
    "policy.time_bank.account_cap_hours": 2.0,
}
LEVER_EXCLUDED = {
    # "path": "reason",
}
# Not under policy., but a lever of MODEL.md section 4 all the same
EXTRA_LEVERS = [
    ({"ngo.quality": 0.2}, {"policy.ngo_purchase_budget": 100000.0, "policy.ngo_price_per_hour": 120.0}),
    ({"behaviour.accident_rate_per_hour": 0.01}, {}),
    ({"behaviour.volunteer_publicity": 2.0}, {"policy.publicity": 0.8}),
    ({"behaviour.volunteer_party_norm": 2.0}, {"policy.party_mobilisation": 0.8}),
]


def _literal_choices(path: str) -> tuple:
    from typing import get_args

    model = Scenario
    *sections, name = path.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    return get_args(model.model_fields[name].annotation)


def _switched(row: dict):
    """A value of the lever that should change a run: off/on flipped, the other choice, or
    a number well away from the default within the bounds."""
    path, default = row["path"], row["default"]
    if path in LEVER_VALUE:
        return LEVER_VALUE[path]
    if row["type"] == "bool":
        return not default
    if row["type"] == "Literal":
        return next(c for c in _literal_choices(path) if c != default)
    low, high = row.get("ge", row.get("gt")), row.get("le", row.get("lt"))
    if high is not None and high <= 1.0:
        value = 0.8 if default < 0.5 else 0.2
    else:
        assert default > 0, f"{path}: off at {default}; give LEVER_VALUE a value that switches it on"
        value = default * 3 if high is None or default * 3 <= high else default / 3
    if row["type"] == "int":
        value = int(round(value))
    assert low is None or value >= low
    return value


def _lever_cases() -> list:
    cases = []
    for row in Scenario.parameter_table():
        path = row["path"]
        if not path.startswith("policy.") or path in LEVER_EXCLUDED:
            continue
        context = {}
        for prefix, extra in LEVER_CONTEXT.items():
            if path.startswith(prefix) and path not in extra:
                context.update(extra)
        cases.append(pytest.param({path: _switched(row)}, context, id=path))
    cases += [pytest.param(change, context, id=next(iter(change))) for change, context in EXTRA_LEVERS]
    return cases


def test_the_lever_list_is_the_schema():
    """Every policy parameter is switched by the test below or excluded with a reason."""
    policy = {row["path"] for row in Scenario.parameter_table() if row["path"].startswith("policy.")}
    tested = {next(iter(case.values[0])) for case in _lever_cases()}
    assert set(LEVER_EXCLUDED) <= policy, "an exclusion names no lever"
    assert policy - set(LEVER_EXCLUDED) <= tested
    assert len(policy) >= 20


@pytest.mark.parametrize(("change", "context"), _lever_cases())
def test_every_lever_changes_the_run(change, context):
    """Each lever of the schema (MODEL.md section 4), switched on alone (in a context where
    it can act), changes the outputs against the same context without it: no dead lever."""
    steps = context.get("run.steps", 30)
    runs = []
    for overrides in (context, {**context, **change}):
        model = VillageModel(scenario(**SMALL, **overrides), steps=steps)
        for _ in range(steps):
            model.step()
        runs.append(model.timeseries())
    assert not runs[0].equals(runs[1]), f"{change} changed nothing"


def test_intervention_leaves_earlier_steps_identical():
    """An intervention at step k: steps before k are identical to the baseline run."""
    k = 40
    s = scenario(**SMALL)
    change = Intervention(step=k, set={"policy.platform.enabled": True, "policy.publicity": 0.7})
    s2 = s.model_copy(update={"intervention": [change]})
    a = VillageModel(s, steps=60)
    b = VillageModel(s2, steps=60)
    for _ in range(60):
        a.step()
        b.step()
    ta, tb = a.timeseries(), b.timeseries()
    pd.testing.assert_frame_equal(ta[ta.step < k], tb[tb.step < k])
    assert not ta[ta.step >= k].reset_index(drop=True).equals(tb[tb.step >= k].reset_index(drop=True))
    assert tb[tb.step >= k]["platform_requests"].sum() > 0 and ta["platform_requests"].sum() == 0
    assert tb[tb.step >= k]["spend_platform"].sum() > 0


@pytest.mark.parametrize(
    "name",
    [
        "platform",
        "digital_training",
        "participatory_planning",
        "time_bank",
        "time_bank_untrusted",
        "quality_kpi",
        "feedback",
        "ngo_purchase",
        "publicity",
        "party_mobilisation",
        "wearables",
        "incentives",
    ],
)
def test_shipped_policy_scenarios_extend_baseline_and_ask_a_question(name):
    path = SCENARIOS / f"{name}.toml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Question:")
    loaded = load_scenario(path)
    assert any(p.name == "baseline.toml" for p in loaded.chain)
    model = VillageModel(loaded.scenario, steps=8)
    for _ in range(8):
        model.step()
    assert len(model.timeseries()) == 8


def test_a_lever_launched_mid_year_is_funded_by_the_next_budget_year():
    """The platform launches at week 53. Under ``inactive_uses = "resplit"`` the year's money
    of uses with nothing to pay for was re-split at the year's start and the reports left
    none idle, so the launch finds no unspent money: unpaid (and reported so) until the next
    budget year, which funds it every week. Under ``"hold"`` its own share waited for it and
    pays it from the launch (the budget follows the intended levers, not this week's)."""
    spends = {}
    for rule in ("resplit", "hold"):
        model = VillageModel(scenario("platform", **{"policy.inactive_uses": rule}), steps=160)
        for _ in range(160):
            model.step()
        spends[rule] = model.timeseries().set_index("step")["spend_platform"]
    resplit, hold = spends["resplit"], spends["hold"]
    assert (resplit.loc[53:104] == 0).all()  # launched with nothing left to pay it
    assert (resplit.loc[105:160] > 0).all()  # funded again for the whole next year
    assert (hold.loc[53:160] > 0).all()  # its own share held for it


@pytest.mark.slow
def test_platform_helps_most_where_volunteers_are_scattered():
    """Two years, 12 replicates, a fixed budget split: the platform's gain in matched
    requests is larger in a scattered village (hamlets up to 3 km apart) than in a compact
    one (0.4 km), where walking distance rarely binds; the paired 95% CI of the
    difference-in-differences excludes zero."""
    base = scenario(**SMALL, **{"policy.allocation": "fixed"})
    gains = {}
    for shape, geo in (
        ("compact", {"population.village_radius_km": 0.4, "population.hamlet_radius_km": 0.1}),
        ("scattered", {"population.village_radius_km": 3.0, "population.hamlet_radius_km": 0.4}),
    ):
        off = per_replicate(series(base.with_overrides(geo), 12, 104), "matched_requests")
        on = per_replicate(series(base.with_overrides({**geo, "policy.platform.enabled": True}), 12, 104), "matched_requests")
        gains[shape] = on - off
    assert_positive(gains["scattered"] - gains["compact"], "scattered minus compact platform gain")
