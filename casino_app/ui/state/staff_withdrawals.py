"""The staff withdrawal queue (``routes.STAFF_WITHDRAWALS``): every withdrawal in flight
and the recent ones, Ethereum and Bitcoin; admins approve large ones (Ethereum: their Safe
owner signature; Bitcoin: the PSBT their cosigner's device signed, uploaded), reject
them, and ask for hot-wallet refills from the cold wallets (the Safe; the Bitcoin
multisig, by PSBT). Support reads the queue only.

Every handler calls one ``users.staff_withdrawals`` function with the caller's session
token (``money_call``): the service re-checks the role and 2FA on the server, audits, and
refuses support staff with a message to read; a caller who is not staff is redirected.
Form values are passed on as typed (ids from hidden fields as digits); the service
validates them.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import reflex as rx

from casino_app.payments.btc import psbt as btc_psbt
from casino_app.payments.btc.cold_payments import ColdPaymentView, cancelling_note
from casino_app.payments.currencies import currency
from casino_app.payments.eth import safe_payments
from casino_app.ui import routes
from casino_app.ui.state.bets import fmt_when
from casino_app.ui.state.deposits import short_hash
from casino_app.ui.state.session import form_value
from casino_app.ui.state.staff_money import money_call
from casino_app.users import staff_withdrawals

REFILL_CURRENCIES = ["ETH", "USDT", "USDC"]


@dataclasses.dataclass
class SafeTxRow:
    """What an owner signs (EIP-712 SafeTx; gas fields and refund 0)."""

    payment_id: int = 0
    pay_state: str = ""
    safe_nonce: int = 0
    safe_hash: str = ""
    to_address: str = ""
    value_wei: str = ""
    call_data: str = ""
    signatures: str = ""       # "1 of 2: #11 (0xOwner...)"
    can_sign: bool = False
    can_cancel: bool = False
    status: str = ""           # what staff must know or do (a cancelling payment), in words


@dataclasses.dataclass
class PsbtRow:
    """A Bitcoin cold payment: the PSBT each approving admin signs on their device."""

    payment_id: int = 0
    state: str = ""            # awaiting_signatures, sent, confirmed, failed, cancelling...
    txid: str = ""
    fee: str = ""              # the miner fee and its rate, in words
    spends: str = ""           # "1 cold coin, 0.05 BTC; change 0.0299811 BTC"
    base64: str = ""           # the PSBT to sign, as text
    qr: str = ""               # its QR code (an SVG data URI), "" when too large for one
    href: str = ""             # the .psbt file, as a data URI to download
    filename: str = ""
    signatures: str = ""       # "1 of 2: #11 (cosigner 397a4a50)"
    progress: str = ""         # once approved: recorded, broadcast, confirmed
    can_sign: bool = False
    can_cancel: bool = False
    status: str = ""           # a cancelling payment: what staff must do, in words


@dataclasses.dataclass
class WithdrawalRow:
    id: int
    user_id: int
    player_link: str
    currency: str
    amount: str
    fee: str
    address: str
    state: str
    when: str
    tx: str
    tx_short: str
    approvals: str
    failure: str
    needs_prepare: bool
    has_safe_tx: bool
    safe: SafeTxRow
    note: str = ""             # a rejecting withdrawal: why its money is still reserved
    chain: str = ""            # ethereum or bitcoin
    needs_psbt: bool = False   # a large Bitcoin one with no live cold payment
    has_psbt: bool = False
    psbt: PsbtRow = dataclasses.field(default_factory=PsbtRow)


@dataclasses.dataclass
class RefillRow:
    id: int
    currency: str
    amount: str
    when: str
    requested_by: str
    tx: str
    tx_short: str
    failure: str
    safe: SafeTxRow


@dataclasses.dataclass
class BtcRefillRow:
    id: int
    amount: str
    when: str
    requested_by: str
    failure: str
    psbt: PsbtRow


def fmt_amount(code: str, amount: int) -> str:
    """As every page shows an amount (``Currency.format``: never rounded, so staff still
    approve exact amounts)."""
    try:
        cur = currency(code)
    except ValueError:
        return str(amount)
    return cur.format(amount)


def _safe_row(p: safe_payments.SafePaymentView | None) -> SafeTxRow:
    if p is None:
        return SafeTxRow()
    signed = ", ".join(f"#{s.staff_id} ({s.owner[:8]}…)" for s in p.signatures)
    return SafeTxRow(p.id, p.state, p.safe_nonce, p.safe_tx_hash, p.to, str(p.value_wei),
                     p.data, f"{len(p.signatures)} of {p.required}"
                     + (f": {signed}" if signed else ""),
                     p.state == "awaiting_signatures",
                     p.kind == "refill" and p.state in ("awaiting_signatures", "ready"),
                     safe_payments.cancelling_note(p.safe_nonce)
                     if p.state == "cancelling" else "")


_PROGRESS = {"signed": "recorded, being broadcast", "sent": "broadcast, waiting for its "
             "confirmations", "confirmed": "confirmed", "failed": "failed"}


def psbt_row(p: ColdPaymentView | None) -> PsbtRow:
    if p is None:
        return PsbtRow()
    signed = ", ".join(f"#{s.staff_id} (cosigner {s.cosigner})" for s in p.signatures)
    signing = p.state == "awaiting_signatures"
    raw = base64.b64decode(p.psbt) if signing else b""
    progress = _PROGRESS.get(p.batch_state or "", "")
    if p.block and p.batch_state == "confirmed":
        progress += f" in block {p.block}"
    return PsbtRow(
        p.id, p.state, p.txid,
        f"{fmt_amount('BTC', p.fee)} BTC ({p.fee_rate} sat/vB, at most {p.vsize} vB)",
        f"{p.inputs} cold coin{'s' if p.inputs != 1 else ''}, "
        f"{fmt_amount('BTC', p.input_total)} BTC"
        + (f"; change {fmt_amount('BTC', p.change_value)} BTC back to cold"
           if p.change_value else ""),
        p.psbt if signing else "", (btc_psbt.qr_svg(raw) or "") if signing else "",
        "data:application/octet-stream;base64," + p.psbt if signing else "",
        p.filename, f"{len(p.signatures)} of {p.required}" + (f": {signed}" if signed else ""),
        progress, signing, p.kind == "refill" and signing,
        cancelling_note(p) if p.state == "cancelling" else "")


def withdrawal_row(item: staff_withdrawals.QueueItem) -> WithdrawalRow:
    w, v = item.withdrawal, item.withdrawal.view
    live = item.payment if item.payment is not None and item.payment.state in (
        "awaiting_signatures", "ready", "sent", "confirmed", "cancelling") else None
    cold = item.cold if item.cold is not None and item.cold.state in (
        "awaiting_signatures", "sent", "confirmed", "cancelling") else None
    bitcoin = v.currency == "BTC"
    approvals = ", ".join(f"#{a}" for a in (w.approved_by, w.approved_by_2) if a)
    safe = _safe_row(live)
    psbt = psbt_row(cold)
    status = psbt.status or safe.status
    return WithdrawalRow(
        v.id, item.user_id or 0, routes.staff_player(item.user_id) if item.user_id else "",
        v.currency, fmt_amount(v.currency, v.amount), fmt_amount(v.currency, v.fee),
        v.address, v.state, fmt_when(v.created_at), v.tx_hash or "",
        short_hash(v.tx_hash or ""), approvals, v.failure or "",
        not bitcoin and v.state == "awaiting_approval" and live is None, live is not None,
        safe, status + " The player's money stays reserved until then."
        if v.state == "rejecting" and status else "",
        "bitcoin" if bitcoin else "ethereum",
        bitcoin and v.state == "awaiting_approval" and cold is None, cold is not None, psbt)


def btc_refill_row(p: ColdPaymentView) -> BtcRefillRow:
    return BtcRefillRow(p.id, fmt_amount("BTC", p.amount), fmt_when(p.created_at),
                        f"#{p.requested_by}", p.failure or "", psbt_row(p))


def refill_row(p: safe_payments.SafePaymentView) -> RefillRow:
    return RefillRow(p.id, p.currency, fmt_amount(p.currency, p.amount),
                     fmt_when(p.created_at), f"#{p.requested_by}", p.tx_hash or "",
                     short_hash(p.tx_hash or ""), p.failure or "", _safe_row(p))


def _id(value: object) -> object:
    """A hidden field's id (decimal text) as an int; anything else as it came (refused by
    the service)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    return value


