"""`casino devnet`: a real anvil with the contracts deployed, the hot wallet funded, the
settings printed, and the chain saved and reused on the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from casino_app.payments.eth import chain
from tests.support.services import free_port

pytestmark = pytest.mark.ethereum
ROOT = Path(__file__).resolve().parents[3]


def _start(tmp_path: Path, port: int) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASINO_")}
    env["CASINO_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-m", "casino_app.cli", "devnet", "--port",
                             str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    printed: dict[str, str] = {}
    end = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip().startswith("export CASINO_"):
            k, _, v = line.strip()[len("export "):].partition("=")
            printed[k] = v
        if "Ctrl-C stops it" in line:
            return proc, printed
    proc.kill()
    raise AssertionError(f"devnet did not start: {printed}")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_devnet_deploys_funds_prints_settings_and_keeps_its_chain(tmp_path: Path) -> None:
    port = free_port()
    proc, printed = _start(tmp_path, port)
    try:
        w3 = Web3(Web3.HTTPProvider(printed["CASINO_ETH_RPC_URL"]))
        tokens = dict(p.split(":") for p in printed["CASINO_ETH_TOKENS"].split(","))
        for addr in (*tokens.values(), printed["CASINO_ETH_SAFE_ADDRESS"],
                     printed["CASINO_ETH_BATCH_CONTRACT"]):
            assert w3.eth.get_code(addr)
        hot = (tmp_path / "data" / "dev-hot-wallet.xpub").read_text().strip()
        from casino_app.payments.eth import keys

        hot_address = keys.hot_wallet_address(hot)
        assert w3.eth.get_balance(hot_address) == 100 * 10**18
        usdt = chain.erc20(w3, tokens["USDT"])
        assert usdt.functions.balanceOf(hot_address).call() == 1_000_000 * 10**6
        safe = chain.contract(w3, "SafeL2", printed["CASINO_ETH_SAFE_ADDRESS"])
        assert safe.functions.getThreshold().call() == 2
        block = w3.eth.block_number
    finally:
        _stop(proc)
    assert (tmp_path / "data" / "devnet-state.json").exists()
    proc, again = _start(tmp_path, port)  # the saved chain: same contracts, not redeployed
    try:
        assert again == printed
        w3 = Web3(Web3.HTTPProvider(again["CASINO_ETH_RPC_URL"]))
        assert w3.eth.block_number >= block
    finally:
        _stop(proc)
    # a devnet set up with an older BatchPay build gets the new one; the rest is kept
    saved = tmp_path / "data" / "devnet.json"
    saved.write_text(saved.read_text().replace('"batch_code": "', '"batch_code": "old'))
    proc, third = _start(tmp_path, port)
    try:
        assert third["CASINO_ETH_BATCH_CONTRACT"] != printed["CASINO_ETH_BATCH_CONTRACT"]
        assert {k: v for k, v in third.items() if k != "CASINO_ETH_BATCH_CONTRACT"} == \
            {k: v for k, v in printed.items() if k != "CASINO_ETH_BATCH_CONTRACT"}
        w3 = Web3(Web3.HTTPProvider(third["CASINO_ETH_RPC_URL"]))
        assert w3.eth.get_code(third["CASINO_ETH_BATCH_CONTRACT"])
    finally:
        _stop(proc)
