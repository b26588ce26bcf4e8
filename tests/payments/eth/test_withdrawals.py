"""Ethereum withdrawals on a real anvil node: requests validated and reserved, batches paid
in one BatchPay transaction per currency (ETH, USDT without a return value, USDC), crashes
before and after the broadcast, a reverted batch requeued, a fee bump, recipients that
refuse when mined, node errors while estimating, a used nonce without a receipt; the
ledger's invariants hold after each test (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from eth_utils import keccak
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select
from web3 import HTTPProvider, Web3
from web3.exceptions import TransactionNotFound

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender, withdrawals
from casino_app.payments.eth import addresses, batcher, keys
from casino_app.payments.eth.batcher import Batcher
from casino_app.payments.eth.chain import ZERO_ADDRESS
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.models import PendingTransfer
from casino_app.payments.signer import eth as signer_eth
from casino_app.payments.signer.seed import account_xpub
from casino_app.payments.withdrawal_models import (
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)
from tests.payments.eth.helpers import balance as _balance
from tests.payments.eth.helpers import fresh_address as _fresh
from tests.payments.eth.helpers import fund as _fund
from tests.payments.eth.helpers import invariants_clean as _invariants_clean
from tests.payments.eth.helpers import switch_recipient
from tests.support.services import ANVIL_MNEMONIC

pytestmark = pytest.mark.ethereum

GWEI = 10**9
ETH_FEE = 50_000        # gwei per ETH withdrawal
TOKEN_FEE = 1_000_000   # 1 USDT / USDC


class Crash(Exception):
    """A simulated process death at a fault point."""


@pytest.fixture
def env(any_env: str, devnet, chain_state, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Fresh ledger, fresh chain state; anvil's mnemonic as the hot seed; the hot wallet
    (m/44'/60'/0'/1/0) funded with 100 ETH by anvil account 0 and 10,000 USDT and USDC
    minted by the devnet deployer."""
    anvil = chain_state
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", ANVIL_MNEMONIC)
    monkeypatch.setenv("CASINO_ETH_RPC_URL", anvil.url)
    monkeypatch.setenv("CASINO_ETH_TOKENS", f"USDT:{devnet['USDT']},USDC:{devnet['USDC']}")
    monkeypatch.setenv("CASINO_ETH_BATCH_CONTRACT", devnet["batch"])
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_MIN", "ETH:100000,USDT:5000000,USDC:5000000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_MAX",
                       "ETH:5000000000,USDT:10000000000,USDC:10000000000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_FEE",
                       f"ETH:{ETH_FEE},USDT:{TOKEN_FEE},USDC:{TOKEN_FEE}")
    reset_settings_cache()
    signer_eth.forget()
    monkeypatch.setattr(sender, "fault", None)
    hot = signer_eth.hot_address()
    w3 = anvil.w3
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": anvil.accounts[0], "to": hot, "value": 100 * 10**18}))
    for code in ("USDT", "USDC"):
        token = w3.eth.contract(address=devnet[code], abi=devnet["abi"][code])
        w3.eth.wait_for_transaction_receipt(token.functions.mint(hot, 10_000 * 10**6)
                                            .transact({"from": anvil.accounts[0]}))
    yield anvil
    anvil.automine(True)
    reset_settings_cache()
    signer_eth.forget()


class _Batcher(Batcher):
    """The batcher, each run followed by anvil's automine (see Anvil.wait_mined)."""

    anvil = None

    def run(self):  # noqa: ANN201
        try:
            return super().run()
        finally:
            self.anvil.wait_mined()


def _batcher(anvil, devnet, **kw) -> Batcher:  # noqa: ANN001
    kw.setdefault("confirmations", 1)
    kw.setdefault("fee_bump_seconds", 3600)
    b = _Batcher(anvil.w3, devnet["batch"], {"USDT": devnet["USDT"], "USDC": devnet["USDC"]},
                 **kw)
    b.anvil = anvil
    return b


def _run_until_idle(b: Batcher, rounds: int = 6) -> None:
    for _ in range(rounds):
        b.run()
        with ledger_tx(readonly=True) as s:
            busy = s.execute(select(func.count()).select_from(WithdrawalBatch).where(
                WithdrawalBatch.state.in_(("signed", "sent")))).scalar_one()
            queued = s.execute(select(func.count()).select_from(Withdrawal).where(
                Withdrawal.state == "queued")).scalar_one()
        if not busy and not queued:
            return
    raise AssertionError("the batcher did not finish")


def _token_balance(anvil, devnet, code: str, addr: str) -> int:  # noqa: ANN001
    token = anvil.w3.eth.contract(address=devnet[code], abi=devnet["abi"][code])
    return token.functions.balanceOf(addr).call()


def _batches() -> list[WithdrawalBatch]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(WithdrawalBatch).order_by(WithdrawalBatch.id)).scalars().all()
        s.expunge_all()
        return list(rows)


def _versions(batch_id: int) -> list[WithdrawalBatchTx]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(WithdrawalBatchTx).where(
            WithdrawalBatchTx.batch_id == batch_id).order_by(WithdrawalBatchTx.version)
        ).scalars().all()
        s.expunge_all()
        return list(rows)


# --- requests ---------------------------------------------------------------------------

