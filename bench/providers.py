"""Benchmark (not a test): signed provider callbacks per second, against house bets per
second in the same run.

  .venv/bin/python bench/providers.py [--calls 3000] [--concurrency 32] [--players 200]
                                      [--dialect hub88|bgaming]

Starts a private PostgreSQL cluster (fsync on), migrates, funds ``--players`` players
with FUN, registers a provider of ``--dialect`` and serves our API in its own process
(granian, as tests/support/wallet_server.py does). Then, each at ``--concurrency``:

1. house bets: dice bets through ``bets.place_bet_async`` in this process (the settlement
   writer's batches);
2. provider bets in-process: ``wallet.handle_async`` (the same writer, one transaction per
   callback: the contract's per-call idempotency and receipts), no HTTP, no signatures;
3. provider bets over HTTP: signed bets (signed before the clock starts) to the server,
   which verifies each signature, applies it and signs its answer.

The last line is ``house_bets_per_s=<n> provider_inproc_per_s=<n> provider_http_per_s=<n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DICE = {"target": 50, "direction": "over"}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _run(total: int, concurrency: int, one) -> tuple[float, list[float]]:  # noqa: ANN001
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start), latencies


def report(name: str, rate: float, lat: list[float]) -> None:
    print(f"{name}: {rate:,.0f}/s, latency p50 {pct(lat, 0.5) * 1000:.1f} ms, "
          f"p99 {pct(lat, 0.99) * 1000:.1f} ms", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--players", type=int, default=200)
    ap.add_argument("--dialect", choices=["hub88", "bgaming"], default="hub88")
    args = ap.parse_args()

    from tests.support.services import PgCluster

    cluster = PgCluster(fsync=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-prov-"))
    try:
        os.environ.update({
            "CASINO_DATA_DIR": str(tmp / "data"),
            "CASINO_IDENTITY_DB_URL": cluster.create_database("bench_id"),
            "CASINO_LEDGER_DB_URL": cluster.create_database("bench_led"),
            "CASINO_ENCRYPTION_KEYS": "b1:" + __import__("base64").b64encode(
                secrets.token_bytes(32)).decode(),
            "CASINO_RATE_BETS_PLAYER": "200/second"})
        from casino_app.core.logging import configure_logging
        from casino_app.migrations import upgrade_all

        configure_logging("WARNING", True)
        upgrade_all()
        asyncio.run(_bench(args, tmp))
    finally:
        cluster.destroy()


async def _bench(args: argparse.Namespace, tmp: Path) -> None:
    import httpx

    from casino_app.core.db import ledger_tx
    from casino_app.games import bets
    from casino_app.games.providers import wallet
    from casino_app.games.providers.contract import Call, WalletRequest
    from casino_app.games.providers.dialects import dialect
    from casino_app.payments import ledger
    from tests.support import provider_setup as ps
    from tests.support.provider_clients import BGamingClient, Hub88Client, new_rsa
    from tests.support.wallet_server import wallet_server

    players = [ps.new_player(fun=10**9) for _ in range(args.players)]
    with ledger_tx() as s:  # a bankroll for the house bets
        ledger.transfer(s, "bench-bankroll", "capital",
                        ledger.house_account(s, "FUN", "faucet"),
                        ledger.house_account(s, "FUN", "bankroll"), 10**12)
    if args.dialect == "hub88":
        key, public = new_rsa()
        prov = ps.add_hub88("bench", public)
    else:
        secret = secrets.token_hex(32).encode()
        prov = ps.add_bgaming("bench", secret)
    tokens = [ps.token(prov, p) for p in players]
    n, c = args.calls, args.concurrency
    print(f"{n} calls each, concurrency {c}, {len(players)} players, dialect {args.dialect}",
          flush=True)

    async def house(i: int) -> None:
        p = players[i % len(players)]
        await bets.place_bet_async(p.player_id, "dice", "FUN", 100, DICE,
                                   "b" + uuid.uuid4().hex[:15])

    await _run(500, c, house)  # warm
    rate_house, lat = await _run(n, c, house)
    report("house bets (place_bet_async)", rate_house, lat)

    d = dialect(prov.dialect)
    reply = d.reply(prov, "/play", b"{}")
    receipt = wallet.Receipt("/bench", b"{}", "")

    async def inproc(i: int) -> None:
        p = players[i % len(players)]
        ref = uuid.uuid4().hex
        req = WalletRequest(p.player_id, "FUN", "hh-slot", ref, tokens[i % len(players)],
                            True, (Call("bet", "b" + ref, 100),))
        await wallet.handle_async(prov, req, receipt, reply, lambda _p: True)

    rate_inproc, lat = await _run(n, c, inproc)
    report("provider bets in-process (wallet.handle_async)", rate_inproc, lat)

    with wallet_server(tmp / "wallet.log") as url:
        base = f"{url}/api/providers/bench"
        hub_client = Hub88Client(base, key, prov.own_public_key or "") \
            if args.dialect == "hub88" else None
        bg_client = BGamingClient(base, secret) if args.dialect == "bgaming" else None
        signed = []
        for i in range(n + 200):
            p, tok, ref = players[i % len(players)], tokens[i % len(players)], uuid.uuid4().hex
            if args.dialect == "hub88":
                body = json.dumps({"user": p.player_id, "token": tok, "request_uuid": ref,
                                   "transaction_uuid": ref, "round": ref, "round_closed": True,
                                   "game_code": "hh-slot", "currency": "FUN",
                                   "amount": 100_000}).encode()
                signed.append(("/transaction/bet", body,
                               {"X-Hub88-Signature": hub_client.sign(body)}))
            else:
                body = json.dumps({"user_id": p.player_id, "currency": "FUN", "game": "hh-slot",
                                   "game_id": ref, "session_id": tok, "finished": True,
                                   "actions": [{"action": "bet", "amount": 100,
                                                "action_id": ref}]}).encode()
                signed.append(("/play", body, {"X-REQUEST-SIGN": bg_client.sign(body)}))
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(
                max_connections=c, max_keepalive_connections=c)) as http:
            async def over_http(i: int) -> None:
                path, body, headers = signed[i]
                r = await http.post(base + path, content=body, headers=headers)
                if r.status_code not in (200,):
                    raise RuntimeError(r.text)

            warm = iter(range(n, n + 200))
            await asyncio.gather(*(over_http(next(warm)) for _ in range(200)))
            rate_http, lat = await _run(n, c, over_http)
            report("provider bets over HTTP (signed, verified, answer signed)", rate_http, lat)
    print(f"house_bets_per_s={rate_house:.0f} provider_inproc_per_s={rate_inproc:.0f} "
          f"provider_http_per_s={rate_http:.0f}", flush=True)


if __name__ == "__main__":
    main()
