"""Audit anchors: copies of the audit head in the ledger database catch a rewrite of the
chain that ``audit.verify`` alone cannot see (every row re-hashed after an edit)."""

from __future__ import annotations

import json

import pytest
import structlog
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from casino_app.cli import main
from casino_app.core.db import databases, identity_tx, ledger_tx
from casino_app.core.settings import ConfigError, reset_settings_cache
from casino_app.security.anchor_models import AuditAnchor
from casino_app.security.anchors import anchor_now, check_anchors, verify_with_anchors
from casino_app.security.audit import Actor, AuditAction, compute_hash, record, verify
from casino_app.security.models import AuditEvent, AuditHead
from casino_app.users import staff
from casino_app.users.models import Role
from tests.support.audit_tamper import exec_identity, open_tampering
from tests.support.cli_logging import forget_cli_logging  # noqa: F401 (autouse fixture)
from tests.users.helpers import make_staff


def _history(n: int) -> None:
    with identity_tx() as s:
        for i in range(n):
            record(s, AuditAction.staff_lookup, Actor(i + 1, "support", "10.0.0.1"), 100 + i,
                   note=f"row {i + 1}")


def _anchor_ids() -> list[int]:
    with ledger_tx(readonly=True) as s:
        return list(s.execute(select(AuditAnchor.audit_id).order_by(AuditAnchor.audit_id))
                    .scalars())


def _anchored(*counts: int) -> None:
    """Append ``counts[0]`` rows, anchor, append ``counts[1]``, anchor, ..."""
    for n in counts:
        _history(n)
        assert anchor_now() is not None


def _violations() -> float:
    return REGISTRY.get_sample_value("casino_invariant_violations_total",
                                     {"check": "audit_anchor"}) or 0.0


def _chain_ok() -> bool:
    with identity_tx() as s:
        return verify(s).ok




def _rewrite_from(k: int) -> None:
    """Edit row k's detail and re-hash it and every later row, and the head: what an
    attacker with write access to the identity database does so that verify passes."""
    with identity_tx() as s:
        rows = list(s.execute(select(AuditEvent).where(AuditEvent.id >= k)
                              .order_by(AuditEvent.id)).scalars())
        rows[0].detail = json.dumps({"note": "nothing to see"})
        prev = rows[0].prev_hash
        for row in rows:
            row.prev_hash = prev
            row.row_hash = compute_hash(row)
            prev = row.row_hash
            s.flush()
        head = s.get(AuditHead, 1)
        assert head is not None
        head.last_hash = prev