def test_refused_requests_change_nothing(env, devnet) -> None:  # noqa: ANN001
    _fund("p-val", "ETH", 10_000_000)
    _fund("p-val", "USDT", 50_000_000)
    good = _fresh()
    w = withdrawals.request_withdrawal("p-val", "ETH", "0.001", good, "k-first")
    assert (w.amount, w.fee, w.state, w.replayed) == (1_000_000, ETH_FEE, "queued", False)
    before = (_balance("p-val", "ETH"), _balance("p-val", "USDT"))

    def count() -> tuple[int, int]:
        with ledger_tx(readonly=True) as s:
            return (s.execute(select(func.count()).select_from(Withdrawal)).scalar_one(),
                    s.execute(select(func.count()).select_from(PendingTransfer)).scalar_one())

    rows_before = count()
    wrong_case = good[:2] + "".join(c.swapcase() if c.isalpha() else c for c in good[2:])
    deposit = addresses.deposit_address("p-other")
    cases = [
        (("BTC", "0.001", good), withdrawals.UnsupportedCurrency, "BTC withdrawals"),
        (("DOGE", "1", good), withdrawals.UnsupportedCurrency, "not available"),
        (("ETH", "0.001", wrong_case), withdrawals.InvalidAddress, "wrong checksum"),
        (("ETH", "0.001", "0x1234"), withdrawals.InvalidAddress, "40 hex"),
        (("ETH", "0.001", ZERO_ADDRESS), withdrawals.InvalidAddress, "zero"),
        (("ETH", "0.001", deposit), withdrawals.InvalidAddress, "casino's own"),
        (("ETH", "0.001", deposit.lower()), withdrawals.InvalidAddress, "casino's own"),
        (("ETH", "0.001", keys.hot_wallet_address()), withdrawals.InvalidAddress, "own"),
        (("ETH", "0.001", devnet["batch"]), withdrawals.InvalidAddress, "own"),
        (("USDT", "10", devnet["USDT"]), withdrawals.InvalidAddress, "own"),
        (("ETH", "0.00001", good), withdrawals.InvalidAmount, "smallest withdrawal is 0.000100 ETH"),
        (("ETH", "6", good), withdrawals.InvalidAmount, "largest withdrawal is 5.000000 ETH"),
        (("ETH", "0.0000000001", good), withdrawals.InvalidAmount, "at most 9 decimals"),
        (("ETH", "-1", good), withdrawals.InvalidAmount, "positive"),
        # a comma is never a thousands separator: "0,001" is not 1 ETH
        *[(("ETH", text, good), withdrawals.InvalidAmount, "Use a dot for decimals")
          for text in ("0,001", "1,000", "1.000,50", "1 000", "1_000")],
        (("ETH", 0, good), withdrawals.InvalidAmount, "positive"),
        (("ETH", "0.009", good), withdrawals.InsufficientBalance, "withdrawable"),
        (("USDT", "49.5", good), withdrawals.InsufficientBalance, "withdrawable"),
        (("USDC", "10", good), withdrawals.InsufficientBalance, "withdrawable"),
    ]
    for i, ((code, amount, addr), exc, text) in enumerate(cases):
        with pytest.raises(exc, match=text):
            withdrawals.request_withdrawal("p-val", code, amount, addr, f"k-bad-{i}")
    # the same key with other values is refused; with the same values it is the first answer
    with pytest.raises(withdrawals.KeyReused):
        withdrawals.request_withdrawal("p-val", "ETH", "0.002", good, "k-first")
    with pytest.raises(withdrawals.KeyReused):
        withdrawals.request_withdrawal("p-other", "ETH", "0.001", good, "k-first")
    again = withdrawals.request_withdrawal("p-val", "ETH", 1_000_000, good.lower(), "k-first")
    assert again.id == w.id and again.replayed
    # an open hold blocks withdrawals
    with ledger_tx() as s:
        s.add(PlayerHold(player_id="p-val", reason="deposit_reversed", detail="test"))
    with pytest.raises(withdrawals.AccountOnHold):
        withdrawals.request_withdrawal("p-val", "ETH", "0.001", good, "k-hold")
    assert (_balance("p-val", "ETH"), _balance("p-val", "USDT")) == before
    assert count() == rows_before
    assert before[0].reserved == 1_000_000 + ETH_FEE
    assert [v.id for v in withdrawals.withdrawals_of("p-val")] == [w.id]
    for exc_type in (withdrawals.InvalidAmount, withdrawals.KeyReused,
                     withdrawals.AccountOnHold, withdrawals.InsufficientBalance):
        assert issubclass(exc_type, withdrawals.WithdrawalRefused)
    _invariants_clean()


def test_unconfirmed_deposits_are_not_withdrawable(env) -> None:  # noqa: ANN001
    from casino_app.payments.deposit_models import ChainDeposit

    _fund("p-unconf", "ETH", 3_000_000)
    with ledger_tx() as s:  # 2,000,000 of it is a deposit at 1 confirmation
        s.add(ChainDeposit(chain="ethereum", tx_hash="0x" + "ab" * 32, log_index=-1,
                           block_number=1, block_hash="0x" + "cd" * 32, currency="ETH",
                           address=_fresh(), sender=_fresh(), player_id="p-unconf",
                           amount_raw=str(2 * 10**15), amount=2_000_000, state="pending",
                           credits=1, owed=0))
    with pytest.raises(withdrawals.InsufficientBalance):
        withdrawals.request_withdrawal("p-unconf", "ETH", "0.001", _fresh(), "k-u1")
    w = withdrawals.request_withdrawal("p-unconf", "ETH", "0.0009", _fresh(), "k-u2")
    assert w.total == 950_000


# --- batches --------------------------------------------------------------------------------

