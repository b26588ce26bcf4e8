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


def _led0018_function() -> str:
    """settle_bets_v1 as led0018 created it (its file, loaded by path: alembic's
    revision files are not an importable package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "led0018", Path(__file__).with_name("led0018_settlement_batches.py"))
    if spec is None or spec.loader is None:
        raise RuntimeError("led0018's migration file cannot be loaded")
    led0018 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(led0018)
    return led0018.SETTLE_BETS_V1


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        before = _led0018_function()
        if before.count(_JOIN) != 1:
            raise RuntimeError("led0018's function is not the one this changes")
        op.execute(before.replace(_JOIN, _PROBE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_led0018_function())
