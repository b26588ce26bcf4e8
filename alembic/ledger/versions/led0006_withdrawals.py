"""withdrawals: requests, batch transactions and their signed versions

Revision ID: led0006
Revises: led0005
Create Date: 2026-11-25 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0006'
down_revision: str | None = 'led0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'withdrawal_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('from_address', sa.String(length=42), nullable=False),
        sa.Column('nonce', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('to_address', sa.String(length=42), nullable=False),
        sa.Column('value_wei', sa.String(length=80), nullable=False),
        sa.Column('call_data', sa.Text(), nullable=False),
        sa.Column('gas_limit', sa.BigInteger(), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.Column('tx_hash', sa.String(length=66), nullable=True),
        sa.Column('block_number', sa.BigInteger(), nullable=True),
        sa.Column('gas_used', sa.BigInteger(), nullable=True),
        sa.Column('gas_fee_wei', sa.String(length=80), nullable=True),
        sa.Column('failure', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('broadcast_at', sa.DateTime(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chain', 'from_address', 'nonce', name='uq_withdrawal_batch_nonce'),
        sa.CheckConstraint("state IN ('signed', 'sent', 'confirmed', 'failed')",
                           name='ck_withdrawal_batch_state'),
        sa.CheckConstraint("kind IN ('pay', 'approve', 'sweep', 'topup', 'to_cold')",
                           name='ck_withdrawal_batch_kind'),
        sa.CheckConstraint('nonce >= 0 AND total >= 0 AND gas_limit > 0',
                           name='ck_withdrawal_batch_amounts'),
    )
    op.create_index('ix_withdrawal_batch_state', 'withdrawal_batches', ['chain', 'state'])
    op.create_table(
        'withdrawal_batch_txs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('tx_hash', sa.String(length=66), nullable=False),
        sa.Column('raw_tx', sa.Text(), nullable=True),
        sa.Column('max_fee_per_gas', sa.BigInteger(), nullable=False),
        sa.Column('max_priority_fee_per_gas', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('broadcast_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['withdrawal_batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('batch_id', 'version', name='uq_withdrawal_batch_tx_version'),
        sa.UniqueConstraint('tx_hash', name='uq_withdrawal_batch_tx_hash'),
    )
    op.create_table(
        'withdrawals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('fee', sa.BigInteger(), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('failure', sa.String(length=200), nullable=True),
        sa.Column('approved_by', sa.Integer(), nullable=True),
        sa.Column('approved_by_2', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['withdrawal_batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key', name='uq_withdrawal_key'),
        sa.CheckConstraint(
            "state IN ('queued', 'awaiting_approval', 'batched', 'confirmed', 'failed', "
            "'rejected')", name='ck_withdrawal_state'),
        sa.CheckConstraint('amount > 0 AND fee >= 0', name='ck_withdrawal_amounts'),
        sa.CheckConstraint('approved_by IS NULL OR approved_by_2 IS NULL '
                           'OR approved_by <> approved_by_2', name='ck_withdrawal_two_staff'),
    )
    op.create_index('ix_withdrawal_state', 'withdrawals', ['chain', 'currency', 'state'])
    op.create_index('ix_withdrawal_player', 'withdrawals', ['player_id', 'id'])
    op.create_index('ix_withdrawal_batch', 'withdrawals', ['batch_id'])
    op.create_index('ix_withdrawal_updated', 'withdrawals', ['updated_at'])


def downgrade() -> None:
    op.drop_index('ix_withdrawal_batch', table_name='withdrawals')
    op.drop_index('ix_withdrawal_player', table_name='withdrawals')
    op.drop_index('ix_withdrawal_state', table_name='withdrawals')
    op.drop_table('withdrawals')
    op.drop_table('withdrawal_batch_txs')
    op.drop_index('ix_withdrawal_batch_state', table_name='withdrawal_batches')
    op.drop_table('withdrawal_batches')
