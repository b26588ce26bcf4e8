"""safe payments: a fully signed payment that staff reject is "cancelling" (its Safe nonce
and a withdrawal's money stay reserved, the withdrawal "rejecting") until the Safe uses
its nonce; the block from which its execution is looked for; how many of its
execTransaction calls reverted

Revision ID: led0009
Revises: led0008
Create Date: 2026-11-24 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0009'
down_revision: str | None = 'led0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAY_OLD = ("state IN ('awaiting_signatures', 'ready', 'sent', 'confirmed', 'failed', "
            "'cancelled')")
_PAY_NEW = ("state IN ('awaiting_signatures', 'ready', 'sent', 'confirmed', 'failed', "
            "'cancelling', 'cancelled')")
_W_OLD = ("state IN ('queued', 'awaiting_approval', 'batched', 'confirmed', 'failed', "
          "'rejected')")
_W_NEW = ("state IN ('queued', 'awaiting_approval', 'batched', 'confirmed', 'failed', "
          "'rejected', 'rejecting')")


def _check(table: str, name: str, sql: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(name, type_='check')
        batch_op.create_check_constraint(name, sql)


def upgrade() -> None:
    with op.batch_alter_table('safe_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prepared_block', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('exec_failures', sa.Integer(), nullable=False,
                                      server_default='0'))
    _check('safe_payments', 'ck_safe_payment_state', _PAY_NEW)
    _check('withdrawals', 'ck_withdrawal_state', _W_NEW)


def downgrade() -> None:
    _check('withdrawals', 'ck_withdrawal_state', _W_OLD)
    _check('safe_payments', 'ck_safe_payment_state', _PAY_OLD)
    with op.batch_alter_table('safe_payments', schema=None) as batch_op:
        batch_op.drop_column('exec_failures')
        batch_op.drop_column('prepared_block')
