"""The time bank (时间银行): redemptions (in process 7) and credits and trust (in process 9).

Reads: ``tb_balance``, ``tb_trust``, ``lineage``, ``status``, ``served_hours``;
``week.asked``, ``week.requested_hours``, ``week.remaining``, ``week.matched``;
``policy.time_bank``; the subsidy pool (for the guarantee).
Writes: ``tb_balance``, ``tb_trust``; ``week.remaining`` and ``week.met["time_bank"]``
(guaranteed care); institutions' cumulative credited / redeemed / expired; outputs
``time_bank_*``, ``redemptions``, ``redemptions_failed``, ``spend_subsidies``.

* **Redemption.** An elder who asks for help while the family line (own account or a
  named family member's, e.g. a child who volunteered) holds credit makes a redemption:
  the committee handles it first. The bank's operator processes it with probability
  ``honour_rate`` (institutional reliability). It succeeds if the elder got help this
  week; if not, with probability ``redemption_guarantee`` the bank buys paid care for the
  remaining hours (at ``paid_care_price_per_hour`` from the subsidy pool), capped by the
  family's credit left after the week's mutual-aid redemptions: every guaranteed hour is
  redeemed from credit (``time_bank_guaranteed`` <= ``time_bank_redeemed``). Redeemed
  credit (hours received, up to the family's balance) is taken from the family's accounts
  in proportion to their balances.
* **Trust in the bank** of the family's members moves toward 1 after a success and 0
  after a failure (``trust_rate``); everyone's moves toward the village's recent success
  rate (``word_of_mouth``). Volunteering weighs credit by this trust.
* **Credit.** Volunteers earn ``credit_per_hour`` per hour served; balances above
  ``account_cap_hours`` expire, as do the balances of the dead (residents and migrants who
  die away; a migrant away keeps credit, as they may return). Conservation:
  credited = redeemed + outstanding + expired.
"""

from __future__ import annotations

import numpy as np

from villagesim.config.schema import Scenario
from villagesim.processes.week import Week
from villagesim.state.institutions import spend
from villagesim.state.population import DEAD, RESIDENT, World


def _lineage_sum(world: World, values: np.ndarray) -> np.ndarray:
    p = world.persons
    return np.bincount(p.lineage, weights=values, minlength=int(p.lineage.max()) + 1)


def redeeming(world: World, scenario: Scenario, week: Week) -> np.ndarray:
    """Per elder: asks for help while the family line holds credit."""
    if not scenario.policy.time_bank.enabled or len(week.elders) == 0:
        return np.zeros(len(week.elders), dtype=bool)
    family_credit = _lineage_sum(world, world.persons.tb_balance)
    return week.asked & (family_credit[world.persons.lineage[week.elders]] > 1e-6)


