"""The sim as a separate process: its state folder, its two dialects' listing and launch
calls with their signatures, its pages and thumbnails, recall and the control switch."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from casino_app.cli import main
from casino_app.games.providers import hhsim
from casino_app.provider_sim.state import load_or_create
from tests.provider_sim.wallet_standin import WalletStandIn
from tests.support.provider_sim import (
    ProviderSim,
    hmac_sign,
    rsa_sign,
    session_of,
    start_provider_sim,
    write_casino_key,
)

GAMES = {"hh-slot", "hh-ladder"}


def test_the_state_folder_is_created_once_then_reused(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"hub88_private.pem", "hub88_public.pem", "bgaming_secret", "casino_id"}
    assert re.fullmatch(r"[0-9a-f]{64}", first.bgaming_secret)
    assert (tmp_path / "hub88_private.pem").stat().st_mode & 0o077 == 0
    again = load_or_create(tmp_path)
    assert again.bgaming_secret == first.bgaming_secret
    assert again.casino_id == first.casino_id
    assert again.hub88_key.private_numbers() == first.hub88_key.private_numbers()
    assert again.hub88_key.key_size == 2048


def test_the_ready_line_names_the_keys(sim: ProviderSim) -> None:
    assert sim.hub88_public_key_file.name == "hub88_public.pem"
    assert sim.bgaming_secret_file.name == "bgaming_secret"
    assert sim.url == f"http://127.0.0.1:{sim.port}"
    assert httpx.get(f"{sim.url}/health").json()["ok"] is True


def test_hub88_game_list_is_signed_and_complete(sim: ProviderSim) -> None:
    answer = sim.hub88("list", {"operator_id": int(sim.casino_id)})
    assert answer.status_code == 200 and sim.hub88_answer_valid(answer)
    games = {g["game_code"]: g for g in answer.json()}
    assert set(games) == GAMES
    slot = games["hh-slot"]
    assert slot["product"] == "HashHouse Sim" and slot["rtp"] == "96.00"
    assert games["hh-ladder"]["rtp"] == "97.00"
    assert slot["platforms"] == ["GPL_DESKTOP", "GPL_MOBILE"]
    assert slot["enabled"] is True and slot["demo_game_support"] is True
    assert slot["fair_scheme"] == hhsim.SCHEME
    assert slot["volatility"] == "high" and games["hh-ladder"]["volatility"] == "medium"
    for field in ("name", "category", "volatility", "url_thumb", "url_background"):
        assert slot[field]
    thumb = httpx.get(slot["url_thumb"])
    assert slot["url_thumb"].startswith(sim.url + "/")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/svg+xml"
    assert "max-age" in thumb.headers["cache-control"] and thumb.content.startswith(b"<svg")
    assert httpx.get(slot["url_background"]).status_code == 200


def test_hub88_refuses_bad_signatures_and_strangers(sim: ProviderSim, tmp_path: Path) -> None:
    body = {"operator_id": int(sim.casino_id)}
    raw = b'{"operator_id": %s}' % sim.casino_id.encode()
    forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for signature in (rsa_sign(forged, raw), "", "not base64!",
                      rsa_sign(sim.casino_key, raw + b" ")):
        answer = sim.hub88("list", body, raw=raw, signature=signature)
        assert answer.status_code == 401 and "error" in answer.json()
        assert sim.hub88_answer_valid(answer)
    stranger = sim.hub88("list", {"operator_id": 1})
    assert stranger.status_code == 403 and "error" in stranger.json()
    unknown = sim.hub88("url", {"operator_id": int(sim.casino_id), "game_code": "nope",
                                "currency": "FUN", "user": "u", "token": "t"})
    assert unknown.status_code == 404
    missing = sim.hub88("url", {"operator_id": int(sim.casino_id), "game_code": "hh-slot",
                                "currency": "FUN"})
    assert missing.status_code == 400 and "user" in missing.json()["error"]


def test_hub88_needs_the_casino_key_which_it_reads_at_each_request(sim: ProviderSim) -> None:
    key_file = sim.state_dir / "casino_public.pem"
    saved = key_file.read_bytes()
    key_file.unlink()
    try:
        answer = sim.hub88("list", {"operator_id": int(sim.casino_id)})
        assert answer.status_code == 401 and "casino_public.pem" in answer.json()["error"]
    finally:
        key_file.write_bytes(saved)
    assert sim.hub88("list", {"operator_id": int(sim.casino_id)}).status_code == 200


def test_the_launch_url_opens_a_game_page_for_an_iframe(sim: ProviderSim,
                                                        wallet: WalletStandIn) -> None:
    wallet.tokens.add("page-token")
    sid = sim.launch_hub88("hh-slot", user="player-page", token="page-token")
    page = httpx.get(f"{sim.url}/play/{sid}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors http://127.0.0.1:3000" in csp
    assert '<script src="/static/game.js"' in page.text
    assert re.search(r"<script>(?!</script>)", page.text) is None  # no inline script
    js = httpx.get(f"{sim.url}/static/game.js")
    assert js.status_code == 200 and "hh-provider-round" in js.text
    assert httpx.get(f"{sim.url}/static/game.css").status_code == 200
    state = httpx.get(f"{sim.url}/api/session/{sid}").json()
    assert state["kind"] == "spin" and state["balance"] == wallet.balance("player-page")
    assert re.fullmatch(r"[0-9a-f]{64}", state["next_seed_hash"])
    assert all(s["units"] % 100 == 0 for s in state["stakes"])
    assert [c.path for c in wallet.of("hub88")] == ["/user/info", "/user/balance"]
    assert httpx.get(f"{sim.url}/play/unknown").status_code == 404


def test_the_page_plays_through_its_own_api(sim: ProviderSim, wallet: WalletStandIn) -> None:
    wallet.tokens.add("page-2")
    sid = sim.launch_hub88("hh-ladder", user="player-ladder", token="page-2")
    before = httpx.get(f"{sim.url}/api/session/{sid}").json()
    api = f"{sim.url}/api/session/{sid}"
    step = httpx.post(f"{api}/step", json={"stake": 100}).json()
    assert step["round"]["round"] == before["next_round"]
    assert step["round"]["seed_hash"] == before["next_seed_hash"]
    assert step["round"]["status"] == "open" and step["round"]["seed"] is None
    done = httpx.post(f"{api}/stop", json={}).json()["round"]
    assert done["status"] == "closed" and hhsim.verify(done["seed"], done["seed_hash"])
    assert httpx.post(f"{api}/stop", json={}).status_code == 400
    form = httpx.post(f"{api}/step", data={"stake": "100"})
    assert form.status_code == 415  # a cross-site form cannot play
    assert httpx.post(f"{api}/step", json={"stake": 150}).status_code == 400


def test_demo_launches_play_money_without_any_wallet_call(sim: ProviderSim,
                                                          wallet: WalletStandIn) -> None:
    for sid in (sim.launch_hub88("hh-slot", currency="XXX"),
                sim.launch_bgaming("hh-slot", demo=True)):
        record = sim.play(sid, 100)
        assert record["demo"] is True and record["calls"] == []
        assert record["balance"] == 100_000 - 100 + record["wins"][0]
        assert hhsim.verify(record["seed"], record["seed_hash"])
    assert wallet.calls == []


def test_bgaming_side_is_signed_lists_games_and_launches(sim: ProviderSim) -> None:
    answer = sim.bgaming("/games", {"casino_id": sim.casino_id})
    assert answer.status_code == 200 and sim.bgaming_answer_valid(answer)
    games = {g["identifier"]: g for g in answer.json()["games"]}
    assert set(games) == GAMES and games["hh-slot"]["rtp"] == "96.00"
    assert games["hh-ladder"]["has_demo"] is True
    assert httpx.get(games["hh-slot"]["thumbnail"]).status_code == 200
    bad = sim.bgaming("/games", {"casino_id": sim.casino_id}, signature="00" * 32)
    assert bad.status_code == 412 and bad.json()["code"] == 403
    assert sim.bgaming_answer_valid(bad)
    raw = b'{"casino_id": "%s"}' % sim.casino_id.encode()
    base64_sig = sim.bgaming("/games", {}, raw=raw, signature=hmac_sign("wrong", raw))
    assert base64_sig.status_code == 412
    stranger = sim.bgaming("/games", {"casino_id": "someone-else"})
    assert stranger.status_code == 412
    launch = sim.bgaming("/sessions", {
        "casino_id": sim.casino_id, "game": "hh-ladder", "currency": "BTC", "locale": "en",
        "ip": "127.0.0.1", "client_type": "mobile", "jurisdiction": "XX", "balance": 0,
        "urls": {"return_url": "https://casino.example/", "deposit_url": ""},
        "user": {"id": "p-9", "nickname": "nine"}, "session_id": "s-9"})
    assert launch.status_code == 200 and sim.bgaming_answer_valid(launch)
    options = launch.json()["launch_options"]
    assert options["strategy"] == "iframe" and options["game_url"].startswith(sim.url)
    page = httpx.get(options["game_url"])
    assert "frame-ancestors https://casino.example" in page.headers["content-security-policy"]
    unknown = sim.bgaming("/demo", {"casino_id": sim.casino_id, "game": "nope"})
    assert unknown.status_code == 412 and unknown.json()["code"] == 405


def test_round_recall_shows_the_round_to_its_player_only(sim: ProviderSim,
                                                         wallet: WalletStandIn) -> None:
    wallet.tokens.add("recall-token")
    sid = sim.launch_hub88("hh-slot", user="player-recall", token="recall-token")
    record = sim.play(sid, 200)
    bet_tx = record["calls"][0]["request"]["transaction_uuid"]
    body = {"user": "player-recall", "transaction_uuid": bet_tx, "round": record["round"],
            "operator_id": int(sim.casino_id)}
    answer = sim.hub88("round", body)
    assert answer.status_code == 200 and sim.hub88_answer_valid(answer)
    page = httpx.get(answer.json()["url"])
    assert page.status_code == 200 and record["seed"] in page.text
    assert record["round"] in page.text and "matches the hash" in page.text
    data = httpx.get(answer.json()["url"] + ".json").json()
    assert data["seed_hash"] == record["seed_hash"] and data["total_win"] == record["wins"][0]
    for wrong in ({"user": "someone"}, {"transaction_uuid": "x"}, {"round": "hhsim-0"}):
        assert sim.hub88("round", body | wrong).status_code == 404


def test_the_control_switch_sets_shows_and_resets_misbehaviour(sim: ProviderSim) -> None:
    assert sim.control("retry", "bad-reveal")["misbehave"] == ["retry", "bad-reveal"]
    shown = httpx.get(f"{sim.url}/sim/control").json()
    assert shown["misbehave"] == ["retry", "bad-reveal"] and "rtp-skew" in shown["known"]
    assert sim.control()["misbehave"] == []
    bad = httpx.post(f"{sim.url}/sim/control", json={"misbehave": ["explode"]})
    assert bad.status_code == 400 and "explode" in bad.json()["error"]
    assert httpx.post(f"{sim.url}/sim/control", data={"misbehave": "retry"}).status_code == 415


def test_bad_signature_also_spoils_the_sims_answers(sim: ProviderSim) -> None:
    sim.control("bad-signature")
    hub88 = sim.hub88("list", {"operator_id": int(sim.casino_id)})
    bgaming = sim.bgaming("/games", {"casino_id": sim.casino_id})
    assert hub88.status_code == bgaming.status_code == 200
    assert not sim.hub88_answer_valid(hub88) and not sim.bgaming_answer_valid(bgaming)


def test_the_command_refuses_an_unknown_misbehaviour(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["provider-sim", "--port", "0", "--state-dir", str(tmp_path),
                 "--hub88-wallet", "http://127.0.0.1:9/", "--bgaming-wallet",
                 "http://127.0.0.1:9/", "--misbehave", "retry,explode"])
    assert code == 2 and "explode" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing started, nothing created


def test_the_launcher_can_leave_the_casino_key_file_to_the_casino(
        tmp_path: Path, casino_key: rsa.RSAPrivateKey) -> None:
    write_casino_key(tmp_path, casino_key)  # as the casino would
    before = (tmp_path / "casino_public.pem").read_bytes()
    sim = start_provider_sim(tmp_path, hub88_wallet="http://127.0.0.1:9/",
                             bgaming_wallet="http://127.0.0.1:9/", write_casino_key_file=False)
    try:
        assert (tmp_path / "casino_public.pem").read_bytes() == before
        raw = b'{"operator_id": %s}' % sim.casino_id.encode()
        answer = sim.hub88("list", {}, raw=raw, signature=rsa_sign(casino_key, raw))
        assert answer.status_code == 200 and sim.hub88_answer_valid(answer)
    finally:
        sim.stop()
    assert sim.proc.returncode == 0  # SIGTERM: a clean stop


def test_session_of_reads_launch_urls() -> None:
    assert session_of("http://127.0.0.1:1/play/abc_-9") == "abc_-9"
