"""Staff use cases on loyalty claims held for rakeback farming (/admin/loyalty).

Every staff member reads the held claims with the flags of their players (the list is a
view of players' money: audited as ``staff.money_view``); only an admin approves (the
reward is paid under its ledger key) or rejects one with a reason. A decision's audit row
(``staff.loyalty_approved`` / ``staff.loyalty_rejected``) is staged in the ledger
transaction that moves the money (security/outbox.py) and written to the audit log right
after it, in the caller's identity transaction. Like users/staff.py, each function
re-checks the caller's session, role and 2FA on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from casino_app.core.db import identity_tx
from casino_app.core.logging import get_logger
from casino_app.games.loyalty import rewards
from casino_app.security import outbox
from casino_app.security.audit import AuditAction, record
from casino_app.users.errors import Forbidden, ValidationFailed
from casino_app.users.models import Role, User
from casino_app.users.sessions import RequestContext
from casino_app.users.staff import _actor, _reason, reachable, require_role

log = get_logger("casino.staff")

DECIDERS = (Role.admin,)


@dataclass(frozen=True)
class HeldRow:
    claim: rewards.HeldClaim
    user_id: int | None      # the player's account number


def held(token: str | None, ctx: RequestContext) -> list[HeldRow]:
    with identity_tx() as s:
        me = require_role(s, token)
        claims = rewards.held_claims()
        users = dict(s.execute(select(User.player_id, User.id).where(
            User.player_id.in_({c.reward.player_id for c in claims}))).all()) if claims else {}
        if claims:
            record(s, AuditAction.staff_money_view, _actor(me, ctx), None,
                   view="loyalty_held", claims=len(claims))
    return [HeldRow(c, users.get(c.reward.player_id)) for c in claims]


def _reward_id(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
        raise ValidationFailed("No such claim.", "reward_id")
    return value


def _detail(view: rewards.RewardView) -> dict[str, Any]:
    return {"reward_id": view.id, "kind": view.kind, "currency": view.currency,
            "amount": view.amount, "state": view.state, "entry_id": view.entry_id,
            "note": view.note}


def _decide(token: str | None, reward_id: object, approve: bool, reason: object,
            ctx: RequestContext) -> rewards.RewardView:
    with identity_tx() as s:
        me = require_role(s, token)
        if me.role not in DECIDERS:
            raise Forbidden("Only an admin can approve or reject a held claim.")
        rid = _reward_id(reward_id)
        note = "" if approve else _reason(reason)
        player = rewards.player_of(rid)
        user = s.execute(select(User).where(User.player_id == player)).scalar_one_or_none() \
            if player is not None else None
        if user is not None:
            reachable(me, user)
            if user.id == me.user_id:
                raise Forbidden("Another admin must decide on your own claim.")
        entry = outbox.Entry(AuditAction.loyalty_approved if approve
                             else AuditAction.loyalty_rejected, _actor(me, ctx),
                             user.id if user is not None else None, _detail)
        try:
            view = rewards.decide(rid, approve, me.user_id, note, audit=entry)
        except rewards.LoyaltyRefused as exc:
            raise ValidationFailed(str(exc), "reward_id") from None
        audit_id = outbox.deliver(s, entry) if entry.outbox_id is not None else None
    if entry.outbox_id is not None and audit_id is not None:
        try:
            outbox.mark_delivered({entry.outbox_id: audit_id})
        except Exception as exc:  # noqa: BLE001 - the audit-outbox job marks it later
            log.warning("audit_outbox_mark_failed", error=type(exc).__name__)
    return view


def approve(token: str | None, reward_id: object, ctx: RequestContext) -> rewards.RewardView:
    """An admin pays a held claim (under the reward's own ledger key: once)."""
    return _decide(token, reward_id, True, None, ctx)


def reject(token: str | None, reward_id: object, reason: object, ctx: RequestContext
           ) -> rewards.RewardView:
    """An admin refuses a held claim, saying why (the player sees the reason)."""
    return _decide(token, reward_id, False, reason, ctx)
