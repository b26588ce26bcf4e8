"""audit outbox: audit rows staged with the ledger action they describe

Revision ID: led0013
Revises: led0012
Create Date: 2026-11-24 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0013'
down_revision: str | None = 'led0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'audit_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('actor_user_id', sa.Integer(), nullable=True),
        sa.Column('actor_role', sa.String(length=16), nullable=True),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('target_user_id', sa.Integer(), nullable=True),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('totp_step', sa.BigInteger(), nullable=True),
        sa.Column('recovery_code_id', sa.Integer(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.Column('audit_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_outbox_delivered', 'audit_outbox', ['delivered_at'])


def downgrade() -> None:
    op.drop_index('ix_audit_outbox_delivered', table_name='audit_outbox')
    op.drop_table('audit_outbox')
