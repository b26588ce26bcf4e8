"""What the live push (``ui/push.py``) does to an open wallet tab: one read of the wallet
(``withdraw.read_wallet_page``: balances, deposits, withdrawals, in one transaction) shown
in the header, the deposit cards and the withdraw form. ``casino_app.py`` hands
``refresh_open_tab`` to the push loop, which imports no page state.
"""

from __future__ import annotations

import asyncio
from typing import Any

from casino_app.ui.state import deposits
from casino_app.ui.state.deposits import DepositsState
from casino_app.ui.state.session import session_of
from casino_app.ui.state.withdraw import read_wallet_page, show_wallet_page
from casino_app.users import accounts


async def refresh_open_tab(root: Any, player_id: str) -> bool:
    """Refresh one tab (under its state lock): False when it no longer shows the wallet of
    ``player_id`` (the push loop then forgets it)."""
    state = await root.get_state(DepositsState)
    if not deposits.on_wallet_page(state):
        return False
    # The session is re-checked, without counting as the player's use (a tab left open
    # on the wallet still signs out when idle).
    sess = await session_of(state)
    me = await accounts.current_user_async(sess.token, touch=False)
    if me is None or me.player_id != player_id:
        deposits.forget(state)
        return False
    await show_wallet_page(state, await asyncio.to_thread(read_wallet_page, player_id))
    return True
