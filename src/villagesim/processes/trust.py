"""Process 11: trust, awareness, satisfaction and burnout.

Reads: ``week.elders``, ``week.asked``, ``week.requested_hours``, ``week.need``,
``week.remaining``, ``week.matched``, ``week.met``; ``trust``, ``awareness``, ``satisfaction``,
``served_hours``, ``burnout``; the neighbour graph; ``[behaviour]``; levers
``publicity``, ``transparency``.
Writes: ``trust``, ``awareness``, ``satisfaction`` (resident elders), ``burnout``
(everyone), ``unmet_hours``.

* Trust moves toward what an elder who asked experienced (share of the request met, times
  the quality of the help: ``ngo.quality`` for NGO care, ``service_quality`` for the rest)
  at ``trust_experience_rate`` (faster upward with ``transparency``,
  村务公开), and toward the mean trust of elders in neighbouring households at
  ``trust_neighbour_rate``.
* Awareness rises with publicity and with the share of neighbouring elders helped this
  week (word of mouth), and decays at ``awareness_decay``; being helped makes one aware
  (at ``awareness_help_rate``).
* Satisfaction follows the share of the elder's whole need that was met.
* Burnout grows with hours served and fades at ``burnout_recovery``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.jit import formula_of, njit
from villagesim.processes.base import Process
from villagesim.processes.week import Week, neighbour_rows
from villagesim.state.population import World

NAME = "trust"


@njit
def _neighbourhood_sums(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    ones: bool,
    household: np.ndarray,
    elders: np.ndarray,
    trust: np.ndarray,
    matched: np.ndarray,
    n_households: int,
) -> tuple:
    """Per household, over its elders: their number, the sum of their trust and the number
    helped this week (float64), and the products of the neighbour matrix with each.

    The sums are ``np.bincount(hh)``, ``np.bincount(hh, weights=trust[elders])`` and
    ``np.bincount(hh, weights=matched)`` with ``hh = household[elders]`` (the trust sums add
    the elders in their order, as ``bincount`` does); the products are the rows of
    ``neighbours @ sums``, each summed in the order of the row's stored entries from 0.0 as
    scipy does (:func:`~villagesim.processes.week.neighbour_rows`), so the same numbers,
    worked out only for the households with elders, the only ones read.
    """
    count = np.zeros(n_households, dtype=np.float64)
    trust_sum = np.zeros(n_households, dtype=np.float64)
    helped = np.zeros(n_households, dtype=np.float64)
    for i in range(len(elders)):
        e = elders[i]
        h = household[e]
        count[h] += 1.0
        trust_sum[h] += np.float64(trust[e])
        if matched[i]:
            helped[h] += 1.0
    nb_count = np.zeros(n_households, dtype=np.float64)
    nb_trust = np.zeros(n_households, dtype=np.float64)
    nb_helped = np.zeros(n_households, dtype=np.float64)
    for h in range(n_households):
        if count[h] > 0:
            c = 0.0
            t = 0.0
            hp = 0.0
            for jj in range(indptr[h], indptr[h + 1]):
                j = indices[jj]
                if ones:
                    c += count[j]
                    t += trust_sum[j]
                    hp += helped[j]
                else:
                    w = data[jj]
                    c += w * count[j]
                    t += w * trust_sum[j]
                    hp += w * helped[j]
            nb_count[h] = c
            nb_trust[h] = t
            nb_helped[h] = hp
    return count, nb_count, trust_sum, nb_trust, helped, nb_helped


@njit
def _clip(x, low, high):
    """``np.clip(x, low, high)`` of one number, ``low`` and ``high`` of its dtype (NaN and
    -0.0 kept, as numpy)."""
    if x < low:
        return low
    if x > high:
        return high
    return x


class ElderWeek(NamedTuple):
    """The week's rows of the elders (one entry per elder): need and remaining need (elders x
    kinds), whether they asked, hours requested, whether helped, and ``met``: hours met by
    the NGO, volunteers, peers, facilities and the time bank."""

    need: np.ndarray
    remaining: np.ndarray
    asked: np.ndarray
    requested: np.ndarray
    matched: np.ndarray
    met: tuple


class ElderState(NamedTuple):
    """The person columns :func:`_update_elders` updates in place."""

    trust: np.ndarray
    awareness: np.ndarray
    satisfaction: np.ndarray
    unmet_hours: np.ndarray


@njit
def _update_elders(
    elders: np.ndarray, household: np.ndarray, sums: tuple, week: ElderWeek, state: ElderState, c32: tuple, c64: tuple
) -> None:
    """Trust, awareness, satisfaction and unmet hours of each elder, in place, as :func:`run`'s
    numpy code gave them.

    ``sums``: per household the elders' count, trust sum and count helped, and the products
    of the neighbour matrix with each. The neighbourhood means are float64 quotients cast to
    float32 (``np.where(cnt > 0, tot / np.maximum(cnt, 1e-12), 0.0).astype(np.float32)``).
    ``met``: hours met by the NGO, volunteers, peers, facilities and the time bank.
    Hours, need shares, quality, outcome, awareness and satisfaction are float32 (``c32``
    holds their coefficients); the trust update is float64, as numpy's ``np.where`` of two
    Python floats made the rate (``c64``: rate upward, rate, neighbour rate); the row totals
    add the kinds left to right.
    """
    count, nb_count, trust_sum, nb_trust_sum, helped, nb_helped = sums
    need, remaining, asked, requested, matched, met = week
    trust, awareness, satisfaction, unmet_hours = state
    ngo, volunteer, peer, facility, time_bank = met
    ngo_quality, service_quality, publicity, word_of_mouth, decay, help_rate, satisfaction_rate = c32
    rate_up, rate, neighbour_rate = c64
    one = np.float32(1.0)
    zero = np.float32(0.0)
    tiny = np.float32(1e-9)
    tinier = np.float32(1e-12)
    for i in range(len(elders)):
        e = elders[i]
        h = household[e]
        cnt = count[h] + nb_count[h]
        if cnt > 0:
            nb_trust = np.float32((trust_sum[h] + nb_trust_sum[h]) / max(cnt, 1e-12))
            nb_help = np.float32((helped[h] + nb_helped[h]) / max(cnt, 1e-12))
        else:
            nb_trust = zero
            nb_help = zero
        need_i = need[i, 0]
        unmet = remaining[i, 0]
        for k in range(1, need.shape[1]):
            need_i += need[i, k]
            unmet += remaining[i, k]
        unmet_hours[e] = unmet

        # experience of those who asked
        if requested[i] > 0:
            got = _clip(one - unmet / max(requested[i], tiny), zero, one)
        else:
            got = zero
        services = zero + volunteer[i]
        services += peer[i]
        services += facility[i]
        services += time_bank[i]
        services = ngo[i] + services
        if services > 0:
            quality = (ngo[i] * ngo_quality + (services - ngo[i]) * service_quality) / max(services, tinier)
        else:
            quality = service_quality
        outcome = got * quality
        t32 = trust[e]
        t = np.float64(t32)
        if asked[i]:
            r = rate_up if outcome > t32 else rate
            t = t + r * np.float64(outcome - t32)
        t = t + neighbour_rate * (np.float64(nb_trust) - t)
        trust[e] = np.float32(_clip(t, 0.0, 1.0))

        aw = awareness[e]
        aw = aw + (publicity + word_of_mouth * nb_help) * (one - aw)
        aw = aw - decay * aw
        if matched[i]:
            aw = aw + help_rate * (one - aw)
        awareness[e] = _clip(aw, zero, one)

        if need_i > 0:
            met_share = one - unmet / max(need_i, tiny)
            sat = satisfaction[e]
            satisfaction[e] = sat + satisfaction_rate * (met_share - sat)


@njit
def _update_burnout(burnout: np.ndarray, served_hours: np.ndarray, keep: np.float32, per_hour: np.float32) -> None:
    """``burnout = clip(burnout * keep + per_hour * served_hours, 0, 1)`` in place, float32."""
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for j in range(len(burnout)):
        burnout[j] = _clip(burnout[j] * keep + per_hour * served_hours[j], zero, one)


@formula_of("run", check="in a model run")
def run_plain(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    """:func:`run` as whole-array numpy formulas over the elders, the numbers its kernels must
    give to the bit.

    Neighbourhood means (own and neighbouring households' elders, before the update):
    ``nb_trust`` of trust and ``nb_helped`` of the share helped this week. With ``got = clip(1 -
    unmet / requested, 0, 1)`` (0 without a request) and ``quality`` the hours-weighted mean of
    ``ngo.quality`` (NGO care) and ``service_quality`` (the other services; ``service_quality``
    without services), ``outcome = got * quality`` and:

    * ``trust += rate * (outcome - trust)`` for those who asked, ``rate`` being
      ``trust_experience_rate``, times ``1 + transparency`` if the outcome is above trust;
      then ``trust += trust_neighbour_rate * (nb_trust - trust)``, clipped to [0, 1];
    * ``awareness += (awareness_publicity_rate * publicity + awareness_word_of_mouth *
      nb_helped) * (1 - awareness)``, less ``awareness_decay * awareness``, plus
      ``awareness_help_rate * (1 - awareness)`` for those helped, clipped to [0, 1];
    * ``satisfaction += satisfaction_rate * (1 - unmet / need - satisfaction)`` where there
      is need;
    * everyone's ``burnout = clip(burnout * (1 - burnout_recovery) + burnout_per_hour *
      served_hours, 0, 1)``.
    """
    del rng  # deterministic
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    elders = week.elders
    nb = world.households.neighbours
    n_hh = len(world.households)
    hh = p.household[elders]
    cnt = np.bincount(hh, minlength=n_hh).astype(np.float64)
    cnt = (cnt + nb @ cnt)[hh]
    means = []
    for weights in (p.trust[elders], week.matched.astype(np.float32)):
        hh_sum = np.bincount(hh, weights=weights, minlength=n_hh)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(cnt > 0, (hh_sum + nb @ hh_sum)[hh] / np.maximum(cnt, 1e-12), 0.0)
        means.append(share.astype(np.float32))
    nb_trust, nb_helped = means
    need = week.need.sum(axis=1)
    unmet = week.remaining.sum(axis=1)
    p.unmet_hours[elders] = unmet
    requested = week.requested_hours
    with np.errstate(divide="ignore", invalid="ignore"):
        got = np.where(requested > 0, np.clip(1.0 - unmet / np.maximum(requested, 1e-9), 0.0, 1.0), 0.0)
        ngo = week.met_of("ngo")
        services = ngo + sum(week.met_of(s) for s in ("volunteer", "peer", "facility", "time_bank"))
        quality = np.where(
            services > 0,
            (ngo * scenario.ngo.quality + (services - ngo) * b.service_quality) / np.maximum(services, 1e-12),
            b.service_quality,
        )
        met_share = np.where(need > 0, 1.0 - unmet / np.maximum(need, 1e-9), 1.0)
    outcome = (got * quality).astype(np.float32)
    t = p.trust[elders]
    rate = np.where(outcome > t, b.trust_experience_rate * (1.0 + pol.transparency), b.trust_experience_rate)
    t = np.where(week.asked, t + rate * (outcome - t), t)
    t = t + b.trust_neighbour_rate * (nb_trust - t)
    p.trust[elders] = np.clip(t, 0.0, 1.0)
    aw = p.awareness[elders]
    aw = aw + (b.awareness_publicity_rate * pol.publicity + b.awareness_word_of_mouth * nb_helped) * (1.0 - aw)
    aw = aw - b.awareness_decay * aw
    aw = np.where(week.matched, aw + b.awareness_help_rate * (1.0 - aw), aw)
    p.awareness[elders] = np.clip(aw, 0.0, 1.0)
    sat = p.satisfaction[elders]
    p.satisfaction[elders] = np.where(need > 0, sat + b.satisfaction_rate * (met_share - sat), sat)
    p.burnout *= np.float32(1.0 - b.burnout_recovery)
    p.burnout += np.float32(b.burnout_per_hour) * p.served_hours
    np.clip(p.burnout, 0.0, 1.0, out=p.burnout)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    elders = week.elders
    nb = world.households.neighbours
    # neighbours as they were before this week's update
    sums = _neighbourhood_sums(*neighbour_rows(nb), p.household, elders, p.trust, week.matched, len(world.households))
    met = tuple(week.met_of(s) for s in ("ngo", "volunteer", "peer", "facility", "time_bank"))
    f32 = np.float32
    c32 = (
        f32(scenario.ngo.quality),
        f32(b.service_quality),
        f32(b.awareness_publicity_rate * pol.publicity),
        f32(b.awareness_word_of_mouth),
        f32(b.awareness_decay),
        f32(b.awareness_help_rate),
        f32(b.satisfaction_rate),
    )
    c64 = (
        float(b.trust_experience_rate * (1.0 + pol.transparency)),
        float(b.trust_experience_rate),
        float(b.trust_neighbour_rate),
    )
    rows = ElderWeek(
        need=week.need,
        remaining=week.remaining,
        asked=week.asked,
        requested=week.requested_hours,
        matched=week.matched,
        met=met,
    )
    state = ElderState(trust=p.trust, awareness=p.awareness, satisfaction=p.satisfaction, unmet_hours=p.unmet_hours)
    _update_elders(elders, p.household, sums, rows, state, c32, c64)
    _update_burnout(p.burnout, p.served_hours, f32(1.0 - b.burnout_recovery), f32(b.burnout_per_hour))


PROCESS = Process(
    name="trust",
    run=run,
    reads=(
        "week.elders",
        "week.asked",
        "week.requested_hours",
        "week.need",
        "week.remaining",
        "week.matched",
        "week.met",
        "persons.trust",
        "persons.awareness",
        "persons.satisfaction",
        "persons.served_hours",
        "persons.burnout",
        "households.neighbours",
        "scenario.behaviour",
        "scenario.policy",
    ),
    writes=("persons.trust", "persons.awareness", "persons.satisfaction", "persons.burnout", "persons.unmet_hours"),
    section="3.12 trust, awareness, satisfaction, burnout",
)
