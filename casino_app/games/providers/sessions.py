"""Launch sessions: the token a provider sends with a player's bets.

Only its sha256 is kept. A token is valid for bets for ``SESSION_HOURS`` from launch;
wins and rollbacks never check it (the round began while it was valid).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.games.providers.models import ProviderSession
from casino_app.games.providers.registry import ProviderConfig
from casino_app.security.crypto import token_hash

SESSION_HOURS = 12


def open_session(provider: ProviderConfig, player_id: str, game_code: str,
                 currency_code: str, hours: float = SESSION_HOURS) -> str:
    """A new launch token for ``player_id`` playing ``game_code`` in ``currency_code``."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with ledger_tx() as s:
        s.add(ProviderSession(token_hash=token_hash(token), provider_id=provider.id,
                              player_id=player_id, game_code=game_code[:100],
                              currency=currency_code, created_at=now,
                              expires_at=now + timedelta(hours=hours)))
    return token
