"""Alerts about providers, for staff: bad signatures, wins for rounds not open,
commit-reveal mismatches, RTP drift. One row per (provider, kind, subject) and time
bucket: a repeat within the bucket counts up, so a flood stays a few rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import security_logger
from casino_app.core.metrics import PROVIDER_ALERTS
from casino_app.games.providers.models import Provider, ProviderAlert
from casino_app.payments import ledger

SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class AlertView:
    id: int
    provider: str
    kind: str
    severity: str
    subject: str
    detail: str
    count: int
    first_at: datetime
    last_at: datetime


def _bucket(kind: str, now: datetime) -> str:
    # floods (signatures) count per minute; findings about a round or a game are one row
    return now.strftime("%Y%m%d%H%M") if kind == "bad_signature" else ""


def record(s: Session, provider_id: int | None, kind: str, severity: str, subject: str,
           detail: str) -> None:
    """Raise (or count up) an alert in the caller's ledger transaction."""
    now = utcnow()
    bucket = _bucket(kind, now)
    subject = subject[:160]
    stmt = ledger.dialect_insert(s, ProviderAlert).values(
        provider_id=provider_id, kind=kind[:32], severity=severity, subject=subject,
        bucket=bucket, detail=detail[:2000], count=1, first_at=now, last_at=now,
    ).on_conflict_do_nothing(index_elements=["provider_id", "kind", "subject", "bucket"])
    if s.execute(stmt.returning(ProviderAlert.__table__.c.id)).first() is None:
        s.execute(update(ProviderAlert).where(
            ProviderAlert.provider_id == provider_id, ProviderAlert.kind == kind,
            ProviderAlert.subject == subject, ProviderAlert.bucket == bucket)
            .values(count=ProviderAlert.count + 1, last_at=now, detail=detail[:2000]))
    PROVIDER_ALERTS.labels(kind=kind).inc()
    security_logger().warning("provider alert", provider_id=provider_id, kind=kind,
                              severity=severity, subject=subject,
                              detail=json.dumps(detail)[:300])


def raise_alert(provider_id: int | None, kind: str, severity: str, subject: str,
                detail: str) -> None:
    """Raise an alert in its own transaction."""
    with ledger_tx() as s:
        record(s, provider_id, kind, severity, subject, detail)


def recent(limit: int = 100) -> list[AlertView]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(ProviderAlert, Provider.name).outerjoin(
            Provider, Provider.id == ProviderAlert.provider_id)
            .order_by(ProviderAlert.last_at.desc(), ProviderAlert.id.desc()).limit(limit))
        return [AlertView(a.id, name or "", a.kind, a.severity, a.subject, a.detail,
                          a.count, a.first_at, a.last_at) for a, name in rows]
