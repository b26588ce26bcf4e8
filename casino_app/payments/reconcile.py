"""What every chain's reconciliation shares (payments/eth/reconcile.py,
payments/btc/reconcile.py): the issues a run finds, its result, the cursor of the deposit
checks, and how a run is kept: stored (``reconcile_runs``, ``reconcile_issues``; clean
runs too), each discrepancy counted in ``casino_invariant_violations_total{check=...}``
and logged to the security log, and a run with discrepancies audited
(``chain.reconcile_failed``). Reconciliation reads; it never moves money.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import security_logger
from casino_app.core.metrics import INVARIANT_VIOLATIONS
from casino_app.payments.reconcile_models import ReconcileIssue, ReconcileRun
from casino_app.security.audit import SYSTEM, AuditAction, record


@dataclass
class Issue:
    currency: str
    kind: str      # balance, missing_deposit, credit_not_on_chain, ... (per chain)
    detail: str
    expected: str = ""
    actual: str = ""


@dataclass
class Result:
    run_id: int
    block: int
    clean: bool
    issues: list[Issue]
    totals: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class ReconcileUnavailable(Exception):
    """Nothing to reconcile yet (the watcher stored no block), or not now (the node and
    the watcher are too far apart): nothing was stored."""


def last_deposits_clean(s: Session, chain: str) -> ReconcileRun | None:
    """The newest run whose deposit checks found nothing (its summary's
    ``deposits_clean``; runs stored before that key: clean runs). A balance issue alone
    does not hold the deposit cursor back; a deposit issue does (reported again until
    resolved)."""
    for run in s.execute(select(ReconcileRun).where(ReconcileRun.chain == chain)
                         .order_by(ReconcileRun.id.desc()).limit(500)).scalars():
        try:
            flag = json.loads(run.summary or "{}").get("deposits_clean")
        except (ValueError, AttributeError):
            flag = None
        if (run.clean if flag is None else flag) is True:
            return run
    return s.execute(select(ReconcileRun).where(
        ReconcileRun.chain == chain, ReconcileRun.clean.is_(True))
        .order_by(ReconcileRun.id.desc()).limit(1)).scalar_one_or_none()


def checked_to(run: ReconcileRun | None) -> int | None:
    """The block up to which ``run`` checked deposits (its pinned block for runs stored
    before the cursor existed)."""
    if run is None:
        return None
    try:
        value = json.loads(run.summary or "{}").get("deposits_checked_to")
    except (ValueError, AttributeError):
        value = None
    return value if isinstance(value, int) else run.block_number


def deposit_window(first: int | None, checked: int | None, pinned: int, reorg_depth: int,
                   blocks: int) -> tuple[int, int]:
    """(since, to): the deposit checks cover the blocks ``since + 1 .. to``: from the
    watcher's first block the first time, else again the ``reorg_depth`` blocks below the
    last clean run's cursor (a reorg may have changed them), at most ``blocks`` of them
    and never above the pinned block."""
    since = (first or 0) - 1
    if checked is not None:
        since = max(since, checked - reorg_depth)
    return since, max(min(pinned, since + blocks), since)


def store_run(chain: str, block: int, block_hash: str, issues: list[Issue],
              summary: dict[str, Any], started: datetime, *, metric_prefix: str,
              log: Any, event: str) -> int:
    """Store the run and its issues (one ledger transaction), count and log each issue
    (``<metric_prefix>.<kind>``), audit a run with issues, log ``event``; returns the
    run's id."""
    with ledger_tx() as s:
        run = ReconcileRun(chain=chain, block_number=block, block_hash=block_hash,
                           clean=not issues, issues=len(issues), summary=json.dumps(summary),
                           started_at=started, finished_at=utcnow())
        s.add(run)
        s.flush()
        for i in issues:
            s.add(ReconcileIssue(run_id=run.id, currency=i.currency, kind=i.kind,
                                 detail=i.detail[:400], expected=i.expected[:80],
                                 actual=i.actual[:80]))
        run_id = run.id
    for i in issues:
        INVARIANT_VIOLATIONS.labels(f"{metric_prefix}.{i.kind}").inc()
        security_logger().error("reconciliation discrepancy", chain=chain,
                                currency=i.currency, kind=i.kind, detail=i.detail)
    if issues:
        with identity_tx() as s:
            record(s, AuditAction.reconcile_failed, SYSTEM, None, run_id=run_id, block=block,
                   chain=chain, issues=[f"{i.currency} {i.kind}" for i in issues][:20])
    log.info(event, run_id=run_id, block=block, clean=not issues,
             issues=len(issues))
    return run_id
