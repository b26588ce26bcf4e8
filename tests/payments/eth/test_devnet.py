"""`casino devnet`: a real anvil with the contracts deployed, the hot wallet funded, the
settings printed, and the chain saved and reused on the next start; beside it a real bcoin
regtest node, mined by the devnet, its hot wallet funded, `casino devnet pay` paying an
address, and its chain (the same blocks) back after a restart."""

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

pytestmark = [pytest.mark.ethereum, pytest.mark.bitcoin]
ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASINO_")}
    env["CASINO_DATA_DIR"] = str(tmp_path / "data")
    return env


def _start(tmp_path: Path, port: int, btc_port: int = 0,
           ) -> tuple[subprocess.Popen, dict[str, str]]:
    args = ["--btc-port", str(btc_port), "--btc-block-time", "1"] if btc_port else ["--no-btc"]
    proc = subprocess.Popen([sys.executable, "-m", "casino_app.cli", "devnet", "--port",
                             str(port), *args], cwd=ROOT, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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
    """Ctrl-C: the devnet stops its chains (anvil writes its state) and exits. Nothing
    reads its output any more, so it must not write any (stderr goes to /dev/null, stdout
    is drained here: a full pipe would block it)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
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


def test_devnet_runs_a_bitcoin_node_that_pays_and_keeps_its_blocks(tmp_path: Path) -> None:
    from casino_app.payments.btc import devnet as btc_devnet
    from casino_app.payments.btc import keys
    from casino_app.payments.btc.rpc import BitcoinRPC
    from casino_app.payments.signer import btc as btc_signer
    from tests.support.bitcoin import fresh_address

    port, btc_port = free_port(), free_port()
    proc, printed = _start(tmp_path, port, btc_port)
    to = fresh_address()
    try:
        assert printed["CASINO_BTC_NETWORK"] == "regtest-bcoin"
        rpc = BitcoinRPC(printed["CASINO_BTC_RPC_URL"], printed["CASINO_BTC_RPC_USER"],
                         printed["CASINO_BTC_RPC_PASSWORD"], timeout=60)
        node = btc_devnet.Node(btc_port, printed["CASINO_BTC_RPC_PASSWORD"])
        words = (tmp_path / "data" / "dev-hot-wallet.seed").read_text()
        net = btc_devnet.NETWORK
        hot = keys.p2wpkh_address(btc_signer.public_key(1, 0, net, words=words), net)
        assert sum(c.value for c in node.coins(hot)) == btc_devnet.HOT_FUNDING
        paid = subprocess.run([sys.executable, "-m", "casino_app.cli", "devnet", "pay", to,
                               "0.25"], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                              text=True, timeout=120)
        assert paid.returncode == 0, paid.stderr
        txid = paid.stdout.split(" in ")[1].split(";")[0]
        deadline = time.monotonic() + 60  # the devnet mines a block a second
        while rpc.raw_transaction(txid).confirmations < 1:
            assert time.monotonic() < deadline, "the devnet did not mine the payment"
            time.sleep(0.5)
        height = rpc.block_count()
        tip = rpc.block_hash(height)
        node.close()
    finally:
        _stop(proc)
    proc, again = _start(tmp_path, port, btc_port)  # the same chain, extended
    try:
        assert again["CASINO_BTC_RPC_PASSWORD"] == printed["CASINO_BTC_RPC_PASSWORD"]
        rpc = BitcoinRPC(again["CASINO_BTC_RPC_URL"], "hashhouse",
                         again["CASINO_BTC_RPC_PASSWORD"], timeout=60)
        assert rpc.block_count() >= height and rpc.block_hash(height) == tip
        node = btc_devnet.Node(btc_port, again["CASINO_BTC_RPC_PASSWORD"])
        assert [c.value for c in node.coins(to)] == [25_000_000]
        node.close()
    finally:
        _stop(proc)
    bad = subprocess.run([sys.executable, "-m", "casino_app.cli", "devnet", "pay",
                          "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "1"], cwd=ROOT,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "casino:" in bad.stderr


def _anvil_answers(url: str) -> bool:
    try:
        return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 2})).is_connected()
    except Exception:  # noqa: BLE001 - not listening
        return False


def _gone(url: str, seconds: float = 40) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _anvil_answers(url):
            return True
        time.sleep(0.3)
    return False


def test_devnet_mines_on_a_clock_and_funds_any_address(tmp_path: Path) -> None:
    """A deposit waited forever at "1 of 3": anvil mined only when a transaction came.
    `casino devnet fund` pays an address ETH and test tokens (the README's `cast send` is
    not installed, and no account held the test tokens)."""
    port = free_port()
    proc, printed = _start(tmp_path, port)
    try:
        url = printed["CASINO_ETH_RPC_URL"]
        w3 = Web3(Web3.HTTPProvider(url))
        first = w3.eth.block_number
        deadline = time.monotonic() + 15
        while w3.eth.block_number < first + 2:   # a block every 2 s, nobody sending
            assert time.monotonic() < deadline, "the devnet does not mine on its own"
            time.sleep(0.3)
        to = "0x" + "5a" * 20
        funded = subprocess.run([sys.executable, "-m", "casino_app.cli", "devnet", "--port",
                                 str(port), "fund", to, "--eth", "1.5", "--usdt", "100",
                                 "--usdc", "2.5"], cwd=ROOT, env=_env(tmp_path),
                                capture_output=True, text=True, timeout=120)
        assert funded.returncode == 0, funded.stderr
        assert funded.stdout.startswith("sent 1.5 ETH, 100 USDT, 2.5 USDC to ")
        to = Web3.to_checksum_address(to)
        assert w3.eth.get_balance(to) == 15 * 10**17
        tokens = dict(p.split(":") for p in printed["CASINO_ETH_TOKENS"].split(","))
        assert chain.erc20(w3, tokens["USDT"]).functions.balanceOf(to).call() == 100 * 10**6
        assert chain.erc20(w3, tokens["USDC"]).functions.balanceOf(to).call() == 2_500_000
        for bad in (["not-an-address", "--eth", "1"], [to, "--eth", "1,5"], [to]):
            refused = subprocess.run([sys.executable, "-m", "casino_app.cli", "devnet",
                                      "--port", str(port), "fund", *bad], cwd=ROOT,
                                     env=_env(tmp_path), capture_output=True, text=True,
                                     timeout=120)
            assert refused.returncode != 0 and "casino:" in refused.stderr, bad
    finally:
        _stop(proc)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["SIGTERM", "SIGHUP", "SIGKILL"])
def test_every_way_of_stopping_the_devnet_stops_its_anvil(tmp_path: Path, how: int) -> None:
    """SIGTERM left anvil running on its port. Handled signals stop it in order (its state
    is written); SIGKILL cannot be handled: the kernel then stops anvil (parent death)."""
    port = free_port()
    proc, printed = _start(tmp_path, port)
    url = printed["CASINO_ETH_RPC_URL"]
    assert _anvil_answers(url)
    proc.send_signal(how)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert _gone(url), "anvil still answers after the devnet stopped"
    if how != signal.SIGKILL:
        assert proc.returncode == 0 and (tmp_path / "data" / "devnet-state.json").exists()
