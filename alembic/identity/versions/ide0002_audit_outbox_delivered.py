"""audit outbox delivery markers: which staged ledger-side audit rows are in the log

Revision ID: ide0002
Revises: ide0001
Create Date: 2026-11-24 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'ide0002'
down_revision: str | None = 'ide0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'audit_outbox_delivered',
        sa.Column('outbox_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('audit_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('outbox_id'),
    )


def downgrade() -> None:
    op.drop_table('audit_outbox_delivered')
