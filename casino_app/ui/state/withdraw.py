"""The wallet page's withdrawals: the withdraw form (per configured currency: limits, fee,
the resulting total and what is withdrawable) and the player's withdrawal history.

Everything the browser sends is input to check: the currency against the configured ones,
the amount with the currency's own rules, the address (its chain's adapter: EIP-55, or a
Bitcoin address of the configured network) and the limits and balance
by the withdrawal service, the request key by shape. Every handler that reads or moves
money re-checks the caller on the server (``caller``); the second factor (the 2FA code,
else the password or a mailed link, as the player chooses), the account's withdrawal lock
and risk, and the cooling period of new addresses are checked on the server by
``users.withdrawal_guard``, which also writes the audit row. The allow-list card changes
the player's allow-list through the same guard (the code, or the password).

The request key is made by the browser (``WITHDRAW_KEY``): one random key per form,
renewed after each accepted withdrawal (``form_id``). A double click or a websocket
reconnect that resends the submit carries the same key, and the service answers a
repeated key with the first withdrawal. Once queued a withdrawal cannot be cancelled.

The history is refreshed by ui/push.py (through ``DepositsState._pushed``) when a
withdrawal of the player changes: batched, confirmed, failed, rejecting, rejected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
from datetime import datetime
from decimal import Decimal

import reflex as rx

from casino_app.core.clock import utcnow
from casino_app.core.logging import get_logger
from casino_app.payments import wallet_view, withdrawal_addresses, withdrawals
from casino_app.payments.currencies import MAX_AMOUNT, Currency, currency, parse_decimal
from casino_app.payments.wallet_view import WalletView
from casino_app.payments.withdrawal_addresses import AddressCooling, AddressView
from casino_app.payments.withdrawals import WithdrawalRefused, WithdrawalView
from casino_app.security.ratelimit import RateLimited
from casino_app.ui import routes
from casino_app.ui.state import deposits as deposits_ui
from casino_app.ui.state import wallet as wallet_ui
from casino_app.ui.state.deposits import DepositsState, fmt_time, short_hash
from casino_app.ui.state.session import (
    caller,
    describe,
    form_value,
    request_context,
    session_of,
)
from casino_app.ui.state.wallet import WalletState
from casino_app.users import withdrawal_guard
from casino_app.users.errors import NotAuthenticated, UserError

log = get_logger("casino.ui.withdraw")

STATE_LABELS = {"queued": "queued", "awaiting_approval": "awaiting approval",
                "batched": "sent", "confirmed": "confirmed", "failed": "failed",
                "rejected": "rejected", "rejecting": "rejected",
                "unconfirmed": "confirm by mail", "cancelled": "cancelled"}
STATE_NOTES = {
    "unconfirmed": "Open the link we mailed you to confirm it; until then the "
                             "amount and the fee stay reserved.",
    "cancelled": "Not confirmed in time (or withdrawals were locked): the amount and the "
                 "fee are back in your balance.",
    "queued": "Waiting for the next payout transaction.",
    "awaiting_approval": "Large withdrawals are checked by two staff members first.",
    "batched": "Sent to the network; waiting for confirmations.",
    "confirmed": "Paid.",
    "failed": "Not paid: the amount and the fee are back in your balance.",
    "rejected": "Refused by staff: the amount and the fee are back in your balance.",
    "rejecting": "Refused by staff. Its payment had already been signed, so the amount and "
                 "the fee stay reserved until the cold wallet has cancelled it; then they "
                 "are back in your balance.",
}
KEY_RE = re.compile(r"[A-Za-z0-9-]{16,100}")
ANSWERED_MAX = 20


# --- pure helpers (tested in tests/ui/test_withdraw_state.py) --------------------------------

def exact(cur: Currency, amount: int) -> str:
    """``amount`` base units as a plain decimal (every digit, no trailing zeros, no
    thousands separators): what the amount field takes back."""
    text = format(Decimal(amount).scaleb(-cur.decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def short_address(address: str) -> str:
    return f"{address[:8]}…{address[-6:]}" if len(address) > 16 else address


@dataclasses.dataclass
class WithdrawOption:
    code: str
    name: str
    fee: str          # shown as every amount is (Currency.format)
    minimum: str
    maximum: str      # "" when there is no maximum (the 2^62 cap)
    available: str    # withdrawable now (amount + fee must fit)
    most: str         # the largest amount: available - fee (0 when the fee does not fit),
                      # exact: what "Max" puts into the amount box
    large: str        # from this amount staff approve first ("" when never)
    network: str = ""          # the chain's network, as the address label says it
    placeholder: str = ""      # of the address box ("0x…", "bc1q…")
    pattern: str = ""          # a loose HTML pattern of the address (the server judges)
    address_title: str = ""    # shown when the pattern does not match


@dataclasses.dataclass
class WithdrawalRow:
    id: int
    when: str
    currency: str
    amount: str
    fee: str
    address: str
    address_short: str
    state: str
    label: str
    note: str
    tx: str
    tx_short: str


def options(available: dict[str, int], codes: list[str]) -> list[WithdrawOption]:
    """The form's currencies, given what the player can withdraw in each."""
    out = []
    for code in codes:
        cur, lim = currency(code), withdrawals.limits(code)
        hint = withdrawals.address_hint(code)
        have = available.get(code, 0)
        most = max(0, min(have - lim.fee, lim.maximum))
        out.append(WithdrawOption(
            code, cur.name, cur.format(lim.fee), cur.format(lim.minimum),
            cur.format(lim.maximum) if lim.maximum < MAX_AMOUNT else "",
            cur.format(have), exact(cur, most),
            cur.format(lim.large) if lim.large is not None else "",
            hint.network, hint.placeholder, hint.pattern, hint.title))
    return out


