"""Process 6: who volunteers this week, and last week's accidents in service.

Reads: ``status``, ``age``, ``care_level``, ``household``, ``village``, ``altruism``,
``opportunity_cost``, ``burnout``, ``party``, ``tb_trust``, ``fear``, ``enrolment``, last
week's ``active`` and ``served_hours``; the neighbour graph; ``[behaviour]`` volunteer_*,
accident_rate_per_hour, fear_*; levers ``incentive_per_hour``, ``publicity``,
``party_mobilisation``, ``liability_insurance``, ``time_bank``.
Writes: ``active`` (per person), ``served_hours`` (reset), ``fear``, ``enrolment``,
``week.candidates``; outputs ``volunteer_accidents``, ``insurance_claims``,
``volunteer_disputes``, ``volunteer_quits``.

First :func:`accidents`: last week's service had accidents; uninsured, each is a dispute
that makes the volunteer quit for good and spreads fear of blame to the neighbouring
households; insured, a claim finance pays. Candidates are residents aged 18-59 and healthy
"young-old" elders (60 to ``young_old_max_age``, care level 0), less those who quit. Each
volunteers with probability ``logistic(v0 + altruism + incentive + credit x trust + norm +
party + publicity + party norm - blame fear - fear - opportunity cost - burnout)`` where the
norm is the share of candidates in the own and neighbouring households who volunteered last
week (德治); publicity raises potential volunteers' awareness of the programme (宣传动员) and
party mobilisation the norm for everyone (思想引领). A first-time volunteer becomes enrolled.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Output, Process
from villagesim.processes.rates import logistic
from villagesim.processes.week import Week, neighbour_count_sum
from villagesim.state.population import ELDER_AGE, ENROLLED, NOT_ENROLLED, QUIT, RESIDENT, World

NAME = "volunteering"


def candidates_mask(world: World, scenario: Scenario) -> np.ndarray:
    """Residents who could volunteer: working-age adults and healthy young-old elders."""
    p = world.persons
    b = scenario.behaviour
    resident = p.status == RESIDENT
    working_age = (p.age >= 18) & (p.age < ELDER_AGE)
    young_old = (p.age >= ELDER_AGE) & (p.age < b.young_old_max_age + 1) & (p.care_level == 0)
    return resident & (working_age | young_old)


@njit
def _candidate_sums(
    status: np.ndarray,
    age: np.ndarray,
    care_level: np.ndarray,
    household: np.ndarray,
    active: np.ndarray,
    resident: int,
    elder_age: float,
    young_old_end: int,
    n_households: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The candidates and their counts per household, in one pass over the persons.

    Returns the mask :func:`candidates_mask` gives, their row numbers (``np.flatnonzero``), and
    per household the number of candidates who were active last week and of candidates
    (float64): ``np.bincount(household, weights=active * cand)`` and
    ``np.bincount(household, weights=cand)``, whole numbers (exact in any order).
    """
    n = len(status)
    cand = np.empty(n, dtype=np.bool_)
    rows = np.empty(n, dtype=np.int64)
    hh_active = np.zeros(n_households, dtype=np.float64)
    hh_cand = np.zeros(n_households, dtype=np.float64)
    k = 0
    for i in range(n):
        # without branches: whether a row is a candidate is not predictable
        a = age[i]
        working_age = (a >= 18) & (a < elder_age)
        young_old = (a >= elder_age) & (a < young_old_end) & (care_level[i] == 0)
        c = (status[i] == resident) & (working_age | young_old)
        cand[i] = c
        rows[k] = i
        k += c
        h = household[i]
        hh_cand[h] += np.float64(c)
        hh_active[h] += np.float64(c & active[i])
    return cand, rows[:k], hh_active, hh_cand


class Counts(NamedTuple):
    """Per household (float64 whole numbers): candidates active last week and candidates, of
    the household itself and summed over its neighbours."""

    hh_active: np.ndarray
    nb_active: np.ndarray
    hh_cand: np.ndarray
    nb_cand: np.ndarray


