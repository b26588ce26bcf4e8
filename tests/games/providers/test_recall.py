"""Reading provider rounds back (games/providers/recall.py) on SQLite and PostgreSQL:
a player's rounds newest first, one round with its transactions and the calls that
carried them (refused calls and repeats found by the round id in their body), its
fairness check, the provider's recall URL (or why there is none), and another player's
round refused as an unknown one."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid

import pytest

from casino_app.core.db import ledger_tx
from casino_app.games.providers import client, honesty, recall, wallet
from casino_app.games.providers.contract import Call, WalletRequest
from casino_app.games.providers.dialects import dialect
from casino_app.games.providers.models import ProviderGame
from casino_app.games.providers.registry import ProviderConfig
from tests.support import provider_setup as ps
from tests.support.provider_clients import new_rsa


def _body(player: str, ref: str, **more: object) -> bytes:
    """A BGaming-style body naming the round (what the search looks for)."""
    return json.dumps({"user_id": player, "currency": "FUN", "game": "g1", "game_id": ref,
                       **more}, separators=(",", ":")).encode()


def _send(prov: ProviderConfig, player: ps.TestPlayer, ref: str, calls: tuple[Call, ...],
          *, token: str | None = None, close: bool = False, fair: dict | None = None,
          body_player: str | None = None, path: str = "/play") -> str:
    """One call through the wallet, kept as a receipt with a realistic body; returns
    our answer's status."""
    body = _body(body_player or player.player_id, ref, finished=close,
                 actions=[c.tx_ref for c in calls], n=secrets.token_hex(4))
    reply = dialect(prov.dialect).reply(prov, path, body)
    receipt = wallet.Receipt(path, body, "sig-" + secrets.token_hex(8))
    req = WalletRequest(body_player or player.player_id, "FUN", "g1", ref, token, close,
                        calls, fair)
    return wallet.handle(prov, req, receipt, reply, lambda _p: True)[2].value


def _round(prov: ProviderConfig, player: ps.TestPlayer, token: str, stake: int, win: int,
           **fair: dict) -> str:
    ref = str(uuid.uuid4())
    assert _send(prov, player, ref, (Call("bet", "b" + ref, stake),), token=token,
                 fair=fair.get("open")) == "OK"
    assert _send(prov, player, ref, (Call("win", "w" + ref, win),), close=True,
                 fair=fair.get("close")) == "OK"
    return ref


def _id(ref: str) -> int:
    found = recall.find_rounds(ref)
    assert len(found) == 1
    return found[0].id


@pytest.fixture
def bg(any_env: str) -> ProviderConfig:
    prov = ps.add_bgaming("recall-bg", secrets.token_hex(16).encode())
    with ledger_tx() as s:
        s.add(ProviderGame(provider_id=prov.id, game_code="g1", name="Lucky Test",
                           category="slots", rtp_e4=960_000, volatility="", thumb_url="",
                           demo=False, enabled=True, fair_scheme=""))
    return prov


def test_a_players_rounds_come_newest_first_with_formatted_amounts(bg: ProviderConfig
                                                                   ) -> None:
    p, other = ps.new_player(fun=10_000), ps.new_player(fun=10_000)
    tok = ps.token(bg, p, game="g1")
    refs = [_round(bg, p, tok, 100, 50), _round(bg, p, tok, 200, 500)]
    _round(bg, other, ps.token(bg, other, game="g1"), 100, 0)
    open_ref = str(uuid.uuid4())
    assert _send(bg, p, open_ref, (Call("bet", "b" + open_ref, 300),), token=tok) == "OK"

    rounds = recall.player_rounds(p.player_id, 10)
    assert [r.round_ref for r in rounds] == [open_ref, *reversed(refs)]
    newest_closed, oldest = rounds[1], rounds[2]
    assert (oldest.staked_text, oldest.paid_text, oldest.net_text) == \
        ("1.00 FUN", "0.50 FUN", "-0.50 FUN")
    assert newest_closed.net_text == "+3.00 FUN" and newest_closed.state == "closed"
    assert rounds[0].state == "open" and rounds[0].closed_at is None
    assert {r.game_name for r in rounds} == {"Lucky Test"} and rounds[0].provider == "recall-bg"
    # paging: older than the second shown
    assert [r.round_ref for r in recall.player_rounds(p.player_id, 10, rounds[1].id)] == \
        [refs[0]]
    assert [r.round_ref for r in recall.player_rounds(p.player_id, 1)] == [open_ref]
    assert recall.player_rounds(str(uuid.uuid4()), 10) == []


