"""What a player sees of the loyalty programme, claims, and staff decisions on held claims.

A claim pays each of the player's ``available`` rewards (or the one named) with one
ledger transfer from the house ``loyalty`` account of its currency to the player, under
the reward's own key (``loyalty:rakeback:<player>:<currency>:<period>`` or
``loyalty:levelup:<player>:<tier>``). It is safe against repeats three times over: the
rewards are read ``FOR UPDATE`` and only while ``available`` (a concurrent claim waits,
then finds them paid), the state changes by a conditional UPDATE, and the ledger key is
UNIQUE (a replay moves nothing). A player flagged for rakeback farming (a flag whose
period ended within ``CASINO_LOYALTY_FLAG_DAYS``, or a flag in the reward's own period)
gets ``held`` instead: no money moves until an admin approves (paid, same key) or
rejects it. The caller's audit row is staged in the same ledger transaction
(security/outbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.games.loyalty import tiers
from casino_app.games.loyalty.models import (
    LoyaltyAccrual,
    LoyaltyFlag,
    LoyaltyReward,
    LoyaltyWindow,
)
from casino_app.games.models import PlayerStats
from casino_app.games.providers.models import ProviderRound
from casino_app.payments import ledger, rates
from casino_app.payments.currencies import currency
from casino_app.security.outbox import Entry

RECENT = 20  # paid or rejected rewards shown after the open ones


class LoyaltyRefused(Exception):
    """A claim or decision that was not made; ``str(exc)`` is safe to show."""


@dataclass(frozen=True)
class RewardView:
    id: int
    player_id: str
    kind: str            # rakeback, levelup
    currency: str
    amount: int
    window_start: datetime
    window_end: datetime
    tier: str
    state: str           # available, held, paid, rejected
    created_at: datetime
    claimed_at: datetime | None
    decided_at: datetime | None
    decided_by: int | None
    note: str
    entry_id: int | None

    @property
    def amount_text(self) -> str:
        cur = currency(self.currency)
        return f"{cur.format(self.amount, cur.decimals)} {cur.code}"


def _view(r: LoyaltyReward) -> RewardView:
    return RewardView(r.id, r.player_id, r.kind, r.currency, r.amount, r.window_start,
                      r.window_end, r.tier, r.state, r.created_at, r.claimed_at,
                      r.decided_at, r.decided_by, r.note, r.entry_id)


@dataclass(frozen=True)
class Status:
    """The account page's loyalty card."""

    tier: str
    rakeback_bps: int
    next_tier: str                   # "" at the top
    next_threshold_e2: int
    accrued_e2: int                  # USD cents wagered in accrued periods (fixed)
    pending_e2: int                  # estimate since the last accrued period (live rates)
    progress_bps: int                # of accrued + pending, towards the next tier
    to_next_e2: int
    period_end: datetime             # when the current period ends (then the grace)
    rewards: list[RewardView]        # open ones (available, held) first, then recent
    flagged: bool
    fun_only: bool                   # wagered play money only so far


def flagged(s: Session, player_id: str, window_start: datetime | None = None,
            now: datetime | None = None) -> bool:
    """Whether the player's claims wait for staff: a flag whose period ended within
    ``CASINO_LOYALTY_FLAG_DAYS`` of ``now``, or one in the period ``window_start``."""
    now = now or utcnow()
    since = now - timedelta(days=get_settings().loyalty_flag_days)
    q = select(LoyaltyFlag.id).where(LoyaltyFlag.player_id == player_id)
    recent = q.where(LoyaltyFlag.window_end >= since)
    if s.execute(recent.limit(1)).first() is not None:
        return True
    if window_start is None:
        return False
    return s.execute(q.where(LoyaltyFlag.window_start == window_start).limit(1)
                     ).first() is not None


