"""The wallet contract, per dialect, over real HTTP (our API served by granian), on SQLite
and PostgreSQL: each case from a fresh player, the ledger's invariants checked after it.

The clients are written from the public wire facts (tests/support/provider_clients.py)
and check the signature of every answer."""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from casino_app.core.db import ledger_tx
from casino_app.games.providers import registry
from casino_app.games.providers.models import ProviderAlert, ProviderReceipt, ProviderRound
from tests.support import provider_setup as ps
from tests.support.provider_clients import BGamingClient, Hub88Client, new_rsa
from tests.support.wallet_server import wallet_server

pytestmark = pytest.mark.slow

FUN_UNIT = 1000  # Hub88 units per cent (amounts x 100000)


@pytest.fixture
def wallet(any_env: str, tmp_path: Path) -> Iterator[str]:
    with wallet_server(tmp_path / "wallet.log") as url:
        yield url


def _alerts(kind: str) -> int:
    with ledger_tx(readonly=True) as s:
        return sum(a.count for a in s.query(ProviderAlert).filter_by(kind=kind))


def _round(provider_id: int, ref: str) -> ProviderRound | None:
    with ledger_tx(readonly=True) as s:
        r = s.query(ProviderRound).filter_by(provider_id=provider_id, round_ref=ref).first()
        if r is not None:
            s.expunge(r)
        return r


def _tx() -> str:
    return str(uuid.uuid4())


# --- Hub88-style -------------------------------------------------------------------------

