"""Withdrawal requests on any chain: validate, reserve the money, queue for the chain's
batcher; the staff queue and the refusal of a large withdrawal.

The web process calls :func:`request_withdrawal` (through a state handler) and
:func:`withdrawals_of` for the history. Nothing here signs or reads a key: the chain's
batcher (``payments/eth/batcher.py``, ``payments/btc/batcher.py``, jobs) pays the queue
with the hot wallet. What
depends on the chain (its currencies, limits and fee settings, what an address must be,
which addresses are ours, how a cold-wallet payment is taken back) is asked of the chain's
adapter (payments/chains.py, payments/adapters.py); the currency picks the chain.

A request is one ledger transaction: the withdrawal row and the reservation
``withdrawal:<id>`` of amount + fee (player -> custody) are written together, or neither
is. The request's idempotency key is UNIQUE: the same key returns the first withdrawal.
Once queued a withdrawal cannot be cancelled by the player; it ends confirmed (the
reservation is posted, the fee moves to the house ``fees`` account) or failed (the
reservation is voided: the money is the player's again). A batch that reverts on chain
puts it back in the queue, still reserved (payments/eth/batcher.py). How a paid one is
booked: payments/sender.post_paid.

A player's request comes through users/withdrawal_guard.py, which checks the second factor
(TOTP, the password, or a link mailed to the player: then the withdrawal is
``unconfirmed``, reserved, until :func:`confirm_by_link`; an expired link is
cancelled by :func:`expire_confirmations`), the account's withdrawal lock and risk, and
passes ``cooling``: an address new to the player is refused until its cooling period
ends unless it is on their allow-list (payments/withdrawal_addresses.py). This module
trusts its ``player_id``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import ConfigError
from casino_app.payments import adapters, holds, ledger
from casino_app.payments.chains import AddressHint, Chain, Limits
from casino_app.payments.currencies import Currency, currency
from casino_app.payments.deposits import withdrawable
from casino_app.payments.sender import tx_hashes
from casino_app.payments.withdrawal_addresses import AddressCooling
from casino_app.payments.withdrawal_addresses import check as check_address_cooling
from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.security.crypto import token_hash

if TYPE_CHECKING:
    from casino_app.security import outbox

log = get_logger("casino.eth.withdrawals")

OPEN_STATES = ("queued", "awaiting_approval", "batched", "rejecting",
               "unconfirmed")


# --- refusals: str() is safe to show to the player ---------------------------------------

class WithdrawalRefused(Exception):
    """A request that was not accepted; nothing was stored or reserved."""


class WithdrawalsUnavailable(WithdrawalRefused):
    def __init__(self) -> None:
        super().__init__("Withdrawals are not available right now. Please try again later.")


class UnsupportedCurrency(WithdrawalRefused):
    def __init__(self, code: str) -> None:
        super().__init__(f"{code[:8]} withdrawals are not available.")


class InvalidAddress(WithdrawalRefused):
    pass


class InvalidAmount(WithdrawalRefused):
    pass


class InsufficientBalance(WithdrawalRefused):
    def __init__(self) -> None:
        super().__init__("Your withdrawable balance does not cover the amount and the fee. "
                         "Deposits become withdrawable after their confirmations.")


class AccountOnHold(WithdrawalRefused):
    def __init__(self) -> None:
        super().__init__(holds.MESSAGE)


class KeyReused(WithdrawalRefused):
    def __init__(self) -> None:
        super().__init__("This request id was already used for a different withdrawal. "
                         "Reload the page and try again.")


# --- views and limits --------------------------------------------------------------------

@dataclass(frozen=True)
class WithdrawalView:
    id: int
    currency: str
    amount: int          # paid to the address (base units)
    fee: int             # kept by the house (base units)
    address: str
    state: str           # queued, awaiting_approval, batched, confirmed, failed, rejected,
                         # rejecting (refused, still reserved: see reject_withdrawal)
    tx_hash: str | None  # the batch transaction (latest signed version until mined)
    failure: str | None
    created_at: datetime
    updated_at: datetime
    replayed: bool = False  # the same key was sent before: this is the first answer
    # the mailed confirmation link's token, only in the answer that created it (never
    # stored, never shown: it goes into the player's mail)
    confirm_token: str | None = field(default=None, repr=False)
    confirm_expires_at: datetime | None = None

    @property
    def total(self) -> int:
        """What left (or is reserved on) the player's balance."""
        return self.amount + self.fee


