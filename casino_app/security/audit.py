"""Append-only, hash-chained audit log.

Each row's hash covers its own fields and the previous row's hash, so editing, removing
or reordering any row breaks every hash after it; ``verify`` names the first broken row.
Appends are serialized by updating the single ``audit_head`` row first, in the same
transaction as the action being recorded: an action and its audit row commit together,
exactly once. The database refuses UPDATE and DELETE on the table (triggers).

Someone who can write to the identity database could still rewrite the chain from an
edited row onward and verify would pass; ``security.anchors`` keeps copies of the head
in the ledger database to catch that (``verify_with_anchors``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.logging import security_logger
from casino_app.core.metrics import AUDIT_EVENTS, INVARIANT_VIOLATIONS
from casino_app.security.models import GENESIS_HASH, AuditEvent, AuditHead


class AuditAction(StrEnum):
    register = "account.register"
    # a sign-up form sent (detail: whether the address already had an account)
    register_requested = "account.register_requested"
    login_ok = "login.ok"
    login_failed = "login.failed"
    login_mfa_failed = "login.mfa_failed"
    logout = "logout"
    lock = "account.lock"
    unlock = "account.unlock"
    totp_enabled = "2fa.enabled"
    totp_disabled = "2fa.disabled"
    recovery_codes_regenerated = "2fa.recovery_regenerated"
    recovery_code_used = "2fa.recovery_used"
    session_revoke = "session.revoke"
    sessions_revoke_others = "session.revoke_others"
    password_reset_requested = "password.reset_requested"  # noqa: S105 - an audit action name, no secret
    password_reset = "password.reset"  # noqa: S105 - an audit action name, no secret
    password_changed = "password.changed"  # noqa: S105 - an audit action name, no secret
    staff_lookup = "staff.lookup"
    staff_search = "staff.search"
    staff_lock = "staff.lock"
    staff_unlock = "staff.unlock"
    staff_revoke_sessions = "staff.revoke_sessions"
    staff_revoke_session = "staff.revoke_session"
    staff_created = "staff.created"
    staff_role_changed = "staff.role_changed"
    # Giving a staff role: one admin asks, a different admin approves or rejects.
    role_requested = "staff.role_requested"
    role_approved = "staff.role_approved"
    role_rejected = "staff.role_rejected"
    keys_rotated = "keys.rotated"
    staff_money_view = "staff.money_view"
    adjustment_requested = "ledger.adjustment_requested"
    adjustment_approved = "ledger.adjustment_approved"
    adjustment_rejected = "ledger.adjustment_rejected"
    ledger_check_failed = "ledger.check_failed"
    bankroll_funded = "ledger.bankroll_funded"
    reconcile_failed = "chain.reconcile_failed"
    staff_reconcile_run = "staff.reconcile_run"
    hold_released = "staff.hold_released"
    # game providers (users/staff_providers): an admin disables or enables one; staff
    # search provider rounds and open one (a player's money: audited like money views)
    provider_disabled = "staff.provider_disabled"
    provider_enabled = "staff.provider_enabled"
    provider_round_search = "staff.provider_round_search"
    provider_round_view = "staff.provider_round_view"
    # Ethereum withdrawals (the player's request: recorded by the UI layer) and payments
    # from the cold Safe (payments/eth/safe_payments, users/staff_withdrawals).
    withdrawal_requested = "withdrawal.requested"
    # withdrawal protection (users/withdrawal_guard, users/risk): a mailed confirmation
    # link opened (detail: its outcome), a wrong second factor, the allow-list changed,
    # a temporary hold placed by the account's risk (staff alert)
    withdrawal_confirmed = "withdrawal.confirmed"
    withdrawal_factor_failed = "withdrawal.second_factor_failed"
    allow_list_added = "withdrawal.allow_list_added"
    allow_list_removed = "withdrawal.allow_list_removed"
    risk_hold = "risk.hold"
    withdrawal_lock_lifted = "staff.withdrawal_lock_lifted"
    withdrawal_prepared = "withdrawal.safe_prepared"
    withdrawal_approved = "withdrawal.approved"
    withdrawal_rejected = "withdrawal.rejected"
    withdrawal_paid = "withdrawal.paid"
    refill_requested = "refill.requested"
    refill_approved = "refill.approved"
    refill_cancelled = "refill.cancelled"
    refill_paid = "refill.paid"
    safe_payment_cancelled = "safe.payment_cancelled"
    # a payment staff had rejected (cancelling) was executed by the Safe owners: paid
    safe_rejected_executed = "safe.rejected_payment_executed"
    safe_exec_reverted = "safe.exec_reverted"
    hot_wallet_low = "chain.hot_wallet_low"
    sweep_failing = "chain.sweep_failing"
    # Bitcoin cold-wallet payments by PSBT (payments/btc/cold_payments, cold_sender;
    # users/staff_withdrawals): an admin prepares the PSBT of a large withdrawal
    # (``refill.requested`` for a refill), each approval is an uploaded cosigner signature
    # (``withdrawal.approved`` / ``refill.approved``), rejecting is ``withdrawal.rejected``
    # / ``refill.cancelled``; the job's outcomes as the system: ``withdrawal.paid`` /
    # ``refill.paid`` and these.
    withdrawal_psbt_prepared = "withdrawal.psbt_prepared"
    cold_payment_failed = "btc.cold_payment_failed"
    cold_payment_cancelled = "btc.cold_payment_cancelled"
    # a cold payment taken back after a full set of signatures was uploaded was broadcast
    # by someone holding them: paid
    cold_rejected_executed = "btc.cold_rejected_payment_executed"
    # loyalty (games/loyalty, users/loyalty, users/staff_loyalty): a player's claim (paid
    # or held for staff), an admin's decision on a held claim; staged with the ledger
    # transaction that moves the money (security/outbox.py)
    loyalty_claimed = "loyalty.claimed"
    loyalty_approved = "staff.loyalty_approved"
    loyalty_rejected = "staff.loyalty_rejected"
    # a proof of reserves found what addresses hold below what players are owed
    reserves_short = "reserves.below_liabilities"


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (with role), or the system (user_id None)."""

    user_id: int | None = None
    role: str | None = None
    ip: str = ""


