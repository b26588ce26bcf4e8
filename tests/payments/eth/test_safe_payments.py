"""Large withdrawals and hot-wallet refills paid by the cold Safe (2 of 3 owners) on a real
anvil node: two admins approve with two owner signatures made outside the server, the
hot wallet sends execTransaction as a recorded transaction the batcher broadcasts and
settles; one approval is not enough, the same admin or owner twice and non-owners are
refused, a crash after recording pays once, a rejection cancels the payment. The ledger's
invariants hold after each test (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hexbytes import HexBytes
from sqlalchemy import select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender, withdrawals
from casino_app.payments.eth import chain, safe_exec, safe_payments
from casino_app.payments.eth.batcher import Batcher
from casino_app.payments.eth.safe_exec import SafeExecutor
from casino_app.payments.eth.safe_models import SafePayment
from casino_app.payments.signer import eth as signer_eth
from casino_app.payments.signer.seed import account_xpub
from casino_app.payments.withdrawal_models import Withdrawal, WithdrawalBatch
from tests.payments.eth.helpers import balance as _balance
from tests.payments.eth.helpers import fresh_address as _fresh
from tests.payments.eth.helpers import fund as _fund
from tests.payments.eth.helpers import invariants_clean as _invariants_clean
from tests.payments.eth.helpers import switch_recipient
from tests.support.services import ANVIL_MNEMONIC

pytestmark = pytest.mark.ethereum

GWEI = 10**9
ETH_FEE = 50_000
TOKEN_FEE = 1_000_000
LARGE_ETH = 5_000_000            # 0.005 ETH and more: two approvals, paid by the Safe
ADMIN_A, ADMIN_B, ADMIN_C = 11, 12, 13


class Crash(Exception):
    pass


@pytest.fixture
def env(any_env: str, devnet, chain_state, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Fresh ledger and chain; the hot wallet holds 1 ETH for gas; the Safe holds 10 ETH
    and 10,000 USDT."""
    anvil = chain_state
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", ANVIL_MNEMONIC)
    monkeypatch.setenv("CASINO_ETH_RPC_URL", anvil.url)
    monkeypatch.setenv("CASINO_ETH_TOKENS", f"USDT:{devnet['USDT']},USDC:{devnet['USDC']}")
    monkeypatch.setenv("CASINO_ETH_BATCH_CONTRACT", devnet["batch"])
    monkeypatch.setenv("CASINO_ETH_SAFE_ADDRESS", devnet["safe"])
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_FEE", f"ETH:{ETH_FEE},USDT:{TOKEN_FEE}")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_LARGE", f"ETH:{LARGE_ETH},USDT:100000000")
    reset_settings_cache()
    signer_eth.forget()
    monkeypatch.setattr(sender, "fault", None)
    monkeypatch.setattr(safe_exec, "fault", None)
    w3 = anvil.w3
    hot = signer_eth.hot_address()
    for to, value in ((hot, 10**18), (devnet["safe"], 10 * 10**18)):
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": anvil.accounts[0], "to": to, "value": value}))
    usdt = w3.eth.contract(address=devnet["USDT"], abi=devnet["abi"]["USDT"])
    w3.eth.wait_for_transaction_receipt(usdt.functions.mint(devnet["safe"], 10_000 * 10**6)
                                        .transact({"from": anvil.accounts[0]}))
    yield anvil
    reset_settings_cache()
    signer_eth.forget()


