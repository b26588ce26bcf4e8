"""`casino ledger check` and `casino ledger fund`, as an operator uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from casino_app.cli import main
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.payments import ledger
from casino_app.security.models import AuditEvent
from tests.support.cli_logging import forget_cli_logging  # noqa: F401 (autouse fixture)


def _violations_metric(check: str) -> float:
    return REGISTRY.get_sample_value("casino_invariant_violations_total",
                                     {"check": f"ledger.{check}"}) or 0.0


def _actions() -> list[str]:
    with identity_tx(readonly=True) as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_fund_records_bankroll_once_and_check_passes(
        app_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["ledger", "fund", "--currency", "btc", "--amount", "0.5", "--reference", "tx-1"]
    assert main(args) == 0
    assert "recorded: 0.50000000 BTC" in capsys.readouterr().out
    assert main(args) == 0
    assert "already recorded" in capsys.readouterr().out
    with ledger_tx(readonly=True) as s:
        assert ledger.house_total(s, "BTC", "bankroll") == 50_000_000
    assert _actions().count("ledger.bankroll_funded") == 1
    assert main(["ledger", "check"]) == 0
    out = capsys.readouterr().out
    assert "ledger: all invariants hold" in out and "VIOLATED" not in out


@pytest.mark.parametrize(("currency", "amount", "reference", "message"), [
    ("XYZ", "1", "r", "Unknown currency"),
    ("FUN", "1", "r", "play money"),
    ("BTC", "0.000000001", "r", "at most 8 decimals"),
    ("BTC", "-1", "r", "positive"),
    ("BTC", "lots", "r", "not an amount"),
    # the pen-test finding: "0,05" was 5 BTC of bankroll
    *[("BTC", text, "r", "Use a dot for decimals and no thousands separators, e.g. 1234.56")
      for text in ("0,05", "1,000", "1.000,50", "1 000", "1_000")],
    ("BTC", "1", "   ", "--reference"),
])
def test_fund_refuses_bad_input_and_changes_nothing(
        app_env: Path, capsys: pytest.CaptureFixture[str], currency: str, amount: str,
        reference: str, message: str) -> None:
    assert main(["ledger", "fund", "--currency", currency, "--amount", amount,
                 "--reference", reference]) == 2
    assert message in capsys.readouterr().err
    with ledger_tx(readonly=True) as s:
        assert s.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar_one() == 0


def test_fund_with_a_dot_records_exactly_that(app_env: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "fund", "--currency", "BTC", "--amount", "0.05",
                 "--reference", "tx-dot"]) == 0
    assert "recorded: 0.05000000 BTC" in capsys.readouterr().out
    with ledger_tx(readonly=True) as s:
        assert ledger.house_total(s, "BTC", "bankroll") == 5_000_000


def test_fund_refuses_a_reused_reference_with_another_amount(
        app_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["ledger", "fund", "--currency", "ETH", "--reference", "tx-9", "--amount"]
    assert main([*base, "1"]) == 0
    assert main([*base, "2"]) == 2
    assert "already recorded with another amount" in capsys.readouterr().err


def test_check_fails_names_the_invariant_counts_and_audits_it(
        app_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "fund", "--currency", "BTC", "--amount", "1",
                 "--reference", "tx-1"]) == 0
    before = _violations_metric("balances_match_postings")
    with ledger_tx() as s:  # money appears without a posting
        s.execute(text("UPDATE ledger_accounts SET balance = balance + 7 "
                       "WHERE kind = 'bankroll'"))
    capsys.readouterr()
    assert main(["ledger", "check"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED (1)     balances_match_postings" in out
    assert "VIOLATED (1)     books_balance" in out
    assert _violations_metric("balances_match_postings") == before + 1
    assert _actions()[-1] == "ledger.check_failed"