def test_twenty_eth_withdrawals_are_paid_in_one_transaction(env, devnet) -> None:  # noqa: ANN001
    players = [f"p-b{i}" for i in range(4)]
    for p in players:
        _fund(p, "ETH", 100_000_000)
    wanted, owner = {}, {}
    for i in range(20):
        to = _fresh()
        amount = 100_000 + i * 1_234_567  # gwei, all different
        w = withdrawals.request_withdrawal(players[i % 4], "ETH", amount, to, f"k-20-{i}")
        wanted[w.id] = (to, amount)
        owner[w.id] = players[i % 4]
    b = _batcher(env, devnet)
    res = b.run()
    assert (res.created, res.broadcast) == (1, 1)
    _run_until_idle(b)
    [batch] = _batches()
    assert (batch.kind, batch.state, batch.currency) == ("pay", "confirmed", "ETH")
    assert batch.total == sum(a for _, a in wanted.values())
    receipt = env.w3.eth.get_transaction_receipt(batch.tx_hash)
    assert receipt["status"] == 1
    paid = b.contract.events.Paid().process_receipt(receipt)
    assert sorted((e["args"]["ref"], e["args"]["to"], e["args"]["amount"]) for e in paid) == \
        sorted((wid, to, a * GWEI) for wid, (to, a) in wanted.items())
    for to, amount in wanted.values():
        assert env.w3.eth.get_balance(to) == amount * GWEI
    with ledger_tx(readonly=True) as s:
        states = {w.state for w in s.query(Withdrawal)}
        assert states == {"confirmed"}
        fees = ledger.balance_of(s, ledger.house_account(s, "ETH", "fees")).balance
        gas_gwei = -(-int(batch.gas_fee_wei) // GWEI)
        assert fees == 20 * ETH_FEE - gas_gwei
        # one ETH transaction from the hot wallet: nonce 0 (the funding did not use it)
        assert batch.nonce == 0 and env.w3.eth.get_transaction_count(b.hot) == 1
    for p in players:
        mine = [a for wid, (_, a) in wanted.items() if owner[wid] == p]
        bal = _balance(p, "ETH")
        assert (bal.balance, bal.reserved) == (100_000_000 - sum(mine) - len(mine) * ETH_FEE, 0)
    assert all(v.state == "confirmed" and v.tx_hash == batch.tx_hash
               for v in withdrawals.withdrawals_of(players[0]))
    with ledger_tx(readonly=True) as s:  # raw transactions are dropped once final
        assert s.execute(select(WithdrawalBatchTx.raw_tx)).scalars().all() == [None]
    _invariants_clean()


def test_usdt_and_usdc_batches(env, devnet) -> None:  # noqa: ANN001
    _fund("p-tok", "USDT", 500_000_000)
    _fund("p-tok", "USDC", 500_000_000)
    wanted = []
    for i, code in enumerate(["USDT", "USDT", "USDT", "USDC", "USDC"]):
        to, amount = _fresh(), 10_000_000 + i * 1_000_001
        withdrawals.request_withdrawal("p-tok", code, amount, to, f"k-tok-{i}")
        wanted.append((code, to, amount))
    b = _batcher(env, devnet)
    res = b.run()
    assert res.created == 2  # the two approvals first
    _run_until_idle(b)
    batches = _batches()
    assert sorted((x.kind, x.currency, x.state) for x in batches) == [
        ("approve", "USDC", "confirmed"), ("approve", "USDT", "confirmed"),
        ("pay", "USDC", "confirmed"), ("pay", "USDT", "confirmed")]
    assert sorted(x.nonce for x in batches) == [0, 1, 2, 3]
    for code, to, amount in wanted:
        assert _token_balance(env, devnet, code, to) == amount
    bal = _balance("p-tok", "USDT")
    assert (bal.balance, bal.reserved) == (
        500_000_000 - sum(a for c, _, a in wanted if c == "USDT") - 3 * TOKEN_FEE, 0)
    # a second round needs no new approval
    withdrawals.request_withdrawal("p-tok", "USDT", 7_000_000, _fresh(), "k-tok-again")
    b.run()
    _run_until_idle(b)
    assert [x.kind for x in _batches()].count("approve") == 2
    _invariants_clean()


def _crash_at(env, devnet, point: str) -> None:  # noqa: ANN001
    """One batcher run that crashes at ``point`` ("signed": recorded, not broadcast;
    "broadcast": sent, not recorded as sent)."""
    def die(at: str, batch_id: int) -> None:
        if at == point:
            raise Crash(at)

    sender.fault = die
    try:
        with pytest.raises(Crash):
            _batcher(env, devnet).run()
    finally:
        sender.fault = None


def test_crash_after_recording_before_broadcast_sends_the_same_tx(env, devnet) -> None:  # noqa: ANN001
    _fund("p-crash", "ETH", 50_000_000)
    tos = [_fresh() for _ in range(3)]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-crash", "ETH", 1_000_000 * (i + 1), to, f"k-c{i}")
    _crash_at(env, devnet, "signed")
    [batch] = _batches()
    [v0] = _versions(batch.id)
    assert batch.state == "signed" and v0.raw_tx
    with pytest.raises(TransactionNotFound):
        env.w3.eth.get_transaction(v0.tx_hash)  # never broadcast
    assert all(env.w3.eth.get_balance(t) == 0 for t in tos)
    restarted = _batcher(env, devnet)  # a new process
    res = restarted.run()
    assert res.rebroadcast == 1 and res.created == 0
    _run_until_idle(restarted)
    [batch] = _batches()
    assert batch.state == "confirmed" and batch.tx_hash == v0.tx_hash  # the same signed tx
    assert len(_versions(batch.id)) == 1
    assert [env.w3.eth.get_balance(t) for t in tos] == [i * 10**15 for i in (1, 2, 3)]
    assert env.w3.eth.get_transaction_count(restarted.hot) == 1
    for _ in range(2):  # more runs change nothing
        restarted.run()
    assert _balance("p-crash", "ETH") == ledger.Balance(
        "ETH", 50_000_000 - 6_000_000 - 3 * ETH_FEE, 0)
    _invariants_clean()


def test_crash_after_broadcast_before_recording_settles_once(env, devnet) -> None:  # noqa: ANN001
    _fund("p-crash2", "USDC", 100_000_000)
    to = _fresh()
    withdrawals.request_withdrawal("p-crash2", "USDC", "12.5", to, "k-c2")
    _batcher(env, devnet).run()  # the approval
    _crash_at(env, devnet, "broadcast")  # the next run settles it, then pays
    pay = [x for x in _batches() if x.kind == "pay"][0]
    assert pay.state == "signed"  # broadcast (and mined), not recorded as sent
    assert _token_balance(env, devnet, "USDC", to) == 12_500_000
    restarted = _batcher(env, devnet)
    res = restarted.run()
    assert res.confirmed == 1 and res.paid == 1 and res.rebroadcast == 0
    restarted.run()
    assert _token_balance(env, devnet, "USDC", to) == 12_500_000
    assert _balance("p-crash2", "USDC") == ledger.Balance(
        "USDC", 100_000_000 - 12_500_000 - TOKEN_FEE, 0)
    _invariants_clean()


def _zero_usdt_balance(anvil, devnet, holder: str) -> None:  # noqa: ANN001
    """Cheat: empty ``holder``'s USDT (TetherToken's balanceOf mapping is slot 4)."""
    slot = keccak(bytes(12) + bytes.fromhex(holder[2:]) + (4).to_bytes(32, "big"))
    anvil.rpc("anvil_setStorageAt", [devnet["USDT"], Web3.to_hex(slot), "0x" + "00" * 32])
    assert _token_balance(anvil, devnet, "USDT", holder) == 0


def _mint_usdt(anvil, devnet, to: str, amount: int) -> None:  # noqa: ANN001
    token = anvil.w3.eth.contract(address=devnet["USDT"], abi=devnet["abi"]["USDT"])
    anvil.w3.eth.wait_for_transaction_receipt(
        token.functions.mint(to, amount).transact({"from": anvil.accounts[0]}))


def test_reverted_batch_requeues_and_a_repeated_revert_fails_alone(env, devnet) -> None:  # noqa: ANN001
    """A batch that reverts (status 0) queues its withdrawals again with their reservations;
    one that was in a reverted batch before is paid alone after the second revert, and
    fails (voided) only when it reverts alone; the others are paid."""
    _fund("p-fail", "USDT", 100_000_000)
    tos = [_fresh(), _fresh()]
    ids = [withdrawals.request_withdrawal("p-fail", "USDT", 20_000_000, to, f"k-f{i}").id
           for i, to in enumerate(tos)]
    assert _balance("p-fail", "USDT").reserved == 2 * (20_000_000 + TOKEN_FEE)
    b = _batcher(env, devnet)
    b.run()  # approval

    def drain(point: str, batch_id: int) -> None:  # the tokens leave after signing
        if point == "signed":
            _zero_usdt_balance(env, devnet, b.hot)

    sender.fault = drain
    res = b.run()
    sender.fault = None
    assert res.created == 1 and res.broadcast == 1
    res = b.run()
    assert (res.failed, res.voided, res.requeued) == (1, 0, 2)
    pay = [x for x in _batches() if x.kind == "pay"][0]
    assert pay.state == "failed" and pay.failure == "the transaction reverted"
    assert env.w3.eth.get_transaction_receipt(pay.tx_hash)["status"] == 0
    assert _balance("p-fail", "USDT") == ledger.Balance(
        "USDT", 100_000_000, 2 * (20_000_000 + TOKEN_FEE))  # still reserved
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(Withdrawal).order_by(Withdrawal.id)).scalars().all()
        assert [(w.state, w.reverts, w.reverted_batch_id, w.batch_id) for w in rows] == \
            [("queued", 1, pay.id, None)] * 2
        assert ledger.balance_of(s, ledger.house_account(s, "ETH", "fees")).balance < 0
    assert all(_token_balance(env, devnet, "USDT", t) == 0 for t in tos)
    # with the hot wallet short of tokens, the queue waits (no transaction)
    third = withdrawals.request_withdrawal("p-fail", "USDT", 20_000_000, _fresh(), "k-f-later")
    assert b.run().created == 0
    # refilled, and reverting again: all queued again; the first two were there before
    _mint_usdt(env, devnet, b.hot, 1_000 * 10**6)
    sender.fault = drain
    assert b.run().created == 1
    sender.fault = None
    assert b.run().requeued == 3
    # the oldest repeat goes alone, reverts alone: it fails, its reservation voided
    _mint_usdt(env, devnet, b.hot, 1_000 * 10**6)
    sender.fault = drain
    assert b.run().created == 1
    sender.fault = None
    res = b.run()
    assert (res.failed, res.voided, res.requeued) == (1, 1, 0)
    # the rest is paid: the other repeat alone, then the third
    _mint_usdt(env, devnet, b.hot, 1_000 * 10**6)
    _run_until_idle(b)
    states = {v.id: (v.state, v.failure) for v in withdrawals.withdrawals_of("p-fail")}
    assert states == {ids[0]: ("failed", "the transaction reverted"),
                      ids[1]: ("confirmed", None), third.id: ("confirmed", None)}
    assert _token_balance(env, devnet, "USDT", tos[1]) == 20_000_000
    assert [len(_pay_refs(b, x)) for x in _batches() if x.kind == "pay"] == [2, 3, 1, 1, 1]
    assert _balance("p-fail", "USDT") == ledger.Balance(
        "USDT", 100_000_000 - 2 * (20_000_000 + TOKEN_FEE), 0)
    _invariants_clean()