class Traits(NamedTuple):
    """The person columns of the logit."""

    altruism: np.ndarray
    tb_trust: np.ndarray
    party: np.ndarray
    opportunity_cost: np.ndarray
    burnout: np.ndarray
    fear: np.ndarray


class Coefficients(NamedTuple):
    """The logit's coefficients with numpy's dtypes (see :func:`_logits`)."""

    intercept: np.float32
    altruism: np.float32
    incentive: np.float32
    credit: np.float32
    norm: np.float32
    party: float
    campaign: float
    blame: float
    opportunity_cost: np.float32
    burnout: np.float32
    fear: np.float32


@njit
def _logits(rows: np.ndarray, household: np.ndarray, counts: Counts, traits: Traits, c: Coefficients) -> np.ndarray:
    """The volunteering logit of each candidate row (float64), as :func:`run`'s numpy code
    made it.

    The norm is ``float32(share)`` of the own household, ``share`` being the number of
    candidates who were active last week over the number of candidates, both summed over the
    own and the neighbouring households (0 where there are none). ``c`` holds the coefficients with numpy's dtypes: the float32
    terms (intercept, altruism, incentive, credit x trust, norm) are summed in float32; the
    party term (a Python float times a bool column) is float64 and from there on the sum is
    float64, with the opportunity-cost and burnout products in float32.
    """
    hh_active, nb_active, hh_cand, nb_cand = counts
    altruism, tb_trust, party, opportunity_cost, burnout, fear = traits
    intercept, altruism_c, incentive, credit, norm_c, party_c, campaign, blame, opportunity_c, burnout_c, fear_c = c
    out = np.empty(len(rows), dtype=np.float64)
    for k in range(len(rows)):
        i = rows[k]
        h = household[i]
        cnt = hh_cand[h] + nb_cand[h]
        if cnt > 0:
            share = (hh_active[h] + nb_active[h]) / max(cnt, 1e-12)
        else:
            share = 0.0
        norm = np.float32(share)
        logit = intercept + altruism_c * altruism[i]
        logit = logit + incentive
        logit = logit + credit * tb_trust[i]
        logit = logit + norm_c * norm
        total = np.float64(logit) + party_c * np.float64(party[i])
        total = total + campaign
        total = total - blame
        total = total - np.float64(opportunity_c * opportunity_cost[i])
        total = total - np.float64(burnout_c * burnout[i])
        total = total - np.float64(fear_c * fear[i])
        out[k] = total
    return out


@njit
def _activate(
    rows: np.ndarray, u: np.ndarray, probability: np.ndarray, availability: np.ndarray, enrolment: np.ndarray, n: int
) -> np.ndarray:
    """``active``: ``active[rows] = (u[rows] < probability) & (availability[rows] > 0) &
    (enrolment[rows] != QUIT)``, False elsewhere; those active for the first time become
    enrolled (in place)."""
    active = np.zeros(n, dtype=np.bool_)
    for k in range(len(rows)):
        i = rows[k]
        a = (u[i] < probability[k]) & (availability[i] > 0) & (enrolment[i] != QUIT)
        active[i] = a
        if a and enrolment[i] == NOT_ENROLLED:
            enrolment[i] = ENROLLED
    return active


