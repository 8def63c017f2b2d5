"""Process 11: trust, awareness, satisfaction and burnout.

Reads: ``week.elders``, ``week.asked``, ``week.requested_hours``, ``week.need``,
``week.remaining``, ``week.matched``; ``trust``, ``awareness``, ``satisfaction``,
``served_hours``, ``burnout``; the neighbour graph; ``[behaviour]``; levers
``publicity``, ``transparency``.
Writes: ``trust``, ``awareness``, ``satisfaction`` (resident elders), ``burnout``
(everyone), ``unmet_hours``.

* Trust moves toward what an elder who asked experienced (share of the request met, times
  ``service_quality``) at ``trust_experience_rate`` (faster upward with ``transparency``,
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
from villagesim.processes.week import Week, row_total
from villagesim.schema import Scenario

NAME = "trust"


class _ElderNeighbourhoods:
    """Means over the elders of each elder's own and neighbouring households.

    The count of elders per neighbourhood is computed once a step and shared by every mean
    (trust, help received); sums run over elders only, not over the whole person table.
    """

    def __init__(self, world: World, elders: np.ndarray) -> None:
        self.n_hh = len(world.households)
        self.nb = world.households.neighbours
        self.hh = world.persons.household[elders]
        hh_n = np.bincount(self.hh, minlength=self.n_hh).astype(np.float64)
        self.cnt = (hh_n + self.nb @ hh_n)[self.hh]

    def mean(self, per_elder: np.ndarray) -> np.ndarray:
        """Per elder: mean of ``per_elder`` over the elders of the own and neighbouring households."""
        hh_sum = np.bincount(self.hh, weights=per_elder, minlength=self.n_hh)
        tot = (hh_sum + self.nb @ hh_sum)[self.hh]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(self.cnt > 0, tot / np.maximum(self.cnt, 1e-12), 0.0)
        return share.astype(np.float32)


def run(world: World, scenario: Scenario, rng: np.random.Generator, week: Week) -> None:
    del rng  # deterministic
    p = world.persons
    b = scenario.behaviour
    pol = scenario.policy
    elders = week.elders
    neighbourhoods = _ElderNeighbourhoods(world, elders)

    need = row_total(week.need)
    unmet = row_total(week.remaining)
    p.unmet_hours[elders] = unmet

    # experience of those who asked
    asked = week.asked
    requested = week.requested_hours
    with np.errstate(divide="ignore", invalid="ignore"):
        got = np.where(requested > 0, np.clip(1.0 - unmet / np.maximum(requested, 1e-9), 0.0, 1.0), 0.0)
    outcome = (got * b.service_quality).astype(np.float32)
    trust = p.trust[elders]
    nb_trust = neighbourhoods.mean(trust)  # neighbours as they were before this week's update
    rate = np.where(outcome > trust, b.trust_experience_rate * (1.0 + pol.transparency), b.trust_experience_rate)
    trust = np.where(asked, trust + rate * (outcome - trust), trust)

    # neighbours (elders of own and neighbouring households)
    trust = trust + b.trust_neighbour_rate * (nb_trust - trust)
    p.trust[elders] = np.clip(trust, 0.0, 1.0)

    nb_helped = neighbourhoods.mean(week.matched.astype(np.float32))
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
