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
  week (word of mouth), and decays at ``awareness_decay``; being helped makes one aware.
* Satisfaction follows the share of the elder's whole need that was met.
* Burnout grows with hours served and fades at ``burnout_recovery``.
"""

from __future__ import annotations

import numpy as np

from villagesim.population import World
from villagesim.processes.week import Week, neighbour_count_sum, row_total
from villagesim.schema import Scenario

NAME = "trust"


def _elder_neighbourhood_means(world: World, elders: np.ndarray, trust: np.ndarray, helped: np.ndarray) -> list[np.ndarray]:
    """Per elder: the mean trust and the share helped this week (``helped`` is 0/1) over the
    elders of the own and neighbouring households.

    Sums run over elders only, not over the whole person table. The elder counts and the
    counts of elders helped are whole numbers: their neighbourhood sums are exact in any
    order and are worked out over the few households that changed or count
    (:func:`~villagesim.processes.week.neighbour_count_sum`, the same numbers as the product).
    """
    n_hh = len(world.households)
    nb = world.households.neighbours
    hh = world.persons.household[elders]
    hh_n = np.bincount(hh, minlength=n_hh).astype(np.float64)
    cnt = (hh_n + neighbour_count_sum(nb, "trust.elders", hh_n))[hh]
    trust_sum = np.bincount(hh, weights=trust, minlength=n_hh)
    helped_sum = np.bincount(hh, weights=helped, minlength=n_hh)
    means = []
    for hh_sum, nb_sum in (
        (trust_sum, nb @ trust_sum),
        (helped_sum, neighbour_count_sum(nb, "trust.helped", helped_sum)),
    ):
        tot = (hh_sum + nb_sum)[hh]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(cnt > 0, tot / np.maximum(cnt, 1e-12), 0.0)
        means.append(share.astype(np.float32))
    return means


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    elders = week.elders
    # neighbours as they were before this week's update
    nb_trust, nb_helped = _elder_neighbourhood_means(world, elders, p.trust[elders], week.matched.astype(np.float32))

    need = row_total(week.need)
    unmet = row_total(week.remaining)
    p.unmet_hours[elders] = unmet

    # experience of those who asked
    asked = week.asked
    requested = week.requested_hours
    with np.errstate(divide="ignore", invalid="ignore"):
        got = np.where(requested > 0, np.clip(1.0 - unmet / np.maximum(requested, 1e-9), 0.0, 1.0), 0.0)
    # quality of the help received: NGO care at the NGOs' quality, other services at service_quality
    ngo = week.met_of("ngo")
    services = ngo + sum(week.met_of(s) for s in ("volunteer", "peer", "facility", "time_bank"))
    with np.errstate(divide="ignore", invalid="ignore"):
        quality = np.where(
            services > 0,
            (ngo * scenario.ngo.quality + (services - ngo) * b.service_quality) / np.maximum(services, 1e-12),
            b.service_quality,
        )
    outcome = (got * quality).astype(np.float32)
    trust = p.trust[elders]
    rate = np.where(outcome > trust, b.trust_experience_rate * (1.0 + pol.transparency), b.trust_experience_rate)
    trust = np.where(asked, trust + rate * (outcome - trust), trust)

    # neighbours (elders of own and neighbouring households)
    trust = trust + b.trust_neighbour_rate * (nb_trust - trust)
    p.trust[elders] = np.clip(trust, 0.0, 1.0)

    aw = p.awareness[elders]
    aw = aw + (b.awareness_publicity_rate * pol.publicity + b.awareness_word_of_mouth * nb_helped) * (1.0 - aw)
    aw = aw - b.awareness_decay * aw
    aw = np.where(week.matched, aw + b.trust_experience_rate * (1.0 - aw), aw)
    p.awareness[elders] = np.clip(aw, 0.0, 1.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        met_share = np.where(need > 0, 1.0 - unmet / np.maximum(need, 1e-9), 1.0)
    sat = p.satisfaction[elders]
    p.satisfaction[elders] = np.where(need > 0, sat + b.satisfaction_rate * (met_share - sat), sat)

    p.burnout *= np.float32(1.0 - b.burnout_recovery)
    p.burnout += np.float32(b.burnout_per_hour) * p.served_hours
    np.clip(p.burnout, 0.0, 1.0, out=p.burnout)