def row(w: WithdrawalView) -> WithdrawalRow:
    cur = currency(w.currency)
    tx = w.tx_hash or ""
    return WithdrawalRow(w.id, fmt_time(w.created_at), w.currency, cur.format(w.amount),
                         cur.format(w.fee), w.address, short_address(w.address), w.state,
                         STATE_LABELS.get(w.state, w.state), STATE_NOTES.get(w.state, ""),
                         tx, short_hash(tx) if tx else "")


def total_text(code: str, amount: str, fee: int) -> str:
    """What leaves the balance for ``amount`` typed (amount + ``fee`` base units), or ""
    while the amount is not one."""
    cur = currency(code)
    try:
        value = cur.parse(amount)
    except ValueError:
        return ""
    return cur.format(value + fee) if value > 0 else ""


@dataclasses.dataclass
class AddressRow:
    chain: str
    address: str
    address_short: str
    allowed: bool
    usable: bool
    note: str       # "on your allow-list", "usable from ...", "usable"


def address_row(a: AddressView, now: datetime) -> AddressRow:
    if a.allowed:
        note = "on your allow-list"
    elif a.usable_at > now:
        note = f"new: usable from {withdrawal_addresses.fmt_time(a.usable_at)}"
    else:
        note = "usable"
    return AddressRow(a.chain, a.address, short_address(a.address), a.allowed,
                      a.usable(now), note)


def withdrawable_codes() -> list[str]:
    """The currencies the form offers: those a configured chain pays (Ethereum's with its
    node, BTC with a Bitcoin node)."""
    try:
        return withdrawals.currencies()
    except ValueError:  # a malformed CASINO_ETH_TOKENS: the config check names it
        return []


def accepted_text(w: WithdrawalView) -> str:
    cur = currency(w.currency)
    what = f"{cur.text(w.amount)} to {short_address(w.address)}"
    if w.state == "unconfirmed":
        return f"Withdrawal of {what} requested: open the link we mailed you to confirm " \
               "it. Until then the amount stays reserved."
    if w.state == "awaiting_approval":
        return f"Withdrawal of {what} requested: large withdrawals are checked by staff " \
               "before they are paid."
    return f"Withdrawal of {what} queued: it is paid with the next payout transaction."


# --- the state -------------------------------------------------------------------------------

