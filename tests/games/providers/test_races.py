"""200 concurrent debits for one player from one provider, over real HTTP, spread over two
server processes: exactly as many are accepted as the balance pays for, never more, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.support import provider_setup as ps
from tests.support.provider_clients import new_rsa
from tests.support.wallet_server import wallet_server

pytestmark = pytest.mark.slow


def test_200_concurrent_debits_never_overdraw(any_env: str, tmp_path: Path) -> None:
    key, public = new_rsa()
    prov = ps.add_hub88("race", public)
    p = ps.new_player(fun=5_000)        # pays for 50 bets of 1.00
    tok = ps.token(prov, p)
    bodies = []
    for _ in range(200):
        body = json.dumps({
            "user": p.player_id, "token": tok, "request_uuid": str(uuid.uuid4()),
            "transaction_uuid": str(uuid.uuid4()), "round": str(uuid.uuid4()),
            "round_closed": False, "game_code": "hh-slot", "currency": "FUN",
            "amount": 100_000}).encode()
        sig = base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
        bodies.append((body, sig))

    async def fire(urls: list[str]) -> list[str]:
        async with httpx.AsyncClient(timeout=60,
                                     limits=httpx.Limits(max_connections=200)) as http:
            async def one(i: int) -> str:
                body, sig = bodies[i]
                r = await http.post(urls[i % len(urls)] + "/api/providers/race/transaction/bet",
                                    content=body, headers={"X-Hub88-Signature": sig})
                return r.json()["status"]
            return await asyncio.gather(*(one(i) for i in range(len(bodies))))

    with wallet_server(tmp_path / "a.log") as a, wallet_server(tmp_path / "b.log") as b:
        statuses = asyncio.run(fire([a, b]))
    assert statuses.count("RS_OK") == 50
    assert set(statuses) == {"RS_OK", "RS_ERROR_NOT_ENOUGH_MONEY"}
    assert ps.balance(p.player_id) == 0
    assert ps.invariants_hold() == []
