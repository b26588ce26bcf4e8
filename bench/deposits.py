"""Benchmark (not a test): the Ethereum deposit watcher's catch-up speed.

  .venv/bin/python bench/deposits.py [--addresses 10000] [--blocks 1000] [--deposits 300]
                                     [--sqlite]

Starts a private anvil and a private PostgreSQL (fsync on; ``--sqlite``: the embedded
default), gives ``--addresses`` players a deposit address each (derived from a test xpub),
then, while no watcher runs, mines ``--blocks`` blocks holding ``--deposits`` deposits
(ETH, USDT and USDC to random players). A fresh watcher then catches up from before the
first of those blocks; the bench prints blocks/s, deposits/s and the time of the whole
catch-up, and checks that every deposit was recorded once and credited.

The other figure of the issue (a mined block to the player's open tab) is measured by
the wallet end-to-end path; see the README's performance section.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MNEMONIC = ("abandon abandon abandon abandon abandon abandon abandon abandon abandon "
            "abandon abandon about")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--addresses", type=int, default=10_000)
    p.add_argument("--blocks", type=int, default=1_000)
    p.add_argument("--deposits", type=int, default=300)
    p.add_argument("--sqlite", action="store_true")
    a = p.parse_args()

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
        from casino_app.core.db import ledger_tx
        from casino_app.core.logging import configure_logging
        from casino_app.core.migrations import upgrade_all
        from casino_app.payments import ledger
        from sqlalchemy import insert

        from casino_app.core.clock import utcnow
        from casino_app.payments.eth import chain, keys
        from casino_app.payments.eth.models import DepositAddress
        from casino_app.payments.eth.watch_models import ChainDeposit
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
        for n in range(a.blocks):
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
            eth_ok = all(ledger.player_balances(s, p)["ETH"].balance == v
                         for p, v in expected.items())
            bad = [f.check for f in ledger.check_invariants(s) if f.violations]
        blocks = end - start + 1
        print(f"catch-up: {blocks} blocks, {a.addresses} addresses, {found} deposits in "
              f"{took:.1f} s ({polls} polls) = {blocks / took:.0f} blocks/s, "
              f"{found / took:.0f} deposits/s")
        print(f"deposits recorded {found}/{sent}, credited {credited}, ETH balances "
              f"{'exact' if eth_ok else 'WRONG'}, invariants {'clean' if not bad else bad}")
    finally:
        anvil.stop()
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    main()
