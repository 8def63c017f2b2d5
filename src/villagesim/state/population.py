"""The person table and the synthetic villages it lives in.

:class:`World` holds all state of a run as arrays, for all villages together:

* :class:`Persons`: one numpy array per attribute, one row per registered villager (alive or
  dead, at home or away). Rows never move, so a row number identifies a person for the
  whole run; the Mesa ``Elder``/``Volunteer`` agents are views on a row.
* :class:`Households`: location (km, village-local coordinates), hamlet and village of each
  household, and the neighbour graph (households within a radius) as a sparse matrix.
* :class:`Villages`: per-village attributes (size, remoteness, committee capacity).

:func:`build_world` generates the villages from a scenario's ``[population]``,
``[hollowing_out]`` and ``[health]`` sections with one random stream, vectorised: no
Python loop over persons or households.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from villagesim.config.schema import Scenario
from villagesim.constants import ELDER_AGE

RESIDENT, AWAY, DEAD = 0, 1, 2
"""Values of ``Persons.status``."""

NOT_ENROLLED, ENROLLED, QUIT = 0, 1, 2
"""Values of ``Persons.enrolment``: never volunteered, registered volunteer (has volunteered),
quit after a dispute over an accident (never volunteers again)."""

"""Age from which a villager counts as an elder (MODEL.md §2)."""

VILLAGE_SPACING_KM = 1000.0
"""Offset between villages in the neighbour search so that ties never cross villages."""


@dataclass
class Persons:
    """Person state: one array per attribute, one row per registered villager."""

    village: np.ndarray  # int32: village index
    household: np.ndarray  # int32: household index
    lineage: np.ndarray  # int32: family line (parents' and adult children's households share it)
    age: np.ndarray  # float32: years
    female: np.ndarray  # bool
    status: np.ndarray  # int8: RESIDENT, AWAY or DEAD
    care_level: np.ndarray  # int8: 0 none .. 4 critical
    digital: np.ndarray  # bool: can use a smartphone platform alone
    trained: np.ndarray  # bool: can give professional care
    party: np.ndarray  # bool: party member
    altruism: np.ndarray  # float32 0..1
    opportunity_cost: np.ndarray  # float32 0..1 (value of time in paid work)
    availability: np.ndarray  # float32 hours per week offered in an active week
    burnout: np.ndarray  # float32 0..1
    active: np.ndarray  # bool: volunteered this week
    trust: np.ndarray  # float32 0..1: trust in the village committee
    awareness: np.ndarray  # float32 0..1: awareness of mutual aid
    satisfaction: np.ndarray  # float32 0..1
    tb_balance: np.ndarray  # float32 credit-hours in the time bank
    tb_trust: np.ndarray  # float32 0..1: trust that time-bank credit will be honoured
    alarm: np.ndarray  # bool: wears an emergency alarm
    need_hours: np.ndarray  # float32: this week's need (elders; 0 otherwise)
    unmet_hours: np.ndarray  # float32: this week's unmet need (elders; 0 otherwise)
    served_hours: np.ndarray  # float32: hours served as a volunteer this week
    lottery: np.ndarray  # float32 0..1, fixed for life: who is first in line when a lever covers a share
    fear: np.ndarray  # float32 0..1: fear of blame after disputes over accidents nearby
    enrolment: np.ndarray  # int8: NOT_ENROLLED, ENROLLED (has volunteered) or QUIT (left after a dispute)

    def __len__(self) -> int:
        return len(self.age)

    @property
    def resident(self) -> np.ndarray:
        """Boolean mask of villagers living in the village now."""
        return self.status == RESIDENT

    def nbytes(self) -> int:
        """Memory held by the person arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self))


@dataclass
class Households:
    """Households: where they are and who their neighbours are."""

    village: np.ndarray  # int32
    hamlet: np.ndarray  # int32: global hamlet index
    x: np.ndarray  # float32 km, village-local
    y: np.ndarray  # float32 km, village-local
    neighbours: sp.csr_matrix  # float64 households x households, 1 where within the neighbour radius

    def __len__(self) -> int:
        return len(self.village)