def _pay_refs(b: Batcher, batch: WithdrawalBatch) -> list[int]:
    """The withdrawal ids a recorded BatchPay call pays."""
    fn, args = b.contract.decode_function_input(batch.call_data)
    return list(args["refs"])


def test_fee_bump_on_a_stuck_transaction_pays_once(env, devnet) -> None:  # noqa: ANN001
    _fund("p-bump", "ETH", 50_000_000)
    tos = [_fresh(), _fresh()]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-bump", "ETH", 2_000_000, to, f"k-bump-{i}")
    env.automine(False)
    b = _batcher(env, devnet, fee_bump_seconds=0)
    assert b.run().broadcast == 1
    res = b.run()  # not mined: bumped
    assert res.bumped == 1
    [batch] = _batches()
    v0, v1 = _versions(batch.id)
    assert v1.max_fee_per_gas >= v0.max_fee_per_gas * 9 // 8
    assert v1.max_priority_fee_per_gas >= v0.max_priority_fee_per_gas * 9 // 8
    env.mine(1)
    env.automine(True)
    _run_until_idle(_batcher(env, devnet))
    [batch] = _batches()
    assert batch.state == "confirmed" and batch.tx_hash == v1.tx_hash
    with pytest.raises(TransactionNotFound):
        env.w3.eth.get_transaction_receipt(v0.tx_hash)
    assert [env.w3.eth.get_balance(t) for t in tos] == [2 * 10**15, 2 * 10**15]
    assert env.w3.eth.get_transaction_count(b.hot) == 1
    assert _balance("p-bump", "ETH") == ledger.Balance(
        "ETH", 50_000_000 - 2 * (2_000_000 + ETH_FEE), 0)
    _invariants_clean()