class WithdrawState(rx.State):
    options: list[WithdrawOption] = []
    totals: dict[str, str] = {}     # per currency: amount + fee for the amount typed
    amount: str = ""
    rows: list[WithdrawalRow] = []
    errors: dict[str, str] = {}     # address, amount, code
    message: str = ""
    notice: str = ""
    form_id: str = ""               # renewed after each accepted withdrawal: a new key
    _answered: dict[str, str] = {}  # request sent (with its key) -> the notice shown
    # the guard (users/withdrawal_guard.py): how the player confirms, and what waits
    totp_on: bool = False
    step_up: bool = False
    method: str = "password"        # without 2FA: password or mail (the player's choice)
    lock: str = ""                  # "Withdrawals are locked until ..." ("" when not)
    addresses: list[AddressRow] = []
    allow_errors: dict[str, str] = {}
    allow_message: str = ""
    allow_notice: str = ""

    def _clear(self) -> None:
        self.options, self.rows, self.totals, self.amount = [], [], {}, ""
        self.errors, self.message, self.notice = {}, "", ""
        self._answered = {}
        self.addresses, self.lock, self.step_up, self.totp_on = [], "", False, False
        self.allow_errors, self.allow_message, self.allow_notice = {}, "", ""

    async def _load_guard(self, token: str | None) -> None:
        try:
            st = await asyncio.to_thread(withdrawal_guard.status, token)
        except NotAuthenticated:
            return
        rows = [address_row(a, utcnow()) for a in st.addresses]
        lock = st.lock.text if st.lock is not None else ""
        if (self.totp_on, self.step_up, self.lock) != (st.totp, st.step_up, lock):
            self.totp_on, self.step_up, self.lock = st.totp, st.step_up, lock
        if st.step_up and self.method == "password":
            self.method = "mail"
        if rows != self.addresses:
            self.addresses = rows

    def _retotal(self) -> None:
        totals = {o.code: total_text(o.code, self.amount, withdrawals.limits(o.code).fee)
                  for o in self.options}
        if totals != self.totals:
            self.totals = totals

    def _show_view(self, view: WalletView | None) -> None:
        codes = withdrawable_codes()
        if not codes or view is None or view.withdrawals is None:
            self.options, self.rows, self.totals = [], [], {}
            return
        try:
            opts = options(view.withdrawable, codes)
        except ValueError:  # malformed CASINO_ETH_WITHDRAW_* settings: the check names them
            log.warning("wallet_withdraw_bad_limits")
            self.options, self.rows = [], []
            self.message = "Withdrawals are not available right now. Please try again later."
            return
        rows = [row(w) for w in view.withdrawals]
        # Reflex sends every assigned var to the browser: assign only what changed.
        if opts != self.options:
            self.options = opts
        if rows != self.rows:
            self.rows = rows
        self._retotal()

    def _to_login(self):  # noqa: ANN202
        self._clear()
        return rx.redirect(routes.login_then(routes.WALLET))

    @rx.event
    async def on_open(self):
        """on_load of the wallet page: one read of the whole wallet (the header's balances,
        the deposit cards, the withdraw form and history), and the tab registered for live
        updates (before the read: a change committed between the two is then pushed)."""
        sess, me = await caller(self)
        deposits = await self.get_state(DepositsState)
        if me is None:
            deposits_ui.forget(deposits)
            return self._to_login()
        self.errors, self.message, self.notice = {}, "", ""
        self.form_id = secrets.token_hex(8)
        deposits_ui.watch(deposits, me.player_id)
        await refresh_wallet_page(self, me.player_id)
        await self._load_guard(sess.token)
        return None

    @rx.event
    def choose_method(self, value: str):
        """Without 2FA: confirm with the password or with a mailed link (the tab's own
        choice; the server checks whatever is sent)."""
        if value in ("password", "mail"):
            self.method = value

    @rx.event
    def edit_amount(self, value: str):
        """The amount as typed (shown back with the total it costs); checked on submit."""
        if isinstance(value, str) and len(value) <= 40:
            self.amount = value
            self._retotal()
            self._say_unreadable()

    def _say_unreadable(self) -> None:
        """While typing: an amount that cannot be read at all ("0,05", "1 000") is said
        under the box before anything is sent; limits and decimals are judged on submit."""
        problem = ""
        if self.amount.strip():
            try:
                parse_decimal(self.amount)
            except ValueError as exc:
                problem = str(exc)
        errors = {k: v for k, v in self.errors.items() if k != "amount"}
        if problem:
            errors["amount"] = problem
        if errors != self.errors:
            self.errors = errors

    @rx.event
    def fill(self, code: str, part: str):
        """The "Half" and "Max" buttons: half or all of what can be withdrawn (the
        caller's own figures, read on the server by the last refresh)."""
        opt = next((o for o in self.options if o.code == code), None) \
            if isinstance(code, str) else None
        if opt is None or part not in ("half", "max"):
            return
        cur = currency(opt.code)
        most = cur.parse(opt.most)
        self.amount = exact(cur, most if part == "max" else most // 2)
        self._retotal()

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, AddressCooling):
            self.errors = {"address": str(exc)}
            return
        if isinstance(exc, WithdrawalRefused):
            field = {withdrawals.InvalidAddress: "address",
                     withdrawals.InvalidAmount: "amount"}.get(type(exc), "")
            if field:
                self.errors = {field: str(exc)}
            else:
                self.message = str(exc)
            return
        field, msg = describe(exc)
        if field:  # the guard's fields: code, password, method
            self.errors = {field if field in ("code", "password", "method") else "code": msg}
            return
        if not isinstance(exc, (UserError, RateLimited)):
            log.warning("wallet_withdraw_failed", error=type(exc).__name__)
        self.message = msg

    @rx.event
    async def request(self, form: dict, key: str):
        """Request a withdrawal: currency, amount, address and (with 2FA on) the current
        code from the form; ``key`` is the request's idempotency key, made by the browser."""
        self.errors, self.message, self.notice = {}, "", ""
        sess, me = await caller(self)
        if me is None:
            return self._to_login()
        code = form_value(form, "currency")
        if not isinstance(code, str) or code not in withdrawable_codes():
            self.message = "Choose one of the currencies shown."
            return None
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            self.message = "Missing request id. Reload the page and try again."
            return None
        amount, address = form_value(form, "amount"), form_value(form, "address")
        sent = json.dumps([code, amount, address, key], default=str)
        if sent in self._answered:  # sent again (double click, reconnect): same answer
            self.notice = self._answered[sent]
            return None
        if not isinstance(amount, str) or not amount.strip() or len(amount) > 40:
            self.errors = {"amount": "Enter an amount."}
            return None
        try:  # the one amount parser, before the 2FA code is spent: "0,05" never becomes 5
            currency(code).parse(amount)
        except ValueError as exc:
            self.errors = {"amount": str(exc)}
            return None
        if not isinstance(address, str) or len(address) > 100:
            hint = withdrawals.address_hint(code)
            self.errors = {"address": f"Enter your {hint.network} address: {hint.title}."}
            return None
        try:  # refused before the second factor is asked (or spent)
            withdrawals.precheck(code, amount.strip(), address.strip())
        except WithdrawalRefused as exc:
            self._fail(exc)
            return None
        method = form_value(form, "method")
        player_id = me.player_id
        clear = [rx.set_value("withdraw-code", ""), rx.set_value("withdraw-password", "")]
        try:
            w = await asyncio.to_thread(
                withdrawal_guard.request, sess.token, request_context(sess), method=method,
                code=form_value(form, "code"), password=form_value(form, "password"),
                currency_code=code, amount=amount.strip(),
                address=address.strip(), key=key)
        except NotAuthenticated:
            return self._to_login()
        except Exception as exc:  # noqa: BLE001 - every refusal is shown on the form
            self._fail(exc)
            await self._load_guard(sess.token)  # a cooling address, a lock, a step-up
            return clear
        self.notice = accepted_text(w)
        self._answered = dict(list({**self._answered, sent: self.notice}.items())
                              [-ANSWERED_MAX:])
        self.amount, self.form_id = "", secrets.token_hex(8)
        # the form, the wallet's cards and the header show the reservation at once
        await refresh_wallet_page(self, player_id)
        await self._load_guard(sess.token)
        return clear

    @rx.event
    async def change_allow_list(self, form: dict):
        """Add an address to the allow-list (usable at once) or remove one: currency,
        address, ``action`` (add or remove) and the second factor (the 2FA code, else the
        password) from the form."""
        self.allow_errors, self.allow_message, self.allow_notice = {}, "", ""
        sess, me = await caller(self)
        if me is None:
            return self._to_login()
        code, address = form_value(form, "currency"), form_value(form, "address")
        action = form_value(form, "action")
        if not isinstance(code, str) or code not in withdrawable_codes():
            self.allow_message = "Choose one of the currencies shown."
            return None
        if action not in ("add", "remove"):
            self.allow_message = "Choose to add or to remove the address."
            return None
        if not isinstance(address, str) or not address.strip() or len(address) > 100:
            self.allow_errors = {"address": "Enter the address."}
            return None
        clear = [rx.set_value("allow-code", ""), rx.set_value("allow-password", "")]
        try:
            view = await asyncio.to_thread(
                withdrawal_guard.change_allow_list, sess.token, request_context(sess),
                code=form_value(form, "code"), password=form_value(form, "password"),
                currency_code=code, address=address.strip(), allowed=action == "add")
        except NotAuthenticated:
            return self._to_login()
        except (ValueError, LookupError) as exc:
            self.allow_errors = {"address": str(exc) if isinstance(exc, ValueError)
                                 else "This address is not on your allow-list."}
            return clear
        except Exception as exc:  # noqa: BLE001 - every refusal is shown on the card
            field, msg = describe(exc)
            if isinstance(exc, (WithdrawalRefused, withdrawal_addresses.AllowListFull)):
                field, msg = "", str(exc)
            elif not isinstance(exc, (UserError, RateLimited)):
                log.warning("wallet_allow_list_failed", error=type(exc).__name__)
            if field:
                self.allow_errors = {field: msg}
            else:
                self.allow_message = msg
            await self._load_guard(sess.token)
            return clear
        self.allow_notice = (f"{short_address(view.address)} is on your allow-list: "
                             "withdrawals to it need no cooling period."
                             if view.allowed else
                             f"{short_address(view.address)} was removed from your "
                             "allow-list.")
        await self._load_guard(sess.token)
        return clear