SYSTEM = Actor(None, "system", "")


def _canonical(event: AuditEvent) -> bytes:
    fields = {
        "id": event.id,
        "at": event.at.isoformat(timespec="microseconds"),
        "action": event.action,
        "actor_user_id": event.actor_user_id,
        "actor_role": event.actor_role,
        "target_user_id": event.target_user_id,
        "ip": event.ip,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def record(session: Session, action: AuditAction, actor: Actor,
           target_user_id: int | None = None, **detail: Any) -> AuditEvent:
    """Append one row in the caller's transaction. Never put secrets in ``detail``."""
    # Take the head row's write lock first: concurrent appends queue here.
    session.execute(update(AuditHead).where(AuditHead.id == 1)
                    .values(last_id=AuditHead.last_id + 1))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)
                           .execution_options(populate_existing=True)).scalar_one()
    event_row = AuditEvent(
        id=head.last_id,
        at=utcnow(),
        action=str(action),
        actor_user_id=actor.user_id,
        actor_role=actor.role,
        target_user_id=target_user_id,
        ip=actor.ip or "",
        detail=json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str),
        prev_hash=head.last_hash,
    )
    event_row.row_hash = compute_hash(event_row)
    session.add(event_row)
    head.last_hash = event_row.row_hash
    session.flush()
    _after_commit(session, {"action": event_row.action, "actor_user_id": actor.user_id,
                            "actor_role": actor.role, "target_user_id": target_user_id,
                            "audit_id": event_row.id})
    return event_row


def _after_commit(session: Session, entry: dict[str, Any]) -> None:
    """Once the transaction has committed (never for a rolled-back action): count the
    row in /api/metrics and write it to the security log stream."""
    pending: list[dict[str, Any]] = session.info.setdefault("audit_pending", [])
    if not pending:
        def flush(sess: Session) -> None:
            for e in sess.info.pop("audit_pending", []):
                AUDIT_EVENTS.labels(e["action"]).inc()
                security_logger().info("audit", **e)

        event.listen(session, "after_commit", flush, once=True)
        event.listen(session, "after_rollback",
                     lambda sess: sess.info.pop("audit_pending", None), once=True)
    pending.append(entry)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    first_broken_id: int | None = None
    reason: str = ""
    # Filled by ``security.anchors.verify_with_anchors``: anchors checked, and what
    # did not match them (``verify`` alone knows nothing of anchors).
    anchors: int = 0
    anchor_problems: tuple[str, ...] = ()


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute the chain from the first row up to the head read at the start (rows
    appended while it runs are left for the next run); report the first row that does
    not fit."""
    head = session.execute(select(AuditHead.last_id, AuditHead.last_hash)
                           .where(AuditHead.id == 1)).one_or_none()
    end = head.last_id if head is not None else None
    prev = GENESIS_HASH
    expected_id = 1
    count = 0
    last_id = 0
    while True:
        q = select(AuditEvent).where(AuditEvent.id > last_id)
        if end is not None:
            q = q.where(AuditEvent.id <= end)
        rows = session.execute(q.order_by(AuditEvent.id).limit(batch)).scalars().all()
        if not rows:
            break
        for row in rows:
            count += 1
            if row.id != expected_id:
                return VerifyResult(False, count, expected_id,
                                    f"row {expected_id} is missing (next is {row.id})")
            if row.prev_hash != prev:
                return VerifyResult(False, count, row.id,
                                    "prev_hash does not match the previous row")
            if compute_hash(row) != row.row_hash:
                return VerifyResult(False, count, row.id, "row content does not match its hash")
            prev = row.row_hash
            expected_id += 1
            last_id = row.id
        session.expunge_all()
    if head is not None and (head.last_id != last_id or head.last_hash != prev):
        return VerifyResult(False, count, last_id + 1,
                            f"rows after {last_id} are missing (head says {head.last_id})")
    return VerifyResult(True, count)


def verify_and_count(session: Session) -> VerifyResult:
    """``verify``, counting a broken chain in /api/metrics."""
    result = verify(session)
    if not result.ok:
        INVARIANT_VIOLATIONS.labels("audit_chain").inc()
    return result


def recent(session: Session, limit: int = 100, target_user_id: int | None = None,
           before_id: int | None = None) -> list[AuditEvent]:
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if target_user_id is not None:
        q = q.where(AuditEvent.target_user_id == target_user_id)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    return list(session.execute(q).scalars())


def format_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")
