"""A private Bitcoin regtest node for tests: bcoin 1.0.2 (a full-node implementation of
Bitcoin's consensus, from npm; ``./setup.sh`` installs it into ``.tools/bcoin/``), run in
memory on a free port, and the helpers tests use to drive it.

``BcoinNode().start()`` runs ``bcoin/bin/node --network=regtest --memory=true`` with the JS
crypto backend (``NODE_BACKEND=js``), an API key as the RPC password, the transaction and
address indexes, no wallet, no listening socket and no peer (its only allowed peer is
192.0.2.1, a documentation address that never answers: it can never sync blocks from
another node on this machine). Start-up waits for the RPC to answer with a generous
deadline (a loaded 2-core machine), then mines past segwit's activation: bcoin's regtest
activates segwit through BIP9 signalling at height 432 (Core's regtest has it from the
start), so the first 432 blocks are mined to the node's test wallet, whose coinbases then
pay for :meth:`BcoinNode.fund`.

The process dies with the test session: ``stop()`` (fixture teardown), an ``atexit`` hook,
and ``setpriv --pdeathsig KILL`` for when the interpreter itself is killed.

Helpers: ``mine(n, to=None)``, ``reorg(depth, then_mine=None, txs=(), keep_txs=False)``,
``fund(address, sats, mine=True)`` (a real P2WPKH transaction from the test wallet's key,
built and signed with bitcoinlib and broadcast), ``rpc`` (the platform's own adapter,
``casino_app.payments.btc.rpc.BitcoinRPC``, on this node).

bcoin facts the helpers absorb (see also ``payments/btc/rpc.py``): ``invalidateblock``
resets the chain to the block's parent and EMPTIES the mempool (the transactions of the
dropped blocks do not return to it, and unrelated unconfirmed ones are dropped too; Core
puts them back); its mempool has no BIP125 replacement (a conflicting transaction is
rejected whatever its fee); ``sendrawtransaction`` answers the txid even for a rejected
transaction (the adapter checks).
"""

from __future__ import annotations

import math
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from casino_app.payments.btc import bech32, keys
from casino_app.payments.btc.devnet import (
    COINBASE_MATURITY,
    SEGWIT_HEIGHT,
    node_command,
)
from casino_app.payments.btc.network import PRESETS
from casino_app.payments.btc.rpc import BitcoinRPC, NotFound, TransactionRejected
from tests.support.services import NodeProcess, free_port

NETWORK = PRESETS["regtest-bcoin"]
REORG_MARGIN = 10  # blocks a test's reorg may take away below the tip


def fresh_address() -> str:
    """A P2WPKH address nobody holds a key for (a random program): burns what it gets."""
    return bech32.encode_segwit(NETWORK.bech32_hrp, 0, secrets.token_bytes(20))


@dataclass(frozen=True)
class Funding:
    """What :meth:`BcoinNode.fund` sent: output ``vout`` of ``txid`` pays the address."""

    txid: str
    vout: int
    raw: bytes
    fee: int
    block_hash: str | None  # None when not mined


class RegtestWallet:
    """A key the test holds (random per node): mining rewards and change go to its P2WPKH
    address; it signs with bitcoinlib (BIP143)."""

    def __init__(self) -> None:
        from bitcoinlib.keys import Key

        self.key = Key(secrets.token_hex(32), network="bitcoin", compressed=True)
        self.public_key = bytes(self.key.public_byte)
        self.address = keys.p2wpkh_address(self.public_key, NETWORK)
        self.script = keys.p2wpkh_script(self.public_key)