def test_a_round_shows_its_calls_linked_and_found_by_the_round_id(bg: ProviderConfig
                                                                  ) -> None:
    p, other = ps.new_player(fun=1_000), ps.new_player(fun=1_000)
    tok = ps.token(bg, p, game="g1")
    ref = str(uuid.uuid4())
    bet = (Call("bet", "b" + ref, 100),)
    assert _send(bg, p, ref, bet, token=tok) == "OK"
    assert _send(bg, p, ref, bet, token=tok) == "OK"                    # a repeat
    assert _send(bg, p, ref, (Call("bet", "x" + ref, 5_000),), token=tok) == \
        "NOT_ENOUGH_MONEY"                                              # refused
    # someone else's call naming this round (refused: the round is another player's)
    assert _send(bg, other, ref, (Call("bet", "o" + ref, 10),),
                 token=ps.token(bg, other, game="g1")) != "OK"
    assert _send(bg, p, ref, (Call("win", "w" + ref, 250),), close=True) == "OK"
    assert _send(bg, p, ref, (Call("win", "late" + ref, 5),), close=True) != "OK"
    _round(bg, p, tok, 100, 0)  # another round's calls are not this one's

    d = recall.round_detail(_id(ref))
    assert [(t.kind, t.amount_text, t.rolled_back) for t in d.txs] == \
        [("bet", "1.00 FUN", False), ("win", "2.50 FUN", False)]
    assert all(t.receipt_id for t in d.txs)
    statuses = [(x.status, x.linked, x.same_player) for x in d.receipts]
    assert statuses == [("OK", True, True), ("OK", False, True),
                        ("NOT_ENOUGH_MONEY", False, True),
                        (statuses[3][0], False, False), ("OK", True, True),
                        (statuses[5][0], False, True)]
    assert statuses[3][0] != "OK" and statuses[5][0] == "TRANSACTION_DOES_NOT_EXIST"
    first = d.receipts[0]
    assert json.loads(first.body)["game_id"] == ref and first.signature.startswith("sig-")
    assert first.answer and json.loads(first.answer)
    assert "2 linked" in d.receipts_note and "4 more found" in d.receipts_note
    # the player's readable calls: theirs only, no body, no signature
    assert [(c.action, c.moved, c.status) for c in d.calls] == [
        ("bet", "bet 1.00 FUN", "OK"),
        ("play", "nothing (a repeat of an earlier call)", "OK"),
        ("play", "nothing (refused)", "NOT_ENOUGH_MONEY"),
        ("win", "win 2.50 FUN", "OK"),
        ("play", "nothing (refused)", "TRANSACTION_DOES_NOT_EXIST")]
    mine = recall.round_detail(d.round.id, p.player_id, raw=False, provider_link=False)
    assert mine.receipts == [] and mine.calls == d.calls
    assert "sig-" not in repr(mine)
    assert d.recall_note == "This provider's dialect has no round recall."


def test_another_players_round_is_not_found(bg: ProviderConfig) -> None:
    p, other = ps.new_player(fun=1_000), ps.new_player(fun=1_000)
    rid = _id(_round(bg, p, ps.token(bg, p, game="g1"), 100, 0))
    assert recall.round_detail(rid, p.player_id).round.id == rid
    with pytest.raises(recall.RoundNotFound):
        recall.round_detail(rid, other.player_id)
    with pytest.raises(LookupError):
        recall.round_detail(rid + 1000)
    for junk in (0, -1, 2**63, True, None, "", "x", "1.5", "١", [1], str(rid) + " OR 1=1"):
        with pytest.raises(recall.RoundNotFound):
            recall.round_detail(junk)  # type: ignore[arg-type]
    assert recall.round_detail(str(rid)).round.id == rid


def test_staff_find_rounds_by_our_number_or_the_providers_round_id(bg: ProviderConfig
                                                                   ) -> None:
    p = ps.new_player(fun=1_000)
    ref = _round(bg, p, ps.token(bg, p, game="g1"), 100, 0)
    rid = _id(ref)
    assert [r.id for r in recall.find_rounds(str(rid))] == [rid]
    assert [r.id for r in recall.find_rounds(f" #{rid} ")] == [rid]
    assert [r.round_ref for r in recall.find_rounds(ref)] == [ref]
    for nothing in ("", "  ", "999999", ref[:8], "x" * 200, "%", "_"):
        assert recall.find_rounds(nothing) == []


