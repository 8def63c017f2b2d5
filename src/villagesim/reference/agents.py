"""Agents of the per-agent reference engine: one Python object per villager.

Written the way a Mesa user writes a model: every villager is a :class:`Person` agent with
its own state in attributes and one method per process of MODEL.md §3; the committee of a
village is a :class:`Committee` agent that matches requests with plain loops. Households
are plain objects that know their members and their neighbouring households.

The rules are those of the ODD (the docstrings of :mod:`villagesim.processes`), written
again here from the text, person by person; nothing here calls the vectorised core. Each
method says which process it implements. Every random number comes from the model's
seeded ``random`` (Mesa's ``model.random``, itself seeded from ``rng=``).

Adding a lever: read it from ``self.model.scenario`` in the method of the process it acts
on (levers are read every step, so interventions work), and add a case to the
equivalence tests.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa

from villagesim.constants import ELDER_AGE, HOURS_PER_WEEK, WEEKS_PER_YEAR

# For type hints only, never at run time: reference.model imports this module, so a real import
# would close a circle (lint-imports and tests/test_architecture.py leave TYPE_CHECKING imports out).
if TYPE_CHECKING:  # pragma: no cover
    from villagesim.reference.model import ReferenceModel

RESIDENT, AWAY, DEAD = 0, 1, 2
WEEKS = float(WEEKS_PER_YEAR)
MAX_LEVEL = 4
DAILY, MEALS, COMPANION, PROFESSIONAL = range(4)
GENERAL = (DAILY, MEALS, COMPANION)


def logistic(x: float) -> float:
    """The logistic function, safe for large arguments."""
    x = max(-40.0, min(40.0, x))
    return 1.0 / (1.0 + math.exp(-x))


def weekly(annual: float) -> float:
    """Weekly probability with the same annual probability."""
    return 1.0 - (1.0 - annual) ** (1.0 / WEEKS)


def band(age: float) -> int:
    """Elder age band: 0 for 60-69, 1 for 70-79, 2 for 80+."""
    return min(2, max(0, int((age - 60.0) // 10.0)))


def death_rate(age: float, female: bool, scenario) -> float:
    """Death rate per person-year before the care level: the published rate of the sex and
    5-year band 60-64 .. 85-89, the 60-64 rate falling below 60 and the 85-89 rate rising
    from 90 by ``gompertz_slope`` per year, times the rural adjustment."""
    h = scenario.health
    rates = h.death_rate_female_by_band if female else h.death_rate_male_by_band
    b = min(5, max(0, int(math.floor((age - 60.0) / 5.0))))
    outside = age - min(max(age, 60.0), 90.0)
    return h.rural_mortality_adjustment * rates[b] / 1000.0 * math.exp(h.gompertz_slope * outside)


def expected_multiplier(age: float, scenario) -> float:
    """Mean care-level multiplier of the age band under the initial prevalence: level 0's
    under 60; ``(1 - prev) * m0 + prev * (severity-weighted mean of m1..m4)`` from 60, with
    the prevalence of 60-69, 70-79 or 80+."""
    h = scenario.health
    m = h.mortality_multiplier_by_level
    if age < 60.0:
        return m[0]
    prev = h.adl_prevalence_by_band[band(age)]
    disabled = sum(w * x for w, x in zip(h.severity_shares, m[1:], strict=True)) / sum(h.severity_shares)
    return (1.0 - prev) * m[0] + prev * disabled


def fertility(age: float, scenario) -> float:
    """Yearly birth rate of a woman of this age: the TFR times her 5-year band's share of
    the schedule over 5 (0 outside 15-49)."""
    if not 15.0 <= age < 50.0:
        return 0.0
    b = scenario.births
    return b.total_fertility_rate * b.age_schedule[int((age - 15.0) // 5.0)] / sum(b.age_schedule) / 5.0


class Household:
    """A household: where it is and who lives in it (not an agent: it takes no decisions).

    Attributes:
        members: the persons registered in the household (alive).
        neighbours: households within the neighbour radius.
        lineage: the family line (parents' and adult children's households share it).
    """

    __slots__ = ("hid", "village", "hamlet", "x", "y", "lineage", "members", "neighbours", "n_residents", "tally")

    def __init__(self, hid: int, village: int, hamlet: int, x: float, y: float) -> None:
        self.hid = hid
        self.village = village
        self.hamlet = hamlet
        self.x = x
        self.y = y
        self.lineage = -1
        self.members: list[Person] = []
        self.neighbours: list[Household] = []
        self.n_residents = 0
        self.tally: dict[str, float] = {}

    def count_residents(self) -> int:
        """Count (and remember) the members living in the village now."""
        self.n_residents = sum(1 for m in self.members if m.status == RESIDENT)
        return self.n_residents

    def neighbourhood_mean(self, num: str, den: str) -> float:
        """Mean over own and neighbouring households: sum of ``tally[num]`` over sum of ``tally[den]``."""
        n = self.tally[num]
        d = self.tally[den]
        for other in self.neighbours:
            n += other.tally[num]
            d += other.tally[den]
        return n / d if d > 0 else 0.0


class Person(mesa.Agent):
    """One villager: a child, a working-age adult, or an elder (60+), at home or away.

    The same person volunteers at 62 and needs care at 75, so roles are properties of the
    state (``is_elder``, ``is_candidate``), not classes.
    """

    model: ReferenceModel

    def __init__(self, model: ReferenceModel, household: Household, **state) -> None:
        super().__init__(model)
        self.household = household
        household.members.append(self)
        self.age: float = state["age"]
        self.female: bool = bool(state["female"])
        self.status: int = state["status"]
        self.care_level: int = state["care_level"]
        self.trained: bool = state["trained"]
        self.party: bool = state["party"]
        self.altruism: float = state["altruism"]
        self.opportunity_cost: float = state["opportunity_cost"]
        self.availability: float = state["availability"]
        self.trust: float = state["trust"]
        self.awareness: float = state["awareness"]
        self.satisfaction: float = state["satisfaction"]
        self.tb_trust: float = state["tb_trust"]
        self.lottery: float = state["lottery"]
        self.burnout = 0.0
        self.active = False
        self.alarm = False
        self.served_hours = 0.0
        self.unmet_hours = 0.0  # last week's unmet need (resident elders; 0 otherwise)
        self.hours_left = 0.0
        self.free_hours = 0.0  # this week's hours left to volunteer after work and family care
        self.candidate = False
        self._reset_week()

    def _reset_week(self) -> None:
        self.need = [0.0, 0.0, 0.0, 0.0]
        self.remaining = [0.0, 0.0, 0.0, 0.0]
        self.met = {"family": 0.0, "volunteer": 0.0, "peer": 0.0}
        self.alone = False
        self.asked = False
        self.requested = 0.0
        self.handled = False
        self.matched = False

    # ------------------------------------------------------------------ roles
    @property
    def is_resident(self) -> bool:
        return self.status == RESIDENT

    @property
    def is_elder(self) -> bool:
        """A resident aged 60+."""
        return self.status == RESIDENT and self.age >= ELDER_AGE

    @property
    def is_working_age(self) -> bool:
        """A resident aged 18-59."""
        return self.status == RESIDENT and 18.0 <= self.age < ELDER_AGE

    @property
    def hamlet(self) -> int:
        return self.household.hamlet

    def die(self) -> None:
        """Leave the model for good."""
        self.status = DEAD
        self.active = False
        self.household.members.remove(self)
        self.remove()

    # ------------------------------------------------------------------ 1. demography
    def demography(self) -> None:
        """Die (published rate of band and sex x rural adjustment x care-level multiplier over
        the band's mean multiplier under the initial prevalence x (1 + unmet-need multiplier x
        last week's unmet hours)); leave or come back; give birth (``model.mothers``). The
        model has aged everyone before."""
        s = self.model.scenario
        h, hol = s.health, s.hollowing_out
        u_death, u_move, u_birth = self.random.random(), self.random.random(), self.random.random()
        hazard = death_rate(self.age, self.female, s) * h.mortality_multiplier_by_level[self.care_level]
        hazard /= expected_multiplier(self.age, s)
        hazard *= 1.0 + h.unmet_need_death_multiplier * self.unmet_hours
        if u_death < 1.0 - math.exp(-hazard / WEEKS):
            if self.status == RESIDENT:
                self.model.count("deaths")
            self.die()
            return
        if self.status == RESIDENT:
            if hol.migration_min_age <= self.age < hol.migration_max_age + 1 and u_move < weekly(hol.outmigration_rate):
                self.status = AWAY
                self.active = False
                self.model.count("outmigrations")
        elif self.status == AWAY and self.age >= hol.return_min_age and u_move < weekly(hol.return_rate):
            self.status = RESIDENT
            self.model.count("returns")
        if self.female and u_birth < 1.0 - math.exp(-fertility(self.age, s) / WEEKS):
            self.model.mothers.append(self)

    # ------------------------------------------------------------------ 2. health
    def health_transition(self) -> None:
        """Care level: onset (0 -> 1), progression (1-3 -> +1), recovery (1 -> 0), by age band;
        onset and progression times 1 + the unmet-need multiplier x last week's unmet hours (at most 1)."""
        h = self.model.scenario.health
        u = self.random.random()
        b = band(self.age)
        worse = 1.0 + h.unmet_need_worsening_multiplier * self.unmet_hours
        progression = min(weekly(h.progression_rate_by_band[b]) * worse, 1.0)
        if self.care_level == 0:
            if u < min(weekly(h.onset_rate_by_band[b]) * worse, 1.0):
                self.care_level = 1
        elif self.care_level < MAX_LEVEL:
            if u < progression:
                self.care_level += 1
            elif self.care_level == 1 and u < progression + weekly(h.recovery_rate):
                self.care_level = 0

    def health_emergency(self) -> None:
        """Maybe an emergency; answered in time or late (alone, with others, or with an alarm)."""
        s = self.model.scenario
        h = s.health
        u_emergency, u_answer, u_outcome = self.random.random(), self.random.random(), self.random.random()
        alone = self.household.n_residents == 1  # who lived with the elder before this week's emergencies
        self.alarm = (alone or self.care_level >= 2) and self.lottery < s.policy.wearable_alarms
        if u_emergency >= h.emergency_rate_by_level[self.care_level]:
            return
        self.model.count("emergencies")
        answer_p = h.answer_prob_alone if alone else h.answer_prob_with_others
        if self.alarm:
            answer_p = max(answer_p, h.answer_prob_alarm)
        if u_answer < answer_p:
            self.model.count("_answer_hours_sum", h.answer_hours_in_time)
            return
        self.model.count("emergencies_late")
        self.model.count("_answer_hours_sum", h.answer_hours_late)
        if u_outcome < h.unanswered_death_prob:
            self.model.count("deaths")
            self.die()
        elif u_outcome < h.unanswered_death_prob + h.unanswered_worsen_prob:
            self.care_level = min(self.care_level + 1, MAX_LEVEL)

    # ------------------------------------------------------------------ 3. need
    def assess_need(self) -> None:
        """This week's need in hours: daily living, meals (by care level), companionship, professional."""
        c = self.model.scenario.care
        self._reset_week()
        self.alone = self.household.n_residents == 1
        lv = self.care_level
        self.need = [
            c.daily_living_hours_by_level[lv],
            c.meals_hours_by_level[lv],
            c.companionship_hours_alone if self.alone else c.companionship_hours_not_alone,
            c.professional_hours_by_level[lv],
        ]
        self.remaining = list(self.need)

    # ------------------------------------------------------------------ 4. family
    def week_budget(self) -> float:
        """Hours of the week free for work and care: 168 less sleep and self-care, less paid
        work for a working-age adult (at least 0)."""
        c = self.model.scenario.care
        free = HOURS_PER_WEEK - c.sleep_self_care_hours
        if self.is_working_age:
            free -= c.paid_work_hours_working_age
        return max(free, 0.0)

    def family_contribution(self) -> float:
        """Hours this person can give to elders of the household this week (at most their
        budget): a working-age adult's, or an elder's at level 0, a share of it at level 1,
        none from level 2."""
        c = self.model.scenario.care
        if self.is_working_age:
            return min(c.coresident_adult_care_hours, self.week_budget())
        if self.is_elder and self.care_level == 0:
            return min(c.spouse_care_hours, self.week_budget())
        if self.is_elder and self.care_level == 1:
            return min(c.spouse_care_hours * c.carer_share_at_level_1, self.week_budget())
        return 0.0

    def nearby_contribution(self) -> float:
        """Hours a working-age adult can give to elders of their family line elsewhere in
        the village (at most what their budget leaves after their own household)."""
        if not self.is_working_age:
            return 0.0
        c = self.model.scenario.care
        return min(c.nearby_child_care_hours, self.week_budget() - self.family_contribution())

    def budget_week(self) -> None:
        """Family care drawn first: the hours counted for it (co-resident hours times the
        share of the household's capacity its elders received, at most 1; nearby hours where
        the line has an elder in another household), the rest of the budget left to volunteer."""
        hh = self.household
        capacity = hh.tally["family_capacity"]
        used = min(hh.tally["family_received"] / capacity, 1.0) if capacity > 0 else 0.0
        family = self.family_contribution() * used
        if self.model.lineage_tally.get(hh.lineage, {}).get("elders", 0) > hh.tally["elders_here"]:
            family += self.nearby_contribution()
        self.free_hours = max(self.week_budget() - family, 0.0) if self.is_resident else 0.0

    def receive_family_care(self) -> None:
        """Co-resident relatives (other than oneself) and adult children elsewhere in the village
        cover general need; their capacity is shared among the elders in proportion to need."""
        hh = self.household
        general = sum(self.remaining[k] for k in GENERAL)
        if general <= 0:
            return
        others = max(hh.tally["family_capacity"] - self.family_contribution(), 0.0)
        coresident = others * general / hh.tally["elder_need"]
        line = self.model.lineage_tally[hh.lineage]
        # adult children elsewhere in the village: the line's capacity (hours of its working-age
        # adults outside each elder's household, averaged over the line's elders) shared by need
        nearby = line["capacity"] * general / line["need"]
        covered = min(1.0, (coresident + nearby) / general)
        given = 0.0
        for k in GENERAL:
            g = self.remaining[k] * covered
            self.remaining[k] -= g
            given += g
        self.met["family"] = given

    # ------------------------------------------------------------------ 5. asking
    def ask_for_help(self) -> None:
        """Ask for what remains with a probability rising with awareness, trust and need."""
        b = self.model.scenario.behaviour
        u = self.random.random()
        hours = sum(self.remaining)
        if hours <= 0:
            return
        x = b.ask_intercept + b.ask_awareness * self.awareness + b.ask_trust * self.trust + b.ask_need * math.log1p(hours)
        if u < logistic(x):
            self.asked = True
            self.requested = hours

    # ------------------------------------------------------------------ 6. volunteering
    def could_volunteer(self) -> bool:
        """Residents aged 18-59, and healthy young-old elders (60 to young_old_max_age, level 0)."""
        if self.status != RESIDENT:
            return False
        if 18.0 <= self.age < ELDER_AGE:
            return True
        return ELDER_AGE <= self.age < self.model.scenario.behaviour.young_old_max_age + 1 and self.care_level == 0

    def decide_to_volunteer(self) -> None:
        """Volunteer this week or not (logistic in altruism, levers, norm, costs, burnout)."""
        s = self.model.scenario
        b, pol = s.behaviour, s.policy
        u = self.random.random()
        self.served_hours = 0.0
        if not self.candidate:
            self.active = False
            return
        norm = self.household.neighbourhood_mean("active_candidates", "candidates")
        credit = pol.time_bank.credit_per_hour if pol.time_bank.enabled else 0.0
        x = (
            b.volunteer_intercept
            + b.volunteer_altruism * self.altruism
            + b.volunteer_incentive * pol.incentive_per_hour
            + b.volunteer_credit * credit * self.tb_trust
            + b.volunteer_norm * norm
            + (b.volunteer_party * pol.party_mobilisation if self.party else 0.0)
            + (b.volunteer_publicity * pol.publicity + b.volunteer_party_norm * pol.party_mobilisation)
            - (0.0 if pol.liability_insurance else b.volunteer_blame_fear)
            - b.volunteer_opportunity_cost * self.opportunity_cost
            - b.volunteer_burnout * self.burnout
        )
        self.active = u < logistic(x) and self.availability > 0

    # ------------------------------------------------------------------ 11. trust, awareness, satisfaction
    def update_views(self) -> None:
        """Trust follows experience and neighbours; awareness follows publicity, word of mouth
        and being helped; satisfaction follows the share of need met."""
        s = self.model.scenario
        b, pol = s.behaviour, s.policy
        unmet = sum(self.remaining)
        self.unmet_hours = unmet
        trust = self.trust
        if self.asked:
            got = min(1.0, max(0.0, 1.0 - unmet / self.requested)) if self.requested > 0 else 0.0
            outcome = got * b.service_quality
            rate = b.trust_experience_rate * (1.0 + pol.transparency) if outcome > trust else b.trust_experience_rate
            trust += rate * (outcome - trust)
        nb_trust = self.household.neighbourhood_mean("elder_trust", "elders")
        trust += b.trust_neighbour_rate * (nb_trust - trust)
        self.trust = min(1.0, max(0.0, trust))

        nb_helped = self.household.neighbourhood_mean("elders_helped", "elders")
        aw = self.awareness
        aw += (b.awareness_publicity_rate * pol.publicity + b.awareness_word_of_mouth * nb_helped) * (1.0 - aw)
        aw -= b.awareness_decay * aw
        if self.matched:
            aw += b.awareness_help_rate * (1.0 - aw)
        self.awareness = min(1.0, max(0.0, aw))

        need = sum(self.need)
        if need > 0:
            self.satisfaction += b.satisfaction_rate * ((1.0 - unmet / need) - self.satisfaction)

    def rest(self) -> None:
        """Burnout fades, and grows with the hours served this week."""
        b = self.model.scenario.behaviour
        self.burnout = min(1.0, max(0.0, self.burnout * (1.0 - b.burnout_recovery) + b.burnout_per_hour * self.served_hours))


class Committee(mesa.Agent):
    """The village committee (村两委): matches requests to volunteers by hand.

    Each week it takes up as many requests as its staff time after administrative burden
    allows, the most severe first (ties at random). For each request it tries up to
    ``attempts_per_request`` volunteers, round by round: in a round every open request
    tries one volunteer, from the elder's hamlet with probability ``local_knowledge``
    (else from anywhere in the village). A try works if the volunteer has hours left,
    lives within walking distance and (for professional care) is trained. Professional
    care is matched first, then general help.
    """

    model: ReferenceModel

    def __init__(self, model: ReferenceModel, village: int) -> None:
        super().__init__(model)
        self.village = village
        self.requests: list[Person] = []
        self.volunteers: list[Person] = []

    def capacity(self) -> int:
        """Requests the committee can handle this week."""
        cm = self.model.scenario.committee
        return int(math.floor(cm.staff_hours_per_week * (1.0 - cm.admin_burden) / cm.hours_per_request + 1e-9))

    def match(self) -> None:
        """Take up the week's requests and find volunteers for them."""
        cm = self.model.scenario.committee
        keyed = [(-e.care_level, self.random.random(), i, e) for i, e in enumerate(self.requests)]
        keyed.sort(key=lambda t: (t[0], t[1], t[2]))
        queue = [t[3] for t in keyed[: self.capacity()]]
        for e in queue:
            e.handled = True
        by_hamlet: dict[int, list[Person]] = {}
        for v in self.volunteers:
            by_hamlet.setdefault(v.hamlet, []).append(v)
            v.hours_left = min(v.availability, v.free_hours)
        for kinds, needs_training in (((PROFESSIONAL,), True), (GENERAL, False)):
            wanted = {id(e): sum(e.remaining[k] for k in kinds) for e in queue}
            got: dict[int, list[tuple[Person, float]]] = {id(e): [] for e in queue}
            given = dict.fromkeys(wanted, 0.0)
            for _round in range(cm.attempts_per_request):
                open_requests = [e for e in queue if wanted[id(e)] - given[id(e)] > 1e-6]
                if not open_requests or not self.volunteers:
                    break
                for e in open_requests:
                    local = self.random.random() < cm.local_knowledge
                    u = self.random.random()
                    pool = by_hamlet.get(e.hamlet) if local else None
                    pool = pool or self.volunteers
                    v = pool[int(u * len(pool))]
                    if needs_training and not v.trained:
                        continue
                    if v.hours_left <= 0 or v is e:
                        continue
                    if math.hypot(e.household.x - v.household.x, e.household.y - v.household.y) > cm.walking_distance_km:
                        continue
                    give = min(wanted[id(e)] - given[id(e)], v.hours_left)
                    if give <= 0:
                        continue
                    v.hours_left -= give
                    given[id(e)] += give
                    got[id(e)].append((v, give))
            for e in queue:
                self._book(e, kinds, got[id(e)])

    @staticmethod
    def _book(elder: Person, kinds: tuple[int, ...], helpers: list[tuple[Person, float]]) -> None:
        """Reduce the elder's remaining need of ``kinds`` by the hours received (in proportion)."""
        if not helpers:
            return
        total = 0.0
        for v, hours in helpers:
            total += hours
            v.served_hours += hours
            elder.met["peer" if v.age >= ELDER_AGE else "volunteer"] += hours
        elder.matched = True
        rem = sum(elder.remaining[k] for k in kinds)
        frac = min(total / rem, 1.0) if rem > 0 else 0.0
        for k in kinds:
            elder.remaining[k] *= 1.0 - frac
