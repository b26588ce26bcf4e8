"""withdrawal protection: confirmation by mailed link (unconfirmed, cancelled),
the mails that announce a withdrawal, withdrawal addresses (cooling period, allow-list)

Existing withdrawals are taken as announced (no mail about the past: open ones as
requested, so that their "sent" mail still goes out; final ones as ended).

Revision ID: led0024_withdrawal_protection
Revises: led0023_loyalty
Create Date: 2026-12-05 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0024_withdrawal_protection'
down_revision: str | None = 'led0023_loyalty'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_W_OLD = ("state IN ('queued', 'awaiting_approval', 'batched', 'confirmed', 'failed', "
          "'rejected', 'rejecting')")
_W_NEW = ("state IN ('queued', 'awaiting_approval', 'batched', 'confirmed', 'failed', "
          "'rejected', 'rejecting', 'unconfirmed', 'cancelled')")


def upgrade() -> None:
    with op.batch_alter_table('withdrawals', schema=None) as b:
        b.add_column(sa.Column('confirm_token_hash', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('confirm_expires_at', sa.DateTime(), nullable=True))
        b.add_column(sa.Column('confirmed_at', sa.DateTime(), nullable=True))
        b.add_column(sa.Column('announced', sa.String(length=12), nullable=True))
        b.create_unique_constraint('uq_withdrawal_confirm_token', ['confirm_token_hash'])
        b.drop_constraint('ck_withdrawal_state', type_='check')
        b.create_check_constraint('ck_withdrawal_state', _W_NEW)
    op.execute("UPDATE withdrawals SET announced = CASE WHEN state IN ('queued', "
               "'awaiting_approval', 'batched', 'rejecting') THEN 'requested' "
               "ELSE 'ended' END")
    op.create_index('ix_withdrawal_announced', 'withdrawals', ['announced', 'state'])
    op.create_table(
        'withdrawal_addresses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=90), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('usable_at', sa.DateTime(), nullable=False),
        sa.Column('allowed_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('player_id', 'chain', 'address', name='uq_withdrawal_address'),
    )


def downgrade() -> None:
    op.drop_table('withdrawal_addresses')
    op.drop_index('ix_withdrawal_announced', table_name='withdrawals')
    op.execute("UPDATE withdrawals SET state = 'failed' WHERE state IN "
               "('unconfirmed', 'cancelled')")
    with op.batch_alter_table('withdrawals', schema=None) as b:
        b.drop_constraint('ck_withdrawal_state', type_='check')
        b.create_check_constraint('ck_withdrawal_state', _W_OLD)
        b.drop_constraint('uq_withdrawal_confirm_token', type_='unique')
        b.drop_column('announced')
        b.drop_column('confirmed_at')
        b.drop_column('confirm_expires_at')
        b.drop_column('confirm_token_hash')