def _house(code: str, kind: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.balance_of(s, ledger.house_account(s, code, kind)).balance


def _sign(key: str, view: safe_payments.SafePaymentView) -> str:
    """An owner signing the hash on their own machine (cast wallet sign --no-hash)."""
    return Web3.to_hex(chain.sign_safe_tx(key, bytes.fromhex(view.safe_tx_hash[2:])).signature)


def _personal_sign(key: str, view: safe_payments.SafePaymentView) -> str:
    """An owner signing with a wallet's personal_sign of the 32-byte hash."""
    signed = Account.sign_message(encode_defunct(hexstr=view.safe_tx_hash), key)
    return Web3.to_hex(signed.signature)


def _machines(anvil, devnet) -> tuple[SafeExecutor, Batcher]:  # noqa: ANN001
    return (SafeExecutor(anvil.w3, devnet["safe"], confirmations=1),
            Batcher(anvil.w3, devnet["batch"], {"USDT": devnet["USDT"], "USDC": devnet["USDC"]},
                    confirmations=1, fee_bump_seconds=3600))


def _run(ex: SafeExecutor, b: Batcher, rounds: int = 4) -> None:
    for _ in range(rounds):
        ex.run()
        b.run()
    ex.run()


def _payment(pid: int) -> SafePayment:
    with ledger_tx(readonly=True) as s:
        p = s.get(SafePayment, pid)
        s.expunge(p)
        return p


def _withdrawal(wid: int) -> Withdrawal:
    with ledger_tx(readonly=True) as s:
        w = s.get(Withdrawal, wid)
        s.expunge(w)
        return w


def test_a_large_withdrawal_waits_for_two_approvals_and_pays_from_the_safe(env, devnet) -> None:  # noqa: ANN001
    w3, keys = env.w3, devnet["safe_owner_keys"]
    _fund("p-big", "ETH", 50_000_000)
    to = _fresh()
    w = withdrawals.request_withdrawal("p-big", "ETH", "0.02", to, "k-big")
    assert (w.state, w.amount) == ("awaiting_approval", 20_000_000)
    ex, b = _machines(env, devnet)
    _run(ex, b, 1)
    assert _withdrawal(w.id).state == "awaiting_approval"  # nothing happens on its own

    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    assert safe_payments.prepare_withdrawal(w.id, ADMIN_B).id == p.id  # prepared once
    assert (p.safe, p.to, p.value_wei, p.data, p.safe_nonce, p.required) == \
        (devnet["safe"], to, 20_000_000 * GWEI, "0x", 0, 2)
    assert p.safe_tx_hash == Web3.to_hex(chain.safe_tx_hash(
        w3.eth.chain_id, devnet["safe"], to, 20_000_000 * GWEI, b"", 0))

    # refusals: not an owner, malformed
    outsider = Account.create().key.hex()
    with pytest.raises(safe_payments.NotAnOwner, match="not from an owner"):
        safe_payments.add_signature(p.id, ADMIN_A, _sign(outsider, p))
    for junk in ("", "0x12", "0x" + "zz" * 65, None, "0x" + "00" * 65):
        with pytest.raises(safe_payments.BadSignature):
            safe_payments.add_signature(p.id, ADMIN_A, junk)

    one = safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[0], p))
    assert (one.state, one.signed_by) == ("awaiting_signatures", (ADMIN_A,))
    assert _withdrawal(w.id).approved_by == ADMIN_A
    # one approval is not enough
    _run(ex, b, 2)
    assert _withdrawal(w.id).state == "awaiting_approval"
    assert w3.eth.get_balance(to) == 0
    # the same admin twice (even with another owner's key), the same owner twice: refused
    with pytest.raises(safe_payments.AlreadySigned, match="different staff member"):
        safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[1], p))
    with pytest.raises(safe_payments.AlreadySigned, match="another owner"):
        safe_payments.add_signature(p.id, ADMIN_B, _sign(keys[0], p))
    # the database refuses the same staff member as both approvers as well
    with pytest.raises(Exception, match="(?i)check|constraint"), ledger_tx() as s:
        s.get(Withdrawal, w.id).approved_by_2 = ADMIN_A
        s.flush()

    two = safe_payments.add_signature(p.id, ADMIN_B, _personal_sign(keys[1], p))
    assert (two.state, two.signed_by) == ("ready", (ADMIN_A, ADMIN_B))
    with pytest.raises(safe_payments.NotSignable):
        safe_payments.add_signature(p.id, ADMIN_C, _sign(keys[2], p))
    row = _withdrawal(w.id)
    assert (row.approved_by, row.approved_by_2, row.state) == \
        (ADMIN_A, ADMIN_B, "awaiting_approval")
    with pytest.raises(withdrawals.NotAwaitingApproval):  # the queue is not its path
        withdrawals.reject_withdrawal(w.id + 100, ADMIN_C, "no")

    safe_before, hot = w3.eth.get_balance(devnet["safe"]), signer_eth.hot_address()
    res = ex.run()
    assert res.recorded == 1
    assert _withdrawal(w.id).state == "batched"
    _run(ex, b)
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    assert w3.eth.get_balance(devnet["safe"]) == safe_before - 20_000_000 * GWEI
    assert w3.eth.get_transaction_count(hot) == 1  # the exec transaction only
    row, pay = _withdrawal(w.id), _payment(p.id)
    assert (row.state, pay.state) == ("confirmed", "confirmed")
    assert pay.tx_hash and w3.eth.get_transaction_receipt(pay.tx_hash)["status"] == 1
    assert withdrawals.get_withdrawal(w.id).tx_hash == pay.tx_hash
    assert _balance("p-big", "ETH") == ledger.Balance("ETH", 50_000_000 - 20_000_000 - ETH_FEE,
                                                      0)
    with ledger_tx(readonly=True) as s:
        batch = s.get(WithdrawalBatch, pay.batch_id)
        gas_gwei = -(-int(batch.gas_fee_wei) // GWEI)
        assert (batch.kind, batch.to_address, batch.total) == ("pay", devnet["safe"],
                                                                20_000_000)
    assert _house("ETH", "fees") == ETH_FEE - gas_gwei
    for _ in range(2):  # more runs change nothing
        _run(ex, b, 1)
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    _invariants_clean()


def test_a_crash_between_recording_and_broadcast_pays_once(env, devnet) -> None:  # noqa: ANN001
    w3, keys = env.w3, devnet["safe_owner_keys"]
    _fund("p-crash", "USDT", 500_000_000)
    to = _fresh()
    w = withdrawals.request_withdrawal("p-crash", "USDT", "150", to, "k-crash")
    assert w.state == "awaiting_approval"
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    usdt = chain.erc20(w3, devnet["USDT"])
    assert (p.to, p.value_wei) == (devnet["USDT"], 0)
    safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[2], p))
    safe_payments.add_signature(p.id, ADMIN_C, _sign(keys[0], p))

    def die(point: str, payment_id: int) -> None:
        raise Crash(point)

    safe_exec.fault = die
    ex, b = _machines(env, devnet)
    with pytest.raises(Crash):
        ex.run()
    safe_exec.fault = None
    pay = _payment(p.id)
    assert pay.state == "sent"
    with ledger_tx(readonly=True) as s:
        from casino_app.payments.withdrawal_models import WithdrawalBatchTx

        [v0] = s.execute(select(WithdrawalBatchTx).where(
            WithdrawalBatchTx.batch_id == pay.batch_id)).scalars().all()
        raw_hash = v0.tx_hash
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(raw_hash)  # never broadcast
    ex2, b2 = _machines(env, devnet)  # a new process
    assert ex2.run().recorded == 0  # nothing signed again: the payment is in flight
    res = b2.run()
    assert res.rebroadcast == 1 and res.created == 0
    _run(ex2, b2)
    pay = _payment(p.id)
    assert (pay.state, pay.tx_hash) == ("confirmed", raw_hash)  # the same signed bytes
    assert usdt.functions.balanceOf(to).call() == 150_000_000
    assert w3.eth.get_transaction_count(signer_eth.hot_address()) == 1
    assert _balance("p-crash", "USDT") == ledger.Balance(
        "USDT", 500_000_000 - 150_000_000 - TOKEN_FEE, 0)
    assert _house("USDT", "fees") == TOKEN_FEE
    _invariants_clean()


