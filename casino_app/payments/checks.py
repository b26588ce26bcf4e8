"""Running the ledger's invariant checks: from `casino ledger check`, from the hourly
``ledger-check`` job, and counting violations in /api/metrics."""

from __future__ import annotations

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import security_logger
from casino_app.core.metrics import INVARIANT_VIOLATIONS
from casino_app.payments import ledger
from casino_app.security.audit import SYSTEM, AuditAction, record


def run_check() -> list[ledger.Finding]:
    """Check every invariant; count and audit violations. Returns the findings."""
    with ledger_tx(readonly=True) as s:
        findings = ledger.check_invariants(s)
    bad = [f for f in findings if f.violations]
    for f in bad:
        INVARIANT_VIOLATIONS.labels(f"ledger.{f.check}").inc(f.violations)
        security_logger().error("ledger invariant violated", check=f.check,
                                violations=f.violations, examples=f.examples)
    if bad:
        with identity_tx() as s:
            record(s, AuditAction.ledger_check_failed, SYSTEM, None,
                   violations={f.check: f.violations for f in bad})
    return findings