def test_an_address_that_refuses_payment_fails_alone(env, devnet) -> None:  # noqa: ANN001
    # The USDT contract has no receive function: paying ether to it reverts.
    _fund("p-ref", "ETH", 50_000_000)
    good = _fresh()
    withdrawals.request_withdrawal("p-ref", "ETH", 1_000_000, good, "k-ref-1")
    with ledger_tx() as s:  # bypass the request's own-address check for the test
        w = s.execute(select(Withdrawal)).scalar_one()
        refuser = Withdrawal(key="k-ref-2", player_id="p-ref", chain="ethereum",
                             currency="ETH", amount=1_000_000, fee=0, address=devnet["USDC"],
                             state="queued")
        s.add(refuser)
        s.flush()
        ledger.reserve(s, f"withdrawal:{refuser.id}", "withdrawal",
                       ledger.player_account(s, "p-ref", "ETH"),
                       ledger.house_account(s, "ETH", "custody"), 1_000_000)
        assert w.id < refuser.id
    b = _batcher(env, devnet)
    res = b.run()
    assert res.created == 1  # one batch for both: BatchPay refuses it on chain alone
    _run_until_idle(b)
    assert env.w3.eth.get_balance(good) == 10**15
    states = {v.address: (v.state, v.failure) for v in withdrawals.withdrawals_of("p-ref")}
    assert states[devnet["USDC"]] == ("failed", "the address refused the payment")
    assert states[good][0] == "confirmed"
    # alone, it would pay nobody (BatchPay reverts): it fails before any transaction
    with ledger_tx() as s:
        again = Withdrawal(key="k-ref-3", player_id="p-ref", chain="ethereum",
                           currency="ETH", amount=1_000_000, fee=0, address=devnet["USDC"],
                           state="queued")
        s.add(again)
        s.flush()
        ledger.reserve(s, f"withdrawal:{again.id}", "withdrawal",
                       ledger.player_account(s, "p-ref", "ETH"),
                       ledger.house_account(s, "ETH", "custody"), 1_000_000)
    res = b.run()
    assert (res.created, res.voided) == (0, 1)
    assert _balance("p-ref", "ETH") == ledger.Balance("ETH", 50_000_000 - 1_000_000 - ETH_FEE, 0)
    _invariants_clean()


def _on_signed(action: Callable[[], None]) -> Callable[[str, int], None]:
    """A fault hook that runs ``action`` once the batch is recorded, before its broadcast
    (the chain changes between the estimate and the mining)."""
    def hook(point: str, batch_id: int) -> None:
        if point == "signed":
            action()
    return hook


def test_a_recipient_that_reverts_when_mined_fails_alone(env, devnet) -> None:  # noqa: ANN001
    """A contract that accepted at the estimate and reverts when mined: BatchPay refuses it
    (Refused log, its ether back to the hot wallet) and pays the others, a Safe among them
    (its receive fits the stipend); the refused one fails with its reservation voided."""
    _fund("p-sw", "ETH", 50_000_000)
    switch, turn = switch_recipient(env)
    good = [_fresh(), devnet["safe"]]
    amounts = {good[0]: 1_000_000, switch: 2_000_000, good[1]: 3_000_000}
    for i, (to, amount) in enumerate(amounts.items()):
        withdrawals.request_withdrawal("p-sw", "ETH", amount, to, f"k-sw-{i}")
    b = _batcher(env, devnet)
    hot_before = env.w3.eth.get_balance(b.hot)
    safe_before = env.w3.eth.get_balance(devnet["safe"])
    sender.fault = _on_signed(turn)
    assert b.run().broadcast == 1
    sender.fault = None
    res = b.run()
    assert (res.confirmed, res.paid, res.voided) == (1, 2, 1)
    [batch] = _batches()
    receipt = env.w3.eth.get_transaction_receipt(batch.tx_hash)
    assert receipt["status"] == 1
    [refused] = b.contract.events.Refused().process_receipt(receipt)
    assert (refused["args"]["to"], refused["args"]["amount"]) == (switch, 2_000_000 * GWEI)
    assert env.w3.eth.get_balance(switch) == 0
    assert env.w3.eth.get_balance(good[0]) == 1_000_000 * GWEI
    assert env.w3.eth.get_balance(devnet["safe"]) - safe_before == 3_000_000 * GWEI
    gas = int(batch.gas_fee_wei)
    assert hot_before - env.w3.eth.get_balance(b.hot) == 4_000_000 * GWEI + gas
    assert batch.state == "confirmed" and batch.total == 4_000_000  # what was paid
    states = {v.address: (v.state, v.failure) for v in withdrawals.withdrawals_of("p-sw")}
    assert states == {good[0]: ("confirmed", None), good[1]: ("confirmed", None),
                      switch: ("failed", "the address refused the payment")}
    assert _balance("p-sw", "ETH") == ledger.Balance(
        "ETH", 50_000_000 - 4_000_000 - 2 * ETH_FEE, 0)
    _invariants_clean()


def test_a_token_recipient_blacklisted_before_mining_fails_alone(env, devnet) -> None:  # noqa: ANN001
    _fund("p-bl", "USDC", 100_000_000)
    tos = [_fresh(), _fresh(), _fresh()]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-bl", "USDC", 10_000_000 * (i + 1), to, f"k-bl-{i}")
    b = _batcher(env, devnet)
    b.run()  # approval
    usdc = env.w3.eth.contract(address=devnet["USDC"], abi=devnet["abi"]["USDC"])
    before = _token_balance(env, devnet, "USDC", b.hot)

    def blacklist() -> None:
        env.w3.eth.wait_for_transaction_receipt(usdc.functions.setBlocked(tos[1], True)
                                                .transact({"from": env.accounts[0]}))

    sender.fault = _on_signed(blacklist)
    assert b.run().broadcast == 1
    sender.fault = None
    res = b.run()
    assert (res.confirmed, res.paid, res.voided) == (1, 2, 1)
    assert [_token_balance(env, devnet, "USDC", t) for t in tos] == [10_000_000, 0, 30_000_000]
    assert before - _token_balance(env, devnet, "USDC", b.hot) == 40_000_000
    states = [(v.state, v.failure) for v in reversed(withdrawals.withdrawals_of("p-bl"))]
    assert states == [("confirmed", None), ("failed", "the address refused the payment"),
                      ("confirmed", None)]
    assert _balance("p-bl", "USDC") == ledger.Balance(
        "USDC", 100_000_000 - 40_000_000 - 2 * TOKEN_FEE, 0)
    _invariants_clean()