def test_a_refill_moves_funds_from_the_safe_to_the_hot_wallet(env, devnet) -> None:  # noqa: ANN001
    w3, keys = env.w3, devnet["safe_owner_keys"]
    hot = signer_eth.hot_address()
    usdt = chain.erc20(w3, devnet["USDT"])
    custody_before = _house("USDT", "custody")
    for bad in ("BTC", "FUN"):
        with pytest.raises(safe_payments.NotSignable):
            safe_payments.request_refill(bad, "1", ADMIN_A)
    for bad in ("0", "-1", "abc", True):
        with pytest.raises(safe_payments.NotSignable):
            safe_payments.request_refill("USDT", bad, ADMIN_A)
    for bad in ("2,500", "0,5", "1.000,50", "2 500", "2_500"):  # never 2500 or 5
        with pytest.raises(safe_payments.NotSignable, match="Use a dot for decimals"):
            safe_payments.request_refill("USDT", bad, ADMIN_A)
    p = safe_payments.request_refill("usdt", "2500", ADMIN_A)
    assert (p.kind, p.recipient, p.amount, p.state) == ("refill", hot, 2_500_000_000,
                                                        "awaiting_signatures")
    eth_refill = safe_payments.request_refill("ETH", "1.5", ADMIN_B)
    assert eth_refill.safe_nonce == p.safe_nonce + 1  # the next free Safe nonce
    safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[0], p))
    ex, b = _machines(env, devnet)
    _run(ex, b, 1)
    assert usdt.functions.balanceOf(hot).call() == 0
    safe_payments.add_signature(p.id, ADMIN_B, _sign(keys[2], p))
    safe_payments.add_signature(eth_refill.id, ADMIN_B, _sign(keys[1], eth_refill))
    safe_payments.add_signature(eth_refill.id, ADMIN_C, _sign(keys[2], eth_refill))
    eth_before = w3.eth.get_balance(hot)
    _run(ex, b, 6)
    assert usdt.functions.balanceOf(hot).call() == 2_500_000_000
    assert usdt.functions.balanceOf(devnet["safe"]).call() == 7_500_000_000
    assert (_payment(p.id).state, _payment(eth_refill.id).state) == ("confirmed", "confirmed")
    with ledger_tx(readonly=True) as s:
        gas = [int(x.gas_fee_wei) for x in s.execute(select(WithdrawalBatch)).scalars()]
    assert len(gas) == 2
    assert w3.eth.get_balance(hot) == eth_before + 15 * 10**17 - sum(gas)
    # no ledger money moved: both wallets are custody; only the gas was booked
    assert _house("USDT", "custody") == custody_before
    assert _house("ETH", "fees") == -sum(-(-g // GWEI) for g in gas)
    _invariants_clean()


def test_a_rejection_cancels_the_payment_and_its_nonce_is_used_again(env, devnet) -> None:  # noqa: ANN001
    w3, keys = env.w3, devnet["safe_owner_keys"]
    _fund("p-rej", "ETH", 50_000_000)
    w = withdrawals.request_withdrawal("p-rej", "ETH", "0.01", _fresh(), "k-rej")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[0], p))
    out = withdrawals.reject_withdrawal(w.id, ADMIN_B, "source of funds unclear")
    assert out.state == "rejected"
    pay = _payment(p.id)
    assert (pay.state, pay.nonce_slot, pay.active_withdrawal_id) == ("cancelled", None, None)
    assert _balance("p-rej", "ETH") == ledger.Balance("ETH", 50_000_000, 0)
    with pytest.raises(safe_payments.NotSignable):
        safe_payments.add_signature(p.id, ADMIN_B, _sign(keys[1], p))
    refill = safe_payments.request_refill("ETH", "0.1", ADMIN_A)
    assert refill.safe_nonce == p.safe_nonce  # the cancelled nonce is taken again
    # owners use the Safe's nonce elsewhere: the open payment is cancelled, approvals reset
    w2 = withdrawals.request_withdrawal("p-rej", "ETH", "0.01", _fresh(), "k-rej-2")
    p2 = safe_payments.prepare_withdrawal(w2.id, ADMIN_A)
    assert p2.safe_nonce == refill.safe_nonce + 1
    safe_payments.add_signature(p2.id, ADMIN_A, _sign(keys[0], p2))
    safe_payments.cancel_payment(refill.id, ADMIN_A, "not needed")
    assert chain.safe_pay(w3, devnet["safe"], _fresh(), 1, b"", keys[:2], env.accounts[0]).ok
    assert chain.safe_pay(w3, devnet["safe"], _fresh(), 1, b"", keys[:2], env.accounts[0]).ok
    ex, _ = _machines(env, devnet)
    assert ex.run().cancelled == 1
    assert _payment(p2.id).state == "cancelled"
    row = _withdrawal(w2.id)
    assert (row.state, row.approved_by, row.approved_by_2) == ("awaiting_approval", None, None)
    p3 = safe_payments.prepare_withdrawal(w2.id, ADMIN_B)
    assert p3.id != p2.id and p3.safe_nonce == 2
    _invariants_clean()


