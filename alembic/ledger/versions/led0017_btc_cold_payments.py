"""bitcoin cold payments: large withdrawals and hot-wallet refills paid from the 2-of-3 cold
wallet by PSBT (btc_cold_payments, the admins' uploaded signatures btc_cold_signatures,
UNIQUE per payment on the cosigner and on the staff member), recorded once fully
approved as a withdrawal_batches row of the new kind 'cold'

Revision ID: led0017_btc_cold_payments
Revises: led0016_btc_batches
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0017_btc_cold_payments'
down_revision: str | None = 'led0016_btc_batches'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KIND_OLD = "kind IN ('pay', 'approve', 'sweep', 'topup', 'to_cold')"
_KIND_NEW = "kind IN ('pay', 'approve', 'sweep', 'topup', 'to_cold', 'cold')"


def _check(table: str, name: str, sql: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(name, type_='check')
        batch_op.create_check_constraint(name, sql)


def upgrade() -> None:
    _check('withdrawal_batches', 'ck_withdrawal_batch_kind', _KIND_NEW)
    op.create_table(
        'btc_cold_payments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('withdrawal_id', sa.Integer(), nullable=True),
        sa.Column('active_withdrawal_id', sa.Integer(), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('recipient', sa.String(length=90), nullable=False),
        sa.Column('txid', sa.String(length=64), nullable=False),
        sa.Column('psbt', sa.Text(), nullable=False),
        sa.Column('inputs', sa.Text(), nullable=False),
        sa.Column('fee', sa.BigInteger(), nullable=False),
        sa.Column('vsize', sa.Integer(), nullable=False),
        sa.Column('fee_rate', sa.Integer(), nullable=False),
        sa.Column('change_index', sa.Integer(), nullable=True),
        sa.Column('change_value', sa.BigInteger(), nullable=False),
        sa.Column('required', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('failure', sa.String(length=200), nullable=True),
        sa.Column('requested_by', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['withdrawal_id'], ['withdrawals.id']),
        sa.ForeignKeyConstraint(['batch_id'], ['withdrawal_batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active_withdrawal_id', name='uq_btc_cold_payment_withdrawal'),
        sa.CheckConstraint("state IN ('awaiting_signatures', 'sent', 'confirmed', 'failed', "
                           "'cancelling', 'cancelled')", name='ck_btc_cold_payment_state'),
        sa.CheckConstraint("kind IN ('withdrawal', 'refill')",
                           name='ck_btc_cold_payment_kind'),
        sa.CheckConstraint("(kind = 'withdrawal') = (withdrawal_id IS NOT NULL)",
                           name='ck_btc_cold_payment_withdrawal'),
        sa.CheckConstraint('amount > 0 AND fee > 0 AND vsize > 0 AND fee_rate > 0 '
                           'AND change_value >= 0 AND required >= 2',
                           name='ck_btc_cold_payment_values'),
    )
    op.create_index('ix_btc_cold_payment_state', 'btc_cold_payments', ['chain', 'state'])
    op.create_index('ix_btc_cold_payment_txid', 'btc_cold_payments', ['chain', 'txid'])
    op.create_index('ix_btc_cold_payment_withdrawal', 'btc_cold_payments', ['withdrawal_id'])
    op.create_table(
        'btc_cold_signatures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('cosigner', sa.String(length=8), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('psbt', sa.Text(), nullable=False),
        sa.Column('seen', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['payment_id'], ['btc_cold_payments.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('payment_id', 'cosigner', name='uq_btc_cold_signature_cosigner'),
        sa.UniqueConstraint('payment_id', 'staff_id', name='uq_btc_cold_signature_staff'),
    )


def downgrade() -> None:
    op.drop_table('btc_cold_signatures')
    op.drop_index('ix_btc_cold_payment_withdrawal', table_name='btc_cold_payments')
    op.drop_index('ix_btc_cold_payment_txid', table_name='btc_cold_payments')
    op.drop_index('ix_btc_cold_payment_state', table_name='btc_cold_payments')
    op.drop_table('btc_cold_payments')
    _check('withdrawal_batches', 'ck_withdrawal_batch_kind', _KIND_OLD)