def test_when_everyone_refuses_only_the_oldest_fails_a_run(env, devnet) -> None:  # noqa: ANN001
    """Every USDC transfer from the hot wallet refuses (here the token blocks the hot
    wallet; a paused token looks the same): not every player's withdrawal fails at once
    with "the address refused the payment". One (the oldest) fails a run, with an alert;
    once the token lets transfers through, the rest are paid."""
    _fund("p-all", "USDC", 100_000_000)
    tos = [_fresh() for _ in range(3)]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-all", "USDC", 10_000_000, to, f"k-all-{i}")
    b = _batcher(env, devnet)
    b.run()  # approval
    usdc = env.w3.eth.contract(address=devnet["USDC"], abi=devnet["abi"]["USDC"])

    def block(on: bool) -> None:
        env.w3.eth.wait_for_transaction_receipt(usdc.functions.setBlocked(b.hot, on)
                                                .transact({"from": env.accounts[0]}))

    block(True)
    before = REGISTRY.get_sample_value("casino_eth_payment_anomalies_total",
                                       {"anomaly": "everyone_refused"}) or 0
    res = b.run()
    assert (res.created, res.voided) == (0, 1)
    assert REGISTRY.get_sample_value("casino_eth_payment_anomalies_total",
                                     {"anomaly": "everyone_refused"}) == before + 1
    assert [v.state for v in reversed(withdrawals.withdrawals_of("p-all"))] == \
        ["failed", "queued", "queued"]
    block(False)
    _run_until_idle(b)
    assert [v.state for v in reversed(withdrawals.withdrawals_of("p-all"))] == \
        ["failed", "confirmed", "confirmed"]
    assert [_token_balance(env, devnet, "USDC", t) for t in tos] == [0, 10_000_000, 10_000_000]
    _invariants_clean()


class _FlakyProvider(HTTPProvider):
    """A node whose gas estimates fail with a network error after the first ``ok_estimates``
    (``None``: all answered)."""

    ok_estimates: int | None = None

    def make_request(self, method, params):  # noqa: ANN001, ANN201
        if method == "eth_estimateGas" and self.ok_estimates is not None:
            if self.ok_estimates <= 0:
                raise requests.exceptions.ConnectionError("connection reset by peer")
            self.ok_estimates -= 1
        return super().make_request(method, params)


def test_a_node_error_during_the_estimates_fails_nobody(env, devnet) -> None:  # noqa: ANN001
    """Two withdrawals to contracts without a receive function: the batch would pay nobody
    and reverts at the estimate; the node then fails while each is tried alone. Nobody
    fails and nothing is sent; with the node back, each reverts alone and fails (one a
    run: when everyone refuses, only the oldest fails per run)."""
    _fund("p-net", "ETH", 50_000_000)
    with ledger_tx() as s:  # bypass the request's own-address check for the test
        for i, addr in enumerate((devnet["USDC"], devnet["USDT"])):
            w = Withdrawal(key=f"k-net-{i}", player_id="p-net", chain="ethereum",
                           currency="ETH", amount=1_000_000, fee=0, address=addr,
                           state="queued")
            s.add(w)
            s.flush()
            ledger.reserve(s, f"withdrawal:{w.id}", "withdrawal",
                           ledger.player_account(s, "p-net", "ETH"),
                           ledger.house_account(s, "ETH", "custody"), 1_000_000)
    provider = _FlakyProvider(env.url)
    b = Batcher(Web3(provider), devnet["batch"], {}, confirmations=1, fee_bump_seconds=3600)
    for ok in (0, 1, 2):  # the batch's estimate, the first alone, the second alone fail
        provider.ok_estimates = ok
        res = b.run()
        assert (res.created, res.voided) == (0, 0), ok
        assert {v.state for v in withdrawals.withdrawals_of("p-net")} == {"queued"}
    assert _balance("p-net", "ETH") == ledger.Balance("ETH", 50_000_000, 2_000_000)
    provider.ok_estimates = None
    res = b.run()  # both refuse: the oldest fails this run (everyone refusing is alerted)
    assert (res.created, res.voided) == (0, 1)
    res = b.run()  # the other, alone, refuses
    assert (res.created, res.voided) == (0, 1)
    assert {(v.state, v.failure) for v in withdrawals.withdrawals_of("p-net")} == \
        {("failed", "the address refused the payment")}
    assert _batches() == []
    _invariants_clean()


def test_a_used_nonce_without_receipt_settles_by_the_paid_logs(env, devnet) -> None:  # noqa: ANN001
    """The node answers no receipt for the recorded version (here: the database was
    restored from a backup taken before the fee bump that was mined), yet the nonce is
    used: the batch's Paid logs name the transaction, sent by the hot wallet with that
    nonce, and it settles as paid, long after the grace for voiding."""
    _fund("p-lost", "ETH", 50_000_000)
    tos = [_fresh(), _fresh()]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-lost", "ETH", 2_000_000, to, f"k-lost-{i}")
    env.automine(False)
    b = _batcher(env, devnet, fee_bump_seconds=0, void_after_blocks=3)
    assert b.run().broadcast == 1
    assert b.run().bumped == 1
    [batch] = _batches()
    v0, v1 = _versions(batch.id)
    env.mine(1)
    env.automine(True)
    assert env.w3.eth.get_transaction_receipt(v1.tx_hash)["status"] == 1
    with ledger_tx() as s:  # the backup knew only version 0
        s.execute(delete(WithdrawalBatchTx).where(WithdrawalBatchTx.id == v1.id))
    env.mine(10)  # the nonce was used far more than void_after_blocks ago
    res = _batcher(env, devnet, void_after_blocks=3).run()
    assert (res.confirmed, res.paid, res.voided, res.failed) == (1, 2, 0, 0)
    [batch] = _batches()
    assert batch.state == "confirmed" and batch.tx_hash == v1.tx_hash
    assert [env.w3.eth.get_balance(t) for t in tos] == [2 * 10**15] * 2
    assert {v.state for v in withdrawals.withdrawals_of("p-lost")} == {"confirmed"}
    assert _balance("p-lost", "ETH") == ledger.Balance(
        "ETH", 50_000_000 - 2 * (2_000_000 + ETH_FEE), 0)
    _invariants_clean()


