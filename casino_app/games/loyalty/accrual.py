"""The ``loyalty-accrue`` job: each period is accrued once, after it ended.

Periods are ``CASINO_LOYALTY_PERIOD_HOURS`` long, aligned on 1970-01-01 UTC. A period is
accrued ``CASINO_LOYALTY_GRACE_SECONDS`` after its end (a bet stamped just before the end
commits a moment later: the grace lets it in) from what the settlement writer and the
provider wallet wrote, in one ledger transaction with the period's ``loyalty_windows``
row (the cursor: windows are contiguous and accrued once; a lost race fails on its
primary key):

- real-money house bets settled in the period (``bets``, won or lost: ``settled_at``; a
  voided Mines round returned its stake and counts for nothing; an open one counts when
  it ends), at their game's exact house edge (``tiers.house_edge``);
- closed provider rounds (``provider_rounds.closed_at``; ``staked`` is the bets less the
  rolled-back ones), at the game's declared edge (``tiers.provider_edge``);
- play money (FUN) is left out: it earns no tier volume, no rakeback and no bonus.

Per player and currency it writes the volume, its USD value at the display rates of that
moment (``payments.rates.snapshot``: the last refresh of CASINO_RATES_URL, or
CASINO_RATES_FIXED), fixed for good, and the rakeback of the player's tier at the
period's start; a reward row for rakeback above zero; a level-up reward for each tier
with a bonus that the player's accrued volume has reached and that has none yet (the
bonus's USD converted at the same rates, into the currency the player wagered most in
that period); and a flag when near-even dice bets on both sides within
``CASINO_LOYALTY_HEDGE_SECONDS`` make up the configured share of the period's volume.
A currency without a USD rate stops the run (nothing written): the period waits for the
rates. Empty stretches are skipped as one window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.games.loyalty import tiers
from casino_app.games.loyalty.models import (
    LoyaltyAccrual,
    LoyaltyFlag,
    LoyaltyReward,
    LoyaltyWindow,
)
from casino_app.games.models import Bet
from casino_app.games.providers.models import ProviderRound
from casino_app.payments import rates
from casino_app.payments.currencies import currency

log = get_logger("casino.loyalty")

MAX_WINDOWS = 48     # windows one run accrues at most
CHUNK = 500          # players per IN list


class RatesMissing(Exception):
    """No USD display rate for a currency wagered in the period: it waits."""


@dataclass
class _Volume:
    house: int = 0
    provider: int = 0
    edge_volume: Fraction = field(default_factory=Fraction)

    @property
    def total(self) -> int:
        return self.house + self.provider


def rakeback_key(player_id: str, code: str, start: datetime) -> str:
    return f"loyalty:rakeback:{player_id}:{code}:{tiers.period_label(start)}"


def levelup_key(player_id: str, tier_name: str) -> str:
    return f"loyalty:levelup:{player_id}:{tier_name.lower().replace(' ', '-')}"


def _real(code: str) -> bool:
    try:
        return currency(code).real_money
    except ValueError:
        return False


def _house(s: Session, start: datetime, end: datetime) -> list:
    return s.execute(
        select(Bet.player_id, Bet.currency, Bet.game, Bet.params, func.sum(Bet.stake))
        .where(Bet.settled_at >= start, Bet.settled_at < end, Bet.state.in_(("won", "lost")))
        .group_by(Bet.player_id, Bet.currency, Bet.game, Bet.params)).all()


def _provider(s: Session, start: datetime, end: datetime) -> list:
    return s.execute(text(
        "SELECT r.player_id, r.currency, SUM(r.staked), g.rtp_e4 FROM provider_rounds r "
        "LEFT JOIN provider_games g ON g.provider_id = r.provider_id "
        "AND g.game_code = r.game_code "
        "WHERE r.state = 'closed' AND r.closed_at >= :a AND r.closed_at < :b "
        "GROUP BY r.player_id, r.currency, r.provider_id, r.game_code, g.rtp_e4"),
        {"a": start, "b": end}).all()


def _bucket_sql(s: Session) -> str:
    if s.get_bind().dialect.name == "postgresql":
        return "CAST(FLOOR(EXTRACT(EPOCH FROM settled_at) / :w) AS BIGINT)"
    return "CAST(strftime('%s', settled_at) AS INTEGER) / :w"


def _hedged(s: Session, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
    """(player, currency) -> near-even dice volume taken on both sides within one bucket:
    2 x min(over, under) per bucket, summed over the period."""
    rows = s.execute(text(
        f"SELECT player_id, currency, params, {_bucket_sql(s)} AS bucket, SUM(stake) "  # noqa: S608 - the bucket expression is ours, values are bound
        "FROM bets WHERE game = 'dice' AND state IN ('won', 'lost') "
        "AND settled_at >= :a AND settled_at < :b "
        "GROUP BY player_id, currency, params, bucket"),
        {"a": start, "b": end, "w": get_settings().loyalty_hedge_seconds}).all()
    sides: dict[tuple[str, str, int], dict[str, int]] = defaultdict(lambda: {"over": 0,
                                                                             "under": 0})
    for player, code, params, bucket, staked in rows:
        side = tiers.dice_side(params)
        if side is not None:
            sides[(player, code, int(bucket))][side] += int(staked)
    out: dict[tuple[str, str], int] = defaultdict(int)
    for (player, code, _b), v in sides.items():
        out[(player, code)] += 2 * min(v["over"], v["under"])
    return out


def _next_activity(s: Session, after: datetime) -> datetime | None:
    bet = s.scalar(select(func.min(Bet.settled_at)).where(Bet.settled_at >= after))
    rnd = s.scalar(select(func.min(ProviderRound.closed_at))
                   .where(ProviderRound.closed_at >= after))
    found = [t for t in (bet, rnd) if t is not None]
    return min(found) if found else None


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


def _volumes_before(s: Session, players: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(players):
        out.update({p: int(v) for p, v in s.execute(
            select(LoyaltyAccrual.player_id, func.sum(LoyaltyAccrual.usd_e2))
            .where(LoyaltyAccrual.player_id.in_(part))
            .group_by(LoyaltyAccrual.player_id)).all()})
    return out


def _levelups_paid(s: Session, players: list[str]) -> set[str]:
    out: set[str] = set()
    for part in _chunks(players):
        out |= set(s.scalars(select(LoyaltyReward.key).where(
            LoyaltyReward.kind == "levelup", LoyaltyReward.player_id.in_(part))))
    return out


def _usd_rates(codes: set[str]) -> tuple[dict[str, Decimal], str]:
    table = rates.snapshot()
    out: dict[str, Decimal] = {}
    for code in sorted(codes):
        rate = table.rate(code, "USD")
        if rate is None or rate <= 0:
            raise RatesMissing(f"no USD rate for {code} (source {table.source or 'none'})")
        out[code] = rate
    return out, table.source


def _accrue_window(s: Session, start: datetime, end: datetime, now: datetime) -> LoyaltyWindow:
    st = get_settings()
    table = tiers.tiers()
    volumes: dict[tuple[str, str], _Volume] = defaultdict(_Volume)
    for player, code, game, params, staked in _house(s, start, end):
        if _real(code):
            v = volumes[(player, code)]
            v.house += int(staked)
            v.edge_volume += int(staked) * tiers.house_edge(game, params)
    for player, code, staked, rtp_e4 in _provider(s, start, end):
        if _real(code) and staked:
            v = volumes[(player, code)]
            v.provider += int(staked)
            v.edge_volume += int(staked) * tiers.provider_edge(rtp_e4)
    window = LoyaltyWindow(start_at=start, end_at=end, accruals=0, flags=0, accrued_at=now)
    if not volumes:
        window.rate_source = ""
        s.add(window)
        return window
    usd, source = _usd_rates({code for _p, code in volumes})
    window.rate_source = source[:100]
    players = sorted({p for p, _c in volumes})
    before = _volumes_before(s, players)
    window_usd: dict[str, dict[str, int]] = defaultdict(dict)
    for (player, code), v in sorted(volumes.items()):
        cur = currency(code)
        value = tiers.usd_e2(v.total, cur.decimals, usd[code])
        window_usd[player][code] = value
        tier = table[tiers.tier_index(before.get(player, 0), table)]
        amount = tiers.rakeback(v.edge_volume, tier.rakeback_bps)
        s.add(LoyaltyAccrual(player_id=player, currency=code, window_start=start,
                             window_end=end, house_wagered=v.house,
                             provider_wagered=v.provider, usd_e2=value,
                             usd_rate=str(usd[code])[:64], tier=tier.name,
                             rakeback_bps=tier.rakeback_bps, rakeback=amount, created_at=now))
        window.accruals += 1
        if amount > 0:
            s.add(LoyaltyReward(key=rakeback_key(player, code, start), player_id=player,
                                kind="rakeback", currency=code, amount=amount,
                                window_start=start, window_end=end, tier=tier.name,
                                state="available", created_at=now, note=""))
    paid = _levelups_paid(s, players)
    for player in players:
        reached = before.get(player, 0) + sum(window_usd[player].values())
        main = max(sorted(window_usd[player]), key=lambda c: window_usd[player][c])
        for t in table[:tiers.tier_index(reached, table) + 1]:
            key = levelup_key(player, t.name)
            if t.bonus_e2 <= 0 or key in paid:
                continue
            amount = tiers.from_usd_e2(t.bonus_e2, currency(main).decimals, usd[main])
            if amount > 0:
                s.add(LoyaltyReward(key=key, player_id=player, kind="levelup", currency=main,
                                    amount=amount, window_start=start, window_end=end,
                                    tier=t.name, state="available", created_at=now,
                                    note=""))
    for (player, code), hedged in _hedged(s, start, end).items():
        v = volumes.get((player, code))
        if v is None or hedged <= 0:
            continue
        hedged_usd = tiers.usd_e2(hedged, currency(code).decimals, usd[code])
        if hedged * tiers.BPS >= st.loyalty_hedge_share_bps * v.total and \
                hedged_usd >= st.loyalty_hedge_min_usd * 100:
            cur = currency(code)
            s.add(LoyaltyFlag(
                player_id=player, currency=code, kind="hedge", window_start=start,
                window_end=end, hedged=hedged, wagered=v.total, created_at=now,
                detail=(f"near-even dice over and under within "
                        f"{st.loyalty_hedge_seconds} s: {cur.format(hedged)} of "
                        f"{cur.format(v.total)} {code} wagered")[:300]))
            window.flags += 1
            log.warning("loyalty_flagged", player_id=player, currency=code,
                        window=tiers.period_label(start), hedged=hedged, wagered=v.total)
    s.add(window)
    return window


def accrue(now: datetime | None = None, max_windows: int = MAX_WINDOWS) -> dict[str, int]:
    """Accrue every period that ended at least the grace before ``now`` (at most
    ``max_windows`` per call); what it did, for the job runner."""
    now = now or utcnow()
    st = get_settings()
    cutoff = now - timedelta(seconds=st.loyalty_grace_seconds)
    seconds = tiers.period_seconds()
    done = {"windows": 0, "accruals": 0, "flags": 0}
    for _ in range(max_windows):
        with ledger_tx() as s:
            last = s.scalar(select(func.max(LoyaltyWindow.end_at)))
            if last is None:
                first = _next_activity(s, datetime(1970, 1, 1))
                if first is None:
                    break
                last = tiers.align(first, seconds)
            end = tiers.align(last, seconds) + timedelta(seconds=seconds)
            if end > cutoff:
                break
            nxt = _next_activity(s, last)
            if nxt is None or nxt >= end:  # nothing here: skip to the next activity's period
                jump = tiers.align(nxt, seconds) if nxt is not None else \
                    tiers.align(cutoff, seconds)
                end = max(end, min(jump, tiers.align(cutoff, seconds)))
            window = _accrue_window(s, last, end, now)
            done["windows"] += 1
            done["accruals"] += window.accruals
            done["flags"] += window.flags
    if done["windows"]:
        log.info("loyalty_accrued", **done)
    return done if done["windows"] else {}


def unaccrued_since(s: Session) -> datetime | None:
    """Where the next window starts (None before the first accrual)."""
    return s.scalar(select(func.max(LoyaltyWindow.end_at)))

