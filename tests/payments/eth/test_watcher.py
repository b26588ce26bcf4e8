"""The deposit watcher against a real anvil node: pending then available, reorgs, catch-up
after downtime, dust, the pending cap, a reversed deposit that was already spent."""

from __future__ import annotations

import time

import pytest
from web3 import Web3

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger
from casino_app.payments.eth import addresses
from casino_app.payments.eth.watch_models import ChainBlock, ChainDeposit, PlayerHold
from casino_app.payments.eth.watcher import Watcher, chain_assets, withdrawable
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
