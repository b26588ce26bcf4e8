"""Amounts typed by people (bets, withdrawals, staff adjustments, `casino ledger fund`):
one parser, one reading that cannot be mistaken."""

from __future__ import annotations

import pytest

from casino_app.payments.currencies import AMOUNT_FORMAT, AmountError, currency, parse_decimal


@pytest.mark.parametrize(("text", "units"), [
    ("0.5", 50_000_000), (".5", 50_000_000), ("2.", 200_000_000), ("0.00000001", 1),
    (7, 700_000_000), (" 1000 ", 100_000_000_000), ("1234.56", 123_456_000_000),
    ("1.000", 100_000_000),  # a dot is always the decimal point: one coin, not a thousand
    ("0007.50", 750_000_000),
])
def test_plain_decimals_become_base_units(base_env, text: object, units: int) -> None:  # noqa: ANN001
    assert currency("BTC").parse(text) == units


@pytest.mark.parametrize("text", [
    # the pen-test finding: "0,05" was read as 5.00 FUN, 100 times what was meant
    "0,05", "1,000", "1,000.5", "1.000,50", "1 000", "1_000", " 1_000 ", "1'000",
    "1\u2019000", "1\u00a0000", "1\u202f000", "1\u2009000", "1.000.000", "0,5", ",5",
    "5,",
])
def test_separators_and_commas_are_refused_with_the_way_to_write_it(base_env,  # noqa: ANN001
                                                                    text: str) -> None:
    with pytest.raises(AmountError) as err:
        currency("FUN").parse(text)
    assert AMOUNT_FORMAT in str(err.value)
    assert "Use a dot for decimals and no thousands separators, e.g. 1234.56." in str(err.value)


@pytest.mark.parametrize(("text", "message"), [
    # a fixed bug: Decimal() read these, so a bet of "1e-2" FUN was 0.01 FUN
    ("1e-2", "not an amount"), ("1E2", "not an amount"), ("NaN", "not an amount"),
    ("Infinity", "not an amount"), ("0x10", "not an amount"), ("+1", "without a sign"),
    ("--1", "not an amount"), ("abc", "not an amount"), ("\u0661\u0662", "not an amount"),
    ("\uff11", "not an amount"), ("1" * 41, "not an amount"),
    ("-1", "positive"), ("", "Enter an amount"), ("   ", "Enter an amount"),
    (None, "Enter an amount"), (1.5, "Enter an amount"), (True, "Enter an amount"),
    ("0.001", "at most 2 decimals"), ("9" * 30, "too large"),
])
def test_anything_else_is_refused_with_a_clear_message(base_env, text: object,  # noqa: ANN001
                                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        currency("FUN").parse(text)


def test_a_sign_is_read_only_where_one_is_asked_for(base_env) -> None:  # noqa: ANN001
    btc = currency("BTC")
    assert btc.parse("-0.5", signed=True) == -50_000_000
    assert btc.parse("+0.5", signed=True) == 50_000_000
    assert btc.parse(" -.5 ", signed=True) == -50_000_000
    for junk in ("- 0.5", "+-1", "--1", "-0,5", "-1 000", "-"):
        with pytest.raises(AmountError):
            btc.parse(junk, signed=True)
    with pytest.raises(AmountError, match="positive"):
        btc.parse("-0.5")


def test_the_browser_patterns_agree_with_the_server(base_env) -> None:  # noqa: ANN001
    """The forms' ``pattern`` attributes (a hint the browser checks before sending) accept
    exactly what the parser accepts, as far as their grammar goes."""
    import re

    from casino_app.payments.currencies import AMOUNT_PATTERN, SIGNED_AMOUNT_PATTERN

    samples = ["0.05", ".5", "5.", "1234.56", " 7 ", "0,05", "1 000", "1_000", "1e3", "-1",
               "+1", "1.000.000", "abc", "", "- 1"]
    for text in samples:
        for pattern, signed in ((AMOUNT_PATTERN, False), (SIGNED_AMOUNT_PATTERN, True)):
            try:
                parse_decimal(text, signed=signed)
                ok = True
            except AmountError:
                ok = False
            assert bool(re.fullmatch(pattern, text)) == ok, (text, signed)
