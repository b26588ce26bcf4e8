"""External anchors for the audit log.

The hash chain (``security.audit``) shows that rows were edited, removed or reordered,
but someone who can write to the identity database can also rewrite every row from an
edited one onward, and the head, so that the chain verifies again. Anchors stop that:
every ``audit_anchor_seconds`` the ``audit-anchor`` job copies the audit head (row id and
row hash) into ``audit_anchors`` in the *ledger* database and writes the same pair to the
security log stream. A rewrite is then visible unless the attacker can also change the
ledger database (separate credentials in production) and the shipped logs.

``check_anchors`` compares each anchor with the audit row it names; ``verify_with_anchors``
is ``audit.verify`` plus that check, for ``casino audit verify`` and the staff audit page.
Rows appended after the newest anchor are covered by the chain and the logs only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import security_logger
from casino_app.core.metrics import INVARIANT_VIOLATIONS
from casino_app.security.anchor_models import AuditAnchor
from casino_app.security.audit import VerifyResult, compute_hash, verify_and_count
from casino_app.security.models import GENESIS_HASH, AuditEvent, AuditHead

Anchor = AuditAnchor

BATCH = 1000


@dataclass(frozen=True)
class AnchorProblem:
    """``row``: the first audit row the problem concerns (for ``first_broken_id``)."""

    row: int
    reason: str


def _head(identity: Session) -> tuple[int, str]:
    head = identity.get(AuditHead, 1)
    return (head.last_id, head.last_hash) if head is not None else (0, GENESIS_HASH)


def _newest(ledger: Session) -> AuditAnchor | None:
    return ledger.execute(select(AuditAnchor).order_by(AuditAnchor.audit_id.desc())
                          .limit(1)).scalar_one_or_none()


def _segment_problem(identity: Session, after: AuditAnchor | None, head_id: int,
                     head_hash: str) -> str:
    """Why rows (newest anchor, head] do not continue the anchored chain, or ''.

    Only the rows appended since the newest anchor are read, so an anchor is never
    taken of a head that does not link back to the previous anchor."""
    prev = after.row_hash if after is not None else GENESIS_HASH
    expected = (after.audit_id if after is not None else 0) + 1
    while expected <= head_id:
        rows = identity.execute(select(AuditEvent).where(AuditEvent.id >= expected,
                                                         AuditEvent.id <= head_id)
                                .order_by(AuditEvent.id).limit(BATCH)).scalars().all()
        if not rows:
            return f"row {expected} is missing"
        for row in rows:
            if row.id != expected:
                return f"row {expected} is missing"
            if row.prev_hash != prev or compute_hash(row) != row.row_hash:
                return f"row {row.id} does not continue the chain"
            prev, expected = row.row_hash, expected + 1
        identity.expunge_all()
    if prev != head_hash:
        return f"the head's hash is not row {head_id}'s"
    return ""


def _refuse(reason: str, **fields: object) -> None:
    INVARIANT_VIOLATIONS.labels("audit_anchor").inc()
    security_logger().error("audit anchor refused", reason=reason, **fields)


def anchor_now() -> AuditAnchor | None:
    """Anchor the audit head in the ledger database if it moved since the newest anchor.

    Returns the new anchor, or None when there was nothing to do or the head does not
    fit the newest anchor (logged to the security stream and counted as an
    ``audit_anchor`` invariant violation; no anchor is taken then). Idempotent."""
    # The newest anchor first, then the head: the head read afterwards can only be at
    # or past it, so a head behind the newest anchor means rows were removed.
    with ledger_tx(readonly=True) as led:
        newest = _newest(led)
        if newest is not None:
            led.expunge(newest)
    with identity_tx(readonly=True) as ids:
        head_id, head_hash = _head(ids)
        if newest is not None and head_id < newest.audit_id:
            _refuse("audit head is older than the newest anchor", head_id=head_id,
                    anchor_audit_id=newest.audit_id)
            return None
        if newest is not None and head_id == newest.audit_id:
            if head_hash != newest.row_hash:
                _refuse("audit head does not match the newest anchor", head_id=head_id)
            return None
        if head_id == 0:
            return None
        problem = _segment_problem(ids, newest, head_id, head_hash)
    if problem:
        _refuse(problem, head_id=head_id,
                anchor_audit_id=newest.audit_id if newest is not None else 0)
        return None
    try:
        with ledger_tx() as led:
            again = _newest(led)
            if again is not None and again.audit_id >= head_id:
                return None  # anchored meanwhile by another process
            anchor = AuditAnchor(at=utcnow(), audit_id=head_id, row_hash=head_hash)
            led.add(anchor)
    except IntegrityError:
        return None  # the same head, anchored at the same moment elsewhere
    security_logger().info("audit anchor", audit_id=anchor.audit_id,
                           row_hash=anchor.row_hash)
    return anchor


def anchor_problems(identity: Session, ledger: Session) -> list[AnchorProblem]:
    """Every anchor whose audit row is missing or has another hash, and an audit head
    older than the newest anchor (rows were removed); ordered by audit row.

    The anchors are read before the audit rows, so an anchor taken while this runs
    cannot look like a removal (on SQLite, pass an identity session that has not read
    yet, or one holding the write lock, as ``identity_tx()`` does)."""
    problems: list[AnchorProblem] = []
    newest_id = ledger.execute(select(func.max(AuditAnchor.audit_id))).scalar()
    if newest_id is None:
        return problems
    head_id, _ = _head(identity)
    good = 0  # the newest anchor so far that matches: rows up to it are intact
    after = 0
    while True:
        anchors = ledger.execute(select(AuditAnchor.audit_id, AuditAnchor.row_hash)
                                 .where(AuditAnchor.audit_id > after,
                                        AuditAnchor.audit_id <= newest_id)
                                 .order_by(AuditAnchor.audit_id).limit(BATCH)).all()
        if not anchors:
            break
        ids = [a.audit_id for a in anchors]
        hashes = dict(identity.execute(select(AuditEvent.id, AuditEvent.row_hash)
                                       .where(AuditEvent.id.in_(ids))).tuples().all())
        for audit_id, row_hash in anchors:
            found = hashes.get(audit_id)
            if found is None:
                problems.append(AnchorProblem(
                    audit_id, f"anchor at row {audit_id} does not match: the row is missing"))
            elif found != row_hash:
                problems.append(AnchorProblem(
                    audit_id, f"anchor at row {audit_id} does not match: rows "
                              f"{good + 1}..{audit_id} were rewritten"))
            else:
                good = audit_id
        after = ids[-1]
    if head_id < newest_id:
        problems.append(AnchorProblem(
            head_id + 1, f"audit head (row {head_id}) is older than the newest anchor "
                         f"(row {newest_id}): rows {head_id + 1}..{newest_id} were removed"))
    problems.sort(key=lambda p: p.row)
    return problems


def check_anchors(identity: Session, ledger: Session) -> list[str]:
    """``anchor_problems`` as messages; empty when every anchor matches."""
    return [p.reason for p in anchor_problems(identity, ledger)]


def anchor_count(ledger: Session) -> int:
    return int(ledger.execute(select(func.count()).select_from(AuditAnchor)).scalar() or 0)


def verify_with_anchors(identity: Session, ledger: Session) -> VerifyResult:
    """``audit.verify`` and then the anchors; counts failures in /api/metrics
    (``audit_chain``, ``audit_anchor``). A broken chain is reported first; otherwise
    the first anchor problem, as row N with reason "anchor at row N does not match...".
    """
    problems = anchor_problems(identity, ledger)
    anchors = anchor_count(ledger)
    result = replace(verify_and_count(identity), anchors=anchors,
                     anchor_problems=tuple(p.reason for p in problems))
    if not problems:
        return result
    INVARIANT_VIOLATIONS.labels("audit_anchor").inc()
    security_logger().error("audit anchor mismatch", problems=len(problems),
                            first_row=problems[0].row, reason=problems[0].reason)
    if not result.ok:
        return result
    return replace(result, ok=False, first_broken_id=problems[0].row,
                   reason=problems[0].reason)
