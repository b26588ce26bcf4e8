"""A new player's ledger record: the play money a new account starts with."""

from __future__ import annotations

import uuid

import pytest


def test_a_new_account_starts_with_play_money_once(
        app_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A new account had 0.00 FUN and its first bet failed with "Insufficient balance"."""
    from casino_app.core.db import ledger_tx
    from casino_app.core.settings import reset_settings_cache
    from casino_app.payments import demo, ledger
    from casino_app.payments.players import ensure_player

    monkeypatch.setenv("CASINO_FUN_WELCOME", "100000")
    reset_settings_cache()
    pid = str(uuid.uuid4())
    ensure_player(pid)
    assert demo.fun_balance(pid) == 100_000                 # 1,000.00 FUN
    ensure_player(pid)                                       # a repeat gives nothing more
    assert demo.fun_balance(pid) == 100_000
    with ledger_tx(readonly=True) as s:
        assert all(f.violations == 0 for f in ledger.check_invariants(s))


def test_no_welcome_when_it_is_off(app_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from casino_app.core.settings import reset_settings_cache
    from casino_app.payments import demo
    from casino_app.payments.players import ensure_player

    monkeypatch.setenv("CASINO_FUN_WELCOME", "0")
    reset_settings_cache()
    pid = str(uuid.uuid4())
    ensure_player(pid)
    assert demo.fun_balance(pid) == 0
