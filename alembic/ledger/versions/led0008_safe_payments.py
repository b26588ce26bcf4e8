"""safe payments: large withdrawals and hot-wallet refills paid by the cold Safe, and the
owners' signatures

Revision ID: led0008
Revises: led0007
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0008'
down_revision: str | None = 'led0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'safe_payments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('withdrawal_id', sa.Integer(), nullable=True),
        sa.Column('active_withdrawal_id', sa.Integer(), nullable=True),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('recipient', sa.String(length=42), nullable=False),
        sa.Column('safe_address', sa.String(length=42), nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('to_address', sa.String(length=42), nullable=False),
        sa.Column('value_wei', sa.String(length=80), nullable=False),
        sa.Column('call_data', sa.Text(), nullable=False),
        sa.Column('operation', sa.Integer(), nullable=False),
        sa.Column('safe_nonce', sa.BigInteger(), nullable=False),
        sa.Column('nonce_slot', sa.BigInteger(), nullable=True),
        sa.Column('safe_tx_hash', sa.String(length=66), nullable=False),
        sa.Column('required', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('tx_hash', sa.String(length=66), nullable=True),
        sa.Column('failure', sa.String(length=200), nullable=True),
        sa.Column('requested_by', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['withdrawal_id'], ['withdrawals.id']),
        sa.ForeignKeyConstraint(['batch_id'], ['withdrawal_batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active_withdrawal_id', name='uq_safe_payment_withdrawal'),
        sa.UniqueConstraint('chain', 'safe_address', 'nonce_slot',
                            name='uq_safe_payment_nonce'),
        sa.CheckConstraint("state IN ('awaiting_signatures', 'ready', 'sent', 'confirmed', "
                           "'failed', 'cancelled')", name='ck_safe_payment_state'),
        sa.CheckConstraint("kind IN ('withdrawal', 'refill')", name='ck_safe_payment_kind'),
        sa.CheckConstraint("kind = 'refill' OR withdrawal_id IS NOT NULL",
                           name='ck_safe_payment_withdrawal'),
        sa.CheckConstraint('amount > 0 AND safe_nonce >= 0 AND operation = 0 '
                           'AND required >= 2', name='ck_safe_payment_values'),
    )
    op.create_index('ix_safe_payment_state', 'safe_payments',
                    ['chain', 'safe_address', 'state'])
    op.create_index('ix_safe_payment_withdrawal', 'safe_payments', ['withdrawal_id'])
    op.create_table(
        'safe_signatures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=42), nullable=False),
        sa.Column('signature', sa.String(length=132), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['payment_id'], ['safe_payments.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('payment_id', 'owner', name='uq_safe_signature_owner'),
        sa.UniqueConstraint('payment_id', 'staff_id', name='uq_safe_signature_staff'),
    )


def downgrade() -> None:
    op.drop_table('safe_signatures')
    op.drop_index('ix_safe_payment_withdrawal', table_name='safe_payments')
    op.drop_index('ix_safe_payment_state', table_name='safe_payments')
    op.drop_table('safe_payments')