def _covered(
    world: World, week: Week, idx: np.ndarray, rows: np.ndarray, helped: np.ndarray, guaranteed: np.ndarray, want: np.ndarray
) -> np.ndarray:
    """Hours of paid care the guarantee buys per redemption: the remaining need, capped by
    the family's credit left after this week's mutual-aid redemptions of the family (elders
    of one family in row order share what is left)."""
    p = world.persons
    family_credit = _lineage_sum(world, p.tb_balance)
    lineage = p.lineage[rows]
    received = np.maximum(week.requested_hours[idx] - week.remaining[idx].sum(axis=1), 0.0)
    used = np.bincount(lineage, weights=np.where(helped, received, 0.0), minlength=len(family_credit))
    left = np.maximum(family_credit - used, 0.0)
    g = np.flatnonzero(guaranteed)
    order = g[np.argsort(lineage[g], kind="stable")]
    line = lineage[order]
    w = want[order].astype(np.float64)
    before = np.cumsum(w) - w  # wanted by earlier guaranteed elders of all families
    first = np.r_[True, line[1:] != line[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    before = before - before[start]  # ... of the same family
    out = np.zeros(len(want))
    out[order] = np.clip(left[line] - before, 0.0, w)
    return out


def settle(world: World, scenario: Scenario, rng: np.random.Generator, week: Week, attempts: np.ndarray) -> None:
    """Outcome of this week's redemptions (after matching)."""
    p = world.persons
    inst = world.institutions
    tb = scenario.policy.time_bank
    n_v = week.n_villages
    n_e = len(week.elders)
    week.add_met("time_bank", np.zeros(n_e, dtype=np.float32))
    idx = np.flatnonzero(attempts)
    if len(idx) == 0:
        return
    u_honour = rng.random(n_e)[idx]
    u_guarantee = rng.random(n_e)[idx]
    rows = week.elders[idx]
    honoured = u_honour < tb.honour_rate
    helped = week.matched[idx]
    # the guarantee buys paid care for an honoured redemption that found no volunteer
    guaranteed = honoured & ~helped & (u_guarantee < tb.redemption_guarantee)
    remaining = week.remaining[idx]
    want = remaining.sum(axis=1)
    price = scenario.government.paid_care_price_per_hour
    paid_hours = np.zeros(len(idx))
    if guaranteed.any():
        want = np.where(guaranteed, _covered(world, week, idx, rows, helped, guaranteed, want), 0.0)
        guaranteed &= want > 0
    if guaranteed.any() and price > 0:
        cost = want[guaranteed] * price
        budget_left = inst.treasury.pools["subsidies"]
        affordable = np.cumsum(cost) <= budget_left
        g = np.flatnonzero(guaranteed)
        guaranteed[g[~affordable]] = False
        paid_hours[g[affordable]] = want[g[affordable]]
        # the affordable prefix fits the pool, so all of it is paid
        spend(inst.treasury, "subsidies", float(cost[affordable].sum()))
        week.report("spend_subsidies", np.bincount(p.village[rows[g[affordable]]], weights=cost[affordable], minlength=n_v))
        got = np.zeros(n_e, dtype=np.float32)
        got[idx] = paid_hours
        need = remaining.sum(axis=1)
        frac = np.where(need > 0, paid_hours / np.maximum(need, 1e-12), 0.0)
        week.remaining[idx] = remaining * (1.0 - frac)[:, None]
        week.met["time_bank"] = got
        week.matched[idx[guaranteed]] = True
        week.report("time_bank_guaranteed", np.bincount(p.village[rows], weights=paid_hours, minlength=n_v))
    success = honoured & (helped | guaranteed)
    # hours received this week through mutual aid or the guarantee are redeemed from the family's credit
    received = week.requested_hours[idx] - week.remaining[idx].sum(axis=1)
    family_credit = _lineage_sum(world, p.tb_balance)
    lineage = p.lineage[rows]
    redeem = np.where(success, np.minimum(np.maximum(received, 0.0), family_credit[lineage]), 0.0)
    # several elders of one family: redeem at most the family's balance in total
    per_line = np.bincount(lineage, weights=redeem, minlength=len(family_credit))
    scale = np.where(per_line > family_credit, family_credit / np.maximum(per_line, 1e-12), 1.0)
    per_line = per_line * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        take = np.where(family_credit > 0, per_line / np.maximum(family_credit, 1e-12), 0.0)
    p.tb_balance -= (p.tb_balance * take[p.lineage]).astype(np.float32)
    np.maximum(p.tb_balance, 0, out=p.tb_balance)
    inst.tb_redeemed += float(per_line.sum())
    week.report("time_bank_redeemed", np.bincount(p.village[rows], weights=redeem * scale[lineage], minlength=n_v))
    week.report("redemptions", np.bincount(p.village[rows], minlength=n_v).astype(float))
    week.report("redemptions_failed", np.bincount(p.village[rows], weights=~success, minlength=n_v))
    week.report("_redemptions_ok", np.bincount(p.village[rows], weights=success, minlength=n_v))
    # trust of the family's members follows the outcome
    outcome = np.full(len(family_credit), np.nan)
    outcome[lineage] = success.astype(float)
    member_outcome = outcome[p.lineage]
    seen = ~np.isnan(member_outcome)
    p.tb_trust[seen] += (tb.trust_rate * (member_outcome[seen] - p.tb_trust[seen])).astype(np.float32)
    # the village's recent success rate (word of mouth)
    tries = np.bincount(p.village[rows], minlength=n_v)
    oks = np.bincount(p.village[rows], weights=success, minlength=n_v)
    has = tries > 0
    inst.tb_village_success[has] = 0.8 * inst.tb_village_success[has] + 0.2 * oks[has] / tries[has]


def credit(world: World, scenario: Scenario, week: Week) -> None:
    """Credit served hours, expire what exceeds the cap or belongs to the dead, spread trust."""
    p = world.persons
    inst = world.institutions
    tb = scenario.policy.time_bank
    n_v = week.n_villages
    if not tb.enabled and inst.tb_credited == 0.0:
        return  # no bank and no credit ever issued: every time-bank output is zero
    # the dead, wherever they died (in the village or away as migrants)
    dead = (p.status == DEAD) & (p.tb_balance != 0)
    expired_dead = np.where(dead, p.tb_balance, 0.0)
    p.tb_balance[dead] = 0.0
    earned = np.zeros(len(p), dtype=np.float32)
    if tb.enabled:
        earned = p.served_hours * np.float32(tb.credit_per_hour)
        p.tb_balance += earned
    over = np.maximum(p.tb_balance - np.float32(tb.account_cap_hours), 0.0)
    p.tb_balance -= over
    expired = expired_dead + over
    inst.tb_credited += float(earned.sum(dtype=np.float64))
    inst.tb_expired += float(expired.sum(dtype=np.float64))
    week.report("time_bank_credited", np.bincount(p.village, weights=earned, minlength=n_v))
    week.report("time_bank_expired", np.bincount(p.village, weights=expired, minlength=n_v))
    alive = p.status != DEAD
    week.report("time_bank_outstanding", np.bincount(p.village[alive], weights=p.tb_balance[alive], minlength=n_v))
    if tb.enabled:
        resident = p.status == RESIDENT
        village_rate = inst.tb_village_success[p.village]
        p.tb_trust += (tb.word_of_mouth * (village_rate - p.tb_trust) * resident).astype(np.float32)
        np.clip(p.tb_trust, 0.0, 1.0, out=p.tb_trust)


__all__ = ["redeeming", "settle", "credit"]