def test_the_web_side_does_not_import_the_signer() -> None:
    probe = ("import sys, casino_app.payments.eth.safe_payments, "
             "casino_app.users.staff_withdrawals; "
             "print(sorted(m for m in sys.modules if m.startswith('casino_app.payments.signer')"
             " or m in ('casino_app.payments.eth.batcher', "
             "'casino_app.payments.eth.safe_exec')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip() == "[]"


def test_support_sees_players_withdrawals_only(env, devnet) -> None:  # noqa: ANN001
    """A staff member's withdrawal (account, amount, address) is for admins, as their
    account pages are: support's queue leaves it out (issue 10)."""
    from casino_app.users import staff_withdrawals as sw
    from casino_app.users.models import Role
    from tests.users.helpers import make_staff, register, user_row

    admin, _, admin_email = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    _player_token, addr = register()
    player, staff_member = user_row(addr), user_row(admin_email)
    mine = {}
    for who in (player, staff_member):
        _fund(who.player_id, "ETH", 50_000_000)
        mine[who.id] = withdrawals.request_withdrawal(who.player_id, "ETH", "0.01", _fresh(),
                                                      f"k-seen-{who.id}").id
    seen = {i.withdrawal.view.id for i in sw.withdrawal_queue(support).items}
    assert mine[player.id] in seen and mine[staff_member.id] not in seen
    seen = {i.withdrawal.view.id for i in sw.withdrawal_queue(admin).items}
    assert {mine[player.id], mine[staff_member.id]} <= seen


def test_staff_approve_with_their_signatures_and_every_step_is_audited(env, devnet) -> None:  # noqa: ANN001
    from casino_app.users import staff_withdrawals as sw
    from casino_app.users.errors import Forbidden, NotAuthenticated, ValidationFailed
    from casino_app.users.models import Role
    from tests.users.helpers import audited, make_staff, new_ctx, register, user_row

    keys = devnet["safe_owner_keys"]
    admin_a, id_a, _ = make_staff(Role.admin)
    admin_b, id_b, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    player_token, addr = register()
    player = user_row(addr)
    _fund(player.player_id, "ETH", 50_000_000)
    to = _fresh()
    w = withdrawals.request_withdrawal(player.player_id, "ETH", "0.01", to, "k-staff")
    queue = sw.withdrawal_queue(support)  # support reads the queue
    [item] = [i for i in queue.items if i.withdrawal.view.id == w.id]
    assert (item.user_id, item.payment, queue.safe) == (player.id, None, devnet["safe"])

    for token, exc in ((None, NotAuthenticated), (player_token, Forbidden),
                       (support, Forbidden)):
        with audited({}):
            with pytest.raises(exc):
                sw.prepare_withdrawal(token, w.id, new_ctx())
            with pytest.raises(exc):
                sw.reject_withdrawal(token, w.id, "no", new_ctx())
            with pytest.raises(exc):
                sw.request_refill(token, "ETH", "1", new_ctx())
    with pytest.raises(ValidationFailed):
        sw.prepare_withdrawal(admin_a, "1; DROP", new_ctx())
    with audited({"withdrawal.safe_prepared": 1}):
        p = sw.prepare_withdrawal(admin_a, w.id, new_ctx())
    with audited({}), pytest.raises(Forbidden):
        sw.sign_payment(support, p.id, _sign(keys[0], p), new_ctx())
    with audited({}), pytest.raises(ValidationFailed, match="not from an owner"):
        sw.sign_payment(admin_a, p.id, _sign(Account.create().key.hex(), p), new_ctx())
    with audited({"withdrawal.approved": 1}):
        sw.sign_payment(admin_a, p.id, _sign(keys[1], p), new_ctx())
    with audited({}), pytest.raises(ValidationFailed, match="different staff member"):
        sw.sign_payment(admin_a, p.id, _sign(keys[2], p), new_ctx())
    with audited({"withdrawal.approved": 1}):
        done = sw.sign_payment(admin_b, p.id, _sign(keys[2], p), new_ctx())
    assert done.state == "ready" and done.signed_by == (id_a, id_b)
    ex, b = _machines(env, devnet)
    with audited({"withdrawal.paid": 1}):
        _run(ex, b)
    assert env.w3.eth.get_balance(to) == 10_000_000 * GWEI
    [item] = [i for i in sw.withdrawal_queue(admin_b).items if i.withdrawal.view.id == w.id]
    assert item.withdrawal.view.state == "confirmed" and item.payment.state == "confirmed"
    assert (item.withdrawal.approved_by, item.withdrawal.approved_by_2) == (id_a, id_b)
    # a refill asked for and cancelled by an admin, audited
    with audited({"refill.requested": 1}):
        r = sw.request_refill(admin_a, "USDT", "10", new_ctx())
    with audited({}), pytest.raises(ValidationFailed):
        sw.request_refill(admin_a, "USDT", "1e3", new_ctx())
    with audited({"refill.cancelled": 1}):
        assert sw.cancel_refill(admin_b, r.id, "not needed", new_ctx()).state == "cancelled"
    # a refill approved by two admins and paid from the Safe, audited at each step
    with audited({"refill.requested": 1}):
        r2 = sw.request_refill(admin_a, "ETH", "0.5", new_ctx())
    with audited({"refill.approved": 1}):
        sw.sign_payment(admin_a, r2.id, _sign(keys[0], r2), new_ctx())
    with audited({"refill.approved": 1}):
        assert sw.sign_payment(admin_b, r2.id, _sign(keys[1], r2), new_ctx()).state == "ready"
    with audited({"refill.paid": 1}):
        _run(ex, b, 6)
    # a rejection, audited, with the player's account as target
    w2 = withdrawals.request_withdrawal(player.player_id, "ETH", "0.01", to, "k-staff-2")
    with audited({"withdrawal.rejected": 1}):
        assert sw.reject_withdrawal(admin_b, w2.id, "unclear", new_ctx()).state == "rejected"
    _invariants_clean()


def test_books_reconcile_with_the_chain_around_safe_payments(env, devnet) -> None:  # noqa: ANN001
    """Reconciliation counts the Safe: a Safe-paid withdrawal leaves custody (mined but
    not settled, then settled) and a refill moves coins between our own wallets."""
    from casino_app.payments.eth.reconcile import controlled_extra, reconcile
    from casino_app.payments.eth.watcher import Watcher, chain_assets

    w3, keys = env.w3, devnet["safe_owner_keys"]
    assets = chain_assets(w3, {"USDT": devnet["USDT"], "USDC": devnet["USDC"]})
    watcher = Watcher(w3, assets, confirmations=1, start_block=w3.eth.block_number)
    with ledger_tx() as s:  # the fixture's funding of the hot wallet and the Safe
        for code, amount in (("ETH", 11 * GWEI), ("USDT", 10_000 * 10**6)):
            ledger.transfer(s, f"capital:{code}", "capital",
                            ledger.house_account(s, code, "custody"),
                            ledger.house_account(s, code, "bankroll"), amount)
        ledger.transfer(s, "win:p-recon", "adjustment", ledger.house_account(s, "ETH", "bankroll"),
                        ledger.player_account(s, "p-recon", "ETH"), 50_000_000)

    def clean() -> None:
        watcher.poll()
        res = reconcile(w3, assets, controlled_extra())
        assert res.clean, [(i.kind, i.detail) for i in res.issues]

    clean()
    w = withdrawals.request_withdrawal("p-recon", "ETH", "0.02", _fresh(), "k-recon")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    refill = safe_payments.request_refill("USDT", "300", ADMIN_A)
    for pay in (p, refill):
        safe_payments.add_signature(pay.id, ADMIN_A, _sign(keys[0], pay))
        safe_payments.add_signature(pay.id, ADMIN_B, _sign(keys[1], pay))
    ex, _ = _machines(env, devnet)
    b = Batcher(w3, devnet["batch"], {"USDT": devnet["USDT"], "USDC": devnet["USDC"]},
                confirmations=3, fee_bump_seconds=3600)
    ex.run()
    b.run()  # the withdrawal's exec is mined, not settled (3 confirmations)
    clean()
    for _ in range(14):
        env.mine(1)
        ex.run()
        b.run()
    assert (_payment(p.id).state, _payment(refill.id).state) == ("confirmed", "confirmed")
    clean()
    _invariants_clean()


# --- failure paths (payments/eth/safe_exec.py): a reverted exec, a nonce used elsewhere ---

def _books(env, devnet, credits: dict[str, int]):  # noqa: ANN001, ANN202
    """Book the fixture's funding of the hot wallet and the Safe as capital, credit the
    players from the bankroll (no deposit: custody stays what the chain holds) and return
    a check that reconciliation of [hot, Safe] with the chain is clean."""
    from casino_app.payments.eth.reconcile import reconcile
    from casino_app.payments.eth.watcher import Watcher, chain_assets

    w3 = env.w3
    assets = chain_assets(w3, {"USDT": devnet["USDT"], "USDC": devnet["USDC"]})
    watcher = Watcher(w3, assets, confirmations=1, start_block=w3.eth.block_number)
    with ledger_tx() as s:
        for code, amount in (("ETH", 11 * GWEI), ("USDT", 10_000 * 10**6)):
            ledger.transfer(s, f"capital:{code}", "capital",
                            ledger.house_account(s, code, "custody"),
                            ledger.house_account(s, code, "bankroll"), amount)
        for player, amount in credits.items():
            ledger.transfer(s, f"win:{player}", "adjustment",
                            ledger.house_account(s, "ETH", "bankroll"),
                            ledger.player_account(s, player, "ETH"), amount)

    def clean() -> None:
        watcher.poll()
        res = reconcile(w3, assets, [signer_eth.hot_address(), devnet["safe"]])
        assert res.clean, [(i.kind, i.detail) for i in res.issues]
        _invariants_clean()

    clean()
    return clean


def _signed_by_two(p: safe_payments.SafePaymentView, keys: list[str]) -> None:
    safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[0], p))
    assert safe_payments.add_signature(p.id, ADMIN_B, _sign(keys[1], p)).state == "ready"


