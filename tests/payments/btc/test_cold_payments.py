"""Cold payments by PSBT on a real bcoin regtest node (payments/btc/cold_payments.py, the job
side payments/btc/cold_sender.py, the admins' use cases users/staff_withdrawals.py): a
large withdrawal is paid from the 2-of-3 cold wallet once two different admins each upload
a different cosigner's signature (the node accepts and mines it, the player's address gets
the exact amount, the ledger posts once); the same admin twice is not enough, also when
one upload carries two cosigners (counted once) and in the database; refused uploads
(altered outputs, a foreign key, garbage) change nothing; a refill reaches the hot wallet;
rejecting an unsigned payment frees its coins and the player's money; a payment whose
signatures were all uploaded by one admin cannot be taken back at once (rejecting: paid if
broadcast, cancelled by a double spend to the cold wallet); a crash between recording and
broadcasting pays once. The real watcher (payments/btc/watcher.py) records every chain
fact; the ledger's invariants hold after each test. The cosigners are
tests/support/cosigners.py's test keys, signing like staff devices."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender, withdrawals
from casino_app.payments.btc import cold_payments, psbt
from casino_app.payments.btc.cold_payments import ColdPaymentView
from casino_app.payments.btc.cold_sender import ColdSender
from casino_app.payments.btc.models import BtcColdPayment, BtcColdSignature, BtcUtxo
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.watcher import Watcher
from casino_app.payments.models import JournalEntry
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import _mnemonic
from casino_app.payments.withdrawal_models import Withdrawal, WithdrawalBatch
from casino_app.users import staff_withdrawals as staff
from casino_app.users.errors import ValidationFailed
from casino_app.users.models import Role
from tests.payments.eth.helpers import balance as _balance
from tests.payments.eth.helpers import fund as _credit
from tests.payments.eth.helpers import invariants_clean as _invariants_clean
from tests.support.bitcoin import NETWORK, BcoinNode, fresh_address
from tests.support.cosigners import OUTSIDER, TestCosigner, cold_keys_setting, own_cosigners
from tests.users.helpers import audit_rows, make_staff, new_ctx

pytestmark = pytest.mark.bitcoin

CONFIRMATIONS = 2
LARGE = 1_000_000     # sat: from here a withdrawal waits for two admins
FEE = 1_000           # sat, the house's fee per withdrawal


class Crash(Exception):
    """A simulated process death at a fault point."""


class Env:
    """The session's node, this test's own hot-wallet seed, the cold wallet of the three
    test cosigners (a random account of theirs), the real watcher, two admins and a support account."""

    def __init__(self, node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> None:
        self.node = node
        self.words = _mnemonic().to_mnemonic(secrets.token_bytes(32))
        self.signers = own_cosigners(NETWORK)
        for name, value in {
                "CASINO_ETH_HOT_SEED": self.words,
                "CASINO_BTC_NETWORK": "regtest-bcoin", "CASINO_BTC_RPC_URL": node.url,
                "CASINO_BTC_RPC_USER": "hashhouse", "CASINO_BTC_RPC_PASSWORD": node.api_key,
                "CASINO_BTC_RPC_DIALECT": "bcoin",
                "CASINO_BTC_XPUB": signer.account_xpub(NETWORK, self.words),
                "CASINO_BTC_COLD_KEYS": cold_keys_setting(self.signers),
                "CASINO_BTC_CONFIRMATIONS": str(CONFIRMATIONS),
                "CASINO_BTC_WITHDRAW_MIN": "10000", "CASINO_BTC_WITHDRAW_FEE": str(FEE),
                "CASINO_BTC_WITHDRAW_LARGE": str(LARGE),
                "CASINO_STAFF_REQUIRE_2FA": "true"}.items():
            monkeypatch.setenv(name, value)
        reset_settings_cache()
        signer.forget()
        monkeypatch.setattr(sender, "fault", None)
        self.cold = cold_payments.wallet()
        # From the next block (the cold wallet is this test's own: see own_cosigners).
        self.watcher = Watcher(node.rpc, start_height=node.height + 1)
        self.rpc = BitcoinRPC(node.url, "hashhouse", node.api_key, timeout=120,
                              dialect="bcoin", accept_timeout=2)
        self.admin_a = make_staff(Role.admin)
        self.admin_b = make_staff(Role.admin)
        self.support = make_staff(Role.support)
        self.ctx = new_ctx()

    def mine(self, n: int = 1) -> None:
        self.node.mine(n)
        self.watcher.poll()

    def fund_cold(self, sats: int, index: int = 0) -> str:
        """A confirmed coin on cold receiving address ``index``, recorded by the watcher."""
        f = self.node.fund(self.cold.receive_address(index).address, sats)
        self.watcher.poll()
        return f.txid

    def sender(self) -> ColdSender:
        return ColdSender(self.rpc, confirmations=CONFIRMATIONS, fee_bump_seconds=3600)

    def large(self, player: str, sats: int = 2_000_000) -> tuple[int, str]:
        """A reserved large withdrawal waiting for approval: (id, the player's address)."""
        _credit(player, "BTC", 10_000_000)
        to = fresh_address()
        w = withdrawals.request_withdrawal(player, "BTC", sats, to, f"k-{player}")
        assert w.state == "awaiting_approval"
        return w.id, to

    def upload(self, who: tuple[str, int, str], payment: ColdPaymentView,
               *devices: TestCosigner) -> cold_payments.Signed:
        """``who`` uploads the PSBT signed in turn by ``devices`` (base64, as pasted)."""
        data: bytes | str = payment.psbt
        for d in devices:
            data = d.sign(data)
        return staff.upload_psbt(who[0], payment.id, base64.b64encode(data).decode(),
                                 self.ctx)


@pytest.fixture
def env(app_env, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:  # noqa: ANN001
    return Env(bitcoin_node, monkeypatch)


@pytest.fixture
def both(any_env: str, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The same on SQLite and on PostgreSQL."""
    return Env(bitcoin_node, monkeypatch)


def _coins() -> dict[tuple[str, int], tuple[str, str, str | None]]:
    with ledger_tx(readonly=True) as s:
        return {(u.txid, u.vout): (u.role, u.state, u.spent_by)
                for u in s.execute(select(BtcUtxo)).scalars()}


def _entries(prefix: str) -> list[str]:
    with ledger_tx(readonly=True) as s:
        return list(s.execute(select(JournalEntry.key).where(
            JournalEntry.key.like(f"{prefix}%"))).scalars())


def _house(kind: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.balance_of(s, ledger.house_account(s, "BTC", kind)).balance


def _received(node: BcoinNode, address: str) -> int:
    return sum(int(c["value"]) for c in node.rest(f"/coin/address/{address}"))


def _fingerprint() -> str:
    from tests.ui.test_state_security import _fingerprint as every_table

    return every_table()


def _edit(raw: bytes | str, change: Any) -> bytes:
    from embit.psbt import PSBT

    p = PSBT.parse(psbt.decode(raw))
    change(p)
    return p.serialize()


def _spend_back_to_cold(e: Env, coin: str, *devices: TestCosigner) -> Any:
    """Staff move the 3,000,000-sat coin ``coin`` (on cold receiving address 0) to cold
    receiving address 5 outside HashHouse, signed on ``devices`` (as with Sparrow), and
    it is mined; the finalised transaction."""
    back = psbt.build_psbt(e.cold, [psbt.ColdUtxo(coin, 0, 3_000_000,
                                                  e.cold.receive_address(0).script_pubkey,
                                                  0, 0)],
                           [psbt.Payment(e.cold.receive_address(5).script_pubkey, 2_990_000)],
                           fee_rate=20, change_index=7)
    signed: bytes | str = back.psbt
    for d in devices:
        signed = d.sign(signed)
    final = psbt.finalize(e.cold, back.psbt, [signed])
    e.node.rpc.send_raw_transaction(final.raw)
    e.mine(CONFIRMATIONS)
    return final


def _second_upload_dies_before_broadcast(e: Env, view: ColdPaymentView,
                                         device: TestCosigner) -> None:
    """Admin B uploads ``device``'s signature, the second one: the payment is recorded as
    sent, then the process dies before broadcasting it."""
    def die(at: str, batch_id: int) -> None:
        if at == "signed":
            raise Crash(at)

    sender.fault = die
    try:
        with pytest.raises(Crash):
            e.upload(e.admin_b, view, device)
    finally:
        sender.fault = None


# --- the four-eyes flow ----------------------------------------------------------------------

def test_a_large_withdrawal_is_paid_from_cold_after_two_admins_approve(both: Env) -> None:
    e = both
    coin = e.fund_cold(5_000_000)
    wid, to = e.large("p-big")
    before = _balance("p-big", "BTC")
    a, b, c = e.signers
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    assert (view.state, view.kind, view.amount, view.withdrawal_id, view.inputs) == \
        ("awaiting_signatures", "withdrawal", 2_000_000, wid, 1)
    assert _coins()[(coin, 0)] == ("cold", "reserved", view.txid)
    assert staff.prepare_psbt(e.admin_b[0], wid, e.ctx).id == view.id  # prepared once
    assert len(audit_rows("withdrawal.psbt_prepared")) == 1

    first = e.upload(e.admin_a, view, a)
    assert (first.cosigner, first.recorded, first.view.signed_by) == \
        (a.fingerprint, None, (e.admin_a[1],))
    # the same admin again, with another cosigner's device: counted once
    with pytest.raises(ValidationFailed, match="You already approved this payment"):
        e.upload(e.admin_a, view, b)
    # another admin bringing the cosigner already counted: refused too
    with pytest.raises(ValidationFailed, match=f"Cosigner {a.fingerprint} already signed"):
        e.upload(e.admin_b, view, a)
    assert e.node.transaction(view.txid) is None  # nothing broadcast with one approval
    with ledger_tx(readonly=True) as s:
        w = s.get(Withdrawal, wid)
        assert (w.state, w.approved_by, w.approved_by_2) == \
            ("awaiting_approval", e.admin_a[1], None)

    second = e.upload(e.admin_b, view, c)
    assert second.recorded is not None and second.view.state == "sent"
    assert e.node.transaction(view.txid) is not None  # broadcast: the node took it
    with ledger_tx(readonly=True) as s:
        w = s.get(Withdrawal, wid)
        assert (w.state, w.approved_by, w.approved_by_2) == \
            ("batched", e.admin_a[1], e.admin_b[1])
        sigs = s.execute(select(BtcColdSignature.cosigner, BtcColdSignature.staff_id).where(
            BtcColdSignature.payment_id == view.id).order_by(BtcColdSignature.id)).all()
        assert [tuple(r) for r in sigs] == [(a.fingerprint, e.admin_a[1]),
                                            (c.fingerprint, e.admin_b[1])]
    mined = e.node.rpc.raw_transaction(view.txid)
    assert len(mined.inputs) == 1  # the counted cosigners' witness: 2-of-3, a and c

    cold = e.sender()
    e.mine(1)
    assert cold.run().paid == 0  # 1 of 2 confirmations
    e.mine(1)
    res = cold.run()
    assert (res.confirmed, res.paid) == (1, 1)
    assert _received(e.node, to) == 2_000_000  # exactly the amount
    assert withdrawals.get_withdrawal(wid).state == "confirmed"
    assert cold_payments.get_payment(view.id).state == "confirmed"
    assert _entries(f"withdrawal:{wid}#post") == [f"withdrawal:{wid}#post"]  # posted once
    assert _entries(f"btc-fee:bitcoin:{view.txid}") == [f"btc-fee:bitcoin:{view.txid}"]
    after = _balance("p-big", "BTC")
    assert (after.balance, after.reserved) == (before.balance - 2_000_000 - FEE, 0)
    # the spent cold coin and the cold change, as the watcher recorded them
    coins = _coins()
    assert coins[(coin, 0)] == ("cold", "spent", view.txid)
    change = [k for k, v in coins.items() if k[0] == view.txid]
    assert [coins[k][:2] for k in change] == [("cold", "unspent")]
    assert cold.run().paid == 0 and _entries(f"withdrawal:{wid}#post") != []  # once
    assert [len(audit_rows(a)) for a in ("withdrawal.approved", "withdrawal.paid")] == [2, 1]
    _invariants_clean()


def test_one_admin_uploading_two_cosigners_signatures_counts_once(env: Env) -> None:
    e = env
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-one")
    a, b, _c = e.signers
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    both_keys = e.upload(e.admin_a, view, a, b)  # one file, two devices, one person
    assert (both_keys.cosigner, both_keys.not_counted, both_keys.recorded) == \
        (a.fingerprint, (b.fingerprint,), None)
    assert both_keys.view.spendable_uploads  # whoever holds that file could broadcast it
    assert e.node.transaction(view.txid) is None
    with pytest.raises(ValidationFailed, match="already approved"):
        e.upload(e.admin_a, view, b)
    # the database refuses a second approval by the same admin, and a cosigner twice
    with ledger_tx(readonly=True) as s:
        row = s.execute(select(BtcColdSignature)).scalar_one()
        counted = (row.psbt, row.seen)
    for cosigner, staff_id in ((b.fingerprint, e.admin_a[1]),
                               (a.fingerprint, e.admin_b[1])):
        with pytest.raises(IntegrityError), ledger_tx() as s:
            s.add(BtcColdSignature(payment_id=view.id, cosigner=cosigner, staff_id=staff_id,
                                   psbt=counted[0], seen=counted[1]))
            s.flush()
    # the counted PSBT holds cosigner a's signatures only
    stored = psbt.check_signed(e.cold, base64.b64decode(view.psbt), counted[0])
    assert stored.signers == (a.fingerprint,)
    _invariants_clean()


def test_four_eyes_holds_in_the_database_on_both_engines(both: Env) -> None:
    e = both
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-db")
    view = cold_payments.prepare_withdrawal(wid, e.admin_a[1])
    first = cold_payments.add_signature(view.id, e.admin_a[1],
                                        e.signers[0].sign(view.psbt))
    assert first.recorded is None
    with pytest.raises(cold_payments.AlreadySigned):
        cold_payments.add_signature(view.id, e.admin_a[1], e.signers[1].sign(view.psbt))
    with ledger_tx(readonly=True) as s:
        row = s.execute(select(BtcColdSignature)).scalar_one()
        stored = (row.psbt, row.seen)
    with pytest.raises(IntegrityError), ledger_tx() as s:  # same admin, other cosigner
        s.add(BtcColdSignature(payment_id=view.id, cosigner=e.signers[1].fingerprint,
                               staff_id=e.admin_a[1], psbt=stored[0], seen=stored[1]))
        s.flush()
    with pytest.raises(IntegrityError), ledger_tx() as s:  # approvals by one person
        s.execute(select(Withdrawal).where(Withdrawal.id == wid)).scalar_one() \
            .approved_by_2 = e.admin_a[1]
        s.flush()
    with pytest.raises(IntegrityError), ledger_tx() as s:  # two live payments
        p = s.get(BtcColdPayment, view.id)
        s.add(BtcColdPayment(chain="bitcoin", kind="withdrawal", withdrawal_id=wid,
                             active_withdrawal_id=wid, amount=1, recipient=p.recipient,
                             txid="00" * 32, psbt=p.psbt, inputs="[]", fee=1, vsize=1,
                             fee_rate=1, change_value=0, required=2,
                             state="awaiting_signatures", requested_by=e.admin_b[1]))
        s.flush()
    _invariants_clean()


def test_refused_uploads_change_nothing(env: Env) -> None:
    from embit import ec
    from embit.transaction import SIGHASH

    e = env
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-refused")
    a = e.signers[0]
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    reference = base64.b64decode(view.psbt)

    def pay_more(p: Any) -> None:
        p.outputs[0].value += 10_000
        p.outputs[1].value -= 10_000

    key = ec.PrivateKey(secrets.token_bytes(32))

    def foreign(p: Any) -> None:
        inp = p.inputs[0]
        digest = p.tx.sighash_segwit(0, inp.witness_script, inp.witness_utxo.value,
                                     SIGHASH.ALL)
        inp.partial_sigs[key.get_public_key()] = key.sign(digest).serialize() + b"\x01"

    outsider = TestCosigner(OUTSIDER, NETWORK)
    uploads = {
        "altered outputs": (a.sign(_edit(reference, pay_more)), "not the transaction we "
                                                                "built .output 0 pays"),
        "a foreign key": (_edit(a.sign(reference), foreign), "not one of the cold wallet's"),
        "unsigned": (reference, "carries no signature"),
        "garbage": (b"not a psbt at all", "not a PSBT"),
        "truncated": (a.sign(reference)[:-7], "cut short|bytes after"),
    }
    before = _fingerprint()
    for label, (data, message) in uploads.items():
        with pytest.raises(ValidationFailed, match=message) as info:
            staff.upload_psbt(e.admin_a[0], view.id, base64.b64encode(data).decode(),
                              e.ctx)
        assert info.value.field == "psbt", label
        assert _fingerprint() == before, f"{label} changed something"
    with pytest.raises(AssertionError):  # an outsider's device has nothing to sign
        outsider.sign(reference)
    for junk in ("", "   ", "x" * (staff.MAX_PSBT_TEXT + 1), 42, None):
        with pytest.raises(ValidationFailed):
            staff.upload_psbt(e.admin_a[0], view.id, junk, e.ctx)
    for bad_id in ("1", -1, 0, True, 2**40):
        with pytest.raises(ValidationFailed, match="No such cold payment"):
            staff.upload_psbt(e.admin_a[0], bad_id, view.psbt, e.ctx)
    assert _fingerprint() == before
    # the right upload is still accepted afterwards
    assert e.upload(e.admin_a, view, a).cosigner == a.fingerprint
    _invariants_clean()


def test_support_and_players_cannot_prepare_sign_or_refill(env: Env) -> None:
    from casino_app.users.errors import Forbidden, NotAuthenticated
    from tests.users.helpers import register

    e = env
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-roles")
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    signed = base64.b64encode(e.signers[0].sign(view.psbt)).decode()
    player, _ = register()
    before = _fingerprint()
    for token, error in ((e.support[0], Forbidden), (player, Forbidden),
                         (None, NotAuthenticated)):
        with pytest.raises(error):
            staff.prepare_psbt(token, wid, e.ctx)
        with pytest.raises(error):
            staff.upload_psbt(token, view.id, signed, e.ctx)
        with pytest.raises(error):
            staff.request_btc_refill(token, "0.01", e.ctx)
        with pytest.raises(error):
            staff.cancel_btc_refill(token, view.id, "no", e.ctx)
    assert _fingerprint() == before
    q = staff.withdrawal_queue(e.support[0])  # support reads the queue and the PSBT
    [item] = [i for i in q.items if i.withdrawal.view.id == wid]
    assert item.cold is not None and item.cold.psbt == view.psbt
    assert q.cold_wallet.startswith("2 of 3: ")


def test_a_player_on_hold_is_neither_prepared_nor_approved(env: Env) -> None:
    from casino_app.payments.hold_models import PlayerHold

    e = env
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-hold")
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    with ledger_tx() as s:
        s.add(PlayerHold(player_id="p-hold", reason="reorg_debt", detail="test"))
    before = _fingerprint()
    with pytest.raises(ValidationFailed, match="under staff review"):
        e.upload(e.admin_a, view, e.signers[0])
    assert _fingerprint() == before
    staff.reject_withdrawal(e.admin_a[0], wid, "hold", e.ctx)  # rejecting is allowed
    wid2, _ = e.large("p-hold2")
    with ledger_tx() as s:
        s.add(PlayerHold(player_id="p-hold2", reason="reorg_debt", detail="test"))
    with pytest.raises(ValidationFailed, match="under staff review"):
        staff.prepare_psbt(e.admin_a[0], wid2, e.ctx)
    _invariants_clean()


# --- refills ---------------------------------------------------------------------------------

def test_a_refill_from_cold_reaches_the_hot_wallet_and_books_only_the_fee(env: Env) -> None:
    e = env
    e.fund_cold(4_000_000)
    custody = _house("custody")
    view = staff.request_btc_refill(e.admin_a[0], "0.015", e.ctx)
    assert (view.kind, view.amount, view.recipient) == \
        ("refill", 1_500_000, signer.hot_address(NETWORK))
    a, b, _c = e.signers
    e.upload(e.admin_a, view, a)
    assert e.upload(e.admin_b, view, b).recorded is not None
    e.mine(CONFIRMATIONS)
    assert e.sender().run().confirmed == 1
    with ledger_tx(readonly=True) as s:
        hot = s.execute(select(BtcUtxo).where(BtcUtxo.txid == view.txid,
                                              BtcUtxo.role == "hot")).scalar_one()
        assert (hot.amount, hot.state) == (1_500_000, "unspent")
    refill = cold_payments.get_payment(view.id)
    assert refill.state == "confirmed"
    # both wallets are custody: only the miner fee moved in the books
    assert _house("custody") - custody == refill.fee
    assert [len(audit_rows(x)) for x in ("refill.requested", "refill.approved",
                                         "refill.paid")] == [1, 2, 1]
    _invariants_clean()


def test_a_refill_is_cancelled_before_its_approvals_and_its_coins_are_free(env: Env) -> None:
    e = env
    coin = e.fund_cold(4_000_000)
    view = staff.request_btc_refill(e.admin_a[0], "0.01", e.ctx)
    e.upload(e.admin_a, view, e.signers[0])
    with pytest.raises(ValidationFailed, match="Say why"):
        staff.cancel_btc_refill(e.admin_b[0], view.id, " ", e.ctx)
    done = staff.cancel_btc_refill(e.admin_b[0], view.id, "not needed", e.ctx)
    assert done.state == "cancelled"
    assert _coins()[(coin, 0)] == ("cold", "unspent", None)
    with pytest.raises(ValidationFailed, match="cancelled"):
        e.upload(e.admin_b, view, e.signers[1])
    assert len(audit_rows("refill.cancelled")) == 1
    # Asked again the same way (same coin, amount, rate): another transaction (its lock
    # time differs), so a signature made for the cancelled one does not count for it.
    again = staff.request_btc_refill(e.admin_a[0], "0.01", e.ctx)
    assert again.txid != view.txid
    old_file = e.signers[0].sign(view.psbt)
    with pytest.raises(ValidationFailed):
        staff.upload_psbt(e.admin_a[0], again.id, base64.b64encode(old_file).decode(), e.ctx)
    assert cold_payments.get_payment(again.id).signatures == ()


# --- taking back ---------------------------------------------------------------------------------

def test_rejecting_a_withdrawal_with_an_unsigned_psbt_frees_coins_and_money(env: Env) -> None:
    e = env
    coin = e.fund_cold(3_000_000)
    wid, _ = e.large("p-rej")
    before = _balance("p-rej", "BTC")
    assert before.reserved == 2_000_000 + FEE
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    e.upload(e.admin_a, view, e.signers[0])  # one cosigner: it cannot be broadcast
    out = staff.reject_withdrawal(e.admin_b[0], wid, "source of funds", e.ctx)
    assert out.state == "rejected"
    assert _coins()[(coin, 0)] == ("cold", "unspent", None)
    assert cold_payments.get_payment(view.id).state == "cancelled"
    after = _balance("p-rej", "BTC")
    assert (after.balance, after.reserved) == (before.balance, 0)
    # the coin pays the next payment
    wid2, _ = e.large("p-next")
    assert staff.prepare_psbt(e.admin_a[0], wid2, e.ctx).inputs == 1
    _invariants_clean()


def _finalised(e: Env, view: ColdPaymentView, *devices: TestCosigner) -> str:
    """What anyone holding the uploads could do: finalise and broadcast it."""
    data: bytes | str = view.psbt
    for d in devices:
        data = d.sign(data)
    final = psbt.finalize(e.cold, base64.b64decode(view.psbt), [data])
    e.node.rpc.send_raw_transaction(final.raw)
    return final.txid


def test_a_fully_signed_upload_cannot_be_taken_back_and_is_paid_if_broadcast(env: Env
                                                                              ) -> None:
    e = env
    coin = e.fund_cold(3_000_000)
    wid, to = e.large("p-held")
    a, b, _c = e.signers
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    e.upload(e.admin_a, view, a, b)  # counted once, but the file can be broadcast
    out = staff.reject_withdrawal(e.admin_b[0], wid, "changed my mind", e.ctx)
    assert out.state == "rejecting"
    assert _balance("p-held", "BTC").reserved == 2_000_000 + FEE  # still reserved
    assert _coins()[(coin, 0)] == ("cold", "reserved", view.txid)
    assert cold_payments.get_payment(view.id).state == "cancelling"
    with pytest.raises(ValidationFailed, match="being cancelled"):
        e.upload(e.admin_b, view, _c)
    # someone holding the file broadcasts it
    assert _finalised(e, view, a, b) == view.txid
    e.mine(CONFIRMATIONS)
    cold = e.sender()
    cold.run()
    e.mine(1)  # the settling needs its confirmations from the block that mined it
    cold.run()
    assert withdrawals.get_withdrawal(wid).state == "confirmed"
    assert cold_payments.get_payment(view.id).state == "confirmed"
    assert _received(e.node, to) == 2_000_000
    assert _entries(f"withdrawal:{wid}#post") == [f"withdrawal:{wid}#post"]
    assert len(audit_rows("btc.cold_rejected_payment_executed")) == 1
    _invariants_clean()


def test_a_double_spend_to_the_cold_wallet_cancels_a_held_payment(env: Env) -> None:
    e = env
    coin = e.fund_cold(3_000_000)
    wid, _ = e.large("p-ds")
    before = _balance("p-ds", "BTC")
    a, b, c = e.signers
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    e.upload(e.admin_a, view, a, c)
    assert staff.reject_withdrawal(e.admin_b[0], wid, "fraud", e.ctx).state == "rejecting"
    # staff spend the coin back to a new cold address with two cosigners (Sparrow etc.)
    final = _spend_back_to_cold(e, coin, b, c)
    res = e.sender().run()
    assert res.voided == 1
    assert cold_payments.get_payment(view.id).state == "cancelled"
    w = withdrawals.get_withdrawal(wid)
    assert w.state == "rejected"
    after = _balance("p-ds", "BTC")
    assert (after.balance, after.reserved) == (before.balance, 0)
    assert _coins()[(coin, 0)] == ("cold", "spent", final.txid)
    assert _coins()[(final.txid, 0)][:2] == ("cold", "unspent")  # back in the cold wallet
    assert len(audit_rows("btc.cold_payment_cancelled")) == 1
    _invariants_clean()


def test_a_sent_payment_whose_coin_was_spent_elsewhere_fails_and_waits_for_new_approvals(
        env: Env) -> None:
    e = env
    coin = e.fund_cold(3_000_000)
    wid, to = e.large("p-lost")
    a, b, c = e.signers
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    e.upload(e.admin_a, view, a)
    _second_upload_dies_before_broadcast(e, view, c)
    # before the job rebroadcasts it, two cosigners spend the coin back to cold elsewhere
    _spend_back_to_cold(e, coin, b, c)
    cold = e.sender()
    assert cold.run().failed == 1
    p = cold_payments.get_payment(view.id)
    assert p.state == "failed" and "spent by another transaction" in (p.failure or "")
    with ledger_tx(readonly=True) as s:
        w = s.get(Withdrawal, wid)
        # waits for a new payment and two new approvals
        assert (w.state, w.approved_by, w.approved_by_2) == ("awaiting_approval", None, None)
    assert _balance("p-lost", "BTC").reserved == 2_000_000 + FEE  # still the player's
    assert len(audit_rows("btc.cold_payment_failed")) == 1
    assert _received(e.node, to) == 0
    # paid from the coin the cold wallet holds now, once, after two new approvals
    again = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    assert again.id != view.id
    e.upload(e.admin_a, again, a)
    e.upload(e.admin_b, again, b)
    e.mine(CONFIRMATIONS)
    assert cold.run().paid == 1
    assert _received(e.node, to) == 2_000_000
    assert _entries(f"withdrawal:{wid}#post") == [f"withdrawal:{wid}#post"]
    _invariants_clean()


def test_a_stuck_cold_payment_is_alerted_and_a_replacement_signed_by_hand_settles_it(
        env: Env) -> None:
    """Only the cosigners can raise a cold payment's fee: one not mined in time is
    alerted (once an hour), staff sign a replacement (same coin, same payment, less
    change to the same cold change address) and it is mined instead (through a reorg:
    bcoin's mempool refuses replacements). It settles the payment once, with its fee."""
    from prometheus_client import REGISTRY

    from casino_app.payments.btc import keys
    from casino_app.payments.btc.sender import Plan

    def stuck() -> float:
        return REGISTRY.get_sample_value("casino_btc_payment_anomalies_total",
                                         {"anomaly": "cold_payment_stuck"}) or 0.0

    e = env
    coin = e.fund_cold(3_000_000)
    e.mine(1)  # a block above the funding that the reorg below can replace
    wid, to = e.large("p-stuck")
    a, b, c = e.signers
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    e.upload(e.admin_a, view, a)
    e.upload(e.admin_b, view, b)
    assert e.node.transaction(view.txid) is not None  # broadcast, in the mempool
    cold = ColdSender(e.rpc, confirmations=CONFIRMATIONS, fee_bump_seconds=0)
    before = stuck()
    assert cold.run().anomalies == 1 and stuck() == before + 1
    assert cold.run().anomalies == 0 and stuck() == before + 1  # not again within the hour
    with ledger_tx(readonly=True) as s:
        plan = Plan.from_json(s.execute(select(WithdrawalBatch.call_data)).scalar_one())
    bump = psbt.build_psbt(e.cold, [psbt.ColdUtxo(coin, 0, 3_000_000,
                                                  e.cold.receive_address(0).script_pubkey,
                                                  0, 0)],
                           [psbt.Payment(keys.validate_address(to, NETWORK).script_pubkey,
                                         2_000_000)],
                           fee_rate=3 * view.fee_rate, change_index=plan.change_index or 0)
    final = psbt.finalize(e.cold, bump.psbt, [c.sign(a.sign(bump.psbt))])
    assert final.txid != view.txid and bump.fee > view.fee
    e.node.reorg(1, txs=[final.raw])  # the replacement is mined instead of the original
    e.watcher.poll()
    e.mine(CONFIRMATIONS)
    res = cold.run()
    assert (res.confirmed, res.paid) == (1, 1)
    assert cold_payments.get_payment(view.id).state == "confirmed"
    assert withdrawals.get_withdrawal(wid).state == "confirmed"
    assert e.node.transaction(view.txid) is None  # the original never was mined
    assert _received(e.node, to) == 2_000_000
    assert _entries(f"withdrawal:{wid}#post") == [f"withdrawal:{wid}#post"]
    assert _house("fees") == FEE - bump.fee  # the replacement's miner fee, once
    assert _coins()[(final.txid, 1)][:2] == ("cold", "unspent")  # the change, back in cold
    assert not any(cold.run().as_dict().values())
    _invariants_clean()


# --- crashes ---------------------------------------------------------------------------------

def test_a_crash_between_recording_and_broadcast_pays_once(env: Env) -> None:
    e = env
    e.fund_cold(3_000_000)
    wid, to = e.large("p-crash")
    view = staff.prepare_psbt(e.admin_a[0], wid, e.ctx)
    e.upload(e.admin_a, view, e.signers[0])
    _second_upload_dies_before_broadcast(e, view, e.signers[2])
    # recorded (and audited) before the crash, never broadcast
    assert cold_payments.get_payment(view.id).state == "sent"
    assert withdrawals.get_withdrawal(wid).state == "batched"
    assert e.node.transaction(view.txid) is None
    assert len(audit_rows("withdrawal.approved")) == 2
    cold = e.sender()
    assert cold.run().rebroadcast == 1  # the same bytes
    assert e.node.transaction(view.txid) is not None
    assert cold.run().rebroadcast == 0  # the node has it: not sent again
    e.mine(CONFIRMATIONS)
    assert cold.run().paid == 1
    assert cold.run().paid == 0
    assert _received(e.node, to) == 2_000_000
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(func.count()).select_from(WithdrawalBatch)).scalar_one() == 1
    assert _entries(f"withdrawal:{wid}#post") == [f"withdrawal:{wid}#post"]
    _invariants_clean()


def test_the_cold_step_runs_with_the_btc_batch_job(env: Env, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    from casino_app.jobs.builtin import builtin_jobs
    from casino_app.payments.btc import batcher, cold_sender

    monkeypatch.setattr(batcher, "_batcher", None)
    monkeypatch.setattr(cold_sender, "_sender", None)
    e = env
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-job")
    view = cold_payments.prepare_withdrawal(wid, e.admin_a[1])
    cold_payments.add_signature(view.id, e.admin_a[1], e.signers[0].sign(view.psbt))
    rec = cold_payments.add_signature(view.id, e.admin_b[1], e.signers[1].sign(view.psbt))
    assert rec.recorded is not None  # recorded; nobody broadcast it
    job = {j.name: j for j in builtin_jobs()}["btc-batch"]
    assert job.func()["cold_rebroadcast"] == 1
    e.mine(CONFIRMATIONS)
    assert job.func()["cold_paid"] == 1
    _invariants_clean()


# --- the staff page's state -------------------------------------------------------------------

def _page(token: str) -> Any:
    from tests.ui.test_staff_withdrawals_state import _state

    return _state(token)


def _act(state: Any, name: str, *args: Any) -> None:
    from tests.ui.test_staff_withdrawals_state import _run

    _run(state, name, *args)


def test_the_staff_page_prepares_shows_and_takes_the_signed_psbts(env: Env) -> None:
    e = env
    e.fund_cold(3_000_000)
    wid, _ = e.large("p-page")
    page_a, page_b = _page(e.admin_a[0]), _page(e.admin_b[0])
    _act(page_a, "on_open")
    [row] = page_a.awaiting
    assert (row.chain, row.needs_psbt, row.needs_prepare, row.has_psbt) == \
        ("bitcoin", True, False, False)
    assert page_a.cold_wallet.startswith("2 of 3: ")
    _act(page_a, "prepare_psbt", {"withdrawal_id": str(wid)})
    assert page_a.message == "" and "PSBT #" in page_a.notice
    [row] = page_a.awaiting
    shown = row.psbt
    assert (row.needs_psbt, row.has_psbt, shown.can_sign, shown.signatures) == \
        (False, True, True, "0 of 2")
    assert shown.qr.startswith("data:image/svg+xml;base64,")  # one input: fits a QR
    assert shown.href == "data:application/octet-stream;base64," + shown.base64
    assert shown.filename.endswith(".psbt") and shown.txid in row.psbt.txid
    signed = base64.b64encode(e.signers[0].sign(shown.base64)).decode()
    _act(page_a, "upload_psbt", {"payment_id": str(shown.payment_id), "psbt": signed})
    assert page_a.message == "" and "(1 of 2)" in page_a.notice
    assert page_a.awaiting[0].approvals == f"#{e.admin_a[1]}"
    # a refused upload says why and changes nothing
    before = _fingerprint()
    _act(page_b, "on_open")
    _act(page_b, "upload_psbt", {"payment_id": str(shown.payment_id), "psbt": signed})
    assert "already signed" in page_b.message and _fingerprint() == before
    _act(page_b, "upload_psbt", {"payment_id": str(shown.payment_id), "psbt": "hello"})
    assert "Upload refused" in page_b.message and _fingerprint() == before
    # the binary file as the page's script reads it (base64), by the second admin
    file_text = base64.b64encode(e.signers[1].sign(shown.base64)).decode()
    _act(page_b, "upload_psbt", {"payment_id": str(shown.payment_id), "psbt": file_text})
    assert "recorded and broadcast" in page_b.notice
    assert page_b.awaiting == []
    [flying] = page_b.in_flight
    assert (flying.id, flying.state, flying.tx) == (wid, "batched", shown.txid)
    assert flying.psbt.progress.startswith("broadcast") and flying.psbt.base64 == ""
    _invariants_clean()


def test_the_web_side_never_imports_the_signer_or_the_sender() -> None:
    """The staff page and its services (preparing, checking, combining, broadcasting)
    need no private key: the web process never imports the signer, nor the hot wallet's
    sender."""
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys, casino_app.ui.pages.staff_withdrawals, "
             "casino_app.payments.btc.cold_payments, casino_app.users.staff_withdrawals; "
             "print(sorted(m for m in sys.modules if m.startswith('casino_app.payments.signer')"
             " or m.startswith('casino_app.payments.btc.s') or m.endswith('cold_sender')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip().splitlines()[-1] == "[]"
