"""Keeping providers honest (the ``provider-checks`` job, every minute).

1. **Commit-reveal.** A round of a provider that publishes commit-reveal data (its game's
   ``fair_scheme``) is verified once it has closed: the revealed seed must hash to the
   commitment, and, for a scheme we know, the wins paid must be what the seed gives for
   the bets taken. A mismatch (or a closed round with no seed) marks the round
   ``mismatch`` and raises a high alert; staff see it on /admin/providers.
2. **RTP.** Per game, over its last ``WINDOW`` closed rounds, the measured return
   (paid / staked) is compared with the declared RTP. The interval is the ratio's 99%
   confidence interval from the rounds' own variance (delta method: the variance of
   ``paid - R x staked`` over the rounds, divided by n x mean stake^2). A declared RTP
   outside it, with at least ``MIN_ROUNDS`` rounds, is drift: a medium alert per game.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.games.providers import alerts
from casino_app.games.providers.models import Provider, ProviderGame, ProviderRound, ProviderTx

log = get_logger("casino.providers.honesty")

WINDOW = 10_000
MIN_ROUNDS = 200
Z99 = 2.5758
BATCH = 500


# --- commit-reveal -----------------------------------------------------------------------

# scheme -> check(seed, seed_hash, round_ref, game_code, bets, wins) -> problem or ""
Check = Callable[[str, str, str, str, list[int], list[int]], str]


def _hhsim(seed: str, seed_hash: str, round_ref: str, game: str, bets: list[int],
           wins: list[int]) -> str:
    from casino_app.games.providers import hhsim

    try:
        if not hhsim.verify(seed, seed_hash):
            return "the revealed seed does not hash to the commitment"
        expected = hhsim.payouts(game, seed, round_ref, bets)
    except (ValueError, KeyError) as exc:
        return f"cannot recompute the round: {exc}"
    if sum(expected) != sum(wins):
        return f"paid {sum(wins)} where the seed gives {sum(expected)}"
    return ""


def _sha256_only(seed: str, seed_hash: str, *_args: object) -> str:
    try:
        ok = hashlib.sha256(bytes.fromhex(seed)).hexdigest() == seed_hash.lower()
    except ValueError:
        ok = False
    return "" if ok else "the revealed seed does not hash to the commitment"


SCHEMES: dict[str, Check] = {"hhsim-1": _hhsim, "sha256": _sha256_only}


@dataclass
class CheckRun:
    verified: int = 0
    mismatches: int = 0
    drifting: int = 0


def verify_rounds(limit: int = BATCH) -> CheckRun:
    """Verify closed rounds waiting for it (``fair_state = 'pending'``)."""
    run = CheckRun()
    with ledger_tx() as s:
        rounds = list(s.execute(select(ProviderRound).where(
            ProviderRound.fair_state == "pending").order_by(ProviderRound.id).limit(limit)
            .with_for_update(skip_locked=True)).scalars())
        for r in rounds:
            problem = _problem(s, r)
            r.fair_state = "mismatch" if problem else "ok"
            r.fair_detail = problem[:300]
            run.verified += 1
            if problem:
                run.mismatches += 1
                alerts.record(s, r.provider_id, "fair_mismatch", "high", r.round_ref,
                              f"round {r.round_ref} of {r.game_code}: {problem}")
    return run


def _problem(s, r: ProviderRound) -> str:  # noqa: ANN001
    txs = list(s.execute(select(ProviderTx.kind, ProviderTx.amount).where(
        ProviderTx.round_id == r.id, ProviderTx.rolled_back.is_(False),
        ProviderTx.kind.in_(("bet", "win"))).order_by(ProviderTx.id)))
    bets = [a for k, a in txs if k == "bet"]
    wins = [a for k, a in txs if k == "win"]
    if not bets and not any(wins):
        return ""  # every bet rolled back: nothing was played, nothing to reveal
    if not r.seed:
        return "the round closed without revealing its seed"
    if not r.seed_hash:
        return "the round revealed a seed with no commitment"
    check = SCHEMES.get(r.fair_scheme)
    if check is None:
        return f"unknown fairness scheme {r.fair_scheme!r}"
    return check(r.seed, r.seed_hash, r.round_ref, r.game_code, bets, wins)


# --- RTP ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class GameRtp:
    provider: str
    provider_id: int
    game_code: str
    name: str
    declared_e4: int        # 96.00% -> 960000
    rounds: int
    turnover: int           # stakes in base units, summed over currencies as counted
    paid: int
    measured: float | None  # paid / staked
    low: float | None       # the 99% interval
    high: float | None
    drift: bool


def _interval(pairs: list[tuple[int, int]]) -> tuple[float | None, float | None, float | None]:
    n = len(pairs)
    staked = sum(a for a, _ in pairs)
    if n < 2 or staked <= 0:
        return None, None, None
    ratio = sum(b for _, b in pairs) / staked
    mean_stake = staked / n
    resid = [b - ratio * a for a, b in pairs]
    mean_r = sum(resid) / n
    var = sum((x - mean_r) ** 2 for x in resid) / (n - 1)
    se = math.sqrt(var / n) / mean_stake
    return ratio, ratio - Z99 * se, ratio + Z99 * se


def rtp_report(window: int = WINDOW, min_rounds: int = MIN_ROUNDS) -> list[GameRtp]:
    """Declared vs measured RTP per game, over each game's last ``window`` closed rounds
    (rounds in one currency are compared as ratios, so currencies may mix)."""
    out: list[GameRtp] = []
    with ledger_tx(readonly=True) as s:
        games = list(s.execute(select(ProviderGame, Provider.name).join(
            Provider, Provider.id == ProviderGame.provider_id)
            .order_by(Provider.name, ProviderGame.game_code)))
        played = {(p, g) for p, g in s.execute(
            select(ProviderRound.provider_id, ProviderRound.game_code).distinct())}
        for g, pname in games:
            if (g.provider_id, g.game_code) not in played:
                out.append(GameRtp(pname, g.provider_id, g.game_code, g.name, g.rtp_e4, 0,
                                   0, 0, None, None, None, False))
                continue
            rows = list(s.execute(select(ProviderRound.staked, ProviderRound.paid).where(
                ProviderRound.provider_id == g.provider_id,
                ProviderRound.game_code == g.game_code, ProviderRound.state == "closed",
                ProviderRound.staked > 0).order_by(ProviderRound.id.desc()).limit(window)))
            pairs = [(int(a), int(b)) for a, b in rows]
            ratio, low, high = _interval(pairs)
            declared = g.rtp_e4 / 1_000_000
            drift = bool(ratio is not None and len(pairs) >= min_rounds and g.rtp_e4 > 0
                         and not low <= declared <= high)  # type: ignore[operator]
            out.append(GameRtp(pname, g.provider_id, g.game_code, g.name, g.rtp_e4,
                               len(pairs), sum(a for a, _ in pairs),
                               sum(b for _, b in pairs), ratio, low, high, drift))
    return out


def check_rtp(window: int = WINDOW, min_rounds: int = MIN_ROUNDS) -> int:
    """Alert on every drifting game; returns how many drift."""
    drifting = [g for g in rtp_report(window, min_rounds) if g.drift]
    if drifting:
        with ledger_tx() as s:
            for g in drifting:
                alerts.record(s, g.provider_id, "rtp_drift", "medium", g.game_code,
                              f"{g.game_code}: measured {g.measured:.4f} over {g.rounds} "
                              f"rounds, 99% interval {g.low:.4f}-{g.high:.4f}, declared "
                              f"{g.declared_e4 / 1_000_000:.4f}")
    return len(drifting)


def run_checks() -> dict[str, int]:
    """The ``provider-checks`` job."""
    run = verify_rounds()
    drifting = check_rtp()
    if run.verified or drifting:
        log.info("provider_checks", verified=run.verified, mismatches=run.mismatches,
                 drifting=drifting)
    return {"verified": run.verified, "mismatches": run.mismatches, "drifting": drifting}
