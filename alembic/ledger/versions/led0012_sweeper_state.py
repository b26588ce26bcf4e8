"""sweeper state: how far each deposit address was swept (and failed sweeps' retry), and
the hot wallet's band state per currency

Revision ID: led0012
Revises: led0010
Create Date: 2026-11-24 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0012'
down_revision: str | None = 'led0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sweep_marks',
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('swept_to', sa.BigInteger(), nullable=True),
        sa.Column('open_batch_id', sa.Integer(), nullable=True),
        sa.Column('open_final', sa.BigInteger(), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('retry_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('chain', 'address', 'currency'),
    )
    op.create_table(
        'hot_band_state',
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('below', sa.Boolean(), nullable=False),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('chain', 'currency'),
    )


def downgrade() -> None:
    op.drop_table('hot_band_state')
    op.drop_table('sweep_marks')
