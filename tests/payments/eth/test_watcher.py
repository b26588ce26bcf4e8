"""The deposit watcher against a real anvil node: pending then available, reorgs, catch-up
after downtime, dust, the pending cap, a reversed deposit that was already spent; token
logs that a stale backend leaves out of a ranged query, a reorg between reading blocks and
their logs; ETH that a contract passes on to a deposit address (call traces)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from web3 import Web3

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.deposits import withdrawable
from casino_app.payments.eth import addresses
from casino_app.payments.eth.contracts.build import compile_sources
from casino_app.payments.eth.reconcile import reconcile
from casino_app.payments.eth.watcher import TRACE_METHODS, Watcher, WatcherStopped, chain_assets
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.signer.seed import account_xpub
from tests.support.services import ANVIL_MNEMONIC

pytestmark = pytest.mark.ethereum

GWEI = 10**9
ETH = 10**18


@pytest.fixture
def env(any_env: str, chain_state, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A fresh ledger (SQLite and Postgres), a fresh chain state for each test, and the
    hot wallet xpub of anvil's mnemonic (the addresses are anvil's own accounts)."""
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    reset_settings_cache()
    return chain_state


def _watcher(anvil, tokens: dict[str, str] | None = None, **kw) -> Watcher:  # noqa: ANN001
    assets = chain_assets(anvil.w3, tokens or {})
    kw.setdefault("confirmations", 3)
    kw.setdefault("pending_cap", {"ETH": 10 * GWEI, "USDT": 10**9, "USDC": 10**9})
    kw.setdefault("dust", {"ETH": 1000, "USDT": 10, "USDC": 10})
    kw.setdefault("start_block", anvil.w3.eth.block_number)
    return Watcher(anvil.w3, assets, **kw)


def _send_eth(anvil, to: str, wei: int, sender: int = 1) -> str:  # noqa: ANN001
    w3 = anvil.w3
    tx = w3.eth.send_transaction({"from": anvil.accounts[sender], "to": to, "value": wei})
    w3.eth.wait_for_transaction_receipt(tx, timeout=30)  # mined before the watcher looks
    return w3.to_hex(tx)


def _state(tx: str) -> ChainDeposit:
    with ledger_tx(readonly=True) as s:
        return s.query(ChainDeposit).filter_by(tx_hash=tx).one()


def _balance(player: str, code: str) -> int:
    with ledger_tx(readonly=True) as s:
        bal = ledger.player_balances(s, player).get(code)
        return bal.balance if bal else 0


def _poll_until(w: Watcher, done, passes: int = 20):  # noqa: ANN001, ANN202
    """Poll as the job does until ``done(result)``: a node may answer a pass from just
    before a reorg landed (the watcher then waits a pass rather than guess)."""
    for _ in range(passes):
        res = w.poll()
        if done(res):
            return res
        time.sleep(0.05)
    raise AssertionError("the watcher never saw the change")


def _invariants_clean() -> None:
    with ledger_tx(readonly=True) as s:
        assert [f.check for f in ledger.check_invariants(s) if f.violations] == []