def accidents(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """Last week's accidents in service, their disputes and the fear they spread.

    Everyone's fear fades by ``fear_decay``. With ``accident_rate_per_hour`` above 0, a
    volunteer who served ``h`` hours last week had an accident with probability ``1 -
    exp(-rate * h)`` (one float64 uniform per volunteer who served, in row order, drawn after
    the week's activity uniforms). With liability insurance the accident is a claim the
    insurance pays (``insurance_claims``, paid by finance). Without it the accident becomes a
    dispute: the volunteer quits for good (``enrolment = QUIT``) and everyone in the own and
    neighbouring households fears blame: ``fear = 1 - (1 - fear) * (1 - fear_spread) ** d``,
    ``d`` the disputes in the own household plus those in the neighbouring households.
    """
    p = world.persons
    b = scenario.behaviour
    n_v = week.n_villages
    p.fear *= np.float32(1.0 - b.fear_decay)
    if b.accident_rate_per_hour <= 0:
        return
    served = np.flatnonzero(p.served_hours > 0)
    draw = rng.random(len(served))
    hit = served[draw < -np.expm1(-b.accident_rate_per_hour * p.served_hours[served].astype(np.float64))]
    week.report("volunteer_accidents", np.bincount(p.village[hit], minlength=n_v).astype(np.float64))
    if scenario.policy.liability_insurance:
        week.report("insurance_claims", np.bincount(p.village[hit], minlength=n_v).astype(np.float64))
        return
    week.report("volunteer_disputes", np.bincount(p.village[hit], minlength=n_v).astype(np.float64))
    quits = hit[p.enrolment[hit] != QUIT]
    week.report("volunteer_quits", np.bincount(p.village[quits], minlength=n_v).astype(np.float64))
    p.enrolment[hit] = QUIT
    if len(hit) == 0 or b.fear_spread <= 0:
        return
    n_hh = len(world.households)
    disputes = np.bincount(p.household[hit], minlength=n_hh).astype(np.float64)
    disputes = disputes + world.households.neighbours @ disputes
    d = disputes[p.household]
    touched = d > 0
    keep = (1.0 - b.fear_spread) ** d[touched]
    p.fear[touched] = (1.0 - (1.0 - p.fear[touched].astype(np.float64)) * keep).astype(np.float32)


@formula_of("run", check="in a model run")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> np.ndarray:
    """:func:`run` as whole-array numpy formulas over the person table, the numbers its kernels
    must give to the bit; returns the candidates' logits (those :func:`run` passes to
    :func:`logistic`).

    With one float32 uniform ``u`` per person, a candidate (:func:`candidates_mask`)
    volunteers if ``u < logistic(logit)`` and has hours available, where ``logit =
    volunteer_intercept + volunteer_altruism * altruism + volunteer_incentive *
    incentive_per_hour + volunteer_credit * credit * tb_trust + volunteer_norm * norm +
    volunteer_party * party_mobilisation * party + (volunteer_publicity * publicity +
    volunteer_party_norm * party_mobilisation) - volunteer_blame_fear * (no insurance) -
    volunteer_opportunity_cost * opportunity_cost - volunteer_burnout * burnout -
    volunteer_fear * fear`` and the candidate has not quit; ``norm``
    is the share of candidates of the own and neighbouring households active last week
    (float32, 0 without candidates) and ``credit`` the time bank's credit per hour (0 when
    off). First-time volunteers become enrolled; everyone's served hours restart at 0.
    :func:`accidents` runs first (after the activity uniforms are drawn).
    """
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    u = rng.random(len(p), dtype=np.float32)
    accidents(world, scenario, rng, week)
    cand = (p.status == RESIDENT) & (
        ((p.age >= 18) & (p.age < ELDER_AGE)) | ((p.age >= ELDER_AGE) & (p.age < b.young_old_max_age + 1) & (p.care_level == 0))
    )
    among = cand.astype(np.float32)
    n_hh = len(world.households)
    nb = world.households.neighbours
    hh_sum = np.bincount(p.household, weights=p.active.astype(np.float32) * among, minlength=n_hh)
    hh_n = np.bincount(p.household, weights=among, minlength=n_hh)
    tot = hh_sum + nb @ hh_sum
    cnt = hh_n + nb @ hh_n
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(cnt > 0, tot / np.maximum(cnt, 1e-12), 0.0)[p.household].astype(np.float32)
    credit = pol.time_bank.credit_per_hour if pol.time_bank.enabled else 0.0
    logit = (
        b.volunteer_intercept
        + b.volunteer_altruism * p.altruism
        + b.volunteer_incentive * pol.incentive_per_hour
        + b.volunteer_credit * credit * p.tb_trust
        + b.volunteer_norm * norm
        + b.volunteer_party * pol.party_mobilisation * p.party
        + (b.volunteer_publicity * pol.publicity + b.volunteer_party_norm * pol.party_mobilisation)
        - b.volunteer_blame_fear * (0.0 if pol.liability_insurance else 1.0)
        - b.volunteer_opportunity_cost * p.opportunity_cost
        - b.volunteer_burnout * p.burnout
        - b.volunteer_fear * p.fear
    )
    p.active = cand & (u < logistic(logit)) & (p.availability > 0) & (p.enrolment != QUIT)
    p.enrolment[p.active & (p.enrolment == NOT_ENROLLED)] = ENROLLED
    p.served_hours[:] = 0
    week.candidates = cand
    return logit[cand]


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    u = rng.random(len(p), dtype=np.float32)
    accidents(world, scenario, rng, week)
    nb = world.households.neighbours
    cand, rows, hh_active, hh_cand = _candidate_sums(
        p.status, p.age, p.care_level, p.household, p.active, RESIDENT, ELDER_AGE, b.young_old_max_age + 1, len(world.households)
    )
    # the counts of last week's volunteers and of candidates per neighbourhood are whole
    # numbers: summed over the few households with volunteers, or where the count changed
    # (the same numbers as the product)
    nb_active = neighbour_count_sum(nb, "volunteering.active", hh_active)
    nb_cand = neighbour_count_sum(nb, "volunteering.count", hh_cand)
    credit = pol.time_bank.credit_per_hour if pol.time_bank.enabled else 0.0
    f32 = np.float32
    coefficients = Coefficients(
        intercept=f32(b.volunteer_intercept),
        altruism=f32(b.volunteer_altruism),
        incentive=f32(b.volunteer_incentive * pol.incentive_per_hour),
        credit=f32(b.volunteer_credit * credit),
        norm=f32(b.volunteer_norm),
        party=float(b.volunteer_party * pol.party_mobilisation),
        campaign=float(b.volunteer_publicity * pol.publicity + b.volunteer_party_norm * pol.party_mobilisation),
        blame=float(b.volunteer_blame_fear * (0.0 if pol.liability_insurance else 1.0)),
        opportunity_cost=f32(b.volunteer_opportunity_cost),
        burnout=f32(b.volunteer_burnout),
        fear=f32(b.volunteer_fear),
    )
    counts = Counts(hh_active=hh_active, nb_active=nb_active, hh_cand=hh_cand, nb_cand=nb_cand)
    traits = Traits(
        altruism=p.altruism,
        tb_trust=p.tb_trust,
        party=p.party,
        opportunity_cost=p.opportunity_cost,
        burnout=p.burnout,
        fear=p.fear,
    )
    logit = _logits(rows, p.household, counts, traits, coefficients)
    # only candidates can volunteer: the logistic is evaluated on their rows alone (element by
    # element the same numbers as over the whole table)
    p.active = _activate(rows, u, logistic(logit), p.availability, p.enrolment, len(p))
    p.served_hours[:] = 0
    week.candidates = cand


PROCESS = Process(
    name="volunteering",
    run=run,
    reads=(
        "persons.status",
        "persons.age",
        "persons.care_level",
        "persons.household",
        "persons.altruism",
        "persons.opportunity_cost",
        "persons.burnout",
        "persons.party",
        "persons.tb_trust",
        "persons.active",
        "persons.served_hours",
        "persons.village",
        "persons.fear",
        "persons.enrolment",
        "households.neighbours",
        "scenario.behaviour",
        "scenario.policy",
    ),
    writes=("persons.active", "persons.served_hours", "persons.fear", "persons.enrolment", "week.candidates"),
    outputs=(
        Output(
            "volunteer_accidents", "accidents/week", "Accidents in volunteer service", "Accidents during last week's service."
        ),
        Output(
            "insurance_claims", "claims/week", "Insurance claims", "Accidents the liability insurance paid (finance pays them)."
        ),
        Output("volunteer_disputes", "disputes/week", "Disputes over accidents", "Uninsured accidents that became disputes."),
        Output("volunteer_quits", "persons/week", "Volunteers who quit", "Volunteers who quit for good after a dispute."),
    ),
    section="3.6 volunteering",
)
