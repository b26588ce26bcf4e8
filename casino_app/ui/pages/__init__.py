"""Importing this package registers every page (each module decorates its pages)."""

from casino_app.ui.pages import (  # noqa: F401
    account,
    auth,
    bets,
    fairness,
    games,
    home,
    not_found,
    provider_game,
    provider_rounds,
    reserves,
    staff,
    staff_custody,
    staff_loyalty,
    staff_money,
    staff_providers,
    staff_withdrawals,
    terms,
    wallet,
)
