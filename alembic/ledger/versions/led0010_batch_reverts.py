"""withdrawal batches: the head when recorded (where to look for Paid logs) and, on a
withdrawal, how many BatchPay batches reverted with it and the last one (it was queued
again)

Revision ID: led0010
Revises: led0009
Create Date: 2026-11-24 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0010'
down_revision: str | None = 'led0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('withdrawal_batches') as batch:
        batch.add_column(sa.Column('recorded_block', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('withdrawals') as batch:
        batch.add_column(sa.Column('reverts', sa.Integer(), server_default='0',
                                   nullable=False))
        batch.add_column(sa.Column('reverted_batch_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_withdrawal_reverted_batch', 'withdrawal_batches',
                                 ['reverted_batch_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('withdrawals') as batch:
        batch.drop_constraint('fk_withdrawal_reverted_batch', type_='foreignkey')
        batch.drop_column('reverted_batch_id')
        batch.drop_column('reverts')
    with op.batch_alter_table('withdrawal_batches') as batch:
        batch.drop_column('recorded_block')
