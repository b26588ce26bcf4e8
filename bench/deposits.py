"""Benchmark (not a test): the deposits' two figures of the issue, on Ethereum (default) or
Bitcoin (``--chain btc``).

  .venv/bin/python bench/deposits.py [--chain eth|btc] [--addresses 10000] [--blocks 1000]
                                     [--deposits 300] [--filler 0] [--sqlite]
                                     [--skip-catchup] [--players 10] [--rounds 1]
                                     [--confirmations 3] [--watch-seconds 2 [0.5 ...]]
                                     [--postgres] [--skip-live]

With ``--chain btc`` the same two parts run against a private bcoin regtest node
(tests/support/bitcoin.py: in memory, started past segwit's activation, stopped at the end
whatever happens): the catch-up gives ``--addresses`` players a BIP84 deposit address, mines
``--blocks`` blocks holding ``--deposits`` real P2WPKH payments to random players (signed
with the node's test key), lets a fresh Bitcoin watcher catch up (blocks/s, deposits/s;
every deposit recorded once and credited, balances exact, invariants clean) and then
times a Bitcoin reconciliation over those addresses and blocks. The live part runs
``casino run`` on its own bcoin node (CASINO_BTC_WATCH_SECONDS per ``--watch-seconds``)
with a wallet tab per player over Reflex's websocket and, one deposit at a time, times
broadcast -> tab shows it incoming, block mined -> tab shows it pending, and the Nth
confirmation mined -> tab shows it available. Nothing is left running: the nodes, the app
and the PostgreSQL cluster are stopped in ``finally`` blocks (bcoin also dies with this
process: ``setpriv --pdeathsig``).

1. Catch-up. Starts a private anvil and a private PostgreSQL (fsync on; ``--sqlite``: the
   embedded default), gives ``--addresses`` players a deposit address each (derived from a
   test xpub), then, while no watcher runs, mines ``--blocks`` blocks holding
   ``--deposits`` deposits (ETH, USDT and USDC to random players). A fresh watcher then
   catches up from before the first of those blocks; the bench prints blocks/s,
   deposits/s and the time of the whole catch-up, and checks that every deposit was
   recorded once and credited. The watcher reads call traces when the node has them
   (anvil has); ``CASINO_ETH_TRACES=off`` in the environment measures it without. Then it
   times reconciliation over those blocks: the native deposit check alone (``--filler``
   other transactions per block make the blocks heavier) and a whole run (balances of
   every address and every deposit check).

2. Live: from a block being mined to the player's open tab showing the deposit. For each
   ``--watch-seconds`` value (CASINO_ETH_WATCH_SECONDS; default 2, the product default)
   starts a private anvil (auto-mining, ETH only) and the real app (``casino run``,
   production build, SQLite; ``--postgres``: a private PostgreSQL cluster) with that
   node, a hot wallet seed and xpub that are not anvil's (the BIP39 test mnemonic),
   ``--confirmations`` and a pending cap, creates ``--players`` players with sessions
   (bench/ws_bets.py's ``create_players``) and opens a tab per player on /wallet over
   Reflex's websocket the way the browser does (bench/ws_bets.py's ``Tab``; the page's
   on_load creates the deposit address). Then, one
   deposit at a time (``--rounds`` per player, after a random pause so that the sends
   fall anywhere in the watcher's and the push loop's cycles), it sends ETH from an anvil
   account to the address the tab shows and times

     mined -> shown pending:    from the receipt of the (auto-mined) transaction to the
                                delta that shows the deposit as pending in that tab;
     Nth conf. -> available:    from mining the N-1 further blocks (anvil_mine) to the
                                delta that shows it available.

   Prints p50/p99/max of both, then checks that each player's ledger balance is the sum
   sent (gwei) and that the header balance and the card's withdrawable amount the tab
   last received say the same.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ws_bets import (  # noqa: E402
    WALLET_STATE,
    Tab,
    adopt_env,
    app_env,
    create_players,
    ms,
    pct,
    start_app,
    v,
)
from tests.support.reflex_client import ROOT_STATE  # noqa: E402

MNEMONIC = ("abandon abandon abandon abandon abandon abandon abandon abandon abandon "
            "abandon abandon about")
WALLET_PAGE = "/wallet"
DEPOSITS_STATE = f"{ROOT_STATE}.casino_app___ui___state___deposits____deposits_state"
GWEI = 10**9


def _catch_up(watcher, start: int, end: int, expected: dict[str, int],  # noqa: ANN001
              currency: str, sent: int, addresses: int) -> tuple[int, int, bool]:
    """Poll ``watcher`` until its tip reaches ``end``; print the rate and check that every
    deposit was recorded and credited once: (deposits found, blocks, balances exact and
    invariants clean)."""
    from casino_app.core.db import ledger_tx
    from casino_app.payments import ledger
    from casino_app.payments.deposit_models import ChainDeposit

    t = time.perf_counter()
    polls = 0
    while True:
        res = watcher.poll()
        polls += 1
        if res.tip is not None and res.tip >= end:
            break
    took = time.perf_counter() - t
    with ledger_tx(readonly=True) as s:
        found = s.query(ChainDeposit).count()
        credited = s.query(ChainDeposit).filter(ChainDeposit.state == "available").count()
        exact = all(ledger.player_balances(s, p)[currency].balance == v
                    for p, v in expected.items())
        bad = [f.check for f in ledger.check_invariants(s) if f.violations]
    blocks = end - start + 1
    print(f"catch-up: {blocks} blocks, {addresses} addresses, {found} deposits in "
          f"{took:.1f} s ({polls} polls of {watcher.batch} blocks) = "
          f"{blocks / took:.0f} blocks/s, {found / took:.0f} deposits/s")
    print(f"deposits recorded {found}/{sent}, credited {credited}, {currency} balances "
          f"{'exact' if exact else 'WRONG'}, invariants {'clean' if not bad else bad}")
    return found, blocks, exact and not bad


def catchup(a: argparse.Namespace) -> None:
    """Part 1: a fresh watcher catching up over ``--blocks`` blocks."""
    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-dep-"))
    os.environ["CASINO_DATA_DIR"] = str(tmp)
    os.environ["CASINO_ENCRYPTION_KEYS"] = "b1:" + base64.b64encode(
        secrets.token_bytes(32)).decode()
    from casino_app.payments.signer.seed import account_xpub

    os.environ["CASINO_ETH_XPUB"] = account_xpub(MNEMONIC)
    from tests.support.services import Anvil, PgCluster

    cluster = None if a.sqlite else PgCluster(fsync=True).start()
    anvil = Anvil().start()
    try:
        if cluster is not None:
            os.environ["CASINO_IDENTITY_DB_URL"] = cluster.create_database("bench_id")
            os.environ["CASINO_LEDGER_DB_URL"] = cluster.create_database("bench_led")
        from sqlalchemy import insert

        from casino_app.core.clock import utcnow
        from casino_app.core.db import ledger_tx
        from casino_app.core.logging import configure_logging
        from casino_app.migrations import upgrade_all
        from casino_app.payments.address_models import DepositAddress
        from casino_app.payments.eth import chain, keys
        from casino_app.payments.eth.watcher import Watcher, chain_assets

        configure_logging("WARNING", True)
        upgrade_all()
        w3 = anvil.w3
        devnet = chain.deploy_devnet(w3, anvil.keys[0], anvil.keys[7:10])
        tokens = {"USDT": devnet["USDT"], "USDC": devnet["USDC"]}

        t = time.perf_counter()
        xpub = keys.hot_wallet_xpub()
        rows = [(f"bench-{i}", i, keys.address_at(xpub, i)) for i in range(a.addresses)]
        with ledger_tx() as s:  # the table addresses.deposit_address fills, in one go
            s.execute(insert(DepositAddress), [
                {"chain": "ethereum", "player_id": pl, "derivation_index": i, "address": ad,
                 "created_at": utcnow()} for pl, i, ad in rows])
        print(f"{a.addresses} deposit addresses derived and stored in "
              f"{time.perf_counter() - t:.1f} s")

        start = w3.eth.block_number + 1
        rng = random.Random(7)
        at = sorted(rng.sample(range(a.blocks), min(a.deposits, a.blocks)))
        anvil.automine(False)
        sent = 0
        expected: dict[str, int] = {}
        fill_to = anvil.accounts[5]
        for n in range(a.blocks):
            for _ in range(a.filler):   # other people's transactions in the block
                w3.eth.send_transaction({"from": anvil.accounts[2], "to": fill_to,
                                         "value": 1})
            if at and at[0] == n:
                at.pop(0)
                player, _, addr = rows[rng.randrange(len(rows))]
                kind = ("ETH", "USDT", "USDC")[sent % 3]
                if kind == "ETH":
                    w3.eth.send_transaction({"from": anvil.accounts[1], "to": addr,
                                             "value": 10**15})
                    expected[player] = expected.get(player, 0) + 10**6
                else:
                    w3.eth.contract(address=tokens[kind], abi=devnet["abi"][kind]) \
                        .functions.mint(addr, 1_000_000).transact({"from": anvil.accounts[0]})
                sent += 1
            anvil.mine(1)
        anvil.automine(True)
        end = w3.eth.block_number
        print(f"{end - start + 1} blocks mined with {sent} deposits (ETH, USDT, USDC)")

        watcher = Watcher(w3, chain_assets(w3, tokens), confirmations=1,
                          pending_cap={}, dust={}, start_block=start)
        _catch_up(watcher, start, end, expected, "ETH", sent, a.addresses)
        reconcile_run(w3, chain_assets(w3, tokens), rows, start, end)
    finally:
        anvil.stop()
        if cluster is not None:
            cluster.destroy()


def reconcile_run(w3, assets, rows, start: int, end: int) -> None:  # noqa: ANN001
    """Reconciliation after the catch-up: the native deposit check over the blocks alone,
    then a whole first run (balances of every address + every deposit check)."""
    from casino_app.payments.eth.reconcile import native_transfers, reconcile

    addrs = [addr for _, _, addr in rows]
    t = time.perf_counter()
    found = native_transfers(w3, addrs, start, end)
    took = time.perf_counter() - t
    txs = sum(w3.eth.get_block_transaction_count(n) for n in range(start, end + 1))
    print(f"native deposit check: {end - start + 1} blocks ({txs} transactions), "
          f"{len(addrs)} addresses, {len(found)} deposits found in {took:.1f} s "
          f"= {(end - start + 1) / took:.0f} blocks/s")
    t = time.perf_counter()
    res = reconcile(w3, assets, deposit_blocks=end - start + 1)
    print(f"reconciliation run: {len(addrs)} addresses, blocks {start}..{res.block}, "
          f"{'clean' if res.clean else [i.kind for i in res.issues]} in "
          f"{time.perf_counter() - t:.1f} s")


# --- Bitcoin: part 1 ------------------------------------------------------------------------

SATS = 10**8


def _btc_settings(node, words: str = MNEMONIC) -> dict[str, str]:  # noqa: ANN001
    from casino_app.payments.signer import btc as btc_signer
    from tests.support.bitcoin import NETWORK

    return {"CASINO_BTC_NETWORK": "regtest-bcoin", "CASINO_BTC_RPC_URL": node.url,
            "CASINO_BTC_RPC_USER": "bench", "CASINO_BTC_RPC_PASSWORD": node.api_key,
            "CASINO_BTC_RPC_DIALECT": "bcoin", "CASINO_ETH_HOT_SEED": words,
            "CASINO_BTC_XPUB": btc_signer.account_xpub(NETWORK, words)}


def catchup_btc(a: argparse.Namespace) -> None:
    """Part 1 on Bitcoin: a fresh watcher catching up over ``--blocks`` blocks, then a
    reconciliation over the same addresses and blocks."""
    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-btc-"))
    os.environ["CASINO_DATA_DIR"] = str(tmp)
    os.environ["CASINO_ENCRYPTION_KEYS"] = "b1:" + base64.b64encode(
        secrets.token_bytes(32)).decode()
    from tests.support.bitcoin import NETWORK, BcoinNode, fresh_address
    from tests.support.services import PgCluster

    cluster = node = None
    try:
        cluster = None if a.sqlite else PgCluster(fsync=True).start()
        t = time.perf_counter()
        node = BcoinNode().start()
        print(f"bcoin regtest node up (past segwit, height {node.height}) in "
              f"{time.perf_counter() - t:.0f} s")
        os.environ.update(_btc_settings(node))
        if cluster is not None:
            os.environ["CASINO_IDENTITY_DB_URL"] = cluster.create_database("bench_id")
            os.environ["CASINO_LEDGER_DB_URL"] = cluster.create_database("bench_led")
        from sqlalchemy import insert

        from casino_app.core.clock import utcnow
        from casino_app.core.db import ledger_tx
        from casino_app.core.logging import configure_logging
        from casino_app.core.settings import reset_settings_cache
        from casino_app.migrations import upgrade_all
        from casino_app.payments.address_models import DepositAddress
        from casino_app.payments.btc import keys
        from casino_app.payments.btc.reconcile import reconcile
        from casino_app.payments.btc.watcher import Watcher

        reset_settings_cache()
        configure_logging("WARNING", True)
        upgrade_all()
        xpub = os.environ["CASINO_BTC_XPUB"]
        t = time.perf_counter()
        rows = [(f"bench-{i}", i, keys.deposit_address(i, xpub, NETWORK))
                for i in range(a.addresses)]
        with ledger_tx() as s:
            s.execute(insert(DepositAddress), [
                {"chain": "bitcoin", "player_id": pl, "derivation_index": i, "address": ad,
                 "created_at": utcnow()} for pl, i, ad in rows])
        print(f"{a.addresses} deposit addresses derived and stored in "
              f"{time.perf_counter() - t:.1f} s")

        start = node.height + 1
        rng = random.Random(7)
        at = sorted(rng.choices(range(a.blocks), k=a.deposits))
        expected: dict[str, int] = {}
        t = time.perf_counter()
        n = 0
        while n < a.blocks:
            here = 0
            while at and at[0] == n:
                at.pop(0)
                player, _, addr = rows[rng.randrange(len(rows))]
                sats = 100_000 + rng.randrange(100_000)
                node.fund(addr, sats, mine=False)
                expected[player] = expected.get(player, 0) + sats
                here += 1
            if here:
                node.mine(1, to=fresh_address())
                n += 1
            else:   # the run of empty blocks up to the next deposit, at once
                empty = (at[0] if at else a.blocks) - n
                node.mine(empty, to=fresh_address())
                n += empty
        end = node.height
        sent = sum(1 for _ in expected.values())
        deposits = a.deposits
        print(f"{end - start + 1} blocks mined with {deposits} deposits to {sent} players in "
              f"{time.perf_counter() - t:.0f} s")

        watcher = Watcher(node.rpc, confirmations=1, pending_cap=None, dust=1_000,
                          start_height=start)
        found, blocks, verified = _catch_up(watcher, start, end, expected, "BTC", deposits,
                                            a.addresses)
        t = time.perf_counter()
        res = reconcile(node.rpc, deposit_blocks=blocks)
        print(f"reconciliation run: {res.summary['addresses']} addresses, {found} credited "
              f"deposits checked over blocks {start}..{res.block}, "
              f"{'clean' if res.clean else [i.kind for i in res.issues]} in "
              f"{time.perf_counter() - t:.1f} s")
        if found != deposits or not verified or not res.clean:
            raise SystemExit("verification FAILED")
    finally:
        if node is not None:
            node.stop()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


# --- part 2: a mined block to the player's open wallet tab --------------------------------

def secs(x: float) -> str:
    return f"{x:.2f} s"


def _row(tab: Tab, update: dict, tx: str) -> dict | None:
    rows = (update.get("delta") or {}).get(DEPOSITS_STATE, {}).get(v("deposits"))
    for r in rows or []:
        if str(r.get("tx", "")).lower() == tx:
            return r
    return None


async def _measure(url: str, boot, accounts, anvil, a: argparse.Namespace,  # noqa: ANN001
                   watch: float, log: Path) -> tuple[list[float], list[float], list[Tab], dict]:
    tabs = [Tab(url, acc, boot, page=WALLET_PAGE) for acc in accounts]
    try:
        return await _deposits(tabs, anvil, a, watch, log)
    finally:
        for t in tabs:  # merge what arrived since the last wait
            while not t.inbox.empty():
                t._merge(t.inbox.get_nowait()[1])
        await asyncio.gather(*(t.sio.disconnect() for t in tabs), return_exceptions=True)
        await asyncio.sleep(0.25)  # let aiohttp close its sessions inside the loop


async def _deposits(tabs: list[Tab], anvil, a: argparse.Namespace, watch: float,  # noqa: ANN001
                    log: Path) -> tuple[list[float], list[float], list[Tab], dict]:
    from casino_app.ui.push import PUSH_SECONDS

    gate = asyncio.Semaphore(10)

    async def open_tab(tab: Tab) -> float:
        async with gate:
            return await tab.open()

    hydrate = await asyncio.gather(*(open_tab(t) for t in tabs))
    print(f"  {len(tabs)} wallet tabs open (connect + hydrate + on_load: p50 "
          f"{ms(statistics.median(hydrate))}, max {ms(max(hydrate))})")
    addresses = []
    for t in tabs:
        dep = t.seen.get(DEPOSITS_STATE, {})
        if not dep.get(v("enabled")) or not dep.get(v("address")):
            raise SystemExit(f"no deposit address shown: {dep.get(v('message'))!r}")
        addresses.append(dep[v("address")])

    from sqlalchemy import select

    from casino_app.core.db import ledger_tx
    from casino_app.payments.deposit_models import ChainBlock

    def watcher_tip() -> int | None:
        with ledger_tx(readonly=True) as s:
            return s.execute(select(ChainBlock.number).order_by(ChainBlock.number.desc())
                             .limit(1)).scalar_one_or_none()

    t = time.perf_counter()
    while await asyncio.to_thread(watcher_tip) is None:  # the eth-watch job's first pass
        if time.perf_counter() - t > 120:
            raise SystemExit(f"the watcher stored no block in 120 s (see {log})")
        await asyncio.sleep(0.2)

    w3 = anvil.w3
    sender = anvil.accounts[1]
    rng = random.Random(11)
    pending: list[float] = []
    available: list[float] = []
    sent: dict[str, int] = {}  # player id -> gwei
    more = a.confirmations - 1

    def send(to: str, wei: int) -> tuple[str, int]:
        h = w3.eth.send_transaction({"from": sender, "to": to, "value": wei})
        rec = w3.eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.01)
        return "0x" + bytes(h).hex().removeprefix("0x"), rec["blockNumber"]

    for _ in range(a.rounds):
        for tab, addr in zip(tabs, addresses, strict=True):
            # anywhere in the watcher's and the push loop's cycles
            await asyncio.sleep(rng.uniform(0, watch + PUSH_SECONDS))
            gwei = 1_000_000 + rng.randrange(1_000_000)  # 0.001 .. 0.002 ETH
            tx, _block = await asyncio.to_thread(send, addr, gwei * GWEI)
            t0 = time.perf_counter()
            sent[tab.account.player_id] = sent.get(tab.account.player_id, 0) + gwei
            tx = tx.lower()

            def is_(state: str, tab: Tab = tab, tx: str = tx):  # noqa: ANN202
                return lambda u: (_row(tab, u, tx) or {}).get("state") == state

            t1, _ = await tab.until(is_("pending"), timeout=60)
            pending.append(t1 - t0)
            await asyncio.sleep(rng.uniform(0, watch + PUSH_SECONDS))
            if more:
                await asyncio.to_thread(anvil.mine, more)
            t0 = time.perf_counter()
            t1, _ = await tab.until(is_("available"), timeout=60)
            available.append(t1 - t0)
    await asyncio.sleep(PUSH_SECONDS + 0.5)  # a last push may still be on its way
    return pending, available, tabs, sent


def live_run(a: argparse.Namespace, watch: float, cluster, n: int) -> bool:  # noqa: ANN001
    from casino_app.payments.signer.seed import account_xpub
    from tests.support.services import Anvil, free_port, stop_casino

    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-live-"))
    anvil = Anvil().start()  # from the main thread: it dies with it
    proc = None
    try:
        db_urls: dict[str, str] = {}
        if cluster is not None:
            db_urls = {"CASINO_IDENTITY_DB_URL": cluster.create_database(f"bench_id{n}"),
                       "CASINO_LEDGER_DB_URL": cluster.create_database(f"bench_led{n}")}
        port = free_port()
        env = app_env(tmp, port, db_urls)
        env.update({
            "CASINO_ETH_RPC_URL": anvil.url,
            # a seed that is not anvil's (no funded address); the signer checks the pair
            "CASINO_ETH_HOT_SEED": MNEMONIC,
            "CASINO_ETH_XPUB": account_xpub(MNEMONIC),
            "CASINO_ETH_CONFIRMATIONS": str(a.confirmations),
            "CASINO_ETH_PENDING_CAP": "ETH:1000000000",
            "CASINO_ETH_WATCH_SECONDS": f"{watch:g}",
        })
        adopt_env(env)
        from casino_app.migrations import upgrade_all

        upgrade_all()  # before the app starts, so the two never migrate at once
        accounts = create_players(a.players)
        proc, url, boot = start_app(env, port, tmp / "app.log")
        from casino_app.ui.push import PUSH_SECONDS

        print(f"\nwatch interval {watch:g} s (CASINO_ETH_WATCH_SECONDS), wallet push loop "
              f"{PUSH_SECONDS:g} s, {a.confirmations} confirmations, "
              f"{'postgres (fsync on)' if cluster is not None else 'sqlite'}")
        pending, available, tabs, sent = asyncio.run(
            _measure(url, boot, accounts, anvil, a, watch, tmp / "app.log"))

        def line(name: str, xs: list[float]) -> str:
            return (f"  {name:<45} {len(xs)} deposits, p50 {secs(statistics.median(xs))}, "
                    f"p99 {secs(pct(xs, 0.99))}, max {secs(max(xs))}")

        print(line("block mined -> tab shows pending:", pending))
        print(line(f"confirmation {a.confirmations} mined -> tab shows available:", available))
        return verify_live(tabs, sent)
    finally:
        if proc is not None:
            stop_casino(proc)
        anvil.stop()
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def _btc_deposits(tabs: list[Tab], node, a: argparse.Namespace, watch: float,  # noqa: ANN001
                        log: Path) -> tuple[dict[str, list[float]], list[Tab], dict]:
    """One BTC deposit at a time per tab: broadcast -> incoming, mined -> pending, the
    Nth confirmation -> available (seconds)."""
    from sqlalchemy import select

    from casino_app.core.db import ledger_tx
    from casino_app.payments.deposit_models import ChainBlock
    from casino_app.ui.push import PUSH_SECONDS

    gate = asyncio.Semaphore(10)

    async def open_tab(tab: Tab) -> float:
        async with gate:
            return await tab.open()

    hydrate = await asyncio.gather(*(open_tab(t) for t in tabs))
    print(f"  {len(tabs)} wallet tabs open (connect + hydrate + on_load: p50 "
          f"{ms(statistics.median(hydrate))}, max {ms(max(hydrate))})")
    addresses = []
    for t in tabs:
        dep = t.seen.get(DEPOSITS_STATE, {})
        if not dep.get(v("enabled")) or not dep.get(v("address")):
            raise SystemExit(f"no deposit address shown: {dep.get(v('message'))!r}")
        addresses.append(dep[v("address")])

    def watcher_tip() -> int | None:
        with ledger_tx(readonly=True) as s:
            return s.execute(select(ChainBlock.number).where(ChainBlock.chain == "bitcoin")
                             .order_by(ChainBlock.number.desc()).limit(1)
                             ).scalar_one_or_none()

    t = time.perf_counter()
    while await asyncio.to_thread(watcher_tip) is None:  # the btc-watch job's first pass
        if time.perf_counter() - t > 120:
            raise SystemExit(f"the watcher stored no block in 120 s (see {log})")
        await asyncio.sleep(0.2)
    rng = random.Random(11)
    times: dict[str, list[float]] = {"incoming": [], "pending": [], "available": []}
    sent: dict[str, int] = {}  # player id -> sats
    more = a.confirmations - 1
    for _ in range(a.rounds):
        for tab, addr in zip(tabs, addresses, strict=True):
            await asyncio.sleep(rng.uniform(0, watch + PUSH_SECONDS))
            sats = 100_000 + rng.randrange(100_000)
            funding = await asyncio.to_thread(node.fund, addr, sats, mine=False)
            t0 = time.perf_counter()
            sent[tab.account.player_id] = sent.get(tab.account.player_id, 0) + sats

            def is_(state: str, tab: Tab = tab, tx: str = funding.txid):  # noqa: ANN202
                return lambda u: (_row(tab, u, tx) or {}).get("state") == state

            t1, _ = await tab.until(is_("incoming"), timeout=60)
            times["incoming"].append(t1 - t0)
            await asyncio.sleep(rng.uniform(0, watch + PUSH_SECONDS))
            await asyncio.to_thread(node.mine, 1)
            t0 = time.perf_counter()
            t1, _ = await tab.until(is_("pending" if more else "available"), timeout=60)
            times["pending"].append(t1 - t0)
            if more:
                await asyncio.sleep(rng.uniform(0, watch + PUSH_SECONDS))
                await asyncio.to_thread(node.mine, more)
                t0 = time.perf_counter()
                t1, _ = await tab.until(is_("available"), timeout=60)
                times["available"].append(t1 - t0)
    await asyncio.sleep(PUSH_SECONDS + 0.5)
    return times, tabs, sent


async def _measure_btc(url: str, boot, accounts, node, a: argparse.Namespace,  # noqa: ANN001
                       watch: float, log: Path):  # noqa: ANN202
    tabs = [Tab(url, acc, boot, page=WALLET_PAGE) for acc in accounts]
    try:
        return await _btc_deposits(tabs, node, a, watch, log)
    finally:
        for t in tabs:
            while not t.inbox.empty():
                t._merge(t.inbox.get_nowait()[1])
        await asyncio.gather(*(t.sio.disconnect() for t in tabs), return_exceptions=True)
        await asyncio.sleep(0.25)


def live_run_btc(a: argparse.Namespace, watch: float, cluster, n: int) -> bool:  # noqa: ANN001
    from tests.support.bitcoin import BcoinNode
    from tests.support.services import free_port, stop_casino

    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-live-btc-"))
    node = proc = None
    try:
        node = BcoinNode().start()  # from the main thread: it dies with it
        db_urls: dict[str, str] = {}
        if cluster is not None:
            db_urls = {"CASINO_IDENTITY_DB_URL": cluster.create_database(f"bench_id{n}"),
                       "CASINO_LEDGER_DB_URL": cluster.create_database(f"bench_led{n}")}
        port = free_port()
        env = app_env(tmp, port, db_urls)
        env.update(_btc_settings(node))
        env.update({"CASINO_BTC_CONFIRMATIONS": str(a.confirmations),
                    "CASINO_BTC_WATCH_SECONDS": f"{watch:g}"})
        adopt_env(env)
        from casino_app.migrations import upgrade_all

        upgrade_all()
        accounts = create_players(a.players)
        proc, url, boot = start_app(env, port, tmp / "app.log")
        from casino_app.ui.push import PUSH_SECONDS

        print(f"\nBitcoin: watch interval {watch:g} s (CASINO_BTC_WATCH_SECONDS), wallet "
              f"push loop {PUSH_SECONDS:g} s, {a.confirmations} confirmations, "
              f"{'postgres (fsync on)' if cluster is not None else 'sqlite'}")
        times, tabs, sent = asyncio.run(
            _measure_btc(url, boot, accounts, node, a, watch, tmp / "app.log"))

        def line(name: str, xs: list[float]) -> str:
            return (f"  {name:<45} {len(xs)} deposits, p50 {secs(statistics.median(xs))}, "
                    f"p99 {secs(pct(xs, 0.99))}, max {secs(max(xs))}")

        print(line("broadcast -> tab shows incoming:", times["incoming"]))
        print(line("block mined -> tab shows pending:", times["pending"]))
        if times["available"]:
            print(line(f"confirmation {a.confirmations} mined -> tab shows available:",
                       times["available"]))
        return verify_live(tabs, sent, "BTC", "sats")
    finally:
        if proc is not None:
            stop_casino(proc)
        if node is not None:
            node.stop()
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def verify_live(tabs: list[Tab], sent: dict[str, int], code: str = "ETH",
                unit: str = "gwei") -> bool:
    from casino_app.core.db import ledger_tx
    from casino_app.payments import ledger
    from casino_app.payments.currencies import currency

    cur = currency(code)
    with ledger_tx(readonly=True) as s:
        book = {p: ledger.player_balances(s, p).get(code) for p in sent}
        bad = [f for f in ledger.check_invariants(s) if f.violations]
    ledger_ok = sum(1 for p, g in sent.items() if book[p] is not None and book[p].balance == g)
    shown_ok = 0
    for t in tabs:
        want = cur.format(sent[t.account.player_id])
        header = (t.seen.get(WALLET_STATE, {}).get(v("balances")) or {}).get(code)
        cards = t.seen.get(DEPOSITS_STATE, {}).get(v("cards")) or []
        card = next((c for c in cards if c.get("code") == code), {})
        shown_ok += header == want and card.get("withdrawable") == want
    ok = ledger_ok == shown_ok == len(sent) and not bad
    print(f"  ledger {code} balance = sum sent ({unit}) for {ledger_ok}/{len(sent)} players; "
          f"header balance and withdrawable shown = ledger for {shown_ok}/{len(tabs)} tabs; "
          f"invariants {'clean' if not bad else [f.check for f in bad]}")
    return ok


def live(a: argparse.Namespace) -> None:
    cluster = None
    if a.postgres:
        from tests.support.services import PgCluster

        cluster = PgCluster(fsync=True).start()
    from casino_app.core.logging import configure_logging

    configure_logging("WARNING", True)
    try:
        run = live_run_btc if a.chain == "btc" else live_run
        ok = all([run(a, w, cluster, n) for n, w in enumerate(a.watch_seconds)])
    finally:
        if cluster is not None:
            cluster.destroy()
    with open("/proc/loadavg") as fh:
        print(f"load average at the end: {' '.join(fh.read().split()[:3])} "
              f"({os.cpu_count()} cores, shared with other work)")
    if not ok:
        raise SystemExit("verification FAILED")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chain", choices=("eth", "btc"), default="eth")
    g = p.add_argument_group("catch-up")
    g.add_argument("--addresses", type=int, default=10_000)
    g.add_argument("--blocks", type=int, default=1_000)
    g.add_argument("--deposits", type=int, default=300)
    g.add_argument("--filler", type=int, default=0,
                   help="other transactions per block (not deposits)")
    g.add_argument("--sqlite", action="store_true",
                   help="catch-up on SQLite instead of PostgreSQL")
    g.add_argument("--skip-catchup", action="store_true")
    g = p.add_argument_group("live (mined block -> open tab)")
    g.add_argument("--players", type=int, default=10, help="players, one wallet tab each")
    g.add_argument("--rounds", type=int, default=1, help="deposits per player")
    g.add_argument("--confirmations", type=int, default=3)
    g.add_argument("--watch-seconds", type=float, nargs="+", default=[2.0],
                   help="CASINO_ETH_WATCH_SECONDS (CASINO_BTC_WATCH_SECONDS with --chain "
                        "btc); one app run per value")
    g.add_argument("--postgres", action="store_true",
                   help="the app on PostgreSQL instead of SQLite")
    g.add_argument("--keep", action="store_true", help="keep the app's temporary folder")
    g.add_argument("--skip-live", action="store_true")
    a = p.parse_args()
    if a.confirmations < 1:
        p.error("--confirmations must be at least 1")
    if not a.skip_catchup:
        (catchup_btc if a.chain == "btc" else catchup)(a)
    if not a.skip_live:
        live(a)


if __name__ == "__main__":
    main()