def test_eth_deposit_pending_then_available(env) -> None:  # noqa: ANN001
    addr = addresses.deposit_address("p-eth")
    w = _watcher(env)
    tx = _send_eth(env, addr, 2 * ETH // 1000)  # 0.002 ETH
    res = w.poll()
    assert res.deposits == 1 and "p-eth" in res.players
    row = _state(tx)
    assert row.state == "pending" and row.amount == 2_000_000  # gwei
    assert _balance("p-eth", "ETH") == 2_000_000          # playable at once
    with ledger_tx(readonly=True) as s:
        assert withdrawable(s, "p-eth", "ETH") == 0       # not withdrawable yet
    env.mine(1)
    w.poll()
    assert _state(tx).state == "pending"                  # 2 confirmations of 3
    env.mine(1)
    res = w.poll()
    assert _state(tx).state == "available" and res.made_available == 1
    with ledger_tx(readonly=True) as s:
        assert withdrawable(s, "p-eth", "ETH") == 2_000_000
    # polling again changes nothing: applied once
    env.mine(2)
    w.poll()
    assert _balance("p-eth", "ETH") == 2_000_000
    _invariants_clean()


def test_token_deposits_usdt_and_usdc(env, devnet) -> None:  # noqa: ANN001
    addr = addresses.deposit_address("p-tok")
    w = _watcher(env, {"USDT": devnet["USDT"], "USDC": devnet["USDC"]})
    w3 = env.w3
    for code, amount in (("USDT", 25_000_000), ("USDC", 7_500_000)):
        token = w3.eth.contract(address=devnet[code], abi=devnet["abi"][code])
        token.functions.mint(addr, amount).transact({"from": env.accounts[0]})
    w.poll()
    assert _balance("p-tok", "USDT") == 25_000_000
    assert _balance("p-tok", "USDC") == 7_500_000
    env.mine(3)
    w.poll()
    with ledger_tx(readonly=True) as s:
        states = {d.currency: d.state for d in s.query(ChainDeposit).filter_by(
            player_id="p-tok")}
    assert states == {"USDT": "available", "USDC": "available"}
    _invariants_clean()


def test_reorg_reverses_a_credited_deposit(env) -> None:  # noqa: ANN001
    addr = addresses.deposit_address("p-reorg")
    w = _watcher(env)
    env.mine(1)
    tx = _send_eth(env, addr, ETH // 1000)
    w.poll()
    assert _balance("p-reorg", "ETH") == 1_000_000
    env.reorg(2)  # the deposit's block and the one before are replaced (without it)
    res = _poll_until(w, lambda r: r.reversed > 0)
    assert res.reversed == 1
    assert _state(tx).state == "reversed"
    assert _balance("p-reorg", "ETH") == 0
    with ledger_tx(readonly=True) as s:
        tip = s.query(ChainBlock).order_by(ChainBlock.number.desc()).first()
        assert tip.hash == Web3.to_hex(env.w3.eth.get_block(tip.number)["hash"])
    _invariants_clean()


def test_reversed_deposit_already_spent_leaves_a_debt_and_a_hold(env) -> None:  # noqa: ANN001
    addr = addresses.deposit_address("p-spent")
    w = _watcher(env)
    env.mine(1)
    _send_eth(env, addr, ETH // 1000)
    w.poll()
    with ledger_tx() as s:  # the player moves most of it away (as if lost in bets)
        ledger.transfer(s, "spend", "withdrawal", ledger.player_account(s, "p-spent", "ETH"),
                        ledger.house_account(s, "ETH", "bankroll"), 800_000)
    env.reorg(2)
    _poll_until(w, lambda r: r.reversed > 0)
    assert _balance("p-spent", "ETH") == 0
    with ledger_tx(readonly=True) as s:
        debt = ledger.balance_of(s, ledger.account(s, "p-spent", "ETH", "debt"))
        assert debt.balance == -800_000
        holds = s.query(PlayerHold).filter_by(player_id="p-spent").all()
        assert len(holds) == 1 and holds[0].released_at is None
    _invariants_clean()


def test_restart_after_50_blocks_catches_up_exactly(env) -> None:  # noqa: ANN001
    players = [f"p-up-{i}" for i in range(5)]
    addrs = [addresses.deposit_address(p) for p in players]
    w = _watcher(env, batch=20)
    w.poll()
    sent = []
    for i in range(50):  # the watcher is down: 50 blocks, a deposit in every 5th
        if i % 5 == 0:
            sent.append(_send_eth(env, addrs[(i // 5) % 5], (i + 1) * 10**15))
        else:
            env.mine(1)
    fresh = _watcher(env, batch=20)  # a new process: only what was stored
    while fresh.poll().tip != env.w3.eth.block_number:
        pass
    with ledger_tx(readonly=True) as s:
        rows = s.query(ChainDeposit).all()
        numbers = [n for (n,) in s.query(ChainBlock.number).order_by(ChainBlock.number)]
    assert sorted(r.tx_hash for r in rows) == sorted(sent)
    assert numbers == list(range(numbers[0], env.w3.eth.block_number + 1))  # no gap
    assert sum(_balance(p, "ETH") for p in players) == sum(
        (i + 1) * 10**15 // GWEI for i in range(0, 50, 5))
    _invariants_clean()


def test_dust_is_recorded_not_credited(env) -> None:  # noqa: ANN001
    addr = addresses.deposit_address("p-dust")
    w = _watcher(env)
    tx = _send_eth(env, addr, 999 * GWEI)  # below 1000 gwei
    env.mine(3)
    w.poll()
    assert _state(tx).state == "dust"
    assert _balance("p-dust", "ETH") == 0


def test_over_the_pending_cap_waits_for_confirmations(env) -> None:  # noqa: ANN001
    addr = addresses.deposit_address("p-cap")
    w = _watcher(env, pending_cap={"ETH": 5 * GWEI})
    tx = _send_eth(env, addr, 6 * ETH)  # 6 ETH > 5 ETH cap
    w.poll()
    assert _state(tx).state == "seen" and _balance("p-cap", "ETH") == 0
    env.mine(2)
    w.poll()
    assert _state(tx).state == "available" and _balance("p-cap", "ETH") == 6 * GWEI



def test_finalized_tag_decides_when_the_node_has_it(env) -> None:  # noqa: ANN001
    """CASINO_ETH_FINALITY=finalized: available once the node's finalized block covers the
    deposit (anvil finalizes 64 blocks behind its head), not at N confirmations."""
    addr = addresses.deposit_address("p-final")
    w = _watcher(env, finality="finalized")
    tx = _send_eth(env, addr, ETH // 100)
    w.poll()
    assert _state(tx).state == "pending"
    env.mine(10)  # far more than the 3 confirmations, not finalized yet
    w.poll()
    assert _state(tx).state == "pending"
    env.mine(64)
    w.poll()
    assert _state(tx).state == "available"
    _invariants_clean()


def test_a_node_behind_our_tip_is_not_a_reorg(env) -> None:  # noqa: ANN001
    """A lagging node (or another backend behind a load balancer) has no block at our
    stored tip: the watcher waits and reverses nothing; a node error fails the pass
    without changes."""
    addr = addresses.deposit_address("p-lag")
    w = _watcher(env)
    tx = _send_eth(env, addr, ETH // 1000)
    w.poll()
    assert _state(tx).state == "pending"
    real = w._node_hash
    w._node_hash = lambda number: None  # type: ignore[method-assign]
    res = w.poll()
    assert res.reversed == 0 and res.blocks == 0
    assert _state(tx).state == "pending" and _balance("p-lag", "ETH") == 1_000_000

    def broken(number: int) -> str | None:
        raise TimeoutError("node timed out")

    w._node_hash = broken  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        w.poll()
    assert _state(tx).state == "pending" and _balance("p-lag", "ETH") == 1_000_000
    w._node_hash = real  # type: ignore[method-assign]
    env.mine(3)
    w.poll()
    assert _state(tx).state == "available"
    with ledger_tx(readonly=True) as s:
        assert s.query(PlayerHold).count() == 0
    _invariants_clean()


# --- logs read for the block's own hash (a stale backend, a reorg in between) --------------

class _Backend(Web3.HTTPProvider):
    """anvil behind a "load balancer": ``answer(method, params)`` may replace the node's
    answer to a request (None: the node answers), in single calls and in batches alike."""

    def __init__(self, url: str, answer) -> None:  # noqa: ANN001
        super().__init__(url, request_kwargs={"timeout": 30})
        self.answer = answer

    def make_request(self, method, params):  # noqa: ANN001, ANN201
        fake = self.answer(method, params)
        return {"jsonrpc": "2.0", "id": 0, "result": fake} if fake is not None \
            else super().make_request(method, params)

    def make_batch_request(self, requests):  # noqa: ANN001, ANN201
        fakes = [self.answer(m, p) for m, p in requests]
        answers = super().make_batch_request(requests)
        return [a if f is None else {"jsonrpc": "2.0", "id": a["id"], "result": f}
                for a, f in zip(answers, fakes, strict=True)]


def _mint(anvil, devnet, code: str, to: str, amount: int) -> str:  # noqa: ANN001
    token = anvil.w3.eth.contract(address=devnet[code], abi=devnet["abi"][code])
    return _mined(anvil, token.functions.mint(to, amount).transact({"from": anvil.accounts[0]}))


def test_token_deposit_found_when_the_ranged_logs_come_from_a_stale_backend(
        env, devnet) -> None:  # noqa: ANN001
    """A backend that answers a block-range eth_getLogs from another fork (empty) while the
    blocks come from the canonical one: the deposit in that block is still found, because
    a block is stored only with the logs read for its own hash."""
    addr = addresses.deposit_address("p-stale")

    def stale(method: str, params: Any) -> list | None:
        if method == "eth_getLogs" and "blockHash" not in params[0]:
            return []
        return None

    w3 = Web3(_Backend(env.url, stale))
    start = env.w3.eth.block_number
    tx = _mint(env, devnet, "USDT", addr, 25_000_000)
    w = Watcher(w3, chain_assets(w3, {"USDT": devnet["USDT"]}), confirmations=3,
                pending_cap={"USDT": 10**9}, dust={}, start_block=start)
    res = w.poll()
    assert res.tip == env.w3.eth.block_number and res.deposits == 1
    assert _state(tx).state == "pending" and _balance("p-stale", "USDT") == 25_000_000
    env.mine(2)
    w.poll()
    assert _state(tx).state == "available"
    _invariants_clean()


def test_reorg_between_reading_blocks_and_their_logs(env, devnet) -> None:  # noqa: ANN001
    """The node reorgs after the watcher read a block and before it read that block's
    logs: the block is not stored with someone else's logs; the next pass reads the new
    block and credits exactly what the chain holds."""
    addr = addresses.deposit_address("p-between")
    start = env.w3.eth.block_number
    env.mine(1)
    dropped = _mint(env, devnet, "USDT", addr, 5_000_000)
    token = env.w3.eth.contract(address=devnet["USDT"], abi=devnet["abi"]["USDT"])
    kept = {"from": env.accounts[0], "to": devnet["USDT"], "gas": 200_000,
            "data": token.encode_abi("mint", [addr, 7_000_000])}
    fired = []

    def reorg_once(method: str, params: Any) -> None:
        if method == "eth_getLogs" and not fired:
            fired.append(params[0])
            env.reorg(1, [(kept, 0)])  # the block just read leaves the chain
        return None

    w3 = Web3(_Backend(env.url, reorg_once))
    w = Watcher(w3, chain_assets(w3, {"USDT": devnet["USDT"]}), confirmations=3,
                pending_cap={"USDT": 10**9}, dust={}, start_block=start)
    head = env.w3.eth.block_number
    _poll_until(w, lambda r: r.tip == head and fired and
                _balance("p-between", "USDT") == 7_000_000)
    assert "blockHash" in fired[0]  # the reorg came between the blocks and their logs
    with ledger_tx(readonly=True) as s:
        rows = s.query(ChainDeposit).filter_by(player_id="p-between").all()
        assert [(r.amount, r.state) for r in rows] == [(7_000_000, "pending")]
        assert dropped not in {r.tx_hash for r in rows}
        for b in s.query(ChainBlock).all():
            assert b.hash == Web3.to_hex(env.w3.eth.get_block(b.number)["hash"])
    _invariants_clean()


# --- ETH passed on by a contract (internal calls, from the node's call traces) ------------

FORWARDER = Path(__file__).resolve().parents[2] / "support" / "contracts" / "Forwarder.sol"
# Not anvil's mnemonic: these deposit addresses start empty (reconciliation adds them up).
EMPTY_MNEMONIC = ("abandon abandon abandon abandon abandon abandon abandon abandon abandon "
                  "abandon abandon about")


@functools.cache
def _forwarder_artifact() -> dict[str, Any]:
    return compile_sources([FORWARDER])["Forwarder"]


def _forwarder(anvil) -> Any:  # noqa: ANN001, ANN401
    w3 = anvil.w3
    art = _forwarder_artifact()
    tx = w3.eth.send_transaction({"from": anvil.accounts[0], "data": art["bytecode"]})
    address = w3.eth.wait_for_transaction_receipt(tx, timeout=30)["contractAddress"]
    return w3.eth.contract(address=address, abi=art["abi"])


def _mined(anvil, tx) -> str:  # noqa: ANN001
    """The transaction's hash once it is mined (its status checked by the caller)."""
    anvil.w3.eth.wait_for_transaction_receipt(tx, timeout=30, poll_latency=0.02)
    return anvil.w3.to_hex(tx)


@pytest.mark.parametrize("method", TRACE_METHODS)
def test_eth_passed_on_by_a_contract_is_credited_and_reversed_by_a_reorg(
        env, method: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(EMPTY_MNEMONIC))
    reset_settings_cache()
    a, b = addresses.deposit_address("p-int-a"), addresses.deposit_address("p-int-b")
    fwd = _forwarder(env)
    w = _watcher(env, traces=method)
    sender = {"from": env.accounts[1], "gas": 300_000}
    # passed on inside a call that reverted (the transaction succeeds): nothing arrives
    _mined(env, fwd.functions.forwardReverted(a).transact({**sender, "value": ETH // 1000}))
    # passed on, then the whole transaction reverted: nothing arrives
    failed = _mined(env, fwd.functions.forwardThenFail(a).transact(
        {**sender, "value": ETH // 1000}))
    assert env.w3.eth.get_transaction_receipt(failed)["status"] == 0
    # an exchange's withdrawal: one transaction passing 0.002 ETH to each of two players
    paid = _mined(env, fwd.functions.forward([a, b]).transact(
        {**sender, "value": 4 * ETH // 1000}))
    w.poll()
    with ledger_tx(readonly=True) as s:
        rows = s.query(ChainDeposit).order_by(ChainDeposit.log_index.desc()).all()
    # once per (transaction, position of the call in its call tree): -1 - position
    assert [(r.tx_hash, r.log_index, r.player_id, r.amount, r.state) for r in rows] == [
        (paid, -2, "p-int-a", 2_000_000, "pending"), (paid, -3, "p-int-b", 2_000_000, "pending")]
    assert rows[0].sender == fwd.address
    assert _balance("p-int-a", "ETH") == 2_000_000 and _balance("p-int-b", "ETH") == 2_000_000
    env.mine(2)
    w.poll()
    w.poll()  # applied once
    assert {_state_at(paid, i) for i in (-2, -3)} == {"available"}
    assert _balance("p-int-a", "ETH") == 2_000_000
    # the ledger and the chain agree on what the deposit addresses hold
    res = reconcile(env.w3, chain_assets(env.w3, {}))
    assert res.clean, res.issues
    env.reorg(5)  # the forwarding transaction's block leaves the chain
    _poll_until(w, lambda r: r.reversed > 0)
    assert {_state_at(paid, i) for i in (-2, -3)} == {"reversed"}
    assert _balance("p-int-a", "ETH") == 0 and _balance("p-int-b", "ETH") == 0
    _invariants_clean()


def _state_at(tx: str, log_index: int) -> str:
    with ledger_tx(readonly=True) as s:
        return s.query(ChainDeposit).filter_by(tx_hash=tx, log_index=log_index).one().state


def test_traces_auto_off_and_on(env) -> None:  # noqa: ANN001
    """auto: anvil's traces are found and used; a node without them is said loudly in
    the log (and ETH passed on by contracts is then not credited); on: the watcher stops;
    off: no trace is asked for."""
    addr = addresses.deposit_address("p-auto")
    fwd = _forwarder(env)
    w = _watcher(env, traces="auto")
    tx = _mined(env, fwd.functions.forward([addr]).transact(
        {"from": env.accounts[1], "value": ETH // 1000}))
    w.poll()
    assert w._tracer.method == TRACE_METHODS[0] and _state_at(tx, -2) == "pending"

    asked = []

    def no_traces(method: str, params: Any) -> None:
        asked.append(method)
        return None

    class NoTraces(_Backend):
        def make_request(self, method, params):  # noqa: ANN001, ANN201
            self.answer(method, params)
            if method in TRACE_METHODS:
                return {"jsonrpc": "2.0", "id": 0,
                        "error": {"code": -32601, "message": "method not found"}}
            return super().make_request(method, params)

    bare = Web3(NoTraces(env.url, no_traces))
    start = env.w3.eth.block_number + 1
    missed = _mined(env, fwd.functions.forward([addr]).transact(
        {"from": env.accounts[1], "value": ETH // 1000}))
    auto = Watcher(bare, chain_assets(bare, {}), confirmations=3, pending_cap={}, dust={},
                   start_block=start, traces="auto")
    with capture_logs() as logs:
        res = auto.poll()
    assert res.tip == env.w3.eth.block_number and auto._tracer.method is None
    assert [e["log_level"] for e in logs if e["event"] == "eth_traces_unavailable"] == ["error"]
    with ledger_tx(readonly=True) as s:
        assert s.query(ChainDeposit).filter_by(tx_hash=missed).count() == 0
    with pytest.raises(WatcherStopped):
        Watcher(bare, chain_assets(bare, {}), start_block=start, traces="on").poll()
    asked.clear()
    off = Watcher(bare, chain_assets(bare, {}), start_block=start, traces="off")
    _mined(env, fwd.functions.forward([addr]).transact(
        {"from": env.accounts[1], "value": ETH // 1000}))
    assert off.poll().blocks == 1 and not set(asked) & set(TRACE_METHODS)


def test_a_failing_trace_probe_is_not_taken_for_a_node_without_traces(env) -> None:  # noqa: ANN001
    """auto: a trace call that fails for another reason than "method not found" (a node's
    timeout tracing a heavy block) decides nothing: the pass fails, nothing is stored,
    and the next pass probes again and records the ETH a contract passed on."""
    from casino_app.payments.eth.watcher import TracesUndecided

    addr = addresses.deposit_address("p-probe")
    fwd = _forwarder(env)
    failing = {"on": True}

    class Busy(_Backend):
        def make_request(self, method, params):  # noqa: ANN001, ANN201
            if method in TRACE_METHODS and failing["on"]:
                return {"jsonrpc": "2.0", "id": 0,
                        "error": {"code": -32000, "message": "execution timeout"}}
            return super().make_request(method, params)

    w3 = Web3(Busy(env.url, lambda method, params: None))
    start = env.w3.eth.block_number + 1
    tx = _mined(env, fwd.functions.forward([addr]).transact(
        {"from": env.accounts[1], "value": ETH // 1000}))
    w = Watcher(w3, chain_assets(w3, {}), confirmations=3, pending_cap={}, dust={},
                start_block=start, traces="auto")
    with pytest.raises(TracesUndecided):
        w.poll()
    with ledger_tx(readonly=True) as s:
        assert s.query(ChainBlock).count() == 0
    failing["on"] = False
    w.poll()  # recorded (no pending cap here: credited at 3 confirmations)
    assert w._tracer.method == TRACE_METHODS[0] and _state_at(tx, -2) == "seen"


def test_a_block_is_not_stored_without_its_own_traces(env) -> None:  # noqa: ANN001
    """trace_block takes a number: a backend that has no such block yet answers [] (anvil
    does), another fork's traces name another block hash. Either way the block waits
    (nothing stored past it) until the node gives that block's own traces."""
    addr = addresses.deposit_address("p-trace-lag")
    fwd = _forwarder(env)
    start = env.mine(1)  # an empty block: no traces asked for
    tx = _mined(env, fwd.functions.forward([addr]).transact(
        {"from": env.accounts[1], "value": ETH // 1000}))
    stale = {"answer": []}

    def lagging(method: str, params: Any) -> list | None:
        return stale["answer"] if method == "trace_block" else None

    w3 = Web3(_Backend(env.url, lagging))
    w = Watcher(w3, chain_assets(w3, {}), confirmations=3, pending_cap={"ETH": 10 * GWEI},
                dust={}, start_block=start, traces="trace_block")
    other = {"blockHash": "0x" + "11" * 32, "transactionHash": tx, "traceAddress": [],
             "type": "call", "action": {"callType": "call", "value": "0x0"}}
    for answer in ([], [other]):
        stale["answer"] = answer
        res = w.poll()
        assert res.tip == start and res.deposits == 0  # the block before it only
    stale["answer"] = None
    res = w.poll()
    assert res.tip == env.w3.eth.block_number and _state_at(tx, -2) == "pending"
    assert _balance("p-trace-lag", "ETH") == 1_000_000
