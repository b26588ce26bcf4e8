"""bitcoin withdrawals: the hot wallet's change addresses (btc_change_addresses, handed out
by the sender in the transaction that records the batch) and the block hash of a settled
batch (withdrawal_batches.block_hash: a reorg that replaces that block is detected)

Revision ID: led0016_btc_batches
Revises: led0016_btc_watch
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0016_btc_batches'
down_revision: str | None = 'led0016_btc_watch'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'btc_change_addresses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('key_index', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=90), nullable=False),
        sa.Column('script_pubkey', sa.String(length=140), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('key_index >= 1', name='ck_btc_change_index'),
        sa.ForeignKeyConstraint(['batch_id'], ['withdrawal_batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chain', 'key_index', name='uq_btc_change_index'),
        sa.UniqueConstraint('chain', 'address', name='uq_btc_change_address'),
    )
    # A nullable column: SQLite adds it in place (no table rebuild, triggers kept).
    op.add_column('withdrawal_batches',
                  sa.Column('block_hash', sa.String(length=66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('withdrawal_batches', schema=None) as batch_op:
        batch_op.drop_column('block_hash')
    op.drop_table('btc_change_addresses')