def _gas_gwei(batch_id: int) -> int:
    with ledger_tx(readonly=True) as s:
        return -(-int(s.get(WithdrawalBatch, batch_id).gas_fee_wei) // GWEI)


def test_a_reverted_exec_keeps_the_money_reserved_until_the_safe_nonce_is_settled(
        env, devnet) -> None:  # noqa: ANN001
    """The exec is recorded (its estimate passed), then the owners execute another Safe
    transaction with the payment's nonce in the Safe's own interface before it is mined
    (here: 1 ETH to the hot wallet): the exec is mined with status 0 (GS026). A reverted
    exec proves nothing about the Safe payment (its signatures could still execute while
    its nonce is unused), so the withdrawal is never failed and refunded here: it goes back
    to its payment, reserved; the Safe's nonce went to another transaction, so the payment
    is cancelled and the withdrawal waits for approval again (audited); the gas is booked.
    Prepared and signed again, it is paid once."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    clean = _books(env, devnet, {"p-rev": 50_000_000})
    to = _fresh()
    w = withdrawals.request_withdrawal("p-rev", "ETH", "0.02", to, "k-rev")
    reserved = _balance("p-rev", "ETH")
    assert reserved.reserved == 20_000_000 + ETH_FEE
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    ex, b = _machines(env, devnet)
    with audited({}):
        assert ex.run().recorded == 1
    sent = _payment(p.id)
    assert (sent.state, _withdrawal(w.id).state) == ("sent", "batched")
    # the owners use the payment's Safe nonce themselves, before the exec is mined
    assert chain.safe_nonce(w3, devnet["safe"]) == p.safe_nonce
    assert chain.safe_pay(w3, devnet["safe"], hot, 10**18, b"", keys[1:], env.accounts[0]).ok
    with audited({"safe.exec_reverted": 1, "safe.payment_cancelled": 1}):
        _run(ex, b)
    pay, row = _payment(p.id), _withdrawal(w.id)
    with ledger_tx(readonly=True) as s:
        batch = s.get(WithdrawalBatch, sent.batch_id)
        assert (batch.state, batch.failure) == ("failed", "the transaction reverted")
        assert w3.eth.get_transaction_receipt(batch.tx_hash)["status"] == 0
    assert (pay.state, pay.exec_failures, pay.nonce_slot) == ("cancelled", 1, None)
    assert (row.state, row.approved_by, row.approved_by_2, row.batch_id, row.reverts) == \
        ("awaiting_approval", None, None, None, 1)
    assert w3.eth.get_balance(to) == 0
    assert _balance("p-rev", "ETH") == reserved  # still reserved, never refunded here
    assert _house("ETH", "fees") == -_gas_gwei(sent.batch_id)  # no fee, the gas is ours
    with audited({}):  # settled once: more runs change nothing
        _run(ex, b, 2)
    clean()
    # prepared and signed again at the Safe's next nonce: paid once
    p2 = safe_payments.prepare_withdrawal(w.id, ADMIN_B)
    assert p2.safe_nonce == p.safe_nonce + 1
    _signed_by_two(p2, keys)
    with audited({"withdrawal.paid": 1}):
        _run(ex, b)
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    assert _balance("p-rev", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    clean()


def test_a_safe_exec_refused_by_its_recipient_is_retried_not_refunded(env, devnet) -> None:  # noqa: ANN001
    """The review's attack: the recipient is a contract that accepts at estimation and
    refuses when our exec is mined (the player flips it in between). The exec reverts but
    the Safe's nonce stays unused and the owners' signatures are public: refunding the
    player would let them execute the payment later and be paid twice. So the money stays
    reserved, the payment is ready again and retried (at most MAX_EXEC_FAILURES times);
    when the player lets it through, it is paid once."""
    from tests.users.helpers import audited

    w3, keys = env.w3, devnet["safe_owner_keys"]
    clean = _books(env, devnet, {"p-flip": 50_000_000})
    switch, refuse = switch_recipient(env)
    w = withdrawals.request_withdrawal("p-flip", "ETH", "0.02", switch, "k-flip")
    reserved = _balance("p-flip", "ETH")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    ex, b = _machines(env, devnet)
    for attempt in range(1, safe_exec.MAX_EXEC_FAILURES + 1):
        assert ex.run().recorded == 1          # the estimate passes: recorded
        refuse(True)                           # the player refuses before it is mined
        with audited({"safe.exec_reverted": 1}):
            b.run()                            # broadcast: mined, reverted
            b.run()                            # settled
            ex.run()
        pay, row = _payment(p.id), _withdrawal(w.id)
        assert (pay.state, pay.exec_failures, pay.nonce_slot) == \
            ("ready", attempt, p.safe_nonce)
        assert (row.state, row.reverts) == ("awaiting_approval", attempt)
        assert _balance("p-flip", "ETH") == reserved
        refuse(False)
    # tried MAX_EXEC_FAILURES times: not again until staff act (reject -> cancelling)
    assert ex.run().recorded == 0
    assert w3.eth.get_balance(switch) == 0
    # anyone executing the public signatures now is a payment, settled as paid once
    with ledger_tx(readonly=True) as s:
        signatures = safe_payments.packed_signatures(s, p.id)
    call = ex.contract.encode_abi("execTransaction", args=[
        switch, 20_000_000 * GWEI, b"", 0, 0, 0, 0, chain.ZERO_ADDRESS, chain.ZERO_ADDRESS,
        signatures])
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": env.accounts[5], "to": devnet["safe"], "data": call}))
    with audited({"withdrawal.paid": 1}):
        _run(ex, b)
    assert (_payment(p.id).state, _withdrawal(w.id).state) == ("confirmed", "confirmed")
    assert w3.eth.get_balance(switch) == 20_000_000 * GWEI
    assert _balance("p-flip", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    clean()


def test_a_reverted_refill_moves_no_ledger_money_and_books_the_gas(env, devnet) -> None:  # noqa: ANN001
    """The owners refill the hot wallet themselves in the Safe's interface (same Safe
    nonce, another amount: another Safe transaction) while HashHouse's refill exec is
    recorded: the exec reverts, the refill is cancelled (its Safe nonce went to the
    owners' transaction), only its gas is booked and the hot wallet holds the owners'
    refill, not two."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    clean = _books(env, devnet, {})
    usdt = chain.erc20(w3, devnet["USDT"])
    custody, fees = _house("USDT", "custody"), _house("ETH", "fees")
    r = safe_payments.request_refill("USDT", "2500", ADMIN_A)
    _signed_by_two(r, keys)
    ex, b = _machines(env, devnet)
    assert ex.run().recorded == 1
    move = usdt.encode_abi("transfer", args=[hot, 2_000_000_000])
    assert chain.safe_pay(w3, devnet["safe"], devnet["USDT"], 0, bytes(HexBytes(move)),
                          keys[:2], env.accounts[0]).ok
    sent = _payment(r.id)
    with audited({"safe.exec_reverted": 1, "safe.payment_cancelled": 1}):
        _run(ex, b)
    pay = _payment(r.id)
    assert (pay.state, pay.exec_failures) == ("cancelled", 1)
    assert pay.failure.startswith(f"the Safe used nonce {r.safe_nonce} for another")
    with ledger_tx(readonly=True) as s:
        batch = s.get(WithdrawalBatch, sent.batch_id)
        assert w3.eth.get_transaction_receipt(batch.tx_hash)["status"] == 0
    assert usdt.functions.balanceOf(hot).call() == 2_000_000_000  # the owners' only
    assert usdt.functions.balanceOf(devnet["safe"]).call() == 8_000_000_000
    assert _house("USDT", "custody") == custody  # no ledger money moved
    assert _house("ETH", "fees") == fees - _gas_gwei(sent.batch_id)  # the gas is booked
    with audited({}):
        _run(ex, b, 2)
    clean()


def test_owners_using_a_payments_nonce_cancel_it_and_the_withdrawal_waits(env, devnet) -> None:  # noqa: ANN001
    """Two owners execute another Safe transaction with the nonce of a signed, not yet
    sent payment: its signatures can never execute. The job cancels it, clears the
    approvals (audited), the player's money stays reserved; admins approve again."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    clean = _books(env, devnet, {"p-nonce": 50_000_000})
    to = _fresh()
    w = withdrawals.request_withdrawal("p-nonce", "ETH", "0.02", to, "k-nonce")
    reserved = _balance("p-nonce", "ETH")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    assert chain.exec_safe_tx(
        w3, devnet["safe"], hot, 10**18, b"",
        [chain.sign_safe_tx(k, chain.safe_tx_hash(w3.eth.chain_id, devnet["safe"], hot,
                                                  10**18, b"", p.safe_nonce))
         for k in (keys[2], keys[0])], env.accounts[0]).ok
    ex, b = _machines(env, devnet)
    with audited({"safe.payment_cancelled": 1}):
        res = ex.run()
    assert (res.cancelled, res.recorded) == (1, 0)
    pay, row = _payment(p.id), _withdrawal(w.id)
    assert (pay.state, pay.nonce_slot, pay.active_withdrawal_id, pay.batch_id) == \
        ("cancelled", None, None, None)
    assert pay.failure == f"the Safe used nonce {p.safe_nonce} for another transaction"
    assert (row.state, row.approved_by, row.approved_by_2, row.batch_id) == \
        ("awaiting_approval", None, None, None)
    assert _balance("p-nonce", "ETH") == reserved  # still reserved, nothing paid
    with audited({}):
        _run(ex, b, 2)
    assert w3.eth.get_balance(to) == 0
    assert w3.eth.get_transaction_count(hot) == 0
    clean()
    with pytest.raises(safe_payments.NotSignable):
        safe_payments.add_signature(p.id, ADMIN_C, _sign(keys[2], p))
    p2 = safe_payments.prepare_withdrawal(w.id, ADMIN_B)
    assert (p2.id != p.id, p2.safe_nonce) == (True, p.safe_nonce + 1)
    _signed_by_two(p2, keys)
    with audited({"withdrawal.paid": 1}):
        _run(ex, b)
    assert (_payment(p2.id).state, _withdrawal(w.id).state) == ("confirmed", "confirmed")
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    assert _balance("p-nonce", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    clean()


def test_a_player_put_on_hold_is_not_paid_until_the_hold_is_released(env, devnet) -> None:  # noqa: ANN001
    """A hold (e.g. a reorg reversed a deposit the player had spent) stops money leaving:
    a queued withdrawal is not batched and a signed Safe payment is not executed until
    staff release the hold; the money stays reserved meanwhile."""
    from casino_app.core.clock import utcnow
    from casino_app.payments.hold_models import PlayerHold

    keys = devnet["safe_owner_keys"]
    _fund("p-held", "ETH", 50_000_000)
    small_to, big_to = _fresh(), _fresh()
    small = withdrawals.request_withdrawal("p-held", "ETH", "0.001", small_to, "k-held-1")
    big = withdrawals.request_withdrawal("p-held", "ETH", "0.02", big_to, "k-held-2")
    p = safe_payments.prepare_withdrawal(big.id, ADMIN_A)
    safe_payments.add_signature(p.id, ADMIN_A, _sign(keys[0], p))
    safe_payments.add_signature(p.id, ADMIN_B, _sign(keys[1], p))
    with ledger_tx() as s:  # the hold comes after the requests and the approvals
        s.add(PlayerHold(player_id="p-held", reason="deposit_reversed", detail="test",
                         created_at=utcnow()))
    ex, b = _machines(env, devnet)
    _run(ex, b, 4)
    assert (_withdrawal(small.id).state, _withdrawal(big.id).state) == \
        ("queued", "awaiting_approval")
    assert env.w3.eth.get_balance(small_to) == env.w3.eth.get_balance(big_to) == 0
    with ledger_tx() as s:
        s.query(PlayerHold).filter_by(player_id="p-held").update({"released_at": utcnow()})
    _run(ex, b, 8)
    assert (_withdrawal(small.id).state, _withdrawal(big.id).state) == \
        ("confirmed", "confirmed")
    assert env.w3.eth.get_balance(small_to) == 1_000_000 * GWEI
    assert env.w3.eth.get_balance(big_to) == 20_000_000 * GWEI
    _invariants_clean()


# --- the Safe executed the payment although our transaction did not (review fixes) ---

def _pending(key: str) -> str:
    from casino_app.payments.models import PendingTransfer

    with ledger_tx(readonly=True) as s:
        return s.execute(select(PendingTransfer.state).where(
            PendingTransfer.key == key)).scalar_one()


def test_a_third_party_executing_our_signed_exec_first_still_pays_the_withdrawal_once(
        env, devnet) -> None:  # noqa: ANN001
    """Our execTransaction carries the owners' signatures: someone (another account) sends
    the same call first. Ours is mined with status 0 (the Safe nonce is used), but the
    Safe DID pay: the withdrawal is confirmed (reservation posted once, never refunded,
    the fee kept), the payment records the transaction that paid, our gas is booked."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    clean = _books(env, devnet, {"p-front": 50_000_000})
    to = _fresh()
    w = withdrawals.request_withdrawal("p-front", "ETH", "0.02", to, "k-front")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    ex, b = _machines(env, devnet)
    assert ex.run().recorded == 1  # recorded, not broadcast yet
    pay = _payment(p.id)
    with ledger_tx(readonly=True) as s:
        call = s.get(WithdrawalBatch, pay.batch_id).call_data
    stranger = env.accounts[5]
    theirs = w3.eth.send_transaction({"from": stranger, "to": devnet["safe"], "data": call})
    assert w3.eth.wait_for_transaction_receipt(theirs)["status"] == 1
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    with audited({"withdrawal.paid": 1}):
        _run(ex, b)
    pay, row = _payment(p.id), _withdrawal(w.id)
    assert (pay.state, row.state) == ("confirmed", "confirmed")
    assert pay.tx_hash == Web3.to_hex(theirs)  # the transaction that paid
    assert withdrawals.get_withdrawal(w.id).tx_hash == Web3.to_hex(theirs)
    with ledger_tx(readonly=True) as s:
        batch = s.get(WithdrawalBatch, pay.batch_id)
        from casino_app.payments.withdrawal_models import WithdrawalBatchTx

        [ours] = s.execute(select(WithdrawalBatchTx.tx_hash).where(
            WithdrawalBatchTx.batch_id == batch.id)).scalars().all()
    assert w3.eth.get_transaction_receipt(ours)["status"] == 0  # ours reverted
    assert batch.state == "confirmed" and Web3.to_hex(theirs) in batch.failure
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI  # paid once
    assert w3.eth.get_transaction_count(hot) == 1
    assert _pending(f"withdrawal:{w.id}") == "posted"
    assert _balance("p-front", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    assert _house("ETH", "fees") == ETH_FEE - _gas_gwei(pay.batch_id)  # our gas booked
    with audited({}):  # settled once: more runs change nothing
        _run(ex, b, 2)
    assert _balance("p-front", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    clean()


def test_owners_executing_a_ready_payment_themselves_settle_it_as_paid(env, devnet) -> None:  # noqa: ANN001
    """The owners execute the payment's own Safe transaction in the Safe's interface while
    it is ready (before HashHouse records its exec): the payment is paid, not cancelled;
    the withdrawal is confirmed, not sent back to approval; nothing is sent by us."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    clean = _books(env, devnet, {"p-self": 50_000_000})
    to = _fresh()
    w = withdrawals.request_withdrawal("p-self", "ETH", "0.02", to, "k-self")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    owners = chain.safe_pay(w3, devnet["safe"], to, 20_000_000 * GWEI, b"", keys[1:],
                            env.accounts[0])  # the same Safe transaction, their signatures
    assert owners.ok
    ex, b = _machines(env, devnet)
    with audited({"withdrawal.paid": 1}):
        res = ex.run()
    assert (res.confirmed, res.cancelled, res.recorded) == (1, 0, 0)
    pay, row = _payment(p.id), _withdrawal(w.id)
    assert (pay.state, pay.tx_hash, pay.batch_id) == ("confirmed", owners.tx_hash, None)
    assert (row.state, row.approved_by, row.approved_by_2) == ("confirmed", ADMIN_A, ADMIN_B)
    assert _balance("p-self", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    assert _house("ETH", "fees") == ETH_FEE  # no gas of ours
    with audited({}):
        _run(ex, b, 3)
    assert w3.eth.get_transaction_count(hot) == 0  # our executor never sent a payment
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    with pytest.raises(safe_payments.NotSignable):
        safe_payments.prepare_withdrawal(w.id, ADMIN_B)
    clean()


def test_a_crash_before_the_audit_row_leaves_it_staged_for_the_outbox_job(
        env, devnet, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The payment's outcome and its audit row are staged in one ledger transaction: a
    crash before the audit log is written (here: the inline delivery is lost) leaves the
    row staged, and the audit-outbox job writes it once."""
    from casino_app.security import outbox
    from tests.users.helpers import audited

    w3, keys = env.w3, devnet["safe_owner_keys"]
    _fund("p-box", "ETH", 50_000_000)
    to = _fresh()
    w = withdrawals.request_withdrawal("p-box", "ETH", "0.02", to, "k-box")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    assert chain.safe_pay(w3, devnet["safe"], to, 20_000_000 * GWEI, b"", keys[1:],
                          env.accounts[0]).ok
    ex, _ = _machines(env, devnet)
    monkeypatch.setattr(outbox, "deliver_now", lambda entries: None)  # the crash
    with audited({}):
        assert ex.run().confirmed == 1
    assert _withdrawal(w.id).state == "confirmed"
    monkeypatch.undo()
    with audited({"withdrawal.paid": 1}):
        assert outbox.deliver_pending(grace_seconds=0) == {"delivered": 1, "recovered": 1}
    with audited({}):
        assert outbox.deliver_pending(grace_seconds=0) == {}


def _reject_signed(env, devnet, player: str, key: str):  # noqa: ANN001, ANN202
    """A withdrawal whose Safe payment two admins signed, then rejected by staff."""
    keys = devnet["safe_owner_keys"]
    to = _fresh()
    w = withdrawals.request_withdrawal(player, "ETH", "0.02", to, key)
    reserved = _balance(player, "ETH")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    out = withdrawals.reject_withdrawal(w.id, ADMIN_C, "source of funds unclear")
    assert out.state == "rejecting"
    pay = _payment(p.id)
    assert (pay.state, pay.nonce_slot, pay.active_withdrawal_id) == \
        ("cancelling", p.safe_nonce, w.id)
    assert _balance(player, "ETH") == reserved  # still reserved: the payment may execute
    assert _pending(f"withdrawal:{w.id}") == "pending"
    with pytest.raises(safe_payments.NotSignable, match="cancelled"):
        safe_payments.add_signature(p.id, ADMIN_C, _sign(keys[2], p))
    with pytest.raises(withdrawals.NotAwaitingApproval):
        withdrawals.reject_withdrawal(w.id, ADMIN_C, "again")
    with pytest.raises(safe_payments.NotSignable):
        safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    return w, p, to, reserved


def test_a_rejected_signed_payment_keeps_its_nonce_and_is_paid_if_the_owners_run_it(
        env, devnet) -> None:  # noqa: ANN001
    """Rejecting a fully signed payment cannot take the owners' signatures back: the
    money stays reserved and the next payment does not get its Safe nonce. The owners
    execute it anyway: it is paid once (posted, fee kept), audited, and flagged."""
    from tests.users.helpers import audited

    w3, hot = env.w3, signer_eth.hot_address()
    clean = _books(env, devnet, {"p-rj": 50_000_000})
    w, p, to, _ = _reject_signed(env, devnet, "p-rj", "k-rj")
    refill = safe_payments.request_refill("ETH", "0.1", ADMIN_A)
    assert refill.safe_nonce == p.safe_nonce + 1  # the rejected payment's nonce is kept
    ex, b = _machines(env, devnet)
    with audited({}):
        _run(ex, b, 2)
    assert w3.eth.get_transaction_count(hot) == 0 and w3.eth.get_balance(to) == 0
    assert _payment(p.id).state == "cancelling"
    # anyone holding the two signatures can still execute it: here, the owners
    with ledger_tx(readonly=True) as s:
        sigs = safe_payments.packed_signatures(s, p.id)
    done = chain.exec_safe_tx(w3, devnet["safe"], to, 20_000_000 * GWEI, b"", sigs,
                              env.accounts[0])
    assert done.ok
    with audited({"withdrawal.paid": 1, "safe.rejected_payment_executed": 1}):
        res = ex.run()
    assert (res.confirmed, res.cancelled) == (1, 0)
    pay, row = _payment(p.id), _withdrawal(w.id)
    assert (pay.state, pay.tx_hash, row.state) == ("confirmed", done.tx_hash, "confirmed")
    assert pay.failure.startswith("executed by the Safe owners after it was rejected")
    assert _pending(f"withdrawal:{w.id}") == "posted"
    assert _balance("p-rj", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    assert _house("ETH", "fees") == ETH_FEE
    with audited({}):
        _run(ex, b, 2)
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI  # once
    assert w3.eth.get_transaction_count(hot) == 0
    clean()


def test_a_rejected_signed_payment_is_cancelled_once_the_owners_use_its_nonce(
        env, devnet) -> None:  # noqa: ANN001
    """The owners execute a rejection (an empty Safe transaction) with the rejected
    payment's nonce: its signatures are dead, the payment is cancelled and the player's
    reservation voided, once. A signed refill cancelled by staff waits the same way."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    clean = _books(env, devnet, {"p-rc": 50_000_000})
    w, p, to, _ = _reject_signed(env, devnet, "p-rc", "k-rc")
    refill = safe_payments.request_refill("ETH", "0.1", ADMIN_A)
    _signed_by_two(refill, keys)
    assert safe_payments.cancel_payment(refill.id, ADMIN_B, "not needed").state == \
        "cancelling"
    nxt = safe_payments.request_refill("ETH", "0.2", ADMIN_A)
    assert (refill.safe_nonce, nxt.safe_nonce) == (p.safe_nonce + 1, p.safe_nonce + 2)
    ex, b = _machines(env, devnet)
    with audited({}):
        _run(ex, b, 2)
    assert _balance("p-rc", "ETH").reserved == 20_000_000 + ETH_FEE
    for _ in range(2):  # the owners' rejections of both nonces (empty transactions)
        assert chain.safe_pay(w3, devnet["safe"], devnet["safe"], 0, b"", keys[:2],
                              env.accounts[0]).ok
    with audited({"safe.payment_cancelled": 2}):
        res = ex.run()
    assert (res.cancelled, res.confirmed, res.recorded) == (2, 0, 0)
    pay, row = _payment(p.id), _withdrawal(w.id)
    assert (pay.state, pay.nonce_slot, pay.active_withdrawal_id, row.state) == \
        ("cancelled", None, None, "rejected")
    assert pay.failure.startswith(f"the Safe used nonce {p.safe_nonce} for another "
                                  "transaction (withdrawal rejected: source of funds")
    assert _payment(refill.id).state == "cancelled"
    assert _pending(f"withdrawal:{w.id}") == "voided"
    assert _balance("p-rc", "ETH") == ledger.Balance("ETH", 50_000_000, 0)  # all back
    with audited({}):
        _run(ex, b, 2)
    assert _balance("p-rc", "ETH") == ledger.Balance("ETH", 50_000_000, 0)  # voided once
    assert w3.eth.get_transaction_count(hot) == 0 and w3.eth.get_balance(to) == 0
    clean()


def test_an_exec_whose_hot_wallet_nonce_was_used_is_paid_if_the_safe_executed_it(
        env, devnet) -> None:  # noqa: ANN001
    """Our exec is recorded, never mined: someone executes its signed Safe transaction and
    the hot wallet's nonce is used by another of its transactions. The batcher would void
    the withdrawal ("its nonce was used by another transaction"): the Safe paid, so it is
    confirmed, posted once, with the hash of the transaction that paid."""
    from tests.users.helpers import audited

    w3, keys, hot = env.w3, devnet["safe_owner_keys"], signer_eth.hot_address()
    _fund("p-hn", "ETH", 50_000_000)
    to = _fresh()
    w = withdrawals.request_withdrawal("p-hn", "ETH", "0.02", to, "k-hn")
    p = safe_payments.prepare_withdrawal(w.id, ADMIN_A)
    _signed_by_two(p, keys)
    ex, b = _machines(env, devnet)
    assert ex.run().recorded == 1
    with ledger_tx(readonly=True) as s:
        batch = s.get(WithdrawalBatch, _payment(p.id).batch_id)
        call, nonce = batch.call_data, batch.nonce
    theirs = w3.eth.send_transaction({"from": env.accounts[5], "to": devnet["safe"],
                                      "data": call})
    block = w3.eth.get_block("latest")
    raw, _ = signer_eth.sign_transaction({
        "type": 2, "chainId": w3.eth.chain_id, "from": hot, "to": hot, "value": 0,
        "gas": 21_000, "nonce": nonce, "maxFeePerGas": 2 * block["baseFeePerGas"] + GWEI,
        "maxPriorityFeePerGas": GWEI})
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    with audited({"withdrawal.paid": 1}):
        _run(ex, b)
    pay, row = _payment(p.id), _withdrawal(w.id)
    assert (pay.state, row.state, pay.tx_hash) == ("confirmed", "confirmed",
                                                   Web3.to_hex(theirs))
    assert w3.eth.get_balance(to) == 20_000_000 * GWEI
    assert _pending(f"withdrawal:{w.id}") == "posted"
    assert _balance("p-hn", "ETH") == ledger.Balance("ETH", 30_000_000 - ETH_FEE, 0)
    _invariants_clean()