class WithdrawConfirmState(rx.State):
    """The mailed confirmation link's page: opening it confirms the withdrawal once
    (users.withdrawal_guard.confirm_link). It runs on the page's load event, which needs
    the page's script and socket: a mail scanner that only fetches the URL confirms
    nothing."""

    status: str = "working"  # working | done | failed
    message: str = ""

    @rx.event
    async def on_open(self):
        self.status, self.message = "working", ""
        sess = await session_of(self)
        token = self.router.url.query_parameters.get("token", "")
        try:
            c = await asyncio.to_thread(withdrawal_guard.confirm_link, token,
                                        request_context(sess))
        except Exception as exc:  # noqa: BLE001 - shown on the page
            if not isinstance(exc, (WithdrawalRefused, UserError, RateLimited)):
                log.warning("withdrawal_confirm_failed", error=type(exc).__name__)
            self.status = "failed"
            self.message = str(exc) if isinstance(exc, WithdrawalRefused) \
                else describe(exc)[1]
            return
        what = f"{exact(currency(c.view.currency), c.view.amount)} {c.view.currency} to " \
               f"{short_address(c.view.address)}"
        if c.outcome in ("confirmed", "already"):
            self.status = "done"
            self.message = (f"Your withdrawal of {what} is confirmed"
                            + (" (this link was used before)" if c.outcome == "already"
                               else "") + ": " + STATE_NOTES.get(c.view.state, c.view.state))
        else:
            self.status = "failed"
            self.message = (f"Your withdrawal of {what} was cancelled: "
                            + (c.view.failure or "it can no longer be confirmed")
                            + ". The amount and the fee are back in your balance.")


# --- the whole wallet page ---------------------------------------------------------------

def read_wallet_page(player_id: str) -> WalletView:
    """Everything the wallet page and the header show, in one read-only transaction."""
    codes = withdrawable_codes()
    return wallet_view.read(player_id, deposits=deposits_ui.chains_shown(),
                            withdraw=codes if codes else None)


async def show_wallet_page(state: rx.State, view: WalletView) -> None:
    """Show one wallet read in the header, the deposit cards and the withdraw form."""
    wallet_ui.show_view(await state.get_state(WalletState), view)
    await deposits_ui.show_view(await state.get_state(DepositsState), view)
    (await state.get_state(WithdrawState))._show_view(view)


async def refresh_wallet_page(state: rx.State, player_id: str) -> None:
    await show_wallet_page(state, await asyncio.to_thread(read_wallet_page, player_id))
