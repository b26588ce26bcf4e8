"""``casino devnet``: a local Ethereum development chain for demo deposits and withdrawals.

Runs anvil (installed from npm into .tools/ by ./setup.sh) on a port, deploys what the
platform needs (USDT look-alike whose ``transfer`` returns nothing, USDC, a 2-of-3 Safe as
the cold wallet, BatchPay), funds the hot wallet with ETH, USDT and USDC, and prints the
settings that point ``casino run`` at it. The chain state is saved to a file in the data
folder on exit and loaded on the next start (anvil ``--state``), so addresses handed out
stay funded. Development only: every key here is anvil's public test mnemonic.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from casino_app.core.logging import get_logger
from casino_app.core.process import die_with_parent, stop_process

log = get_logger("casino.devnet")

# anvil's well-known development mnemonic: its ten accounts hold 10,000 ETH each.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
DEPLOYER_INDEX = 0
SAFE_OWNER_INDEXES = (7, 8, 9)


def anvil_exe() -> Path:
    tools = Path(os.environ.get("HH_TOOLS_DIR", Path(__file__).resolve().parents[3] / ".tools"))
    exe = tools / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if exe.exists():
        return exe
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise FileNotFoundError(f"anvil not found at {exe}: run ./setup.sh install")


def _key(index: int) -> str:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(ANVIL_MNEMONIC,
                                 account_path=f"m/44'/60'/0'/0/{index}").key.to_0x_hex()


def _wait(w3: Web3, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"anvil exited with code {proc.returncode}")
        try:
            _ = w3.eth.block_number  # answers once anvil listens
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.1)
    raise RuntimeError("anvil did not answer in time")


def setup_chain(w3: Web3, hot_address: str, saved: dict[str, Any] | None) -> dict[str, Any]:
    """Deploy the contracts (unless the saved ones are still on this chain) and fund the
    hot wallet. Returns the deployment (addresses)."""
    from casino_app.payments.eth import chain

    if saved and all(w3.eth.get_code(saved[k]) for k in ("USDT", "USDC", "safe", "batch")):
        if saved.get("batch_code") != _batch_code():
            # BatchPay changed since this chain was set up: deploy the new one, keep the
            # rest (tokens, Safe, balances and deposit addresses stay).
            saved = {**saved, "batch": chain.deploy(w3, "BatchPay",
                                                     sender=_key(DEPLOYER_INDEX)),
                     "batch_code": _batch_code()}
        return saved
    d = chain.deploy_devnet(w3, _key(DEPLOYER_INDEX), [_key(i) for i in SAFE_OWNER_INDEXES])
    deployer = _key(DEPLOYER_INDEX)
    chain.transact(w3, {"to": hot_address, "value": 100 * 10**18}, deployer)
    for code in ("USDT", "USDC"):
        token = chain.contract(w3, "TetherToken" if code == "USDT" else "TestToken", d[code])
        chain.transact(w3, {"to": d[code], "data": token.encode_abi(
            "mint", [hot_address, 1_000_000 * 10**6])}, deployer)
    d.pop("abi", None)
    d["batch_code"] = _batch_code()
    return d


def _batch_code() -> str:
    """Which BatchPay build a devnet runs (the hash of its compiled bytecode)."""
    from casino_app.payments.eth.chain import artifact

    return Web3.keccak(hexstr=artifact("BatchPay")["bytecode"]).hex()[:16]


def fund(data_dir: Path, url: str, address: str, eth_wei: int,
         tokens: dict[str, int]) -> list[str]:
    """Pay ``address`` on the running devnet: ETH from anvil's account 0 (the deployer; its
    ten accounts hold 10,000 ETH each) and test tokens minted by the deployer (their
    owner), token amounts in their 6-decimal units. Returns the transaction hashes.
    ValueError with a message to show when the devnet or the address is not right."""
    from casino_app.payments.eth import chain

    if not Web3.is_address(address):
        raise ValueError(f"{address!r} is not an Ethereum address")
    to = Web3.to_checksum_address(address)
    try:
        deployed = json.loads((data_dir / "devnet.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"no devnet in {data_dir}: start `casino devnet` first") from None
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    if not w3.is_connected():
        raise ValueError(f"the devnet does not answer at {url}: start `casino devnet`")
    deployer = _key(DEPLOYER_INDEX)
    sent = []
    if eth_wei > 0:
        sent.append(chain.transact(w3, {"to": to, "value": eth_wei}, deployer))
    for code, amount in tokens.items():
        if amount > 0:
            token = chain.contract(w3, "TetherToken" if code == "USDT" else "TestToken",
                                   deployed[code])
            sent.append(chain.transact(w3, {"to": deployed[code], "data": token.encode_abi(
                "mint", [to, amount])}, deployer))
    if not all(r.ok for r in sent):
        raise ValueError("a funding transaction failed on the devnet")
    return [r.tx_hash for r in sent]


def settings_for(d: dict[str, Any], url: str) -> dict[str, str]:
    return {
        "CASINO_ETH_RPC_URL": url,
        "CASINO_ETH_CHAIN_ID": str(d["chain_id"]),
        "CASINO_ETH_TOKENS": f"USDT:{d['USDT']},USDC:{d['USDC']}",
        "CASINO_ETH_SAFE_ADDRESS": d["safe"],
        "CASINO_ETH_BATCH_CONTRACT": d["batch"],
        "CASINO_ETH_CONFIRMATIONS": "3",
        "CASINO_ETH_PENDING_CAP": "ETH:1000000000,USDT:1000000000,USDC:1000000000",
    }


class EthDevnet:
    """anvil with the contracts deployed and the hot wallet funded; its chain is saved to
    the data folder when it stops (anvil ``--state``, written on SIGTERM) and loaded on the
    next start."""

    def __init__(self, port: int, data_dir: Path, block_time: float | None = None) -> None:
        self.port = port
        self.data_dir = data_dir
        self.block_time = block_time
        self.state = data_dir / "devnet-state.json"
        self.deployed_file = data_dir / "devnet.json"
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.w3: Web3 | None = None
        self.deployed: dict[str, Any] = {}

    def start(self, hot_address: str) -> EthDevnet:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A block per transaction (the set-up is instant); ``mine`` adds the clock's blocks.
        args = [str(anvil_exe()), "--port", str(self.port), "--host", "127.0.0.1",
                "--chain-id", "31337", "--mnemonic", ANVIL_MNEMONIC, "--state",
                str(self.state), "--silent"]
        self.proc = subprocess.Popen(args, preexec_fn=die_with_parent)  # noqa: S603, PLW1509 - our own binary, fixed arguments; prctl only
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 10}))
        self.w3 = w3
        _wait(w3, self.proc)
        saved = (json.loads(self.deployed_file.read_text()) if self.deployed_file.exists()
                 else None)
        self.deployed = setup_chain(w3, hot_address, saved)
        self.deployed_file.write_text(json.dumps(self.deployed, indent=2))
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def mine(self) -> None:
        """One block now (the devnet's clock: deposits get their confirmations while
        nobody sends a transaction)."""
        if self.w3 is not None:
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def settings(self) -> dict[str, str]:
        return settings_for(self.deployed, self.url)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM: anvil writes its state, then exits (killed after ``timeout`` s)."""
        proc, self.proc = self.proc, None
        if proc is not None and stop_process(proc, timeout):
            log.error("devnet_anvil_killed", waited=timeout)