@dataclass
class Villages:
    """Per-village attributes."""

    size: np.ndarray  # int32: registered persons at the start
    remoteness_km: np.ndarray  # float32: distance to the township seat
    angle: np.ndarray  # float32: bearing from the township seat (for the county map)
    hamlet_start: np.ndarray  # int32: first global hamlet index of each village
    hamlet_count: np.ndarray  # int32
    hamlet_x: np.ndarray  # float32 per global hamlet
    hamlet_y: np.ndarray  # float32 per global hamlet

    def __len__(self) -> int:
        return len(self.size)


@dataclass
class World:
    """Everything that varies in a run, as arrays."""

    persons: Persons
    households: Households
    villages: Villages
    institutions: Any = None  # villagesim.state.institutions.Institutions, attached by the model


# ---------------------------------------------------------------------------- helpers
def _rank_within(groups: np.ndarray) -> np.ndarray:
    """For an array sorted by group, the 0-based position of each element within its group."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    counts = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, counts)


def _band3(age: np.ndarray) -> np.ndarray:
    """Elder age band index: 0 for 60-69, 1 for 70-79, 2 for 80+."""
    # two comparisons instead of a floor division (several times faster; the same bands:
    # age - 60 is exact in floating point for the ages that matter)
    return (age >= 70.0).astype(np.int64) + (age >= 80.0)


def _pair_up(candidates: np.ndarray, village: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair candidates of the same village by closeness in age.

    Returns (first, second) index arrays of couples; an odd one out per village is left.
    """
    if len(candidates) == 0:
        return candidates, candidates
    order = candidates[np.lexsort((age[candidates], village[candidates]))]
    rank = _rank_within(village[order])
    first = order[rank % 2 == 0]
    second_pos = np.flatnonzero(rank % 2 == 0) + 1
    ok = second_pos < len(order)
    ok[ok] = village[order[second_pos[ok]]] == village[first[ok]]
    return first[ok], order[second_pos[ok]]


def _random_in_group(
    rng: np.random.Generator,
    group_of_item: np.ndarray,
    group_members: np.ndarray,
    group_start: np.ndarray,
    group_count: np.ndarray,
) -> np.ndarray:
    """For each item, a random member of its group (-1 where the group is empty)."""
    count = group_count[group_of_item]
    pick = np.floor(rng.random(len(group_of_item)) * np.maximum(count, 1)).astype(np.int64)
    out = np.full(len(group_of_item), -1, dtype=np.int64)
    ok = count > 0
    out[ok] = group_members[group_start[group_of_item[ok]] + pick[ok]]
    return out