class BcoinNode(NodeProcess):
    """A private bcoin regtest node: ``start``/``stop``, also a context manager."""

    network = NETWORK

    def __init__(self, start_timeout: float | None = None) -> None:
        self.start_timeout = start_timeout or float(os.environ.get("HH_BCOIN_START_TIMEOUT",
                                                                   "180"))
        self.api_key = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.root = Path(tempfile.mkdtemp(prefix="hh-bcoin-"))
        self.log = self.root / "bcoin.log"
        self.wallet = RegtestWallet()
        self._rpc: BitcoinRPC | None = None
        self._http: httpx.Client | None = None

    # life cycle ---------------------------------------------------------------------------
    def start(self) -> BcoinNode:
        last = ""
        for _ in range(3):  # a free port can be taken before bcoin binds it: try another
            self.port = free_port()
            cmd = node_command(self.port, self.api_key, self.root)  # as `casino devnet`
            self._spawn(cmd, self.log, env={**os.environ, "NODE_BACKEND": "js"}, cwd=self.root)
            if self._wait_ready():
                self._prepare_chain()
                return self
            last = self.log.read_text(errors="replace")[-3000:]
            self._terminate()
        raise RuntimeError(f"bcoin did not start within {self.start_timeout:.0f} s:\n{last}")

    def _wait_ready(self) -> bool:
        """Poll the RPC until it answers (or the process exits / the deadline passes)."""
        deadline = time.monotonic() + self.start_timeout
        probe = httpx.Client(auth=("hashhouse", self.api_key), timeout=5)
        try:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    return False
                try:
                    r = probe.post(self.url, json={"method": "getblockcount", "params": []})
                    if r.status_code == 200 and r.json().get("error") is None:
                        return True
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.1)
            return False
        finally:
            probe.close()

    def _prepare_chain(self) -> None:
        height = self.rpc.block_count()
        while height < SEGWIT_HEIGHT:
            n = min(144, SEGWIT_HEIGHT - height)
            self.mine(n)
            height += n

    def _close_clients(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        if self._http is not None:
            self._http.close()
            self._http = None

    # access -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def rpc(self) -> BitcoinRPC:
        """The platform's adapter on this node (generous timeout: a loaded machine)."""
        if self._rpc is None:
            self._rpc = BitcoinRPC(self.url, "hashhouse", self.api_key, timeout=120,
                                   dialect="bcoin")
        return self._rpc

    def rest(self, path: str) -> Any:
        """bcoin's REST interface (test support only, e.g. ``/coin/address/<addr>``)."""
        if self._http is None:
            self._http = httpx.Client(auth=("hashhouse", self.api_key), timeout=120)
        r = self._http.get(self.url.rstrip("/") + path)
        r.raise_for_status()
        return r.json()

    @property
    def height(self) -> int:
        return self.rpc.block_count()

    # chain control ------------------------------------------------------------------------
    def mine(self, n: int = 1, to: str | None = None) -> list[str]:
        """Mine ``n`` blocks paying ``to`` (default: the test wallet); their hashes."""
        return [str(h) for h in self.rpc.call("generatetoaddress", int(n),
                                              to or self.wallet.address)]

    def reorg(self, depth: int, then_mine: int | None = None, txs: tuple = (),
              keep_txs: bool = False) -> list[str]:
        """Replace the last ``depth`` blocks by a competing branch of ``then_mine`` blocks
        (default ``depth``: the same height, new hashes): ``invalidateblock`` on the first
        block to drop, then mine the new branch to a fresh address (so no new block can
        repeat a dropped one's hash). bcoin forgets the dropped blocks' transactions (and
        empties its mempool); ``keep_txs`` sends them again first, as Core would keep them
        (those still valid: Core drops the others too), so the new branch holds them again; ``txs`` (signed raw transactions, hex or bytes)
        are sent before the new branch is mined, e.g. a double spend of a dropped deposit.
        Returns the new branch's block hashes."""
        if depth < 1:
            raise ValueError("depth must be at least 1")
        tip = self.height
        if depth > tip:
            raise ValueError(f"cannot drop {depth} blocks of a chain of height {tip}")
        first = self.rpc.block_hash(tip - depth + 1)
        dropped: list[bytes] = []
        if keep_txs:
            for height in range(tip - depth + 1, tip + 1):
                block = self.rpc.block(self.rpc.block_hash(height))
                for tx in block.transactions[1:]:
                    dropped.append(bytes.fromhex(self.rpc.call("getrawtransaction", tx.txid,
                                                               False)))
        self.rpc.call("invalidateblock", first)
        for raw in dropped:  # what is still valid goes back, the rest is gone, as in Core
            try:
                self.rpc.send_raw_transaction(raw)
            except TransactionRejected:
                pass
        for raw in txs:
            self.rpc.send_raw_transaction(raw)
        return self.mine(depth if then_mine is None else then_mine, to=fresh_address())

    # coins --------------------------------------------------------------------------------
    def wallet_coins(self) -> list[dict[str, Any]]:
        """The test wallet's unspent outputs (chain and mempool; bcoin's address index)."""
        return list(self.rest(f"/coin/address/{self.wallet.address}"))

    def _spendable_coin(self, needed: int) -> dict[str, Any]:
        for attempt in range(2):
            tip = self.height
            coins = sorted(self.wallet_coins(), key=lambda c: (c["height"] == -1, c["value"]))
            for coin in coins:
                # a coinbase matured well before: a test's reorg (a lower tip) keeps it so
                mature = not coin["coinbase"] or \
                    tip + 1 - coin["height"] >= COINBASE_MATURITY + REORG_MARGIN
                if mature and coin["value"] >= needed:
                    return coin
            if attempt == 0:  # mine fresh coinbases to the wallet and mature them
                self.mine(1)
                self.mine(COINBASE_MATURITY + REORG_MARGIN, to=fresh_address())
        raise RuntimeError(f"the test wallet cannot pay {needed} sat")

    def fund(self, address: str, sats: int, *, mine: bool = True, fee_rate: int = 2,
             rbf: bool = False) -> Funding:
        """Pay ``sats`` to ``address`` (any address of this regtest: its script is what the
        output pays) from the test wallet: a real segwit transaction (one P2WPKH input,
        output 0 to the address, change back), signed with bitcoinlib, broadcast through the
        platform's adapter (which checks bcoin took it), and mined in one block unless
        ``mine`` is False. ``fee_rate`` in sat/vB; ``rbf`` signals BIP125 (bcoin's regtest
        relays it but never replaces)."""
        from bitcoinlib.transactions import Transaction

        if sats <= 0:
            raise ValueError("sats must be positive")
        script = keys.validate_address(address, NETWORK).script_pubkey
        change_script = self.wallet.script
        # vsize of 1 P2WPKH input and the outputs: 10.5 + 68 + (9 + script) each, rounded up
        vsize = math.ceil(10.5 + 68 + (9 + len(script)) + (9 + len(change_script)))
        fee = vsize * fee_rate
        coin = self._spendable_coin(sats + fee)
        change = coin["value"] - sats - fee
        tx = Transaction(network="bitcoin", witness_type="segwit", version=2)
        tx.add_input(bytes.fromhex(coin["hash"]), coin["index"], keys=self.wallet.key.public(),
                     value=coin["value"], witness_type="segwit", script_type="sig_pubkey",
                     sequence=0xFFFFFFFD if rbf else 0xFFFFFFFF)
        tx.add_output(sats, lock_script=script)
        if change >= 294:  # P2WPKH dust limit: a smaller change goes to the fee
            tx.add_output(change, lock_script=change_script)
        else:
            fee += change
        tx.sign(self.wallet.key)
        raw = bytes.fromhex(tx.raw_hex())
        txid = self.rpc.send_raw_transaction(raw)
        block_hash = self.mine(1)[0] if mine else None
        return Funding(txid=txid, vout=0, raw=raw, fee=fee, block_hash=block_hash)

    def transaction(self, txid: str) -> Any:
        """The transaction as the node has it (``rpc.Transaction``), or None."""
        try:
            return self.rpc.raw_transaction(txid)
        except NotFound:
            return None