class _LaggingReceipts(HTTPProvider):
    """A load-balanced node whose receipts come from a backend that has not seen the
    ``hidden`` transactions; everything else is answered by the synced node."""

    hidden: frozenset[str] = frozenset()

    def make_request(self, method, params):  # noqa: ANN001, ANN201
        response = super().make_request(method, params)
        if method == "eth_getTransactionReceipt" and str(params[0]).lower() in self.hidden:
            response = {**response, "result": None}
        return response


def test_a_paid_batch_whose_receipt_a_node_withholds_is_never_voided(env, devnet) -> None:  # noqa: ANN001
    """The receipts backend lags: no receipt for the mined batch while its nonce is used.
    Its Paid log names it, so it is never voided, however long past the grace: each run
    alerts; once a receipt is given it settles as paid."""
    _fund("p-lag", "ETH", 50_000_000)
    to = _fresh()
    w = withdrawals.request_withdrawal("p-lag", "ETH", 2_000_000, to, "k-lag")
    provider = _LaggingReceipts(env.url)
    b = Batcher(Web3(provider), devnet["batch"], {}, confirmations=1, fee_bump_seconds=3600,
                void_after_blocks=3)
    assert b.run().broadcast == 1  # mined at once
    [batch] = _batches()
    [v0] = _versions(batch.id)
    provider.hidden = frozenset({v0.tx_hash.lower()})
    for _ in range(3):
        env.mine(5)  # far past the grace
        res = b.run()
        assert (res.anomalies, res.failed, res.voided, res.confirmed) == (1, 0, 0, 0)
    assert withdrawals.get_withdrawal(w.id).state == "batched"
    assert _balance("p-lag", "ETH").reserved == 2_000_000 + ETH_FEE
    provider.hidden = frozenset()
    res = b.run()
    assert (res.confirmed, res.paid) == (1, 1)
    assert withdrawals.get_withdrawal(w.id).state == "confirmed"
    assert env.w3.eth.get_balance(to) == 2 * 10**15
    _invariants_clean()