def _verify_cli(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out.strip().splitlines()


# Anchoring ------------------------------------------------------------------------------
def test_anchoring_writes_a_row_only_when_the_head_moved(any_env: str) -> None:
    assert anchor_now() is None  # an empty audit log has nothing to anchor
    _history(3)
    with structlog.testing.capture_logs() as logs:
        first = anchor_now()
    assert first is not None and (first.audit_id, first.at is not None) == (3, True)
    with identity_tx() as s:
        assert first.row_hash == s.get(AuditEvent, 3).row_hash  # type: ignore[union-attr]
    assert [(e["event"], e["audit_id"], e["row_hash"]) for e in logs
            if e.get("log_level") == "info"] == [("audit anchor", 3, first.row_hash)]

    assert anchor_now() is None and anchor_now() is None
    assert _anchor_ids() == [3]
    _history(2)
    second = anchor_now()
    assert second is not None and second.audit_id == 5
    assert anchor_now() is None
    assert _anchor_ids() == [3, 5]


def test_the_database_refuses_to_change_or_remove_anchors(any_env: str) -> None:
    _anchored(2)
    for sql in ("UPDATE audit_anchors SET row_hash = 'x'", "DELETE FROM audit_anchors"):
        with pytest.raises(DBAPIError) as exc, databases().ledger_engine.begin() as conn:
            conn.execute(text(sql))
        assert "append-only" in str(exc.value)
    assert _anchor_ids() == [2]


def test_an_intact_chain_with_anchors_verifies(any_env: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _anchored(3, 2)
    _history(2)  # rows after the newest anchor are fine
    with identity_tx() as ids, ledger_tx(readonly=True) as led:
        assert check_anchors(ids, led) == []
        result = verify_with_anchors(ids, led)
    assert (result.ok, result.rows, result.anchors, result.first_broken_id) == (True, 7, 2, None)
    code, out = _verify_cli(capsys)
    assert (code, out) == (0, ["audit log intact: 7 rows, 2 anchors match"])


# Tampering ------------------------------------------------------------------------------
def test_a_rewritten_and_rehashed_chain_is_caught_by_its_anchors(
        any_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _anchored(2, 3, 3)  # anchors at rows 2, 5 and 8
    _history(1)  # row 9
    open_tampering(any_env)
    _rewrite_from(4)
    assert _chain_ok()  # the chain alone no longer shows it

    with identity_tx() as ids, ledger_tx(readonly=True) as led:
        assert check_anchors(ids, led) == [
            "anchor at row 5 does not match: rows 3..5 were rewritten",
            "anchor at row 8 does not match: rows 3..8 were rewritten",
        ]
    before = _violations()
    code, out = _verify_cli(capsys)
    assert code == 1
    assert out == ["audit log BROKEN at row 5: anchor at row 5 does not match: "
                   "rows 3..5 were rewritten",
                   "  anchor at row 8 does not match: rows 3..8 were rewritten"]
    assert _violations() == before + 1

    # The job will not anchor the rewritten head either (row 9 no longer links to the
    # anchor at row 8), and says so.
    with structlog.testing.capture_logs() as logs:
        assert anchor_now() is None
    assert _anchor_ids() == [2, 5, 8]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["audit anchor refused"]
    assert _violations() == before + 2


def test_the_staff_audit_check_names_the_anchored_row(any_env: str) -> None:
    admin, _, _ = make_staff(Role.admin)
    anchor = anchor_now()
    assert anchor is not None and staff.verify_audit(admin).ok
    _history(2)
    open_tampering(any_env)
    _rewrite_from(1)
    assert _chain_ok()
    result = staff.verify_audit(admin)
    assert (result.ok, result.first_broken_id) == (False, anchor.audit_id)
    assert result.reason.startswith(f"anchor at row {anchor.audit_id} does not match")


def test_a_rewritten_newest_row_is_not_anchored_again(any_env: str) -> None:
    _anchored(3)  # the head is the anchored row
    open_tampering(any_env)
    _rewrite_from(3)
    assert _chain_ok()
    before = _violations()
    with structlog.testing.capture_logs() as logs:
        assert anchor_now() is None
    assert [e["reason"] for e in logs if e["log_level"] == "error"] == [
        "audit head does not match the newest anchor"]
    assert _violations() == before + 1 and _anchor_ids() == [3]
    with identity_tx() as ids, ledger_tx(readonly=True) as led:
        result = verify_with_anchors(ids, led)
    assert (result.ok, result.first_broken_id, result.reason) == (
        False, 3, "anchor at row 3 does not match: rows 1..3 were rewritten")


def test_deleting_the_newest_rows_after_an_anchor_is_caught(
        any_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _anchored(4, 2)  # anchors at rows 4 and 6
    open_tampering(any_env)
    exec_identity("DELETE FROM audit_log WHERE id > 4")
    with identity_tx() as s:
        head = s.get(AuditHead, 1)
        row4 = s.get(AuditEvent, 4)
        assert head is not None and row4 is not None
        head.last_id, head.last_hash = 4, row4.row_hash
    assert _chain_ok()

    code, out = _verify_cli(capsys)
    assert code == 1
    assert out == ["audit log BROKEN at row 5: audit head (row 4) is older than the newest "
                   "anchor (row 6): rows 5..6 were removed",
                   "  anchor at row 6 does not match: the row is missing"]
    before = _violations()
    assert anchor_now() is None
    assert _violations() == before + 1


def test_a_broken_chain_is_still_reported_first(any_env: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _anchored(4)
    open_tampering(any_env)
    exec_identity("UPDATE audit_log SET detail = '{}' WHERE id = 2")  # not re-hashed
    code, out = _verify_cli(capsys)
    assert code == 1
    # Row 4's stored hash is unchanged, so its anchor still matches: the chain names row 2.
    assert out == ["audit log BROKEN at row 2: row content does not match its hash"]


# The job ----------------------------------------------------------------------------------
def test_the_anchor_job_is_a_builtin_job(base_env: object,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.jobs.builtin import builtin_jobs

    monkeypatch.delenv("CASINO_AUDIT_ANCHOR_SECONDS", raising=False)
    reset_settings_cache()
    jobs = {j.name: j for j in builtin_jobs()}
    assert (jobs["audit-anchor"].interval, jobs["audit-anchor"].func) == (600, anchor_now)
    assert builtin_jobs() == builtin_jobs() and builtin_jobs()[1] is builtin_jobs()[1]

    monkeypatch.setenv("CASINO_AUDIT_ANCHOR_SECONDS", "60")
    reset_settings_cache()
    assert {j.name: j.interval for j in builtin_jobs()}["audit-anchor"] == 60
    monkeypatch.setenv("CASINO_AUDIT_ANCHOR_SECONDS", "5")
    reset_settings_cache()
    with pytest.raises(ConfigError, match="CASINO_AUDIT_ANCHOR_SECONDS"):
        builtin_jobs()
    reset_settings_cache()

