"""The Ethereum development tooling against a real anvil: the node (mining on demand, reorgs,
clean shutdown), the committed contract artifacts, token transfers that work with USDT's
no-return ``transfer``, and 2-of-3 Safe payments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from casino_app.payments.eth import chain
from casino_app.payments.eth.contracts import build
from tests.support.services import ANVIL_KEYS, Anvil

pytestmark = pytest.mark.ethereum

ETH = 10**18
REPO = Path(__file__).resolve().parents[3]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


# --- the node -----------------------------------------------------------------------------

def test_anvil_mines_on_demand_and_stops() -> None:
    node = Anvil(no_mining=True)
    try:
        node.start()
        w3 = node.w3
        assert w3.eth.chain_id == 31337
        assert node.accounts == w3.eth.accounts          # the ten dev keys of the mnemonic
        assert len(node.keys) == 10
        start = w3.eth.block_number
        tx = w3.eth.send_transaction({"from": node.accounts[1], "to": node.accounts[2],
                                      "value": 123})
        time.sleep(0.3)
        assert w3.eth.block_number == start               # nothing mined by itself
        assert w3.eth.get_transaction(tx)["blockNumber"] is None
        assert node.mine() == start + 1
        assert w3.eth.get_transaction_receipt(tx)["blockNumber"] == start + 1
        assert node.mine(5) == start + 6
        pid = node.proc.pid
    finally:
        node.stop()
    assert node.proc is None and not _alive(pid)
    with pytest.raises(OSError):
        node.rpc("eth_blockNumber")


def test_anvil_dies_with_a_killed_parent() -> None:
    """SIGKILL of the test process (no atexit, no finally) still takes anvil down."""
    code = ("import sys, time; from tests.support.services import Anvil; a = Anvil().start();"
            "print(a.proc.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,  # noqa: S603
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.time() + 10
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_reorg_replaces_blocks(anvil: Anvil, chain_state: Anvil) -> None:
    w3 = anvil.w3
    anvil.mine(3)
    tx = w3.eth.send_transaction({"from": anvil.accounts[1], "to": anvil.accounts[2],
                                  "value": 5})
    tip = w3.eth.block_number
    assert w3.eth.get_transaction_receipt(tx)["blockNumber"] == tip
    old = {n: w3.eth.get_block(n)["hash"] for n in range(tip - 3, tip + 1)}
    replacement = {"from": anvil.accounts[3], "to": anvil.accounts[4], "value": 7}
    anvil.reorg(2, [(replacement, 1)])
    assert w3.eth.block_number == tip                     # same height, new blocks
    new = {n: w3.eth.get_block(n)["hash"] for n in range(tip - 3, tip + 1)}
    assert new[tip - 3] == old[tip - 3] and new[tip - 2] == old[tip - 2]
    assert new[tip - 1] != old[tip - 1] and new[tip] != old[tip]
    assert new[tip - 1] == w3.eth.get_block(tip)["parentHash"]
    # the dropped transfer is gone; the one given to the reorg sits in the new tip
    with pytest.raises(Exception, match="not found"):
        w3.eth.get_transaction_receipt(tx)
    block = w3.eth.get_block(tip, full_transactions=True)
    assert [(t["from"], t["value"]) for t in block["transactions"]] == [(anvil.accounts[3], 7)]


def test_snapshot_and_revert(anvil: Anvil) -> None:
    w3 = anvil.w3
    snap = anvil.snapshot()
    n = w3.eth.block_number
    anvil.mine(4)
    assert w3.eth.block_number == n + 4
    anvil.revert(snap)
    assert w3.eth.block_number == n


# --- artifacts ----------------------------------------------------------------------------

def test_committed_artifacts_are_what_the_build_produces(capsys: pytest.CaptureFixture) -> None:
    assert build.main(["--check"]) == 0, capsys.readouterr().out
    for name in ("TestToken", "TetherToken", "Safe", "SafeL2", "SafeProxyFactory",
                 "MultiSendCallOnly", "CompatibilityFallbackHandler"):
        art = chain.artifact(name)
        assert set(art) == {"abi", "bytecode"} and art["bytecode"].startswith("0x60")


# --- tokens -------------------------------------------------------------------------------

def test_tokens_deploy_mint_and_transfer(anvil: Anvil, devnet: dict,
                                         chain_state: Anvil) -> None:
    w3 = anvil.w3
    owner, alice, bob = anvil.keys[0], anvil.keys[1], anvil.keys[2]
    for code, name in (("USDT", "TetherToken"), ("USDC", "TestToken")):
        token = chain.contract(w3, name, devnet[code])
        assert token.functions.decimals().call() == 6
        assert token.functions.symbol().call() == code
        before = token.functions.balanceOf(anvil.accounts[1]).call()
        res = chain.transact(w3, {"to": token.address, "data": token.encode_abi(
            "mint", args=[anvil.accounts[1], 5_000_000])}, owner)
        assert res.ok
        assert token.functions.balanceOf(anvil.accounts[1]).call() == before + 5_000_000
        # only the deployer mints
        with pytest.raises(ContractLogicError):
            chain.transact(w3, {"to": token.address, "data": token.encode_abi(
                "mint", args=[anvil.accounts[1], 1])}, alice)
        res = chain.erc20_transfer(w3, devnet[code], anvil.accounts[2], 1_250_000, alice)
        assert res.ok
        assert chain.transfer_logs(res.receipt, devnet[code]) == [chain.Transfer(
            devnet[code], anvil.accounts[1], anvil.accounts[2], 1_250_000, 0)]
        erc = chain.erc20(w3, devnet[code])
        assert erc.functions.balanceOf(anvil.accounts[1]).call() == before + 3_750_000
        # an unlocked node account as sender (eth_sendTransaction) works too
        assert chain.erc20_transfer(w3, devnet[code], anvil.accounts[1], 250_000,
                                    anvil.accounts[2]).ok
        assert chain.address_of(bob) == anvil.accounts[2]


def test_usdt_transfer_returns_nothing_and_is_judged_by_the_receipt(
        anvil: Anvil, devnet: dict, chain_state: Anvil) -> None:
    w3 = anvil.w3
    usdt, usdc = devnet["USDT"], devnet["USDC"]
    sender, to = anvil.accounts[1], anvil.accounts[5]
    for token, name in ((usdt, "TetherToken"), (usdc, "TestToken")):
        mint = chain.contract(w3, name, token).encode_abi("mint", args=[sender, 10_000_000])
        assert chain.transact(w3, {"to": token, "data": mint}, anvil.keys[0]).ok
    call = {"from": sender, "data": chain.erc20_transfer_data(to, 1_000_000)}
    assert w3.eth.call({**call, "to": usdt}) == b""                # USDT: no return data
    assert int.from_bytes(w3.eth.call({**call, "to": usdc}), "big") == 1  # USDC: true

    res = chain.erc20_transfer(w3, usdt, to, 4_000_000, anvil.keys[1])
    assert res.ok and res.receipt["status"] == 1
    assert chain.erc20(w3, usdt).functions.balanceOf(to).call() == 4_000_000

    # over the balance: the estimate refuses; forced through, the receipt says failed
    with pytest.raises(ContractLogicError):
        chain.erc20_transfer_tx(w3, usdt, to, 6_000_001, anvil.keys[1])
    res = chain.erc20_transfer(w3, usdt, to, 6_000_001, anvil.keys[1], gas=100_000)
    assert not res.ok and res.receipt["status"] == 0
    assert chain.transfer_logs(res.receipt) == []
    assert chain.erc20(w3, usdt).functions.balanceOf(sender).call() == 6_000_000
    # a success of another transfer is not this one's success
    ok = chain.erc20_transfer(w3, usdt, to, 1, anvil.keys[1])
    assert ok.ok
    assert not chain.transfer_succeeded(ok.receipt, usdt, sender, to, 2)
    assert not chain.transfer_succeeded(ok.receipt, usdc, sender, to, 1)


# --- Safe ---------------------------------------------------------------------------------

def test_safe_pays_with_two_of_three_owner_signatures(anvil: Anvil, devnet: dict,
                                                      chain_state: Anvil) -> None:
    w3 = anvil.w3
    safe, keys = devnet["safe"], devnet["safe_owner_keys"]
    safe_c = chain.contract(w3, "SafeL2", safe)
    assert safe_c.functions.getThreshold().call() == 2
    assert sorted(safe_c.functions.getOwners().call()) == sorted(
        Account.from_key(k).address for k in keys)
    assert chain.transact(w3, {"to": safe, "value": 3 * ETH}, anvil.keys[1]).ok
    payee = Account.create().address
    relayer = anvil.keys[4]                               # pays gas, not an owner

    nonce = chain.safe_nonce(w3, safe)
    h = chain.safe_tx_hash(w3.eth.chain_id, safe, payee, ETH, b"", nonce)
    assert h == safe_c.functions.getTransactionHash(
        payee, ETH, b"", 0, 0, 0, 0, chain.ZERO_ADDRESS, chain.ZERO_ADDRESS, nonce).call()

    # one signature: refused (GS020: signatures too short), nothing moves
    one = [chain.sign_safe_tx(keys[0], h)]
    with pytest.raises(ContractLogicError, match="GS020"):
        chain.exec_safe_tx(w3, safe, payee, ETH, b"", one, relayer)
    res = chain.exec_safe_tx(w3, safe, payee, ETH, b"", one, relayer, gas=300_000)
    assert not res.ok and res.receipt["status"] == 0
    # an owner and a non-owner: refused (GS026)
    outsider = [chain.sign_safe_tx(keys[0], h), chain.sign_safe_tx(anvil.keys[6], h)]
    with pytest.raises(ContractLogicError, match="GS026"):
        chain.exec_safe_tx(w3, safe, payee, ETH, b"", outsider, relayer)
    # two owners, but one signed another transaction (wrong nonce): refused
    stale = chain.safe_tx_hash(w3.eth.chain_id, safe, payee, ETH, b"", nonce + 1)
    with pytest.raises(ContractLogicError, match="GS026"):
        chain.exec_safe_tx(w3, safe, payee, ETH, b"",
                           [chain.sign_safe_tx(keys[0], h), chain.sign_safe_tx(keys[1], stale)],
                           relayer)
    assert w3.eth.get_balance(payee) == 0 and chain.safe_nonce(w3, safe) == nonce

    # two owners (given in descending order: exec sorts them): paid
    sigs = sorted((chain.sign_safe_tx(k, h) for k in (keys[2], keys[0])),
                  key=lambda s: int(s.owner, 16), reverse=True)
    res = chain.exec_safe_tx(w3, safe, payee, ETH, b"", sigs, relayer)
    assert res.ok
    assert w3.eth.get_balance(payee) == ETH
    assert w3.eth.get_balance(safe) == 2 * ETH
    assert chain.safe_nonce(w3, safe) == nonce + 1
    # the same signatures cannot pay twice (the nonce moved on)
    with pytest.raises(ContractLogicError, match="GS026"):
        chain.exec_safe_tx(w3, safe, payee, ETH, b"", sigs, relayer)


def test_safe_pays_usdt(anvil: Anvil, devnet: dict, chain_state: Anvil) -> None:
    w3 = anvil.w3
    safe, usdt = devnet["safe"], devnet["USDT"]
    mint = chain.contract(w3, "TetherToken", usdt).encode_abi("mint", args=[safe, 9_000_000])
    assert chain.transact(w3, {"to": usdt, "data": mint}, anvil.keys[0]).ok
    payee = Account.create().address
    data = chain.erc20_transfer_data(payee, 2_500_000)
    res = chain.safe_pay(w3, safe, usdt, 0, data, devnet["safe_owner_keys"][1:], anvil.keys[4])
    assert res.ok
    assert chain.transfer_succeeded(res.receipt, usdt, safe, payee, 2_500_000)
    assert chain.erc20(w3, usdt).functions.balanceOf(payee).call() == 2_500_000
    # more than the Safe holds: the inner transfer reverts, so does execTransaction (GS013)
    too_much = chain.erc20_transfer_data(payee, 9_000_000)
    with pytest.raises(ContractLogicError, match="GS013"):
        chain.safe_pay(w3, safe, usdt, 0, too_much, devnet["safe_owner_keys"][:2],
                       anvil.keys[4])


def test_deploy_safe_standalone(anvil: Anvil, chain_state: Anvil) -> None:
    w3 = anvil.w3
    owners = [Account.from_key(k).address for k in ANVIL_KEYS[1:4]]
    a = chain.deploy_safe(w3, owners, 2, anvil.keys[0])
    safe_c = chain.contract(w3, "SafeL2", a)
    assert safe_c.functions.getThreshold().call() == 2
    singleton = w3.eth.get_storage_at(a, 0)[-20:]
    assert w3.eth.get_code(w3.to_checksum_address(singleton))
    with pytest.raises(ValueError):
        chain.deploy_safe(w3, owners, 4, anvil.keys[0])


def test_safe_execution_finds_the_transaction_that_executed_a_safe_tx(
        anvil: Anvil, devnet: dict, chain_state: Anvil) -> None:
    """``chain.safe_execution`` names the transaction whose ExecutionSuccess log carries
    the safeTxHash (whoever sent it), from the given block on, in ranges; a Safe
    transaction not executed (or executed before ``from_block``) gives None. The hash is
    matched in the topic (Safe 1.4.1) and in the data (Safe 1.3.0 logs it unindexed)."""
    from types import SimpleNamespace

    from hexbytes import HexBytes

    w3, keys, safe = anvil.w3, devnet["safe_owner_keys"], devnet["safe"]
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": anvil.accounts[0], "to": safe, "value": ETH}))
    start = w3.eth.block_number
    nonce = chain.safe_nonce(w3, safe)
    to = Account.create().address
    h = chain.safe_tx_hash(w3.eth.chain_id, safe, to, 5, b"", nonce)
    other = chain.safe_tx_hash(w3.eth.chain_id, safe, to, 6, b"", nonce)
    assert chain.safe_execution(w3, safe, h, start) is None
    anvil.mine(7)
    res = chain.safe_pay(w3, safe, to, 5, b"", keys[:2], anvil.accounts[4])
    assert res.ok
    assert chain.safe_execution(w3, safe, h, start) == res.tx_hash
    assert chain.safe_execution(w3, safe, h, start, step=3) == res.tx_hash  # in ranges
    assert chain.safe_execution(w3, safe, "0x" + h.hex(), start) == res.tx_hash
    assert chain.safe_execution(w3, safe, other, start) is None
    assert chain.safe_execution(w3, safe, h, res.receipt["blockNumber"] + 1) is None

    # Safe 1.3.0: ExecutionSuccess(bytes32 txHash, uint256 payment), nothing indexed
    old_style = {"topics": [chain._EXECUTION_SUCCESS], "data": HexBytes(h + bytes(32)),
                 "transactionHash": HexBytes("0x" + "ab" * 32)}
    fake = SimpleNamespace(eth=SimpleNamespace(
        block_number=10, get_logs=lambda f: [old_style] if f["fromBlock"] <= 4 <= f["toBlock"]
        else []))
    assert chain.safe_execution(fake, safe, h, 0, step=2) == "0x" + "ab" * 32
    assert chain.safe_execution(fake, safe, other, 0) is None