def _pending(s: Session, player_id: str, since: datetime | None) -> dict[str, int]:
    """Real-money volume per currency not accrued yet: house bets from ``player_stats``
    (its running totals less what the accruals took) and provider rounds closed since."""
    stats = {r.currency: r.wagered for r in s.scalars(
        select(PlayerStats).where(PlayerStats.player_id == player_id))}
    accrued = dict(s.execute(
        select(LoyaltyAccrual.currency, func.sum(LoyaltyAccrual.house_wagered))
        .where(LoyaltyAccrual.player_id == player_id)
        .group_by(LoyaltyAccrual.currency)).all())
    out = {c: max(int(w) - int(accrued.get(c) or 0), 0) for c, w in stats.items()}
    q = (select(ProviderRound.currency, func.sum(ProviderRound.staked))
         .where(ProviderRound.player_id == player_id, ProviderRound.state == "closed"))
    if since is not None:
        q = q.where(ProviderRound.closed_at >= since)
    for code, staked in s.execute(q.group_by(ProviderRound.currency)).all():
        out[code] = out.get(code, 0) + int(staked or 0)
    return out


def status(player_id: str, now: datetime | None = None) -> Status:
    now = now or utcnow()
    table = tiers.tiers()
    with ledger_tx(readonly=True) as s:
        accrued = int(s.scalar(select(func.coalesce(func.sum(LoyaltyAccrual.usd_e2), 0))
                               .where(LoyaltyAccrual.player_id == player_id)) or 0)
        since = s.scalar(select(func.max(LoyaltyWindow.end_at)))
        pending_units = _pending(s, player_id, since)
        open_rows = s.scalars(select(LoyaltyReward).where(
            LoyaltyReward.player_id == player_id,
            LoyaltyReward.state.in_(("available", "held"))).order_by(LoyaltyReward.id)).all()
        done_rows = s.scalars(select(LoyaltyReward).where(
            LoyaltyReward.player_id == player_id,
            LoyaltyReward.state.in_(("paid", "rejected")))
            .order_by(LoyaltyReward.id.desc()).limit(RECENT)).all()
        is_flagged = flagged(s, player_id, now=now)
    table_rates = rates.snapshot()
    pending = 0
    real = False
    for code, units in pending_units.items():
        if units <= 0:
            continue
        cur = currency(code)
        if not cur.real_money:
            continue
        real = True
        rate = table_rates.rate(cur.code, "USD")
        if rate is not None:
            pending += tiers.usd_e2(units, cur.decimals, rate)
    tier = table[tiers.tier_index(accrued, table)]
    nxt = table[tiers.tier_index(accrued, table) + 1] if tier != table[-1] else None
    # towards the next tier from the one held (the estimate may fill the bar; the tier
    # itself changes when the period is accrued)
    prog = tiers.progress(accrued, table)
    if nxt is not None:
        span = nxt.threshold_e2 - tier.threshold_e2
        prog = tiers.Progress(tier, nxt, min(accrued + pending - tier.threshold_e2, span)
                              * tiers.BPS // span, 0)
    seconds = tiers.period_seconds()
    return Status(tier.name, tier.rakeback_bps, nxt.name if nxt else "",
                  nxt.threshold_e2 if nxt else 0, accrued, pending, prog.bps,
                  max((nxt.threshold_e2 if nxt else 0) - accrued - pending, 0),
                  tiers.align(now, seconds) + timedelta(seconds=seconds),
                  [_view(r) for r in (*open_rows, *done_rows)], is_flagged,
                  not real and accrued == 0 and bool(pending_units))


def _reward_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
        raise LoyaltyRefused("No such reward.")
    return value


def _pay(s: Session, r: LoyaltyReward) -> int:
    player = ledger.player_account(s, r.player_id, r.currency)
    house = ledger.house_account(s, r.currency, "loyalty")
    label = "rakeback" if r.kind == "rakeback" else "levelup_bonus"
    memo = (f"rakeback {tiers.period_label(r.window_start)}" if r.kind == "rakeback"
            else f"level-up bonus {r.tier}")
    return ledger.transfer(s, r.key, label, house, player, r.amount, memo=memo).entry_id


@dataclass(frozen=True)
class ClaimResult:
    paid: list[RewardView]
    held: list[RewardView]


def claim(player_id: str, reward_id: object = None, audit: Entry | None = None,
          now: datetime | None = None) -> ClaimResult:
    """Claim the player's available rewards (all, or ``reward_id``): paid now, or held
    for staff when the player is flagged. Claiming again pays nothing more."""
    rid = None if reward_id is None else _reward_id(reward_id)
    now = now or utcnow()
    with ledger_tx() as s:
        q = select(LoyaltyReward).where(LoyaltyReward.player_id == player_id,
                                        LoyaltyReward.state == "available")
        if rid is not None:
            q = q.where(LoyaltyReward.id == rid)
        # by currency: every claim locks the house loyalty accounts in the same order (two
        # players' claims in two currencies cannot deadlock)
        rows = s.scalars(q.order_by(LoyaltyReward.currency, LoyaltyReward.id)
                         .with_for_update()).all()
        if rid is not None and not rows:
            raise LoyaltyRefused("Nothing to claim: this reward is not open (claimed "
                                 "already, or not yours).")
        paid, held = [], []
        for r in rows:
            hold = flagged(s, player_id, r.window_start, now)
            to = "held" if hold else "paid"
            moved = s.execute(update(LoyaltyReward).where(
                LoyaltyReward.id == r.id, LoyaltyReward.state == "available")
                .values(state=to, claimed_at=now)).rowcount
            if moved != 1:
                continue  # another claim took it meanwhile
            if not hold:
                entry_id = _pay(s, r)
                s.execute(update(LoyaltyReward).where(LoyaltyReward.id == r.id)
                          .values(entry_id=entry_id))
            s.refresh(r)
            (held if hold else paid).append(_view(r))
        result = ClaimResult(paid, held)
        if audit is not None and (paid or held):
            audit.stage(s, result)
        return result


def claim_detail(result: ClaimResult) -> dict:
    """The audit row's detail of a claim."""
    def one(r: RewardView) -> dict:
        return {"reward_id": r.id, "kind": r.kind, "currency": r.currency,
                "amount": r.amount, "period": tiers.period_label(r.window_start),
                "tier": r.tier}
    return {"paid": [one(r) for r in result.paid], "held": [one(r) for r in result.held]}


# --- staff ---

@dataclass(frozen=True)
class FlagView:
    id: int
    currency: str
    window_start: datetime
    window_end: datetime
    hedged: int
    wagered: int
    detail: str


@dataclass(frozen=True)
class HeldClaim:
    reward: RewardView
    flags: list[FlagView]


def held_claims(limit: int = 200) -> list[HeldClaim]:
    """Claims waiting for staff, oldest first, each with its player's flags."""
    with ledger_tx(readonly=True) as s:
        rows = s.scalars(select(LoyaltyReward).where(LoyaltyReward.state == "held")
                         .order_by(LoyaltyReward.id).limit(limit)).all()
        players = sorted({r.player_id for r in rows})
        flags: dict[str, list[FlagView]] = {}
        if players:
            for f in s.scalars(select(LoyaltyFlag).where(LoyaltyFlag.player_id.in_(players))
                               .order_by(LoyaltyFlag.id.desc())):
                flags.setdefault(f.player_id, []).append(FlagView(
                    f.id, f.currency, f.window_start, f.window_end, f.hedged, f.wagered,
                    f.detail))
        return [HeldClaim(_view(r), flags.get(r.player_id, [])[:10]) for r in rows]


def decide(reward_id: object, approve: bool, staff_user_id: int, note: str = "",
           audit: Entry | None = None, now: datetime | None = None) -> RewardView:
    """An admin's decision on a held claim: approved (paid under its key) or rejected."""
    rid = _reward_id(reward_id)
    now = now or utcnow()
    with ledger_tx() as s:
        r = s.execute(select(LoyaltyReward).where(LoyaltyReward.id == rid)
                      .with_for_update()).scalar_one_or_none()
        if r is None:
            raise LoyaltyRefused("No such reward.")
        if r.state != "held":
            raise LoyaltyRefused(f"This claim is {r.state}, not waiting for a decision.")
        moved = s.execute(update(LoyaltyReward).where(
            LoyaltyReward.id == rid, LoyaltyReward.state == "held")
            .values(state="paid" if approve else "rejected", decided_at=now,
                    decided_by=staff_user_id, note=note[:200])).rowcount
        if moved != 1:
            raise LoyaltyRefused("This claim was decided meanwhile.")
        if approve:
            entry_id = _pay(s, r)
            s.execute(update(LoyaltyReward).where(LoyaltyReward.id == rid)
                      .values(entry_id=entry_id))
        s.refresh(r)
        view = _view(r)
        if audit is not None:
            audit.stage(s, view)
        return view


def player_of(reward_id: int) -> str | None:
    with ledger_tx(readonly=True) as s:
        return s.scalar(select(LoyaltyReward.player_id).where(LoyaltyReward.id == reward_id))
