"""bitcoin watcher: unconfirmed deposits (chain_deposits states incoming and dropped,
without a block until mined)

Revision ID: led0016_btc_watch
Revises: led0015
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0016_btc_watch'
down_revision: str | None = 'led0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATES = "state IN ('seen', 'pending', 'available', 'reversed', 'dust')"
_NEW_STATES = ("state IN ('seen', 'pending', 'available', 'reversed', 'dust', 'incoming', "
               "'dropped')")
_BLOCK = "(state IN ('incoming', 'dropped')) = (block_number IS NULL)"


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table (chain_deposits has no triggers); PostgreSQL
    # alters it in place.
    with op.batch_alter_table('chain_deposits', schema=None) as batch_op:
        batch_op.alter_column('block_number', existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column('block_hash', existing_type=sa.String(length=66), nullable=True)
        batch_op.drop_constraint('ck_chain_deposit_state', type_='check')
        batch_op.create_check_constraint('ck_chain_deposit_state', _NEW_STATES)
        batch_op.create_check_constraint('ck_chain_deposit_block', _BLOCK)


def downgrade() -> None:
    op.execute("DELETE FROM chain_deposits WHERE state IN ('incoming', 'dropped')")
    with op.batch_alter_table('chain_deposits', schema=None) as batch_op:
        batch_op.drop_constraint('ck_chain_deposit_block', type_='check')
        batch_op.drop_constraint('ck_chain_deposit_state', type_='check')
        batch_op.create_check_constraint('ck_chain_deposit_state', _OLD_STATES)
        batch_op.alter_column('block_hash', existing_type=sa.String(length=66), nullable=False)
        batch_op.alter_column('block_number', existing_type=sa.BigInteger(), nullable=False)
