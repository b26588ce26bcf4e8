"""settle_bets_v1 looks up stored bet keys one index probe per bet (a LATERAL subquery on
uq_bet_key): the join of led0018 was planned once for the function, as a hash join over
every bet, and took 36 µs of each bet's 153 at 20,000 bets in the table (pg_stat_statements,
2026-12-04), growing with the table. Same signature, same decisions.

Revision ID: led0019_settle_key_probe
Revises: led0018_settlement
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

from alembic import op

from casino_app.migrations import earlier_revision, replaced_once

revision: str = 'led0019_settle_key_probe'
down_revision: str | None = 'led0018_settlement'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one change to led0018's function: the stored-key join becomes a probe per bet.
_JOIN = """    JOIN bets bt ON bt.player_id = v.pl AND bt.bet_key = v.k
"""
_PROBE = """    CROSS JOIN LATERAL (SELECT b2.id, b2.game, b2.currency, b2.stake, b2.params
                        FROM bets b2 WHERE b2.player_id = v.pl AND b2.bet_key = v.k
                        LIMIT 1) AS bt
"""


def function_sql() -> str:
    """settle_bets_v1 as this revision leaves it: led0018's with the probe."""
    return replaced_once(_led0018_function(), {_JOIN: _PROBE}, "led0018")


def _led0018_function() -> str:
    """settle_bets_v1 as led0018 created it."""
    return earlier_revision(__file__, "led0018_settlement_batches.py").SETTLE_BETS_V1


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_led0018_function())