def test_the_fairness_check_and_the_seed_only_once_closed(bg: ProviderConfig) -> None:
    p = ps.new_player(fun=10_000)
    tok = ps.token(bg, p, game="g1")
    seed = secrets.token_hex(32)
    commit = {"scheme": "sha256", "seed_hash": hashlib.sha256(bytes.fromhex(seed)).hexdigest()}
    ref = str(uuid.uuid4())
    assert _send(bg, p, ref, (Call("bet", "b" + ref, 100),), token=tok, fair=commit) == "OK"
    rid = _id(ref)
    f = recall.round_detail(rid).fair
    assert (f.scheme, f.seed_hash, f.seed, f.state) == ("sha256", commit["seed_hash"], "",
                                                        "none")
    assert f.summary.startswith("Checked once the round has closed")
    assert _send(bg, p, ref, (Call("win", "w" + ref, 0),), close=True,
                 fair={**commit, "seed": seed}) == "OK"
    assert recall.round_detail(rid).fair.state == "pending"
    bad = _round(bg, p, tok, 100, 0, open=commit, close={**commit,
                                                        "seed": secrets.token_hex(32)})
    plain = _round(bg, p, tok, 100, 0)
    honesty.verify_rounds()
    good = recall.round_detail(rid).fair
    assert (good.state, good.seed) == ("ok", seed) and "matches" in good.summary
    mismatch = recall.round_detail(_id(bad)).fair
    assert mismatch.state == "mismatch" and "does not hash" in mismatch.summary
    none = recall.round_detail(_id(plain)).fair
    assert none.scheme == "" and "no commit-reveal" in none.summary


def test_the_providers_recall_url_or_why_there_is_none(any_env: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _key, public = new_rsa()
    hub = ps.add_hub88("recall-hub", public)   # its base URL answers nothing (port 9)
    p = ps.new_player(fun=1_000)
    rid = _id(_round(hub, p, ps.token(hub, p, game="g1"), 100, 0))
    down = recall.round_detail(rid)
    assert down.recall_url == "" and down.recall_note.startswith("The provider is down:")
    assert recall.round_detail(rid, provider_link=False).recall_note == ""
    asked: list[tuple] = []

    def round_url(provider, player_id, round_ref, tx_ref):  # noqa: ANN001, ANN202
        asked.append((provider.name, player_id, round_ref, tx_ref))
        return "https://provider.example/round/1"

    monkeypatch.setattr(client, "round_url", round_url)
    shown = recall.round_detail(rid)
    assert shown.recall_url == "https://provider.example/round/1"
    assert asked == [("recall-hub", p.player_id, shown.round.round_ref,
                      "b" + shown.round.round_ref)]


def test_staff_see_providers_without_their_secrets(bg: ProviderConfig) -> None:
    [view] = recall.providers()
    assert (view.name, view.dialect, view.enabled) == ("recall-bg", "bgaming", True)
    assert view.currencies == ("FUN", "ETH", "BTC", "USDT")
    assert view.wallet_url.endswith("/api/providers/recall-bg")
    assert view.base_url == "http://127.0.0.1:9"
    assert "secret" not in repr(view).lower()


def test_a_round_id_with_pattern_characters_finds_exactly_its_own_calls(
        bg: ProviderConfig) -> None:
    p = ps.new_player(fun=1_000)
    tok = ps.token(bg, p, game="g1")
    ref, lookalike = 'r%_\\"x' + uuid.uuid4().hex[:6], "r" + uuid.uuid4().hex[:12]
    for r in (ref, lookalike):
        assert _send(bg, p, r, (Call("bet", "b" + r, 100),), token=tok) == "OK"
        assert _send(bg, p, r, (Call("bet", "x" + r, 5_000),), token=tok) != "OK"
    d = recall.round_detail(_id(ref))
    assert [(x.status, x.linked) for x in d.receipts] == [("OK", True),
                                                          ("NOT_ENOUGH_MONEY", False)]
    assert all(json.loads(x.body)["game_id"] == ref for x in d.receipts)


def test_staff_see_a_launch_token_in_a_receipt_by_its_last_characters_only(
        bg: ProviderConfig) -> None:
    p = ps.new_player(fun=1_000)
    tok = ps.token(bg, p, game="g1")
    ref = str(uuid.uuid4())
    body = _body(p.player_id, ref, session_id=tok, token=tok,
                 actions=[{"action": "bet", "amount": 100, "action_id": "b" + ref}])
    req = WalletRequest(p.player_id, "FUN", "g1", ref, tok, False,
                        (Call("bet", "b" + ref, 100),))
    reply = dialect(bg.dialect).reply(bg, "/play", body)
    assert wallet.handle(bg, req, wallet.Receipt("/play", body, "sig"), reply,
                         lambda _p: True)[2].value == "OK"
    shown = recall.round_detail(_id(ref)).receipts[0].body
    assert tok not in shown
    assert json.loads(shown)["session_id"] == "…" + tok[-4:]
