"""Withdrawal addresses: a cooling period for new ones, and the player's allow-list.

Someone who took over a session (or a password) wants the money out before the owner
notices. So an address a player has not used before is payable only
``CASINO_WITHDRAW_COOLING_HOURS`` after it is first named (the first request to it is
refused and starts the clock; the owner is mailed), unless the player put it on their
allow-list, which takes a second factor (users/withdrawal_guard.py checks it and audits
the change through the ledger's audit outbox). Nothing here knows a person: rows are
keyed by the pseudonymous player id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.payments.withdrawal_models import WithdrawalAddress

if TYPE_CHECKING:
    from casino_app.security import outbox

ALLOW_LIST_MAX = 20


def fmt_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


class AddressCooling(Exception):
    """The address is new to this player: usable from ``usable_at`` (its text is safe to
    show). ``fresh``: this request named it first (the clock started now)."""

    def __init__(self, address: str, usable_at: datetime, fresh: bool) -> None:
        self.address, self.usable_at, self.fresh = address, usable_at, fresh
        super().__init__(f"This address is new to your account: for your safety it can be "
                         f"used from {fmt_time(usable_at)}, or at once if you add it to "
                         "your allow-list (that takes your second factor).")


class AllowListFull(Exception):
    def __init__(self) -> None:
        super().__init__(f"Your allow-list holds at most {ALLOW_LIST_MAX} addresses: "
                         "remove one first.")


@dataclass(frozen=True)
class AddressView:
    chain: str
    address: str
    created_at: datetime
    usable_at: datetime
    allowed: bool

    def usable(self, now: datetime) -> bool:
        return self.allowed or self.usable_at <= now


def _view(r: WithdrawalAddress) -> AddressView:
    return AddressView(r.chain, r.address, r.created_at, r.usable_at, r.allowed_at is not None)


def _row(s: Session, player_id: str, chain: str, address: str, *, lock: bool = False
         ) -> WithdrawalAddress | None:
    q = select(WithdrawalAddress).where(WithdrawalAddress.player_id == player_id,
                                        WithdrawalAddress.chain == chain,
                                        WithdrawalAddress.address == address)
    if lock:
        q = q.with_for_update()
    return s.execute(q).scalar_one_or_none()


def check(s: Session, player_id: str, chain: str, address: str, cooling: timedelta
          ) -> AddressCooling | None:
    """In the request's transaction: None when ``address`` may be paid now, else the
    refusal to raise AFTER the transaction commits (a first naming is recorded, so the
    clock keeps running). ``cooling`` zero: every address is usable at once (it is
    still recorded). The caller holds the player's balance row lock."""
    now = utcnow()
    row = _row(s, player_id, chain, address)
    if row is None:  # the caller holds the player's balance lock: no one names it meanwhile
        usable = now + cooling
        s.add(WithdrawalAddress(player_id=player_id, chain=chain, address=address,
                                created_at=now, usable_at=usable))
        s.flush()
        return AddressCooling(address, usable, True) if usable > now else None
    if row.allowed_at is not None or row.usable_at <= now:
        return None
    return AddressCooling(address, row.usable_at, False)


def addresses_of(player_id: str, limit: int = 50) -> list[AddressView]:
    """The player's withdrawal addresses: allow-listed first, then the newest."""
    with ledger_tx(readonly=True) as s:
        return addresses_in(s, player_id, limit)


def addresses_in(s: Session, player_id: str, limit: int = 50) -> list[AddressView]:
    rows = s.execute(select(WithdrawalAddress).where(WithdrawalAddress.player_id == player_id)
                     .order_by(WithdrawalAddress.allowed_at.is_(None),
                               WithdrawalAddress.id.desc()).limit(limit)).scalars()
    return [_view(r) for r in rows]


def set_allowed(player_id: str, chain: str, address: str, allowed: bool, cooling: timedelta,
                audit: outbox.Entry | None = None) -> AddressView:
    """Put ``address`` (already checked by its chain's adapter) on the player's allow-list
    or take it off, in one ledger transaction with the staged audit row. Taken off, an
    address named less than ``cooling`` ago cools like a new one. Raises AllowListFull,
    or LookupError when removing an address that is not on the list."""
    now = utcnow()
    with ledger_tx() as s:
        row = _row(s, player_id, chain, address, lock=True)
        if allowed:
            if row is None or row.allowed_at is None:
                count = len([a for a in addresses_in(s, player_id, ALLOW_LIST_MAX + 1)
                             if a.allowed])
                if count >= ALLOW_LIST_MAX:
                    raise AllowListFull()
            if row is None:
                row = WithdrawalAddress(player_id=player_id, chain=chain, address=address,
                                        created_at=now, usable_at=now + cooling)
                s.add(row)
            if row.allowed_at is None:
                row.allowed_at = now
        else:
            if row is None or row.allowed_at is None:
                raise LookupError(address)
            row.allowed_at = None
            row.usable_at = max(row.usable_at, min(row.created_at + cooling, now + cooling))
        s.flush()
        view = _view(row)
        if audit is not None:
            audit.stage(s, view)
        return view