def limits(currency_code: str) -> Limits:
    """The withdrawal limits and fee of a currency, from its chain's settings (base
    units). ValueError when no chain pays it now, or for a malformed setting."""
    code = currency(currency_code).code
    chain = adapters.for_currency(code)
    if chain is None:
        raise ValueError(f"{code} withdrawals are not available.")
    return chain.withdrawal_limits(code)


def address_hint(currency_code: str) -> AddressHint:
    """What the withdraw form says about the address for ``currency_code`` (its chain's
    network, a placeholder, a loose pattern); ValueError when no chain pays it now."""
    code = currency(currency_code).code
    chain = adapters.for_currency(code)
    if chain is None:
        raise ValueError(f"{code} withdrawals are not available.")
    return chain.address_hint()


def currencies() -> list[str]:
    """The currencies that can be withdrawn now, chain by chain (on Ethereum: ETH and the
    configured tokens; none without a node)."""
    return adapters.currencies()


def _view(w: Withdrawal, tx_hash: str | None, replayed: bool = False,
          confirm_token: str | None = None) -> WithdrawalView:
    return WithdrawalView(w.id, w.currency, w.amount, w.fee, w.address, w.state, tx_hash,
                          w.failure, w.created_at, w.updated_at, replayed, confirm_token,
                          w.confirm_expires_at)


def withdrawals_of(player_id: str, limit: int = 50) -> list[WithdrawalView]:
    """The player's withdrawals, newest first."""
    with ledger_tx(readonly=True) as s:
        return withdrawals_in(s, player_id, limit)


def withdrawals_in(s: Session, player_id: str, limit: int = 50) -> list[WithdrawalView]:
    """``withdrawals_of`` inside the caller's transaction."""
    rows = list(s.execute(select(Withdrawal).where(Withdrawal.player_id == player_id)
                          .order_by(Withdrawal.id.desc()).limit(limit)).scalars())
    hashes = tx_hashes(s, {w.batch_id for w in rows if w.batch_id is not None})
    return [_view(w, hashes.get(w.batch_id) if w.batch_id else None) for w in rows]


def get_withdrawal(withdrawal_id: int) -> WithdrawalView | None:
    with ledger_tx(readonly=True) as s:
        w = s.get(Withdrawal, withdrawal_id)
        if w is None:
            return None
        hashes = tx_hashes(s, {w.batch_id} if w.batch_id else set())
        return _view(w, hashes.get(w.batch_id) if w.batch_id else None)


# --- the request ---------------------------------------------------------------------------

def _parse_amount(code: str, amount: int | str) -> int:
    if isinstance(amount, bool):
        raise InvalidAmount("Enter an amount.")
    if isinstance(amount, int):
        value = amount
    else:
        try:
            value = currency(code).parse(amount)
        except ValueError as exc:
            raise InvalidAmount(str(exc)) from None
    if value <= 0:
        raise InvalidAmount("Enter a positive amount.")
    return value


def _fmt(cur: Currency, amount: int) -> str:
    """As every page shows an amount (``Currency.format``), without the code."""
    return cur.format(amount)


def _check_limits(chain, code: str, value: int):  # noqa: ANN001, ANN202 - a Chain, its limits
    """The currency's withdrawal limits, ``value`` within its minimum and maximum
    (else InvalidAmount), or WithdrawalsUnavailable when the chain has none for it."""
    try:
        lim = chain.withdrawal_limits(code)
    except ValueError:
        raise WithdrawalsUnavailable() from None
    cur = currency(code)
    if value < lim.minimum:
        raise InvalidAmount(f"The smallest withdrawal is {_fmt(cur, lim.minimum)} {code}.")
    if value > lim.maximum:
        raise InvalidAmount(f"The largest withdrawal is {_fmt(cur, lim.maximum)} {code}.")
    return lim


def _check_address(chain: Chain, text: object) -> str:
    try:
        return chain.check_address(text)
    except ValueError as exc:
        raise InvalidAddress(str(exc)) from None


