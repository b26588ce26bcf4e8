"""Rounds against the test-only wallet stand-in: what the sim sends (fields, amounts,
signatures, the commitment and the reveal), how it handles refusals and failures, and that
each misbehaviour does what it says."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from casino_app.games.providers import hhsim
from casino_app.provider_sim import catalog
from tests.provider_sim.wallet_standin import Recorded, WalletStandIn
from tests.support.provider_sim import ProviderSim, start_provider_sim

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
HUB88_BET_FIELDS = {"user", "token", "request_uuid", "transaction_uuid",
                    "supplier_transaction_id", "supplier_user", "round", "round_closed",
                    "game_code", "currency", "amount", "bet", "is_free", "is_aggregated",
                    "reward_uuid", "meta"}
HUB88_ROLLBACK_FIELDS = {"user", "token", "request_uuid", "transaction_uuid",
                         "supplier_transaction_id", "reference_transaction_uuid", "round",
                         "round_closed", "game_code", "meta"}
BGAMING_FIELDS = {"user_id", "currency", "game", "game_id", "session_id", "finished",
                  "actions"}
_players = itertools.count()


def hub88_player(sim: ProviderSim, wallet: WalletStandIn, game: str = "hh-slot"
                 ) -> tuple[str, str, str]:
    """A fresh player launched on the Hub88 side: (session, user, token)."""
    n = next(_players)
    user, token = f"player-{n}", f"token-{n}"
    wallet.tokens.add(token)
    return sim.launch_hub88(game, user=user, token=token), user, token


def bgaming_player(sim: ProviderSim, game: str = "hh-slot") -> tuple[str, str]:
    user = f"bg-player-{next(_players)}"
    return sim.launch_bgaming(game, user_id=user, session_id=f"sess-{user}"), user


def fair_of(call: Recorded) -> dict[str, Any] | None:
    if call.dialect == "hub88":
        return (call.body.get("meta") or {}).get("fair")
    return call.body.get("fair")


# --- honest rounds ----------------------------------------------------------------------
def test_hub88_slot_round_is_a_signed_bet_then_a_closing_win(sim: ProviderSim,
                                                             wallet: WalletStandIn) -> None:
    sid, user, token = hub88_player(sim, wallet)
    record = sim.play(sid, 1000)
    bet, win = wallet.of("hub88")
    assert (bet.path, win.path) == ("/transaction/bet", "/transaction/win")
    assert bet.signature_valid and win.signature_valid
    assert set(bet.body) == HUB88_BET_FIELDS
    assert set(win.body) == HUB88_BET_FIELDS | {"reference_transaction_uuid"}
    assert bet.body["user"] == win.body["user"] == user
    assert bet.body["token"] == token and bet.body["game_code"] == "hh-slot"
    assert bet.body["currency"] == "FUN" and bet.body["amount"] == 1000
    assert bet.body["round"] == win.body["round"] == record["round"]
    assert isinstance(bet.body["round"], str)
    assert bet.body["round_closed"] is False and win.body["round_closed"] is True
    assert win.body["reference_transaction_uuid"] == bet.body["transaction_uuid"]
    for call in (bet, win):
        assert UUID4.fullmatch(call.body["transaction_uuid"])
        assert UUID4.fullmatch(call.body["request_uuid"])
        assert call.body["is_free"] is False and call.body["is_aggregated"] is False
    seed_hash = bet.body["meta"]["fair"]["seed_hash"]
    assert bet.body["meta"] == {"fair": {"scheme": "hhsim-1", "seed_hash": seed_hash}}
    closing = win.body["meta"]["fair"]
    assert closing["seed_hash"] == seed_hash and hhsim.verify(closing["seed"], seed_hash)
    assert win.body["amount"] == hhsim.payouts("hh-slot", closing["seed"], record["round"],
                                               [1000])[0]
    assert wallet.balance(user) == wallet.start_balance - 1000 + win.body["amount"]
    assert record["balance"] == wallet.balance(user) and record["status"] == "closed"
    assert record["seed"] == closing["seed"] and record["reveal_matches"] is True
    assert [c["response_signature"] for c in record["calls"]] == ["valid", "valid"]


def test_hub88_ladder_round_commits_first_and_reveals_at_the_close(
        sim: ProviderSim, wallet: WalletStandIn) -> None:
    sid, user, _ = hub88_player(sim, wallet, "hh-ladder")
    record = sim.play(sid, 500, steps=3)
    calls = wallet.of("hub88")
    bets = [c for c in calls if c.path == "/transaction/bet"]
    assert [b.body["amount"] for b in bets] == [500, 500, 500]
    assert [b.body["bet"] for b in bets] == ["step 1", "step 2", "step 3"]
    assert fair_of(calls[0]) == {"scheme": "hhsim-1", "seed_hash": record["seed_hash"]}
    assert all(fair_of(c) is None for c in calls[1:-1])
    assert [c.body["round_closed"] for c in calls] == [False] * (len(calls) - 1) + [True]
    last = calls[-1]
    assert last.path == "/transaction/win" and last.body["amount"] == 0
    assert last.body["reference_transaction_uuid"] == bets[-1].body["transaction_uuid"]
    assert hhsim.verify(fair_of(last)["seed"], record["seed_hash"])
    expected = hhsim.payouts("hh-ladder", record["seed"], record["round"], [500] * 3)
    paid = [c.body["amount"] for c in calls if c.path == "/transaction/win"][:-1]
    assert paid == [w for w in expected if w] and record["wins"] == expected
    assert wallet.balance(user) == wallet.start_balance - 1500 + sum(expected)


def test_a_ladder_closes_itself_after_its_last_step(sim: ProviderSim,
                                                    wallet: WalletStandIn) -> None:
    sid, _, _ = hub88_player(sim, wallet, "hh-ladder")
    record = sim.play(sid, 100, steps=catalog.LADDER_STEPS)
    calls = wallet.of("hub88")
    assert len(record["bets"]) == 5 and record["status"] == "closed"
    assert calls[-1].path == "/transaction/win" and calls[-1].body["round_closed"] is True
    assert calls[-1].body["bet"] == "step 5"  # the fifth step's own win (0 or not) closes
    assert hhsim.verify(fair_of(calls[-1])["seed"], record["seed_hash"])


def test_bgaming_slot_round_is_one_signed_play_request(sim: ProviderSim,
                                                       wallet: WalletStandIn) -> None:
    sid, user = bgaming_player(sim)
    record = sim.play(sid, 1000)
    [play] = wallet.of("bgaming")
    assert play.path == "/play" and play.signature_valid
    assert set(play.body) == BGAMING_FIELDS | {"fair"}
    assert play.body["user_id"] == user and play.body["session_id"] == f"sess-{user}"
    assert play.body["game_id"] == record["round"] and play.body["finished"] is True
    bet, win = play.body["actions"]
    assert bet == {"action": "bet", "amount": 1000, "action_id": bet["action_id"]}
    assert win["action"] == "win" and UUID4.fullmatch(win["action_id"])
    fair = play.body["fair"]
    assert fair["scheme"] == "hhsim-1" and hhsim.verify(fair["seed"], fair["seed_hash"])
    assert win["amount"] == hhsim.payouts("hh-slot", fair["seed"], record["round"], [1000])[0]
    assert wallet.balance(user) == wallet.start_balance - 1000 + win["amount"]
    assert record["calls"][0]["response_signature"] == "valid"


def test_bgaming_ladder_round(sim: ProviderSim, wallet: WalletStandIn) -> None:
    sid, user = bgaming_player(sim, "hh-ladder")
    record = sim.play(sid, 300, steps=2)
    calls = wallet.of("bgaming")
    assert all(c.path == "/play" and c.signature_valid for c in calls)
    assert calls[0].body["fair"] == {"scheme": "hhsim-1", "seed_hash": record["seed_hash"]}
    assert all("fair" not in c.body for c in calls[1:-1])
    assert [c.body["finished"] for c in calls] == [False] * (len(calls) - 1) + [True]
    assert calls[-1].body["actions"][0]["action"] == "win"
    assert calls[-1].body["actions"][0]["amount"] == 0
    assert hhsim.verify(calls[-1].body["fair"]["seed"], record["seed_hash"])
    expected = hhsim.payouts("hh-ladder", record["seed"], record["round"], [300, 300])
    assert wallet.balance(user) == wallet.start_balance - 600 + sum(expected)


def test_stakes_follow_each_dialects_units(sim: ProviderSim, wallet: WalletStandIn) -> None:
    assert catalog.stake_choices("hub88", "BTC", False) == [100, 500, 1000]  # 0.001 BTC ...
    assert catalog.stake_choices("bgaming", "BTC", False)[0] == 10_000  # 0.0001 BTC in sats
    assert catalog.stake_choices("bgaming", "ETH", False)[0] == 1_000_000  # gwei
    assert catalog.stake_choices("bgaming", "USDT", False)[0] == 100_000  # 10^-6
    assert catalog.stake_choices("bgaming", "FUN", False)[0] == 100  # cents
    for dialect, currency in itertools.product(("hub88", "bgaming"), catalog.SUBUNIT_DIGITS):
        assert all(s % 100 == 0 for s in catalog.stake_choices(dialect, currency, False))


# --- refusals and failures --------------------------------------------------------------
def test_a_bet_refused_for_money_is_not_rolled_back(sim: ProviderSim,
                                                    wallet: WalletStandIn) -> None:
    sid, user, _ = hub88_player(sim, wallet)
    wallet.balances[user] = 50
    record = sim.play(sid, 100)
    assert [c.path for c in wallet.of("hub88")] == ["/transaction/bet"]
    assert record["status"] == "refused" and "Not enough money" in record["message"]
    assert record["seed"] is None and record["balance"] == 50
    assert record["next_seed_hash"] != record["seed_hash"]  # a new round, a new seed

    sid, user = bgaming_player(sim)
    wallet.balances[user] = 50
    record = sim.play(sid, 100)
    assert record["status"] == "refused" and "Not enough money" in record["message"]
    assert [c.path for c in wallet.of("bgaming")] == ["/play"]


def test_a_failed_win_is_sent_again_byte_for_byte(sim: ProviderSim,
                                                  wallet: WalletStandIn) -> None:
    sid, user, _ = hub88_player(sim, wallet)
    wallet.fail("/hub88/transaction/win", "500")
    record = sim.play(sid, 200)
    calls = wallet.of("hub88")
    assert [c.path for c in calls] == ["/transaction/bet", "/transaction/win",
                                       "/transaction/win"]
    assert calls[1].status == 500 and calls[1].raw == calls[2].raw
    assert record["status"] == "closed" and not record["unsettled"]
    win = calls[2].body["amount"]
    assert wallet.balance(user) == wallet.start_balance - 200 + win


def test_a_win_that_keeps_failing_is_left_to_the_retrier(sim: ProviderSim,
                                                         wallet: WalletStandIn) -> None:
    sid, user = bgaming_player(sim, "hh-ladder")
    wallet.fail("/bgaming/play", "500", times=4, after=1)  # the step passes, the close fails
    record = sim.play(sid, 100, steps=1)
    assert record["unsettled"] is True and record["status"] == "closed"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
            wallet.of("bgaming") and wallet.of("bgaming")[-1].status == 200
            and wallet.of("bgaming")[-1].body["finished"]):
        time.sleep(0.1)
    closes = [c for c in wallet.of("bgaming") if c.body["finished"]]
    assert len(closes) == 5 and len({c.raw for c in closes}) == 1
    assert closes[-1].status == 200


def test_a_bet_that_times_out_is_rolled_back(sim: ProviderSim, wallet: WalletStandIn) -> None:
    sid, user, _ = hub88_player(sim, wallet)
    wallet.delay = 1.5  # the sim waits 1 s
    wallet.fail("/hub88/transaction/bet", "timeout")
    record = sim.play(sid, 300)
    calls = wallet.of("hub88")
    assert [c.path for c in calls] == ["/transaction/bet", "/transaction/rollback"]
    assert record["calls"][0]["status"] == "timeout"
    rollback = calls[1].body
    assert set(rollback) == HUB88_ROLLBACK_FIELDS
    assert rollback["reference_transaction_uuid"] == calls[0].body["transaction_uuid"]
    assert rollback["round_closed"] is True and rollback["meta"] == {}
    assert record["status"] == "cancelled" and record["seed"] is None
    assert wallet.balance(user) == wallet.start_balance


def test_a_failed_ladder_step_is_rolled_back_and_the_round_closed(
        sim: ProviderSim, wallet: WalletStandIn) -> None:
    sid, user, _ = hub88_player(sim, wallet, "hh-ladder")
    wallet.fail("/hub88/transaction/bet", "500", after=1)
    record = sim.play(sid, 100, steps=3)
    paths = [c.path for c in wallet.of("hub88")]
    assert paths[-3:] == ["/transaction/bet", "/transaction/rollback", "/transaction/win"]
    calls = wallet.of("hub88")
    first_bet = calls[0].body["transaction_uuid"]
    assert calls[-1].body["reference_transaction_uuid"] == first_bet
    assert calls[-1].body["round_closed"] is True and calls[-1].body["amount"] == 0
    assert record["status"] == "closed" and len(record["bets"]) == 1
    assert hhsim.verify(record["seed"], record["seed_hash"])
    expected = hhsim.payouts("hh-ladder", record["seed"], record["round"], [100])
    assert wallet.balance(user) == wallet.start_balance - 100 + expected[0]


# --- misbehaviour -----------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["hub88", "bgaming"])
def test_retry_sends_every_call_twice_and_money_moves_once(
        sim: ProviderSim, wallet: WalletStandIn, dialect: str) -> None:
    sim.control("retry")
    sid, user = (hub88_player(sim, wallet)[:2] if dialect == "hub88" else bgaming_player(sim))
    record = sim.play(sid, 100)
    calls = wallet.of(dialect)
    assert len(calls) == (4 if dialect == "hub88" else 2)
    for first, again in zip(calls[::2], calls[1::2], strict=True):
        assert first.raw == again.raw and first.answer == again.answer
    assert wallet.balance(user) == wallet.start_balance - 100 + record["wins"][0]
    assert record["misbehave"] == ["retry"]


def test_duplicate_reuses_a_transaction_id_with_another_amount(
        sim: ProviderSim, wallet: WalletStandIn) -> None:
    sim.control("duplicate")
    sid, user, _ = hub88_player(sim, wallet)
    record = sim.play(sid, 100)
    bet, twin, win = wallet.of("hub88")
    assert twin.path == "/transaction/bet"
    assert twin.body["transaction_uuid"] == bet.body["transaction_uuid"]
    assert twin.body["amount"] == 200 and twin.outcome == "RS_ERROR_DUPLICATE_TRANSACTION"
    assert win.body["round_closed"] is True
    assert wallet.balance(user) == wallet.start_balance - 100 + record["wins"][0]

    sid, user = bgaming_player(sim)
    sim.play(sid, 100)
    play, again, close = wallet.of("bgaming")
    assert [a["action"] for a in play.body["actions"]] == ["bet"]
    assert again.body["actions"][0]["action_id"] == play.body["actions"][0]["action_id"]
    assert again.body["actions"][0]["amount"] == 200
    assert [a["action"] for a in close.body["actions"]] == ["win"]
    assert close.body["finished"] is True


@pytest.mark.parametrize("dialect", ["hub88", "bgaming"])
def test_timeout_rollback_drops_the_bets_answer_and_rolls_it_back(
        sim: ProviderSim, wallet: WalletStandIn, dialect: str) -> None:
    sim.control("timeout-rollback")
    sid, user = (hub88_player(sim, wallet)[:2] if dialect == "hub88" else bgaming_player(sim))
    record = sim.play(sid, 100)
    calls = wallet.of(dialect)
    assert len(calls) == 2 and calls[0].outcome in ("RS_OK", "OK")  # the wallet took it
    assert record["calls"][0]["status"] == "dropped"
    if dialect == "hub88":
        assert calls[1].path == "/transaction/rollback"
        assert calls[1].body["reference_transaction_uuid"] == calls[0].body["transaction_uuid"]
    else:
        assert calls[1].path == "/rollback" and calls[1].body["finished"] is True
        originals = [a["original_action_id"] for a in calls[1].body["actions"]]
        assert originals == [a["action_id"] for a in calls[0].body["actions"]]
    assert record["status"] == "cancelled"
    assert wallet.balance(user) == wallet.start_balance


def test_out_of_order_alternates_rollback_first_and_win_first(
        sim: ProviderSim, wallet: WalletStandIn) -> None:
    sim.control("out-of-order")
    sid, user, _ = hub88_player(sim, wallet)
    first = sim.play(sid, 100)
    calls = wallet.of("hub88")
    assert [c.path for c in calls] == ["/transaction/rollback", "/transaction/bet",
                                       "/transaction/rollback"]
    bet_tx = calls[1].body["transaction_uuid"]
    assert calls[0].body["reference_transaction_uuid"] == bet_tx
    assert calls[1].outcome == "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"  # the tombstone held
    assert first["status"] == "cancelled" and first["tricks"] == ["out-of-order-rollback"]
    assert wallet.balance(user) == wallet.start_balance

    wallet.reset()
    second = sim.play(sid, 100)
    calls = wallet.of("hub88")
    assert [c.path for c in calls] == ["/transaction/win", "/transaction/bet",
                                       "/transaction/win"]
    assert calls[0].outcome == "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
    assert calls[0].raw == calls[2].raw and calls[2].outcome == "RS_OK"
    assert second["status"] == "closed" and second["tricks"] == ["out-of-order-win"]
    assert wallet.balance(user) == wallet.start_balance - 100 + second["wins"][0]


def test_out_of_order_rollback_on_the_bgaming_side(sim: ProviderSim,
                                                   wallet: WalletStandIn) -> None:
    sim.control("out-of-order-rollback")
    sid, user = bgaming_player(sim)
    record = sim.play(sid, 100)
    early, play, rollback = wallet.of("bgaming")
    assert early.path == rollback.path == "/rollback" and play.path == "/play"
    bet_id = play.body["actions"][0]["action_id"]
    assert early.body["actions"] == [{"action": "rollback", "action_id":
                                      early.body["actions"][0]["action_id"],
                                      "original_action_id": bet_id}]
    assert play.status == 412 and record["status"] == "cancelled"
    assert wallet.balance(user) == wallet.start_balance


def test_out_of_order_win_on_the_bgaming_side(sim: ProviderSim,
                                              wallet: WalletStandIn) -> None:
    sim.control("out-of-order-win")
    sid, user = bgaming_player(sim)
    record = sim.play(sid, 100)
    early, play = wallet.of("bgaming")
    assert [a["action"] for a in early.body["actions"]] == ["win"]
    assert early.status == 412 and play.status == 200
    assert [a["action"] for a in play.body["actions"]] == ["bet", "win"]
    assert record["status"] == "closed"
    assert wallet.balance(user) == wallet.start_balance - 100 + record["wins"][0]


@pytest.mark.parametrize("dialect", ["hub88", "bgaming"])
def test_bad_signature_spoils_the_first_call_then_rolls_it_back(
        sim: ProviderSim, wallet: WalletStandIn, dialect: str) -> None:
    sim.control("bad-signature")
    sid, user = (hub88_player(sim, wallet)[:2] if dialect == "hub88" else bgaming_player(sim))
    record = sim.play(sid, 100)
    first, rollback = wallet.of(dialect)
    assert not first.signature_valid and rollback.signature_valid
    assert first.outcome in ("RS_ERROR_INVALID_SIGNATURE", "403")
    assert record["calls"][0]["spoiled_signature"] is True
    assert rollback.path in ("/transaction/rollback", "/rollback")
    assert record["status"] == "cancelled" and wallet.balance(user) == wallet.start_balance


@pytest.mark.parametrize("dialect", ["hub88", "bgaming"])
def test_bad_reveal_reveals_a_seed_that_does_not_match(
        sim: ProviderSim, wallet: WalletStandIn, dialect: str) -> None:
    sim.control("bad-reveal")
    sid = hub88_player(sim, wallet)[0] if dialect == "hub88" else bgaming_player(sim)[0]
    record = sim.play(sid, 100)
    calls = wallet.of(dialect)
    committed = fair_of(calls[0])["seed_hash"]
    revealed = fair_of(calls[-1])["seed"]
    assert committed == record["seed_hash"] and not hhsim.verify(revealed, committed)
    assert record["reveal_matches"] is False and record["seed"] == revealed


def test_rtp_skew_pays_from_a_richer_table_than_declared(sim: ProviderSim,
                                                          wallet: WalletStandIn) -> None:
    sim.control("rtp-skew")
    sid, _, _ = hub88_player(sim, wallet)
    differs = 0
    for _ in range(12):
        record = sim.play(sid, 1000)
        assert hhsim.verify(record["seed"], record["seed_hash"])  # the true seed
        declared = hhsim.payouts("hh-slot", record["seed"], record["round"], [1000])
        skewed = hhsim.payouts("hh-slot", record["seed"], record["round"], [1000],
                               table=catalog.SKEWED["hh-slot"])
        assert record["wins"] == skewed
        differs += declared != skewed
    assert differs > 0


def test_misbehaviour_can_be_given_at_start(tmp_path: Path,
                                            casino_key: rsa.RSAPrivateKey) -> None:
    sim = start_provider_sim(tmp_path, hub88_wallet="http://127.0.0.1:9/",
                             bgaming_wallet="http://127.0.0.1:9/", casino_key=casino_key,
                             misbehave=["retry", "rtp-skew"])
    try:
        shown = httpx.get(f"{sim.url}/sim/control").json()
        assert shown["misbehave"] == ["retry", "rtp-skew"]
    finally:
        sim.stop()


def test_a_ladder_step_refused_mid_round_leaves_the_round_to_stop(
        sim: ProviderSim, wallet: WalletStandIn) -> None:
    sid, user, _ = hub88_player(sim, wallet, "hh-ladder")
    wallet.balances[user] = 100  # one step's stake: the next needs a win first
    record = sim.play(sid, 100, steps=5)
    calls = wallet.of("hub88")
    bets = [c for c in calls if c.path == "/transaction/bet"]
    accepted = [b for b in bets if b.outcome == "RS_OK"]
    assert len(accepted) == len(record["bets"]) >= 1
    if len(accepted) < 5:  # unless every step won, the next bet was refused
        assert bets[-1].outcome == "RS_ERROR_NOT_ENOUGH_MONEY"
    assert not any(c.path == "/transaction/rollback" for c in calls)
    assert record["status"] == "closed" and calls[-1].body["round_closed"] is True
    assert hhsim.verify(record["seed"], record["seed_hash"])
    assert wallet.balance(user) == 100 - 100 * len(accepted) + sum(record["wins"])
