"""loyalty: accrual windows, per-period accruals, claimable rewards, farming flags; indexes
on bets.settled_at and provider_rounds.closed_at for the accrual job

Revision ID: led0023_loyalty
Revises: led0022_proof_of_reserves
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0023_loyalty'
down_revision: str | None = 'led0022_proof_of_reserves'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'loyalty_windows',
        sa.Column('start_at', sa.DateTime(), nullable=False),
        sa.Column('end_at', sa.DateTime(), nullable=False),
        sa.Column('accruals', sa.Integer(), nullable=False),
        sa.Column('flags', sa.Integer(), nullable=False),
        sa.Column('rate_source', sa.String(length=100), nullable=False),
        sa.Column('accrued_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('end_at > start_at', name='ck_loyalty_window_order'),
        sa.PrimaryKeyConstraint('start_at'),
        sa.UniqueConstraint('end_at'),
    )
    op.create_table(
        'loyalty_accruals',
        sa.Column('id', _ID, nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('window_end', sa.DateTime(), nullable=False),
        sa.Column('house_wagered', sa.BigInteger(), nullable=False),
        sa.Column('provider_wagered', sa.BigInteger(), nullable=False),
        sa.Column('usd_e2', sa.BigInteger(), nullable=False),
        sa.Column('usd_rate', sa.String(length=64), nullable=False),
        sa.Column('tier', sa.String(length=20), nullable=False),
        sa.Column('rakeback_bps', sa.Integer(), nullable=False),
        sa.Column('rakeback', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('house_wagered >= 0 AND provider_wagered >= 0 AND usd_e2 >= 0 '
                           'AND rakeback >= 0', name='ck_loyalty_accrual_amounts'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('player_id', 'currency', 'window_start',
                            name='uq_loyalty_accrual'),
    )
    op.create_index('ix_loyalty_accrual_player', 'loyalty_accruals',
                    ['player_id', 'window_start'])
    op.create_table(
        'loyalty_rewards',
        sa.Column('id', _ID, nullable=False),
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('window_end', sa.DateTime(), nullable=False),
        sa.Column('tier', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.Column('entry_id', sa.BigInteger(), nullable=True),
        sa.CheckConstraint("kind IN ('rakeback', 'levelup')", name='ck_loyalty_reward_kind'),
        sa.CheckConstraint("state IN ('available', 'held', 'paid', 'rejected')",
                           name='ck_loyalty_reward_state'),
        sa.CheckConstraint('amount > 0', name='ck_loyalty_reward_amount'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_index('ix_loyalty_reward_player', 'loyalty_rewards', ['player_id', 'id'])
    op.create_index('ix_loyalty_reward_state', 'loyalty_rewards', ['state', 'id'])
    op.create_table(
        'loyalty_flags',
        sa.Column('id', _ID, nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('window_end', sa.DateTime(), nullable=False),
        sa.Column('hedged', sa.BigInteger(), nullable=False),
        sa.Column('wagered', sa.BigInteger(), nullable=False),
        sa.Column('detail', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('player_id', 'currency', 'window_start', 'kind',
                            name='uq_loyalty_flag'),
    )
    op.create_index('ix_loyalty_flag_player', 'loyalty_flags', ['player_id', 'window_end'])
    op.create_index('ix_bets_settled', 'bets', ['settled_at'])
    op.create_index('ix_provider_round_closed', 'provider_rounds', ['closed_at'])


def downgrade() -> None:
    op.drop_index('ix_provider_round_closed', table_name='provider_rounds')
    op.drop_index('ix_bets_settled', table_name='bets')
    op.drop_index('ix_loyalty_flag_player', table_name='loyalty_flags')
    op.drop_table('loyalty_flags')
    op.drop_index('ix_loyalty_reward_state', table_name='loyalty_rewards')
    op.drop_index('ix_loyalty_reward_player', table_name='loyalty_rewards')
    op.drop_table('loyalty_rewards')
    op.drop_index('ix_loyalty_accrual_player', table_name='loyalty_accruals')
    op.drop_table('loyalty_accruals')
    op.drop_table('loyalty_windows')
