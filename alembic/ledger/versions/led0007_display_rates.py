"""display rates: the last rates fetched for showing converted values (not a money table)

Revision ID: led0007
Revises: led0006
Create Date: 2026-11-25 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0007'
down_revision: str | None = 'led0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'display_rates',
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('quote', sa.String(length=8), nullable=False),
        sa.Column('rate', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=False),
        sa.Column('fetched_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('currency', 'quote'),
    )


def downgrade() -> None:
    op.drop_table('display_rates')