def test_hub88_contract(wallet: str) -> None:
    key, public = new_rsa()
    prov = ps.add_hub88("hub-a", public)
    c = Hub88Client(f"{wallet}/api/providers/hub-a", key, prov.own_public_key or "")

    def case_info_and_balance() -> None:
        p = ps.new_player(fun=10_000)
        info = c.info(p.player_id).json
        assert info["status"] == "RS_OK"
        assert set(info) == {"user", "status", "request_uuid"}  # no personal data
        tok = ps.token(prov, p)
        bal = c.balance(p.player_id, tok).json
        assert (bal["status"], bal["currency"], bal["balance"]) == ("RS_OK", "FUN",
                                                                     10_000 * FUN_UNIT)
        assert c.info("no-such-player").json["status"] == "RS_ERROR_INVALID_TOKEN"

    def case_bet_win_and_repeats() -> None:
        p = ps.new_player(fun=10_000)
        tok = ps.token(prov, p)
        bet, rnd = _tx(), _tx()
        first = c.bet(p.player_id, tok, bet, rnd, 100 * FUN_UNIT)
        assert first.json["status"] == "RS_OK"
        assert first.json["balance"] == 9_900 * FUN_UNIT
        # the same call again (same body): the stored answer, byte for byte
        repeat = c.raw("/transaction/bet", c.last_body)
        assert repeat.body == first.body
        assert ps.balance(p.player_id) == 9_900
        # the same id with another amount: a duplicate, nothing moves
        dup = c.bet(p.player_id, tok, bet, rnd, 200 * FUN_UNIT)
        assert dup.json["status"] == "RS_ERROR_DUPLICATE_TRANSACTION"
        assert dup.json["balance"] == 9_900 * FUN_UNIT
        win = c.win(p.player_id, tok, _tx(), rnd, 250 * FUN_UNIT, bet)
        assert (win.json["status"], win.json["balance"]) == ("RS_OK", 10_150 * FUN_UNIT)
        assert _round(prov.id, rnd).state == "closed"  # type: ignore[union-attr]
        # a win for the closed round: refused, alerted
        before = _alerts("win_without_round")
        late = c.win(p.player_id, tok, _tx(), rnd, 50 * FUN_UNIT, bet)
        assert late.json["status"] == "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
        assert _alerts("win_without_round") == before + 1
        assert ps.balance(p.player_id) == 10_150

    def case_rollback_before_bet() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        bet, rnd = _tx(), _tx()
        rb = c.rollback(p.player_id, tok, _tx(), rnd, bet)
        assert (rb.json["status"], rb.json["balance"]) == ("RS_OK", 1_000 * FUN_UNIT)
        late = c.bet(p.player_id, tok, bet, rnd, 100 * FUN_UNIT)
        assert late.json["status"] == "RS_ERROR_DUPLICATE_TRANSACTION"
        assert ps.balance(p.player_id) == 1_000

    def case_rollback_of_bet_and_of_win() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        rnd, bet, win = _tx(), _tx(), _tx()
        c.bet(p.player_id, tok, bet, rnd, 100 * FUN_UNIT)
        c.win(p.player_id, tok, win, rnd, 300 * FUN_UNIT, bet, closed=False)
        assert ps.balance(p.player_id) == 1_200
        rb = c.rollback(p.player_id, tok, _tx(), rnd, win)
        assert (rb.json["status"], rb.json["balance"]) == ("RS_OK", 900 * FUN_UNIT)
        rb2 = c.rollback(p.player_id, tok, _tx(), rnd, bet, closed=True)
        assert (rb2.json["status"], rb2.json["balance"]) == ("RS_OK", 1_000 * FUN_UNIT)
        r = _round(prov.id, rnd)
        assert r is not None and (r.state, r.staked, r.paid) == ("closed", 0, 0)

    def case_win_for_unknown_round() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        before = _alerts("win_without_round")
        w = c.win(p.player_id, tok, _tx(), "never-opened", 500 * FUN_UNIT, _tx())
        assert w.json["status"] == "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
        assert w.json["balance"] == 1_000 * FUN_UNIT
        assert _alerts("win_without_round") == before + 1

    def case_twenty_replays_shuffled() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        rnd, bet1, bet2 = _tx(), _tx(), _tx()
        calls = [
            lambda: c.bet(p.player_id, tok, bet1, rnd, 100 * FUN_UNIT),
            lambda: c.bet(p.player_id, tok, bet2, rnd, 50 * FUN_UNIT),
            lambda: c.rollback(p.player_id, tok, "rb-" + bet2, rnd, bet2),
            lambda: c.win(p.player_id, tok, "w-" + bet1, rnd, 400 * FUN_UNIT, bet1),
        ]
        order = [i for i in range(4) for _ in range(20)]
        random.Random(7).shuffle(order)
        for i in [*order, 0, 1, 2, 3]:  # ends with one pass in order, as a last retry
            assert calls[i]().status_code == 200
        # bet1 and its win stand; bet2 is undone whichever came first
        assert ps.balance(p.player_id) == 1_000 - 100 + 400

    def case_signature_and_tokens() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        before = _alerts("bad_signature")
        body = b'{"user":"' + p.player_id.encode() + b'","request_uuid":"x"}'
        bad = c.raw("/user/info", body, signature=c.sign(body + b" "))
        assert bad.json["status"] == "RS_ERROR_INVALID_SIGNATURE"
        assert _alerts("bad_signature") >= before + 1
        expired = ps.token(prov, p, hours=-1)
        rnd, bet = _tx(), _tx()
        r = c.bet(p.player_id, expired, bet, rnd, 100 * FUN_UNIT)
        assert r.json["status"] == "RS_ERROR_TOKEN_EXPIRED"
        assert c.bet(p.player_id, "not-a-token", bet, rnd, 100 * FUN_UNIT).json["status"] \
            == "RS_ERROR_INVALID_TOKEN"
        assert c.bet(p.player_id, tok, bet, rnd, 100 * FUN_UNIT).json["status"] == "RS_OK"
        # a win after the token expired is paid (the round began while it was valid)
        w = c.win(p.player_id, expired, _tx(), rnd, 100 * FUN_UNIT, bet)
        assert (w.json["status"], w.json["balance"]) == ("RS_OK", 1_000 * FUN_UNIT)

    def case_insufficient_funds() -> None:
        p = ps.new_player(fun=100)
        tok = ps.token(prov, p)
        r = c.bet(p.player_id, tok, _tx(), _tx(), 101 * FUN_UNIT)
        assert (r.json["status"], r.json["balance"]) == ("RS_ERROR_NOT_ENOUGH_MONEY",
                                                         100 * FUN_UNIT)
        assert ps.balance(p.player_id) == 100

    def case_disabled_player_and_provider() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        ps.lock(p)
        time.sleep(2.2)  # the wallet's player cache
        r = c.bet(p.player_id, tok, _tx(), _tx(), 100 * FUN_UNIT)
        assert r.json["status"] == "RS_ERROR_USER_DISABLED"
        q = ps.new_player(fun=1_000)
        qt = ps.token(prov, q)
        registry.set_enabled("hub-a", False)
        try:
            time.sleep(registry.CACHE_SECONDS + 0.2)
            r = c.bet(q.player_id, qt, _tx(), _tx(), 100 * FUN_UNIT)
            assert r.json["status"] == "RS_ERROR_INVALID_PARTNER"
            assert c.info(q.player_id).json["status"] == "RS_ERROR_INVALID_PARTNER"
        finally:
            registry.set_enabled("hub-a", True)
            time.sleep(registry.CACHE_SECONDS + 0.2)
        assert ps.balance(p.player_id) == 1_000 and ps.balance(q.player_id) == 1_000

    def case_unit_boundaries() -> None:
        p = ps.new_player(fun=1_000, ETH=10**9, BTC=10**8)
        fun = ps.token(prov, p)
        r = c.bet(p.player_id, fun, _tx(), _tx(), FUN_UNIT - 1)  # under a cent
        assert r.json["status"] == "RS_ERROR_WRONG_TYPES"
        r = c.bet(p.player_id, fun, _tx(), _tx(), FUN_UNIT + 1)
        assert r.json["status"] == "RS_ERROR_WRONG_TYPES"
        body = c.bet(p.player_id, fun, _tx(), _tx(), FUN_UNIT)
        assert (body.json["status"], ps.balance(p.player_id)) == ("RS_OK", 999)
        eth = ps.token(prov, p, code="ETH")
        r = c.bet(p.player_id, eth, _tx(), _tx(), 1, currency="ETH")  # 10^-5 ETH
        assert (r.json["status"], ps.balance(p.player_id, "ETH")) == ("RS_OK",
                                                                      10**9 - 10**4)
        assert r.json["balance"] == (10**9 - 10**4) // 10**4
        btc = ps.token(prov, p, code="BTC")
        r = c.bet(p.player_id, btc, _tx(), _tx(), 1, currency="BTC")  # 1,000 satoshi
        assert ps.balance(p.player_id, "BTC") == 10**8 - 1000
        for amount in (1.5, -1, "100", 2**63, True):
            r = c.bet(p.player_id, fun, _tx(), _tx(), amount)  # type: ignore[arg-type]
            assert r.json["status"] == "RS_ERROR_WRONG_TYPES", amount

    cases = [case_info_and_balance, case_bet_win_and_repeats, case_rollback_before_bet,
             case_rollback_of_bet_and_of_win, case_win_for_unknown_round,
             case_twenty_replays_shuffled, case_signature_and_tokens,
             case_insufficient_funds, case_disabled_player_and_provider,
             case_unit_boundaries]
    for case in cases:
        case()
        assert ps.invariants_hold() == [], case.__name__
    with ledger_tx(readonly=True) as s:
        assert s.query(ProviderReceipt).count() > 100