def precheck(currency_code: str, amount: int | str, address: object) -> None:
    """What can be refused before the second factor is asked (and spent): the currency,
    the amount and its limits, the address's form. Raises like
    :func:`request_withdrawal`; the request checks all of it again."""
    code = currency_code.strip().upper() if isinstance(currency_code, str) else ""
    try:
        chain = adapters.for_currency(code) if code else None
    except ValueError:
        raise WithdrawalsUnavailable() from None
    if chain is None:
        raise UnsupportedCurrency(code or "?")
    value = _parse_amount(code, amount)
    _check_address(chain, address)
    _check_limits(chain, code, value)


def request_withdrawal(player_id: str, currency_code: str, amount: int | str,
                       address: str, key: str, audit: outbox.Entry | None = None, *,
                       cooling: timedelta | None = None,
                       confirm_minutes: int | None = None) -> WithdrawalView:
    """Queue a withdrawal of ``amount`` (an int in base units, or a decimal string as the
    player typed it) to ``address``, reserving amount + fee at once.

    ``key`` is the request's idempotency key (the UI makes one per form): sent again with
    the same values it returns the first withdrawal (``replayed``), with other values it
    raises :class:`KeyReused`. Raises a :class:`WithdrawalRefused` subclass, whose text is
    safe to show, when the request is refused; then nothing was stored or reserved.

    The caller (users/withdrawal_guard.py) has checked the player's second factor
    before calling; its audit row ``audit`` is staged in the request's ledger transaction
    (security/outbox.py). ``cooling``: an address the player has not named that long ago
    and has not allow-listed is refused (:class:`AddressCooling`, raised after the
    transaction recorded the address); None: no address rule (tools and tests).
    ``confirm_minutes``: the withdrawal waits, reserved, for the link mailed to the
    player (its token is in the answer, ``confirm_token``), valid that long.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= 100:
        raise WithdrawalRefused("Missing request id. Reload the page and try again.")
    if not isinstance(currency_code, str) or not currency_code:
        raise UnsupportedCurrency("?")
    code = currency_code.strip().upper()
    try:
        chain = adapters.for_currency(code)
    except ValueError:  # a malformed CASINO_ETH_TOKENS: the config check names it
        raise WithdrawalsUnavailable() from None
    if chain is None:
        raise UnsupportedCurrency(code)
    value = _parse_amount(code, amount)
    target = _check_address(chain, address)
    for _ in range(3):
        try:
            with ledger_tx() as s:
                view = _request(s, chain, player_id, code, value, target, key, cooling,
                                confirm_minutes)
                if isinstance(view, WithdrawalView) and audit is not None:
                    audit.stage(s, view)
        except IntegrityError:
            continue  # a concurrent request with the same key: read its row
        if isinstance(view, AddressCooling):
            raise view  # after the commit: the address's first naming is kept
        return view
    raise WithdrawalsUnavailable()


def _request(s: Session, chain: Chain, player_id: str, code: str, value: int, target: str,
             key: str, cooling: timedelta | None, confirm_minutes: int | None
             ) -> WithdrawalView | AddressCooling:
    found = s.execute(select(Withdrawal).where(Withdrawal.key == key)).scalar_one_or_none()
    if found is not None:
        if (found.player_id, found.currency, found.amount, found.address) != \
                (player_id, code, value, target):
            raise KeyReused()
        hashes = tx_hashes(s, {found.batch_id} if found.batch_id else set())
        return _view(found, hashes.get(found.batch_id) if found.batch_id else None, True)
    lim = _check_limits(chain, code, value)
    try:
        if chain.is_own_address(s, target):
            raise InvalidAddress("This is one of the casino's own addresses: enter your "
                                 "wallet's address.")
    except ConfigError:
        log.warning("eth_withdrawals_no_xpub")
        raise WithdrawalsUnavailable() from None
    if holds.on_hold(s, player_id):
        raise AccountOnHold()
    player = ledger.player_account(s, player_id, code)
    ledger.balance_of(s, player, lock=True)  # one decision at a time per player balance
    if cooling is not None:
        refused = check_address_cooling(s, player_id, chain.name, target, cooling)
        if refused is not None:
            return refused
    total = value + lim.fee
    if total > withdrawable(s, player_id, code):
        raise InsufficientBalance()
    now = utcnow()
    state = "awaiting_approval" if lim.large is not None and value >= lim.large else "queued"
    token = None
    w = Withdrawal(key=key, player_id=player_id, chain=chain.name, currency=code, amount=value,
                   fee=lim.fee, address=target, state=state, created_at=now, updated_at=now,
                   announced="requested")
    if confirm_minutes is not None:
        token = secrets.token_urlsafe(32)
        w.state, w.confirm_token_hash = "unconfirmed", token_hash(token)
        w.confirm_expires_at = now + timedelta(minutes=confirm_minutes)
    s.add(w)
    s.flush()
    try:
        ledger.reserve(s, f"withdrawal:{w.id}", "withdrawal", player,
                       ledger.house_account(s, code, "custody"), total,
                       memo=f"{chain.name} withdrawal to {target}")
    except ledger.InsufficientFunds:
        raise InsufficientBalance() from None
    log.info("eth_withdrawal_requested", withdrawal_id=w.id, player_id=player_id,
             currency=code, amount=value, fee=lim.fee, state=w.state)
    return _view(w, None, confirm_token=token)


# --- confirmation by mailed link -----------------------------------------------------------

class LinkInvalid(WithdrawalRefused):
    def __init__(self) -> None:
        super().__init__("This confirmation link is not valid. Open the newest link we "
                         "mailed you, or request the withdrawal again.")


@dataclass(frozen=True)
class Confirmation:
    """What opening a confirmation link did: ``outcome`` confirmed (now queued or awaiting
    approval), already (opened before: nothing more happened), expired or cancelled
    (voided: the money is back in the balance)."""

    outcome: str
    view: WithdrawalView
    player_id: str


def pending_confirmation(token: object) -> tuple[int, str] | None:
    """(withdrawal id, player id) of a confirmation link's withdrawal, or None."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    with ledger_tx(readonly=True) as s:
        row = s.execute(select(Withdrawal.id, Withdrawal.player_id).where(
            Withdrawal.confirm_token_hash == token_hash(token))).first()
    return (row[0], row[1]) if row is not None else None