def test_a_used_nonce_without_receipt_nor_paid_log_voids_only_after_the_grace(
        env, devnet) -> None:  # noqa: ANN001
    """The batch was recorded and never sent (a crash); its nonce was then used by another
    transaction of the hot wallet. With no receipt and no Paid log it is not voided at once:
    each run alerts until the nonce was used ``void_after_blocks`` below the confirmed
    depth; then it fails and the player gets the money back."""
    _fund("p-nonce", "ETH", 50_000_000)
    to = _fresh()
    withdrawals.request_withdrawal("p-nonce", "ETH", 2_000_000, to, "k-nonce")
    _crash_at(env, devnet, "signed")
    [batch] = _batches()
    raw, _ = signer_eth.sign_transaction({  # the operator sends something else
        "type": 2, "chainId": env.w3.eth.chain_id, "from": batch.from_address,
        "to": _fresh(), "value": 1, "gas": 21_000, "nonce": batch.nonce,
        "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI})
    env.w3.eth.wait_for_transaction_receipt(env.w3.eth.send_raw_transaction(raw))
    b = _batcher(env, devnet, void_after_blocks=5)
    alerts = REGISTRY.get_sample_value("casino_eth_payment_anomalies_total",
                                       {"anomaly": "nonce_used_no_receipt"}) or 0
    for _ in range(5):
        res = b.run()
        assert (res.anomalies, res.failed, res.voided) == (1, 0, 0)
        env.mine(1)
    assert REGISTRY.get_sample_value("casino_eth_payment_anomalies_total",
                                     {"anomaly": "nonce_used_no_receipt"}) == alerts + 5
    assert withdrawals.withdrawals_of("p-nonce")[0].state == "batched"
    assert _balance("p-nonce", "ETH").reserved == 2_000_000 + ETH_FEE
    res = b.run()
    assert (res.failed, res.voided) == (1, 1)
    [batch] = _batches()
    assert batch.state == "failed" and batch.failure == \
        "its nonce was used by another transaction"
    assert env.w3.eth.get_balance(to) == 0
    assert _balance("p-nonce", "ETH") == ledger.Balance("ETH", 50_000_000, 0)
    _invariants_clean()


def test_a_withdrawal_without_its_paid_log_is_left_for_staff(env, devnet) -> None:  # noqa: ANN001
    """A withdrawal is posted only when the receipt has its Paid log (ref, token, address,
    amount). One whose row no longer matches the call that was paid (here altered after
    signing) is an anomaly: alerted and left batched with its reservation; the other one
    of the batch is paid and the batch's total is what it paid."""
    _fund("p-anom", "ETH", 50_000_000)
    ids = [withdrawals.request_withdrawal("p-anom", "ETH", 1_000_000, _fresh(), f"k-an-{i}").id
           for i in range(2)]

    def alter() -> None:
        with ledger_tx() as s:
            s.get(Withdrawal, ids[1]).address = _fresh()

    before = REGISTRY.get_sample_value("casino_eth_payment_anomalies_total",
                                       {"anomaly": "no_paid_log"}) or 0
    b = _batcher(env, devnet)
    sender.fault = _on_signed(alter)
    assert b.run().broadcast == 1
    sender.fault = None
    res = b.run()
    assert (res.confirmed, res.paid, res.anomalies, res.voided) == (1, 1, 1, 0)
    assert REGISTRY.get_sample_value("casino_eth_payment_anomalies_total",
                                     {"anomaly": "no_paid_log"}) == before + 1
    assert [v.state for v in reversed(withdrawals.withdrawals_of("p-anom"))] == \
        ["confirmed", "batched"]
    [batch] = _batches()
    assert batch.state == "confirmed" and batch.total == 1_000_000
    assert _balance("p-anom", "ETH") == ledger.Balance(
        "ETH", 50_000_000 - 1_000_000 - ETH_FEE, 1_000_000 + ETH_FEE)
    b.run()  # nothing more happens to it
    assert withdrawals.get_withdrawal(ids[1]).state == "batched"
    _invariants_clean()


def test_the_web_side_does_not_import_the_signer() -> None:
    probe = ("import sys, casino_app.payments.withdrawals; "
             "print(sorted(m for m in sys.modules if m.startswith('casino_app.payments.signer')"
             " or m == 'casino_app.payments.eth.batcher'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip() == "[]"


def test_eth_batch_job_is_registered_with_a_node_and_pays(env, devnet,  # noqa: ANN001
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.jobs.builtin import builtin_jobs

    monkeypatch.setenv("CASINO_ETH_BATCH_SECONDS", "30")
    monkeypatch.setenv("CASINO_ETH_CONFIRMATIONS", "1")
    reset_settings_cache()
    jobs = {j.name: j for j in builtin_jobs()}
    assert jobs["eth-batch"].interval == 30
    monkeypatch.setattr(batcher, "_batcher", None)
    _fund("p-job", "ETH", 10_000_000)
    to = _fresh()
    withdrawals.request_withdrawal("p-job", "ETH", "0.003", to, "k-job")
    assert jobs["eth-batch"].func()["broadcast"] == 1
    env.wait_mined()
    assert jobs["eth-batch"].func()["paid"] == 1
    assert env.w3.eth.get_balance(to) == 3 * 10**15
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "")
    reset_settings_cache()
    assert "eth-batch" not in {j.name for j in builtin_jobs()}
    _invariants_clean()


def test_concurrent_requests_never_overdraw(any_env: str, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    import threading

    from casino_app.payments.signer.seed import account_xpub as xpub_of

    monkeypatch.setenv("CASINO_ETH_XPUB", xpub_of(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_FEE", "ETH:1000")
    reset_settings_cache()
    _fund("p-race", "ETH", 10_000_000)
    accepted, refused = [], []
    start = threading.Barrier(12)

    def ask(i: int) -> None:
        start.wait()
        try:
            accepted.append(withdrawals.request_withdrawal(
                "p-race", "ETH", 1_999_000, _fresh(), f"k-race-{i}"))
        except withdrawals.InsufficientBalance:
            refused.append(i)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 5 and len(refused) == 7  # 5 x 2,000,000 = the balance
    bal = _balance("p-race", "ETH")
    assert (bal.balance, bal.reserved) == (10_000_000, 10_000_000)
    _invariants_clean()


def test_large_withdrawals_wait_for_staff_and_can_be_rejected(
        any_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_LARGE", "ETH:5000000")
    reset_settings_cache()
    _fund("p-large", "ETH", 10_000_000)
    small = withdrawals.request_withdrawal("p-large", "ETH", 4_999_999, _fresh(), "k-l1")
    large = withdrawals.request_withdrawal("p-large", "ETH", 5_000_000, _fresh(), "k-l2")
    assert (small.state, large.state) == ("queued", "awaiting_approval")
    with pytest.raises(withdrawals.NotAwaitingApproval):
        withdrawals.reject_withdrawal(small.id, 7, "no")
    out = withdrawals.reject_withdrawal(large.id, 7, "source of funds unclear")
    assert out.state == "rejected"
    with pytest.raises(withdrawals.NotAwaitingApproval):
        withdrawals.reject_withdrawal(large.id, 8, "again")
    assert _balance("p-large", "ETH") == ledger.Balance("ETH", 10_000_000, 4_999_999)
    _invariants_clean()


def test_books_reconcile_with_the_chain_before_during_and_after_a_batch(env, devnet) -> None:  # noqa: ANN001
    """Reconciliation (payments/eth/reconcile) stays clean around a paid batch: while its
    transaction is mined but not yet settled (it has paid at the pinned block, except what
    BatchPay refused and sent back), once settled (gas booked rounded up to gwei: the
    sub-gwei rest stays on chain), and for a token batch whose gas is paid in ETH."""
    from casino_app.payments.eth.reconcile import reconcile
    from casino_app.payments.eth.watcher import Watcher, chain_assets

    w3 = env.w3
    hot = signer_eth.hot_address()
    tokens = {"USDT": devnet["USDT"], "USDC": devnet["USDC"]}
    assets = chain_assets(w3, tokens)
    watcher = Watcher(w3, assets, confirmations=1, start_block=w3.eth.block_number)
    with ledger_tx() as s:  # the fixture's funding of the hot wallet, as the operator's
        for code, amount in (("ETH", 100 * GWEI), ("USDT", 10_000 * 10**6),
                             ("USDC", 10_000 * 10**6)):
            ledger.transfer(s, f"capital:{code}", "capital",
                            ledger.house_account(s, code, "custody"),
                            ledger.house_account(s, code, "bankroll"), amount)
            ledger.transfer(s, f"win:{code}", "adjustment",
                            ledger.house_account(s, code, "bankroll"),
                            ledger.player_account(s, "p-rec", code), amount // 100)

    def clean() -> None:
        watcher.poll()
        res = reconcile(w3, assets, [hot])
        assert res.clean, [(i.kind, i.detail) for i in res.issues]

    clean()
    withdrawals.request_withdrawal("p-rec", "ETH", 200_000, _fresh(), "k-rec-eth")
    withdrawals.request_withdrawal("p-rec", "USDT", 7_000_000, _fresh(), "k-rec-usdt")
    switch, turn = switch_recipient(env)
    withdrawals.request_withdrawal("p-rec", "ETH", 300_000, switch, "k-rec-refused")
    b = _batcher(env, devnet, confirmations=3)
    sender.fault = _on_signed(turn)  # the switch refuses once the ETH batch is signed
    b.run()  # approve (USDT) and the ETH batch are mined, not settled (3 confirmations)
    sender.fault = None
    clean()
    for _ in range(12):
        env.mine(1)
        b.run()
    with ledger_tx(readonly=True) as s:
        assert sorted((w.address == switch, w.state) for w in s.query(Withdrawal)) == [
            (False, "confirmed"), (False, "confirmed"), (True, "failed")]
    clean()
    _invariants_clean()
