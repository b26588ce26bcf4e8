"""Amounts typed by people (bet amounts, staff adjustments, `casino ledger fund`)."""

from __future__ import annotations

import pytest

from casino_app.payments.currencies import currency


@pytest.mark.parametrize(("text", "units"), [
    ("0.5", 50_000_000), ("1,000.5", 100_050_000_000), (".5", 50_000_000),
    ("2.", 200_000_000), ("0.00000001", 1), (7, 700_000_000), (" 1_000 ", 100_000_000_000),
])
def test_plain_decimals_become_base_units(app_env, text: object, units: int) -> None:  # noqa: ANN001
    assert currency("BTC").parse(text) == units


@pytest.mark.parametrize(("text", "message"), [
    # a fixed bug: Decimal() read these, so a bet of "1e-2" FUN was 0.01 FUN
    ("1e-2", "not an amount"), ("1E2", "not an amount"), ("NaN", "not an amount"),
    ("Infinity", "not an amount"), ("0x10", "not an amount"), ("+1", "not an amount"),
    ("--1", "not an amount"), ("abc", "not an amount"),
    ("-1", "positive"), ("", "Enter an amount"), (None, "Enter an amount"),
    ("0.001", "at most 2 decimals"), ("9" * 30, "too large"),
])
def test_anything_else_is_refused_with_a_clear_message(app_env, text: object,  # noqa: ANN001
                                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        currency("FUN").parse(text)
