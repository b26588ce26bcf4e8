"""Audit rows of actions that commit in the ledger database: an outbox.

The audit log (security/audit.py) lives in the identity database, money in the ledger
database, and no transaction spans both. So an audited money action (a withdrawal
request) stages its audit row in the action's own ledger transaction
(:meth:`Entry.stage`): the action and its staged row commit together or not at all.
Delivery writes the staged row into the audit log together with a marker row
(``audit_outbox_delivered``, keyed by the outbox id) in one identity transaction, so each
staged row becomes exactly one audit row, whoever delivers it and whatever crashes:

- inline, by the caller, in its identity transaction right after the action
  (``users.withdrawal_guard``: with the spent 2FA code, in the same commit);
- otherwise by the ``audit-outbox`` job (:func:`deliver_pending`), for rows a crash left
  behind (older than ``GRACE_SECONDS``). It locks the target user's row first, so it
  waits for an inline delivery in progress, and it spends the 2FA code or recovery code
  the action used, in case the crash came before the caller's transaction spent it.

Then the ledger row is marked delivered; a crash before that only makes the next run find
the marker and mark the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.security.audit import Actor, AuditAction, record
from casino_app.security.outbox_models import AuditOutbox, AuditOutboxDelivered

log = get_logger("casino.audit.outbox")

GRACE_SECONDS = 30   # the job leaves younger rows to their inline delivery
LATE_SECONDS = 600   # an undelivered row older than this is logged as an error
BATCH = 200


@dataclass
class Entry:
    """The audit row an action will stage: ``detail(result)`` gives its detail."""

    action: AuditAction
    actor: Actor
    target_user_id: int | None
    detail: Callable[[Any], dict[str, Any]]
    totp_step: int | None = None
    recovery_code_id: int | None = None
    outbox_id: int | None = field(default=None, init=False)
    staged: dict[str, Any] | None = field(default=None, init=False)

    def stage(self, s: Session, result: Any) -> None:
        """Add the row in the action's ledger transaction ``s`` (before it commits)."""
        detail = self.detail(result)
        row = AuditOutbox(created_at=utcnow(), action=str(self.action),
                          actor_user_id=self.actor.user_id, actor_role=self.actor.role,
                          ip=self.actor.ip or "", target_user_id=self.target_user_id,
                          detail=json.dumps(detail, sort_keys=True, default=str),
                          totp_step=self.totp_step, recovery_code_id=self.recovery_code_id)
        s.add(row)
        s.flush()
        self.outbox_id, self.staged = row.id, detail


def deliver(ids: Session, entry: Entry) -> int:
    """Write a staged entry to the audit log in the caller's identity transaction; the
    audit row's id. Raises if the action did not stage it (a programming error: the
    action is then rolled back in the identity database and the job delivers the row if
    the ledger part committed)."""
    if entry.outbox_id is None or entry.staged is None:
        raise RuntimeError(f"the action did not stage its audit row ({entry.action})")
    return _write(ids, entry.outbox_id, entry.action, entry.actor, entry.target_user_id,
                  entry.staged)


def _write(ids: Session, outbox_id: int, action: str, actor: Actor,
           target_user_id: int | None, detail: dict[str, Any]) -> int:
    done = ids.get(AuditOutboxDelivered, outbox_id)
    if done is not None:
        return done.audit_id
    event = record(ids, action, actor, target_user_id,  # type: ignore[arg-type]
                   **{**detail, "outbox_id": outbox_id})
    ids.add(AuditOutboxDelivered(outbox_id=outbox_id, audit_id=event.id, at=utcnow()))
    ids.flush()
    return event.id


def mark_delivered(done: dict[int, int]) -> None:
    """Mark outbox rows (id -> audit id) delivered in the ledger database."""
    if not done:
        return
    now = utcnow()
    with ledger_tx() as s:
        for outbox_id, audit_id in done.items():
            s.execute(update(AuditOutbox).where(AuditOutbox.id == outbox_id,
                                                AuditOutbox.delivered_at.is_(None))
                      .values(delivered_at=now, audit_id=audit_id))


def deliver_now(entries: list[Entry]) -> None:
    """Write staged entries (their ledger transaction has committed) to the audit log now
    and mark them delivered; a failure is logged and left to the audit-outbox job."""
    staged = [e for e in entries if e.outbox_id is not None]
    if not staged:
        return
    try:
        with identity_tx() as ids:
            done = {e.outbox_id: deliver(ids, e) for e in staged}
        mark_delivered(done)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the job delivers them later, exactly once
        log.warning("audit_outbox_deliver_failed", error=type(exc).__name__,
                    outbox_ids=[e.outbox_id for e in staged])


def deliver_pending(grace_seconds: float = GRACE_SECONDS) -> dict[str, int]:
    """The ``audit-outbox`` job: deliver staged rows older than ``grace_seconds``."""
    from casino_app.users.models import RecoveryCode, User

    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with ledger_tx(readonly=True) as s:
        rows = [(r.id, r.created_at, r.action, Actor(r.actor_user_id, r.actor_role, r.ip),
                 r.target_user_id, json.loads(r.detail), r.totp_step, r.recovery_code_id)
                for r in s.execute(select(AuditOutbox).where(
                    AuditOutbox.delivered_at.is_(None), AuditOutbox.created_at <= cutoff)
                    .order_by(AuditOutbox.id).limit(BATCH)).scalars()]
    done: dict[int, int] = {}
    late = 0
    for oid, created, action, actor, target, detail, step, recovery_id in rows:
        with identity_tx() as ids:
            user = None
            if target is not None:  # waits for an inline delivery holding this lock
                user = ids.execute(select(User).where(User.id == target)
                                   .with_for_update()).scalar_one_or_none()
            found = ids.get(AuditOutboxDelivered, oid)
            if found is None:
                # The action committed but its identity transaction did not: spend the
                # second factor it used, so that the code cannot be used again.
                if user is not None and step is not None and \
                        (user.totp_last_step is None or user.totp_last_step < step):
                    user.totp_last_step = step
                if recovery_id is not None:
                    ids.execute(update(RecoveryCode).where(
                        RecoveryCode.id == recovery_id, RecoveryCode.used_at.is_(None))
                        .values(used_at=utcnow()))
                audit_id = _write(ids, oid, action, actor, target,
                                  {**detail, "staged_at": created.isoformat()})
                log.warning("audit_outbox_recovered", outbox_id=oid, action=action)
                late += 1
            else:
                audit_id = found.audit_id
        done[oid] = audit_id
    mark_delivered(done)
    with ledger_tx(readonly=True) as s:
        stuck = s.execute(select(AuditOutbox.id).where(
            AuditOutbox.delivered_at.is_(None),
            AuditOutbox.created_at <= utcnow() - timedelta(seconds=LATE_SECONDS))
            .limit(1)).first()
    if stuck is not None:
        log.error("audit_outbox_stuck", oldest=stuck[0])
    return {"delivered": len(done), "recovered": late} if done else {}