# --- BGaming-style -----------------------------------------------------------------------

def test_bgaming_contract(wallet: str) -> None:
    secret = secrets.token_hex(32).encode()
    prov = ps.add_bgaming("bg-a", secret)
    c = BGamingClient(f"{wallet}/api/providers/bg-a", secret)

    def case_balance() -> None:
        p = ps.new_player(fun=5_000)
        r = c.balance(p.player_id)
        assert (r.status_code, r.json) == (200, {"balance": 5_000})

    def case_play_bet_and_win_in_one_request() -> None:
        p = ps.new_player(fun=5_000)
        tok = ps.token(prov, p)
        rnd = _tx()
        actions = [{"action": "bet", "amount": 100, "action_id": "b-" + rnd},
                   {"action": "win", "amount": 250, "action_id": "w-" + rnd}]
        r = c.play(p.player_id, tok, rnd, actions, finished=True)
        assert r.status_code == 200
        assert r.json["balance"] == 5_150 and r.json["game_id"] == rnd
        assert [t["action_id"] for t in r.json["transactions"]] == ["b-" + rnd, "w-" + rnd]
        again = c.play(p.player_id, tok, rnd, actions, finished=True)
        assert again.body == r.body
        assert ps.balance(p.player_id) == 5_150

    def case_batch_over_balance_applies_nothing() -> None:
        p = ps.new_player(fun=100)
        tok = ps.token(prov, p)
        rnd = _tx()
        actions = [{"action": "bet", "amount": 60, "action_id": _tx()},
                   {"action": "bet", "amount": 60, "action_id": _tx()}]
        r = c.play(p.player_id, tok, rnd, actions)
        assert (r.status_code, r.json["code"], r.json["balance"]) == (412, 100, 100)
        assert ps.balance(p.player_id) == 100 and _round(prov.id, rnd) is None

    def case_duplicate_and_rollbacks() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        rnd, bet = _tx(), _tx()
        c.play(p.player_id, tok, rnd, [{"action": "bet", "amount": 100, "action_id": bet}])
        dup = c.play(p.player_id, tok, rnd, [{"action": "bet", "amount": 99,
                                               "action_id": bet}])
        assert (dup.status_code, dup.json["code"]) == (412, 500)
        rb = c.rollback(p.player_id, rnd, [{"action": "rollback", "action_id": _tx(),
                                            "original_action_id": bet}])
        assert (rb.status_code, rb.json["balance"]) == (200, 1_000)
        assert rb.json["transactions"][0]["tx_id"] != ""
        # rollback before the action: tx_id "" and the late bet is not applied
        ghost = _tx()
        rb = c.rollback(p.player_id, rnd, [{"action": "rollback", "action_id": _tx(),
                                            "original_action_id": ghost}])
        assert rb.json["transactions"][0]["tx_id"] == ""
        late = c.play(p.player_id, tok, rnd, [{"action": "bet", "amount": 100,
                                                "action_id": ghost}])
        assert late.status_code == 412
        # rolling back a win takes it back
        win_round, b2, w2 = _tx(), _tx(), _tx()
        c.play(p.player_id, tok, win_round, [{"action": "bet", "amount": 100,
                                               "action_id": b2},
                                              {"action": "win", "amount": 500,
                                               "action_id": w2}])
        assert ps.balance(p.player_id) == 1_400
        rb = c.rollback(p.player_id, win_round, [{"action": "rollback", "action_id": _tx(),
                                                  "original_action_id": w2}])
        assert rb.json["balance"] == 900
        assert ps.balance(p.player_id) == 1_000 - 100

    def case_win_unknown_round_and_signature() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        before = _alerts("win_without_round")
        r = c.play(p.player_id, tok, "no-round", [{"action": "win", "amount": 10,
                                                   "action_id": _tx()}])
        assert (r.status_code, r.json["code"]) == (412, 404)
        assert _alerts("win_without_round") == before + 1
        body = b'{"user_id":"' + p.player_id.encode() + b'","currency":"FUN","game":"x"}'
        bad = c.raw("/play", body, signature="00" * 32)
        assert (bad.status_code, bad.json["code"]) == (412, 403)
        expired = ps.token(prov, p, hours=-1)
        r = c.play(p.player_id, expired, _tx(), [{"action": "bet", "amount": 10,
                                                  "action_id": _tx()}])
        assert (r.status_code, r.json["code"]) == (412, 101)
        for amount in (1.5, -5, "10"):
            r = c.play(p.player_id, tok, _tx(), [{"action": "bet", "amount": amount,
                                                  "action_id": _tx()}])
            assert (r.status_code, r.json["code"]) == (412, 400), amount
        assert ps.balance(p.player_id) == 1_000

    def case_twenty_replays_shuffled() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        rnd, bet1, bet2, win = _tx(), _tx(), _tx(), _tx()
        calls = [
            lambda: c.play(p.player_id, tok, rnd, [{"action": "bet", "amount": 100,
                                                    "action_id": bet1}]),
            lambda: c.play(p.player_id, tok, rnd, [{"action": "bet", "amount": 50,
                                                    "action_id": bet2}]),
            lambda: c.rollback(p.player_id, rnd, [{"action": "rollback", "action_id": "r" + bet2,
                                                   "original_action_id": bet2}]),
            lambda: c.play(p.player_id, None, rnd, [{"action": "win", "amount": 400,
                                                     "action_id": win}], finished=True),
        ]
        order = [i for i in range(4) for _ in range(20)]
        random.Random(11).shuffle(order)
        for i in [*order, 0, 1, 2, 3]:
            assert calls[i]().status_code in (200, 412)
        assert ps.balance(p.player_id) == 1_000 - 100 + 400

    def case_tokens_players_and_provider_state() -> None:
        p = ps.new_player(fun=1_000)
        tok = ps.token(prov, p)
        rnd, bet = _tx(), _tx()
        assert c.play(p.player_id, tok, rnd, [{"action": "bet", "amount": 100,
                                               "action_id": bet}]).status_code == 200
        expired = ps.token(prov, p, hours=-1)
        # a win is paid after the token expired
        w = c.play(p.player_id, expired, rnd, [{"action": "win", "amount": 100,
                                                "action_id": _tx()}], finished=True)
        assert (w.status_code, w.json["balance"]) == (200, 1_000)
        ps.lock(p)
        time.sleep(2.2)
        r = c.play(p.player_id, tok, _tx(), [{"action": "bet", "amount": 100,
                                              "action_id": _tx()}])
        assert (r.status_code, r.json["code"]) == (412, 110)
        q = ps.new_player(fun=1_000, ETH=10**9)
        qt = ps.token(prov, q, code="ETH")
        # BGaming amounts are our base units: 1 gwei is a valid ETH bet
        r = c.play(q.player_id, qt, _tx(), [{"action": "bet", "amount": 1,
                                             "action_id": _tx()}], currency="ETH")
        assert (r.status_code, ps.balance(q.player_id, "ETH")) == (200, 10**9 - 1)
        registry.set_enabled("bg-a", False)
        try:
            time.sleep(registry.CACHE_SECONDS + 0.2)
            r = c.play(q.player_id, qt, _tx(), [{"action": "bet", "amount": 1,
                                                 "action_id": _tx()}], currency="ETH")
            assert (r.status_code, r.json["code"]) == (412, 403)
        finally:
            registry.set_enabled("bg-a", True)
            time.sleep(registry.CACHE_SECONDS + 0.2)
        assert ps.balance(q.player_id, "ETH") == 10**9 - 1

    cases = [case_balance, case_play_bet_and_win_in_one_request,
             case_batch_over_balance_applies_nothing, case_duplicate_and_rollbacks,
             case_win_unknown_round_and_signature, case_twenty_replays_shuffled,
             case_tokens_players_and_provider_state]
    for case in cases:
        case()
        assert ps.invariants_hold() == [], case.__name__
