"""deposit addresses

One Ethereum deposit address per (chain, player), derived from the hot wallet's xpub at
``derivation_index``; never reassigned, so the table is append-only like the journal
(it reuses led0003's ``ledger_append_only()`` on PostgreSQL).

Revision ID: led0004
Revises: led0003
Create Date: 2026-11-24 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0004'
down_revision: str | None = 'led0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "deposit_addresses"


def upgrade() -> None:
    op.create_table('deposit_addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain', sa.String(length=16), nullable=False),
    sa.Column('player_id', sa.String(length=36), nullable=False),
    sa.Column('derivation_index', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('derivation_index >= 0', name='ck_deposit_address_index'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chain', 'address', name='uq_deposit_address_address'),
    sa.UniqueConstraint('chain', 'derivation_index', name='uq_deposit_address_index'),
    sa.UniqueConstraint('chain', 'player_id', name='uq_deposit_address_player')
    )

    # An address handed to a player stays theirs: no UPDATE, DELETE (or TRUNCATE).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE OR DELETE ON {TABLE}
                       FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""")
        op.execute(f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
                       FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb}
                           ON {TABLE}
                           BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete")
    op.drop_table('deposit_addresses')
