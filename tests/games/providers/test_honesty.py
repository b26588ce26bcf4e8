"""Keeping providers honest: commit-reveal checks of closed rounds, and RTP drift."""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid

import pytest

from casino_app.core.db import ledger_tx
from casino_app.games.providers import alerts, honesty, wallet
from casino_app.games.providers.contract import Call, WalletRequest
from casino_app.games.providers.dialects import dialect
from casino_app.games.providers.models import ProviderGame, ProviderRound
from tests.support import provider_setup as ps


@pytest.fixture
def bg(any_env: str):  # noqa: ANN201
    return ps.add_bgaming("honest", secrets.token_hex(16).encode())


def _round(prov, player, token: str, stake: int, win: int, *, game: str = "g1",  # noqa: ANN001
           fair: dict | None = None, close_fair: dict | None = None) -> str:
    ref = str(uuid.uuid4())
    reply = dialect("bgaming").reply(prov, "/play", b"{}")
    receipt = wallet.Receipt("/play", b"{}", "")
    calls = (Call("bet", "b" + ref, stake),)
    req = WalletRequest(player.player_id, "FUN", game, ref, token, False, calls, fair)
    assert wallet.handle(prov, req, receipt, reply, lambda _p: True)[2].value == "OK"
    req = WalletRequest(player.player_id, "FUN", game, ref, None, True,
                        (Call("win", "w" + ref, win),), close_fair)
    assert wallet.handle(prov, req, receipt, reply, lambda _p: True)[2].value == "OK"
    return ref


def _catalogue(prov, code: str, rtp_e4: int, scheme: str = "") -> None:  # noqa: ANN001
    with ledger_tx() as s:
        s.add(ProviderGame(provider_id=prov.id, game_code=code, name=code, category="slots",
                           rtp_e4=rtp_e4, volatility="", thumb_url="", demo=False,
                           enabled=True, fair_scheme=scheme))


def test_commit_reveal_mismatch_is_alerted(bg) -> None:  # noqa: ANN001
    p = ps.new_player(fun=100_000)
    tok = ps.token(bg, p, game="g1")
    good_seed = secrets.token_hex(32)
    good = {"scheme": "sha256",
            "seed_hash": hashlib.sha256(bytes.fromhex(good_seed)).hexdigest()}
    ok_ref = _round(bg, p, tok, 100, 0, fair=good, close_fair={**good, "seed": good_seed})
    bad_ref = _round(bg, p, tok, 100, 0, fair=good,
                     close_fair={**good, "seed": secrets.token_hex(32)})
    hidden_ref = _round(bg, p, tok, 100, 0, fair=good, close_fair=None)
    run = honesty.verify_rounds()
    assert (run.verified, run.mismatches) == (3, 2)
    with ledger_tx(readonly=True) as s:
        state = {r.round_ref: (r.fair_state, r.fair_detail)
                 for r in s.query(ProviderRound).all()}
    assert state[ok_ref] == ("ok", "")
    assert state[bad_ref][0] == "mismatch" and "does not hash" in state[bad_ref][1]
    assert state[hidden_ref][0] == "mismatch" and "without revealing" in state[hidden_ref][1]
    found = {(a.kind, a.subject) for a in alerts.recent()}
    assert ("fair_mismatch", bad_ref) in found and ("fair_mismatch", hidden_ref) in found
    assert honesty.verify_rounds().verified == 0  # each round once


def test_rtp_drift_is_alerted_and_an_honest_game_is_not(bg) -> None:  # noqa: ANN001
    p = ps.new_player(fun=10_000_000)
    _catalogue(bg, "honest-slot", 960_000)
    _catalogue(bg, "greedy-slot", 960_000)
    rng = random.Random(3)
    for game, rtp in (("honest-slot", 0.96), ("greedy-slot", 0.70)):
        tok = ps.token(bg, p, game=game)
        for _ in range(300):
            # pays 2x with probability rtp / 2: mean return rtp
            win = 200 if rng.random() < rtp / 2 else 0
            _round(bg, p, tok, 100, win, game=game)
    report = {g.game_code: g for g in honesty.rtp_report(min_rounds=200)}
    honest, greedy = report["honest-slot"], report["greedy-slot"]
    assert honest.rounds == greedy.rounds == 300
    assert honest.low < 0.96 < honest.high and not honest.drift  # type: ignore[operator]
    assert greedy.drift and greedy.high < 0.96  # type: ignore[operator]
    assert honesty.check_rtp(min_rounds=200) == 1
    assert [a.subject for a in alerts.recent() if a.kind == "rtp_drift"] == ["greedy-slot"]
    assert ps.invariants_hold() == []
