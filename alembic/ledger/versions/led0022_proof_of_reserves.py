"""proof of reserves: published proofs, the players' leaves, their salts (sealed)

Revision ID: led0022_proof_of_reserves
Revises: led0021_game_providers
Create Date: 2026-12-05 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0022_proof_of_reserves'
down_revision: str | None = 'led0021_game_providers'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'reserve_proofs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('document', sa.Text(), nullable=False),
        sa.Column('signature', sa.String(length=200), nullable=False),
        sa.Column('public_key', sa.String(length=100), nullable=False),
        sa.Column('covered', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'reserve_leaves',
        sa.Column('id', _ID, nullable=False),
        sa.Column('proof_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('leaf_id', sa.String(length=64), nullable=False),
        sa.Column('balance', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['proof_id'], ['reserve_proofs.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reserve_leaf_player', 'reserve_leaves', ['player_id', 'proof_id'])
    op.create_table(
        'reserve_salts',
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('salt_sealed', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('player_id'),
    )


def downgrade() -> None:
    for table in ('reserve_salts', 'reserve_leaves', 'reserve_proofs'):
        op.drop_table(table)