class StaffWithdrawalsState(rx.State):
    loaded: bool = False
    awaiting: list[WithdrawalRow] = []
    in_flight: list[WithdrawalRow] = []
    recent: list[WithdrawalRow] = []
    refills: list[RefillRow] = []
    btc_refills: list[BtcRefillRow] = []
    safe: str = ""
    chain_id: int = 0
    cold_wallet: str = ""           # "2 of 3: fingerprints" ("" when not configured)
    currencies: list[str] = REFILL_CURRENCIES
    errors: dict[str, str] = {}
    message: str = ""
    notice: str = ""
    form_key: int = 0

    async def _load(self) -> Any:
        out = await money_call(self, routes.STAFF_WITHDRAWALS,
                               staff_withdrawals.withdrawal_queue, with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        q = out.value
        rows = [withdrawal_row(i) for i in q.items]
        self.awaiting = [r for r in rows if r.state == "awaiting_approval"]
        self.in_flight = [r for r in rows if r.state in ("queued", "batched", "rejecting")]
        self.recent = [r for r in rows if r.state in ("confirmed", "failed", "rejected")]
        self.refills = [refill_row(p) for p in q.refills]
        self.btc_refills = [btc_refill_row(p) for p in q.btc_refills]
        self.safe, self.chain_id, self.cold_wallet = q.safe, q.chain_id, q.cold_wallet
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        self.loaded, self.message, self.notice, self.errors = False, "", "", {}
        return await self._load()

    @rx.event
    async def refresh(self):
        self.message, self.notice = "", ""
        return await self._load()

    async def _act(self, fn, *args: Any, done: str | Callable[[Any], str]  # noqa: ANN001
                   ) -> Any:
        self.message, self.notice, self.errors = "", "", {}
        out = await money_call(self, routes.STAFF_WITHDRAWALS, fn, *args)
        if not out.ok:
            if out.event is not None:
                return out.event
            if out.field in ("currency", "amount", "btc_amount"):
                self.errors = {out.field: out.error}
            else:
                self.message = out.error
            return await self._load()
        redirect = await self._load()
        self.notice = done(out.value) if callable(done) else done.format(v=out.value)
        self.form_key += 1
        return redirect

    @rx.event
    async def prepare(self, form: dict):
        """Admins: build the Safe transaction of a large withdrawal (its hash to sign)."""
        return await self._act(staff_withdrawals.prepare_withdrawal,
                               _id(form_value(form, "withdrawal_id")),
                               done="Safe transaction #{v.id} prepared (Safe nonce "
                                    "{v.safe_nonce}). Owners sign its hash below.")

    @rx.event
    async def sign(self, form: dict):
        """Admins: approve with an owner signature of the payment's safeTxHash."""
        out = await self._act(staff_withdrawals.sign_payment,
                              _id(form_value(form, "payment_id")),
                              form_value(form, "signature"),
                              done="Signature accepted for Safe transaction #{v.id}.")
        return out

    @rx.event
    async def reject(self, form: dict):
        return await self._act(staff_withdrawals.reject_withdrawal,
                               _id(form_value(form, "withdrawal_id")),
                               form_value(form, "reason"),
                               done=lambda v: f"Withdrawal #{v.id} rejected: the player's money "
                               "is available again." if v.state == "rejected" else
                               f"Withdrawal #{v.id} rejected, but its cold payment was "
                               "already signed: the money stays reserved until the payment "
                               "can no longer be made (see Queued and sending).")

    @rx.event
    async def request_refill(self, form: dict):
        return await self._act(staff_withdrawals.request_refill,
                               form_value(form, "currency"), form_value(form, "amount"),
                               done="Refill #{v.id} requested (Safe nonce {v.safe_nonce}). "
                                    "Two admins sign it below.")

    @rx.event
    async def cancel_refill(self, form: dict):
        return await self._act(staff_withdrawals.cancel_refill,
                               _id(form_value(form, "payment_id")),
                               form_value(form, "reason"),
                               done=lambda v: f"Refill #{v.id} cancelled." if v.state ==
                               "cancelled" else f"Refill #{v.id}: "
                               + safe_payments.cancelling_note(v.safe_nonce))

    # --- Bitcoin: cold payments by PSBT ---

    @rx.event
    async def prepare_psbt(self, form: dict):
        """Admins: build the PSBT paying a large Bitcoin withdrawal from cold."""
        return await self._act(staff_withdrawals.prepare_psbt,
                               _id(form_value(form, "withdrawal_id")),
                               done="PSBT #{v.id} prepared. Each approving admin downloads "
                                    "it, signs it with their cosigner's device and uploads "
                                    "the signed file.")

    @rx.event
    async def upload_psbt(self, form: dict):
        """Admins: approve with the PSBT their cosigner's device signed (base64 or hex
        text; the page reads a chosen file into it)."""
        return await self._act(
            staff_withdrawals.upload_psbt, _id(form_value(form, "payment_id")),
            form_value(form, "psbt"),
            done=lambda r: f"Signature of cosigner {r.cosigner} accepted for payment "
            f"#{r.view.id}" + (": both approvals are in, the transaction was recorded and "
                               "broadcast." if r.recorded else
                               f" ({len(r.view.signatures)} of {r.view.required}).")
            + (f" The upload also carried cosigner {', '.join(r.not_counted)}: one person "
               "counts once." if r.not_counted and not r.recorded else ""))

    @rx.event
    async def request_btc_refill(self, form: dict):
        """Admins: a refill of the Bitcoin hot wallet from cold (amount in BTC)."""
        return await self._act(staff_withdrawals.request_btc_refill,
                               form_value(form, "btc_amount"),
                               done="Refill #{v.id} prepared: two admins sign its PSBT "
                                    "below.")

    @rx.event
    async def cancel_btc_refill(self, form: dict):
        return await self._act(staff_withdrawals.cancel_btc_refill,
                               _id(form_value(form, "payment_id")),
                               form_value(form, "reason"),
                               done=lambda v: f"Refill #{v.id} cancelled." if v.state ==
                               "cancelled" else f"Refill #{v.id}: " + cancelling_note(v))
