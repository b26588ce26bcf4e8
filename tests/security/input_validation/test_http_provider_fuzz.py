"""Fuzz the provider endpoints over real HTTP, correctly signed (so every check past the
signature is reached): valid calls with one field replaced by any JSON value or removed,
and bodies that are not JSON. Never a 500, and an answer that is not a success moved no
money. Derandomized: the same examples every run (``HH_FUZZ_EXAMPLES``, default 60)."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import provider_setup as ps
from tests.support.provider_clients import BGamingClient, Hub88Client, new_rsa
from tests.support.wallet_server import wallet_server

pytestmark = [pytest.mark.security, pytest.mark.slow]
EXAMPLES = int(os.environ.get("HH_FUZZ_EXAMPLES", "60"))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=8)
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))


def _mutate(body: dict, data: st.DataObject) -> bytes:
    body = dict(body)
    field = data.draw(st.sampled_from(sorted(body)))
    if data.draw(st.booleans()):
        del body[field]
    else:
        body[field] = data.draw(JSON)
    return json.dumps(body).encode()


def test_provider_endpoints_survive_malformed_signed_requests(app_env: Path,
                                                              tmp_path: Path) -> None:
    key, public = new_rsa()
    hub = ps.add_hub88("fuzz-hub", public)
    secret = secrets.token_hex(32).encode()
    bg = ps.add_bgaming("fuzz-bg", secret)
    p = ps.new_player(fun=100_000)
    hub_token = ps.token(hub, p)
    bg_token = ps.token(bg, p)
    with wallet_server(tmp_path / "wallet.log") as url:
        hc = Hub88Client(f"{url}/api/providers/fuzz-hub", key, hub.own_public_key or "")
        bc = BGamingClient(f"{url}/api/providers/fuzz-bg", secret)

        def hub_bet() -> dict:
            return {"user": p.player_id, "token": hub_token, "request_uuid": "r",
                    "transaction_uuid": str(uuid.uuid4()), "round": str(uuid.uuid4()),
                    "round_closed": False, "game_code": "hh-slot", "currency": "FUN",
                    "amount": 1000}

        def bg_play() -> dict:
            return {"user_id": p.player_id, "currency": "FUN", "game": "hh-slot",
                    "game_id": str(uuid.uuid4()), "session_id": bg_token, "finished": False,
                    "actions": [{"action": "bet", "amount": 1, "action_id": str(uuid.uuid4())}]}

        @FUZZ
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            before = ps.balance(p.player_id)
            which = data.draw(st.sampled_from(["hub-bet", "hub-win", "hub-rollback",
                                               "bg-play", "bg-rollback", "raw"]))
            if which == "raw":
                body = data.draw(st.binary(max_size=200))
                for c, path in ((hc, "/transaction/bet"), (bc, "/play")):
                    r = c.raw(path, body)
                    assert r.status_code in (200, 412), (path, body, r.body)
                assert ps.balance(p.player_id) == before
                return
            if which.startswith("hub"):
                path = {"hub-bet": "/transaction/bet", "hub-win": "/transaction/win",
                        "hub-rollback": "/transaction/rollback"}[which]
                r = hc.raw(path, _mutate(hub_bet(), data))
                assert r.status_code == 200, r.body
                ok = r.json.get("status") == "RS_OK"
            else:
                path = "/play" if which == "bg-play" else "/rollback"
                r = bc.raw(path, _mutate(bg_play(), data))
                assert r.status_code in (200, 412), r.body
                ok = r.status_code == 200
            if not ok:
                assert ps.balance(p.player_id) == before, (which, r.body)

        run()
        log = (tmp_path / "wallet.log").read_text()
        assert "Traceback" not in log and '"status": 500' not in log
    assert ps.invariants_hold() == []