def confirm_by_link(token: object, *, locked: str | None = None,
                    audit: outbox.Entry | None = None) -> Confirmation:
    """Open a confirmation link: its withdrawal (still awaiting confirmation and not
    expired) is queued, or awaits staff approval when large. Opened again it answers
    ``already`` and changes nothing. ``locked``: the account's withdrawals are locked
    (the caller's text, e.g. until when): the withdrawal is cancelled instead. An
    expired link cancels its withdrawal. Raises :class:`LinkInvalid`. The audit row
    ``audit`` is staged when something changed."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise LinkInvalid()
    with ledger_tx() as s:
        w = s.execute(select(Withdrawal).where(
            Withdrawal.confirm_token_hash == token_hash(token)).with_for_update()
            .execution_options(populate_existing=True)).scalar_one_or_none()
        if w is None:
            raise LinkInvalid()
        if w.state != "unconfirmed":
            outcome = "already" if w.confirmed_at is not None else w.state
            return Confirmation(outcome, _view(w, None), w.player_id)
        now = utcnow()
        if w.confirm_expires_at is None or w.confirm_expires_at <= now:
            _cancel(s, w, "confirmation link expired")
            outcome = "expired"
        elif locked is not None:
            _cancel(s, w, locked[:200])
            outcome = "cancelled"
        elif holds.on_hold(s, w.player_id):
            _cancel(s, w, "account on hold")
            outcome = "cancelled"
        else:
            lim = adapters.chain(w.chain).withdrawal_limits(w.currency)
            w.state = "awaiting_approval" if lim.large is not None and w.amount >= lim.large \
                else "queued"
            w.confirmed_at = w.updated_at = now
            outcome = "confirmed"
            log.info("withdrawal_confirmed_by_link", withdrawal_id=w.id, state=w.state)
        view = _view(w, None)
        if audit is not None:
            audit.stage(s, {"view": view, "outcome": outcome})
        return Confirmation(outcome, view, w.player_id)


def _cancel(s: Session, w: Withdrawal, why: str) -> None:
    ledger.void_pending(s, f"withdrawal:{w.id}")
    w.state, w.failure, w.updated_at = "cancelled", why[:200], utcnow()
    log.info("withdrawal_cancelled", withdrawal_id=w.id, reason=why[:80])


def expire_confirmations(limit: int = 200) -> int:
    """The job's part: cancel withdrawals whose confirmation link expired unopened (the
    reservation is voided). Returns how many."""
    now = utcnow()
    with ledger_tx() as s:
        rows = list(s.execute(select(Withdrawal).where(
            Withdrawal.state == "unconfirmed",
            Withdrawal.confirm_expires_at <= now).order_by(Withdrawal.id).limit(limit)
            .with_for_update()).scalars())
        for w in rows:
            _cancel(s, w, "confirmation link expired")
    return len(rows)


def cancel_awaiting(player_id: str, why: str) -> int:
    """Cancel the player's withdrawals waiting for their mailed link (their account's
    withdrawals were just locked: a password or 2FA change). Returns how many."""
    with ledger_tx() as s:
        rows = list(s.execute(select(Withdrawal).where(
            Withdrawal.player_id == player_id, Withdrawal.state == "unconfirmed")
            .with_for_update()).scalars())
        for w in rows:
            _cancel(s, w, why)
    return len(rows)


# --- staff ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StaffWithdrawalView:
    """A withdrawal as the staff queue shows it: with its player and approvals."""

    view: WithdrawalView
    player_id: str
    approved_by: int | None
    approved_by_2: int | None


def staff_queue(recent: int = 50, session: Session | None = None
                ) -> list[StaffWithdrawalView]:
    """Every open withdrawal (queued, awaiting approval, batched, rejecting), oldest first,
    then the ``recent`` latest final ones (confirmed, failed, rejected), newest first."""
    def read(s: Session) -> list[StaffWithdrawalView]:
        rows = list(s.execute(select(Withdrawal).where(Withdrawal.state.in_(OPEN_STATES))
                              .order_by(Withdrawal.id)).scalars())
        rows += list(s.execute(select(Withdrawal).where(Withdrawal.state.not_in(OPEN_STATES))
                               .order_by(Withdrawal.updated_at.desc(), Withdrawal.id.desc())
                               .limit(recent)).scalars())
        hashes = tx_hashes(s, {w.batch_id for w in rows if w.batch_id is not None})
        return [StaffWithdrawalView(_view(w, hashes.get(w.batch_id) if w.batch_id else None),
                                    w.player_id, w.approved_by, w.approved_by_2)
                for w in rows]

    if session is not None:
        return read(session)
    with ledger_tx(readonly=True) as s:
        return read(s)


class NotAwaitingApproval(WithdrawalRefused):
    def __init__(self) -> None:
        super().__init__("This withdrawal is not waiting for approval.")


def reject_withdrawal(withdrawal_id: int, staff_id: int, reason: str, *,
                      session: Session | None = None) -> WithdrawalView:
    """Refuse a large withdrawal waiting for approval: its reservation is voided (the money
    is the player's again) and its cold-wallet payment, if prepared and not sent, is
    cancelled. If that payment already has enough signatures that someone could still
    make it (a Safe payment with its owners' signatures; a PSBT whose uploads carried
    enough cosigners), the withdrawal is ``rejecting`` and its money stays reserved until
    it can no longer be made (Ethereum: the Safe uses the payment's nonce,
    payments/eth/safe_exec.py; Bitcoin: one of its coins is spent,
    payments/btc/cold_sender.py), then the reservation is voided, or posted if it was paid
    after all; the chain's adapter says which (``take_back_cold_payment``).
    One staff member may refuse; paying needs two (payments/eth/safe_payments.py). The
    admin layer checks the role and audits the action (passing its ledger ``session`` so
    both commit together)."""
    if session is None:
        with ledger_tx() as s:
            return _reject(s, withdrawal_id, staff_id, reason)
    return _reject(session, withdrawal_id, staff_id, reason)


def _reject(s: Session, withdrawal_id: int, staff_id: int, reason: str) -> WithdrawalView:
    w = s.execute(select(Withdrawal).where(Withdrawal.id == withdrawal_id)
                  .with_for_update()).scalar_one_or_none()
    if w is None or w.state != "awaiting_approval":
        raise NotAwaitingApproval()
    why = (reason or "rejected")[:200]
    if adapters.chain(w.chain).take_back_cold_payment(s, w.id, f"withdrawal rejected: {why}"):
        w.state = "rejecting"  # still reserved: its signed Safe payment may yet execute
    else:
        ledger.void_pending(s, f"withdrawal:{w.id}")
        w.state = "rejected"
    w.failure, w.updated_at = why, utcnow()
    log.info("eth_withdrawal_rejected", withdrawal_id=w.id, staff_id=staff_id,
             state=w.state)
    return _view(w, None)