def _groups(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members sorted by key, with start and count per key value."""
    order = np.argsort(keys, kind="stable")
    count = np.bincount(keys, minlength=n_groups)
    start = np.r_[0, np.cumsum(count)[:-1]]
    return order, start, count


def beta_with_mean(rng: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    """Beta draws with a given mean (clipped away from 0 and 1)."""
    m = float(np.clip(mean, 1e-3, 1 - 1e-3))
    return rng.beta(m * concentration, (1 - m) * concentration, n).astype(np.float32)


# ---------------------------------------------------------------------------- build
def build_world(scenario: Scenario, rng: np.random.Generator) -> World:
    """Generate the villages, households and villagers of a scenario.

    Args:
        scenario: the validated scenario.
        rng: the run's ``population`` stream.
    """
    pop = scenario.population
    hol = scenario.hollowing_out
    health = scenario.health
    beh = scenario.behaviour

    n_v = pop.villages
    if pop.village_size_sigma > 0:
        z = rng.standard_normal(n_v)
        raw = pop.residents_per_village * np.exp(pop.village_size_sigma * z - pop.village_size_sigma**2 / 2)
        size = np.maximum(np.rint(raw), 20).astype(np.int32)
    else:
        size = np.full(n_v, pop.residents_per_village, dtype=np.int32)
    n = int(size.sum())
    village = np.repeat(np.arange(n_v, dtype=np.int32), size)

    # ages from the registered age pyramid
    weights = np.asarray(pop.age_band_weights, dtype=float)
    band = rng.choice(len(weights), size=n, p=weights / weights.sum())
    age = band * 5.0 + rng.random(n) * 5.0
    old = band == len(weights) - 1
    age[old] = 85.0 + np.minimum(rng.exponential(4.0, old.sum()), 20.0)
    age = age.astype(np.float32)
    female = rng.random(n) < 0.5

    # ---------------- households
    elder = age >= ELDER_AGE
    adult = (age >= 18) & ~elder
    child = age < 18
    married_p = np.asarray(pop.married_share_by_band)[_band3(age)]
    married_elder = elder & (rng.random(n) < married_p)
    e1, e2 = _pair_up(np.flatnonzero(married_elder), village, age)
    household = np.full(n, -1, dtype=np.int64)
    next_id = 0
    household[e1] = np.arange(next_id, next_id + len(e1))
    household[e2] = household[e1]
    next_id += len(e1)
    single_elders = np.flatnonzero(elder & (household < 0))
    household[single_elders] = np.arange(next_id, next_id + len(single_elders))
    next_id += len(single_elders)
    n_elder_hh = next_id

    married_adult = adult & (age >= 22) & (rng.random(n) < 0.85)
    a1, a2 = _pair_up(np.flatnonzero(married_adult), village, age)
    household[a1] = np.arange(next_id, next_id + len(a1))
    household[a2] = household[a1]
    next_id += len(a1)
    single_adults = np.flatnonzero(adult & (household < 0))
    household[single_adults] = np.arange(next_id, next_id + len(single_adults))
    next_id += len(single_adults)
    wa_ids = np.arange(n_elder_hh, next_id)

    hh_village = np.zeros(next_id, dtype=np.int64)
    hh_village[household[household >= 0]] = village[household >= 0]

    # children live in a random working-age household of their village (else with elders)
    wa_members, wa_start, wa_count = _groups(hh_village[wa_ids], n_v)
    kids = np.flatnonzero(child)
    host = _random_in_group(rng, village[kids], wa_ids[wa_members], wa_start, wa_count)
    el_ids = np.arange(n_elder_hh)
    el_members, el_start, el_count = _groups(hh_village[el_ids], n_v)
    fallback = host < 0
    host[fallback] = _random_in_group(rng, village[kids[fallback]], el_ids[el_members], el_start, el_count)
    orphan = host < 0  # a village with no adults at all: a household of their own
    host[orphan] = np.arange(next_id, next_id + orphan.sum())
    if orphan.any():
        hh_village = np.r_[hh_village, village[kids[orphan]]]
        next_id += int(orphan.sum())
    household[kids] = host

    # lineage: adult-child households linked to an elder household of the same village
    lineage_of_hh = np.arange(next_id)
    p_link = np.zeros(n_v)
    n_wa_v = np.bincount(hh_village[wa_ids], minlength=n_v)
    n_el_v = np.bincount(hh_village[el_ids], minlength=n_v)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_link = np.where(n_wa_v > 0, np.minimum(1.0, n_el_v * pop.children_households_mean / np.maximum(n_wa_v, 1)), 0.0)
    linked = rng.random(len(wa_ids)) < p_link[hh_village[wa_ids]]
    parent = _random_in_group(rng, hh_village[wa_ids], el_ids[el_members], el_start, el_count)
    linked &= parent >= 0
    lineage_of_hh[wa_ids[linked]] = parent[linked]

    # co-residence: a share of elder households live together with one of their children's households
    cores = rng.random(n_elder_hh) < pop.coresidence_share
    # the linked child households of each elder household, first one taken
    child_of = np.full(n_elder_hh, -1, dtype=np.int64)
    linked_ids = wa_ids[linked]
    order = np.argsort(parent[linked], kind="stable")
    par_sorted = parent[linked][order]
    first = np.r_[True, par_sorted[1:] != par_sorted[:-1]] if len(par_sorted) else np.zeros(0, bool)
    child_of[par_sorted[first]] = linked_ids[order][first]
    merge = cores & (child_of >= 0)
    merged_into = np.arange(next_id)
    merged_into[child_of[merge]] = np.flatnonzero(merge)
    household = merged_into[household]

    # compact household ids
    used, household = np.unique(household, return_inverse=True)
    household = household.astype(np.int32)
    lineage = lineage_of_hh[used][household].astype(np.int32)
    n_hh = len(used)
    hh_village = hh_village[used]

    # ---------------- geography
    hamlet_count = np.maximum(1, np.rint(pop.hamlets_per_village * size / pop.residents_per_village)).astype(np.int32)
    hamlet_count = np.minimum(hamlet_count, 4 * pop.hamlets_per_village)
    hamlet_start = np.r_[0, np.cumsum(hamlet_count)[:-1]].astype(np.int32)
    n_hamlets = int(hamlet_count.sum())
    r = pop.village_radius_km * np.sqrt(rng.random(n_hamlets))
    theta = rng.random(n_hamlets) * 2 * np.pi
    hamlet_x = (r * np.cos(theta)).astype(np.float32)
    hamlet_y = (r * np.sin(theta)).astype(np.float32)
    hh_hamlet = hamlet_start[hh_village] + np.floor(rng.random(n_hh) * hamlet_count[hh_village]).astype(np.int32)
    hh_x = (hamlet_x[hh_hamlet] + rng.normal(0, pop.hamlet_radius_km, n_hh)).astype(np.float32)
    hh_y = (hamlet_y[hh_hamlet] + rng.normal(0, pop.hamlet_radius_km, n_hh)).astype(np.float32)
    neighbours = neighbour_graph(hh_x, hh_y, hh_village, beh.neighbour_radius_km, beh.max_neighbours)

    remoteness = (pop.remoteness_km_min + (pop.remoteness_km_max - pop.remoteness_km_min) * rng.random(n_v)).astype(np.float32)
    angle = (rng.random(n_v) * 2 * np.pi).astype(np.float32)

    # ---------------- status: some working-age villagers are already away
    status = np.full(n, RESIDENT, dtype=np.int8)
    can_be_away = (age >= hol.migration_min_age) & (age < ELDER_AGE)
    status[can_be_away & (rng.random(n) < hol.initial_away_share)] = AWAY

    # ---------------- health
    band3 = _band3(age)
    disabled = elder & (rng.random(n) < np.asarray(health.adl_prevalence_by_band)[band3])
    severity = np.asarray(health.severity_shares, dtype=float)
    care_level = np.zeros(n, dtype=np.int8)
    care_level[disabled] = 1 + rng.choice(4, size=int(disabled.sum()), p=severity / severity.sum())

    # ---------------- traits
    digital = np.where(elder, rng.random(n) < np.asarray(pop.digital_literacy_by_band)[band3], rng.random(n) < 0.9)
    digital &= age >= 12
    grown = age >= 18
    trained = grown & (rng.random(n) < pop.trained_share)
    party = grown & (rng.random(n) < pop.party_member_share)
    opp_mean = np.where(elder, beh.opportunity_cost_young_old, beh.opportunity_cost_working_age)
    avail_mean = np.where(elder, beh.availability_hours_young_old, beh.availability_hours_working_age)
    altruism, opportunity_cost, availability, trust, awareness = draw_traits(scenario, rng, opp_mean, avail_mean, n)

    zeros = np.zeros(n, dtype=np.float32)
    persons = Persons(
        village=village,
        household=household,
        lineage=lineage,
        age=age,
        female=female,
        status=status,
        care_level=care_level,
        digital=digital,
        trained=trained,
        party=party,
        altruism=altruism,
        opportunity_cost=opportunity_cost,
        availability=availability,
        burnout=zeros.copy(),
        active=np.zeros(n, dtype=bool),
        trust=trust,
        awareness=awareness,
        satisfaction=np.full(n, 0.5, dtype=np.float32),
        tb_balance=zeros.copy(),
        tb_trust=np.full(n, 0.5, dtype=np.float32),
        alarm=np.zeros(n, dtype=bool),
        need_hours=zeros.copy(),
        unmet_hours=zeros.copy(),
        served_hours=zeros.copy(),
        lottery=rng.random(n, dtype=np.float32),
        fear=zeros.copy(),
        enrolment=np.zeros(n, dtype=np.int8),
    )
    households = Households(
        village=hh_village.astype(np.int32), hamlet=hh_hamlet.astype(np.int32), x=hh_x, y=hh_y, neighbours=neighbours
    )
    villages = Villages(
        size=size,
        remoteness_km=remoteness,
        angle=angle,
        hamlet_start=hamlet_start,
        hamlet_count=hamlet_count,
        hamlet_x=hamlet_x,
        hamlet_y=hamlet_y,
    )
    return World(persons=persons, households=households, villages=villages)


def newborn_traits(scenario: Scenario, rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    """The drawn traits of ``k`` newborns, as :func:`build_world` draws them for a child
    (working-age means for opportunity cost and availability, the initial trust and
    awareness), in this order: sex, altruism, opportunity cost, availability, trust,
    awareness, lottery."""
    beh = scenario.behaviour
    female = rng.random(k) < 0.5
    drawn = draw_traits(scenario, rng, beh.opportunity_cost_working_age, beh.availability_hours_working_age, k)
    names = ("altruism", "opportunity_cost", "availability", "trust", "awareness")
    return {"female": female, **dict(zip(names, drawn, strict=True)), "lottery": rng.random(k, dtype=np.float32)}


def draw_traits(
    scenario: Scenario, rng: np.random.Generator, opp_mean: Any, avail_mean: Any, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Altruism, opportunity cost, availability, trust and awareness of ``n`` persons, drawn
    in this order (the order fixes the stream): the one rule for the villages as built
    (:func:`build_world`) and for newborns (:func:`newborn_traits`). ``opp_mean`` and
    ``avail_mean`` are per person or one value."""
    pop, beh = scenario.population, scenario.behaviour
    altruism = rng.beta(beh.altruism_alpha, beh.altruism_beta, n).astype(np.float32)
    opportunity_cost = np.clip(opp_mean + rng.normal(0, 0.15, n), 0, 1).astype(np.float32)
    availability = (rng.gamma(2.0, 1.0, n) * avail_mean / 2.0).astype(np.float32)
    trust = beta_with_mean(rng, pop.initial_trust_mean, 10.0, n)
    awareness = beta_with_mean(rng, pop.initial_awareness_mean, 6.0, n)
    return altruism, opportunity_cost, availability, trust, awareness


def newborns(world: World, scenario: Scenario, rng: np.random.Generator, household: np.ndarray, status: np.ndarray) -> None:
    """Append newborns (age 0, care level 0) to the person table: one per entry of
    ``household`` (int32) with its ``status`` (int8); village and family line are the
    household's, the drawn traits come from :func:`newborn_traits`, the rest as a child of
    :func:`build_world` starts (no smartphone, training or party membership, no state of
    the week). Rows are appended, so earlier row numbers keep their persons; every column
    is reallocated once per call (no loop over persons)."""
    k = len(household)
    if k == 0:
        return
    p = world.persons
    traits = newborn_traits(scenario, rng, k)
    # the family line of a household: that of any member (all members share it)
    line = np.zeros(len(world.households), dtype=np.int32)
    line[p.household] = p.lineage
    zeros = np.zeros(k, dtype=np.float32)
    new = {
        "village": world.households.village[household].astype(np.int32),
        "household": household.astype(np.int32),
        "lineage": line[household],
        "age": zeros,
        "status": status.astype(np.int8),
        "care_level": np.zeros(k, dtype=np.int8),
        "digital": np.zeros(k, dtype=bool),
        "trained": np.zeros(k, dtype=bool),
        "party": np.zeros(k, dtype=bool),
        "burnout": zeros,
        "active": np.zeros(k, dtype=bool),
        "satisfaction": np.full(k, 0.5, dtype=np.float32),
        "tb_balance": zeros,
        "tb_trust": np.full(k, 0.5, dtype=np.float32),
        "alarm": np.zeros(k, dtype=bool),
        "need_hours": zeros,
        "unmet_hours": zeros,
        "served_hours": zeros,
        "fear": zeros,
        "enrolment": np.zeros(k, dtype=np.int8),
        **traits,
    }
    for f in fields(p):
        old = getattr(p, f.name)
        setattr(p, f.name, np.concatenate([old, new[f.name].astype(old.dtype)]))


def neighbour_graph(x: np.ndarray, y: np.ndarray, village: np.ndarray, radius_km: float, k: int) -> sp.csr_matrix:
    """Sparse 0/1 matrix of households within ``radius_km`` (at most ``k`` nearest), same village only."""
    n = len(x)
    if n < 2:
        return sp.csr_matrix((n, n), dtype=np.float64)
    pts = np.c_[x.astype(np.float64) + village * VILLAGE_SPACING_KM, y.astype(np.float64)]
    tree = cKDTree(pts)
    kk = min(k + 1, n)
    dist, idx = tree.query(pts, k=kk, distance_upper_bound=radius_km)
    rows = np.repeat(np.arange(n), kk)
    cols = idx.ravel()
    ok = (cols < n) & (cols != rows)
    m = sp.csr_matrix((np.ones(ok.sum(), dtype=np.float64), (rows[ok], cols[ok])), shape=(n, n))
    # float64 entries: the products with float64 per-household sums need no up-cast of the
    # matrix at every step (which doubled the time of each sparse product)
    return ((m + m.T) > 0).astype(np.float64).tocsr()
