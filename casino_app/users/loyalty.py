"""The signed-in player's loyalty: the account page's card and claims.

A claim commits in the ledger database; its audit row (``loyalty.claimed``: what was paid
and what was held for staff) is staged in that ledger transaction and written to the
audit log right after, in this identity transaction, with the account row locked
(security/outbox.py; a crash in between leaves it to the audit-outbox job, exactly once).
"""

from __future__ import annotations

from casino_app.core.db import identity_tx
from casino_app.core.logging import get_logger
from casino_app.games.loyalty import rewards
from casino_app.security import outbox
from casino_app.security.audit import Actor, AuditAction
from casino_app.users.accounts import _require, _require_for_update
from casino_app.users.errors import NotFound
from casino_app.users.sessions import RequestContext

log = get_logger("casino.loyalty")


def my_status(token: str | None) -> rewards.Status:
    with identity_tx(readonly=True) as s:
        me = _require(s, token)
    return rewards.status(me.player_id)


def claim(token: str | None, reward_id: object, ctx: RequestContext) -> rewards.ClaimResult:
    """Claim the caller's open rewards (``reward_id`` None: all of them)."""
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        entry = outbox.Entry(AuditAction.loyalty_claimed,
                             Actor(me.user_id, me.role.value, ctx.ip), user.id,
                             rewards.claim_detail)
        try:
            result = rewards.claim(me.player_id, reward_id, audit=entry)
        except rewards.LoyaltyRefused as exc:
            raise NotFound(str(exc)) from None
        audit_id = outbox.deliver(s, entry) if entry.outbox_id is not None else None
    if entry.outbox_id is not None and audit_id is not None:
        try:
            outbox.mark_delivered({entry.outbox_id: audit_id})
        except Exception as exc:  # noqa: BLE001 - the audit-outbox job marks it later
            log.warning("audit_outbox_mark_failed", error=type(exc).__name__)
    return result
