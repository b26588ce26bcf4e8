"""chain watcher and reconciliation: blocks followed, deposits found, player holds,
reconciliation runs and their issues

Revision ID: led0005
Revises: led0004
Create Date: 2026-11-24 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0005'
down_revision: str | None = 'led0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'chain_blocks',
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=66), nullable=False),
        sa.Column('parent_hash', sa.String(length=66), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('chain', 'number'),
    )
    op.create_table(
        'chain_deposits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('tx_hash', sa.String(length=66), nullable=False),
        sa.Column('log_index', sa.Integer(), nullable=False),
        sa.Column('block_number', sa.BigInteger(), nullable=False),
        sa.Column('block_hash', sa.String(length=66), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('sender', sa.String(length=42), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('amount_raw', sa.String(length=80), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('credits', sa.Integer(), nullable=False),
        sa.Column('owed', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chain', 'tx_hash', 'log_index', name='uq_chain_deposit'),
        sa.CheckConstraint(
            "state IN ('seen', 'pending', 'available', 'reversed', 'dust')",
            name='ck_chain_deposit_state'),
        sa.CheckConstraint('amount >= 0 AND owed >= 0 AND credits >= 0',
                           name='ck_chain_deposit_amounts'),
    )
    op.create_index('ix_chain_deposit_state', 'chain_deposits', ['chain', 'state'])
    op.create_index('ix_chain_deposit_block', 'chain_deposits', ['chain', 'block_number'])
    op.create_index('ix_chain_deposit_player', 'chain_deposits', ['player_id', 'id'])
    op.create_index('ix_chain_deposit_updated', 'chain_deposits', ['updated_at'])
    op.create_table(
        'player_holds',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('released_at', sa.DateTime(), nullable=True),
        sa.Column('released_by', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_player_holds_open', 'player_holds', ['player_id', 'released_at'])
    op.create_table(
        'reconcile_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('block_number', sa.BigInteger(), nullable=False),
        sa.Column('block_hash', sa.String(length=66), nullable=False),
        sa.Column('clean', sa.Boolean(), nullable=False),
        sa.Column('issues', sa.Integer(), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reconcile_runs_chain', 'reconcile_runs', ['chain', 'id'])
    op.create_table(
        'reconcile_issues',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.String(length=400), nullable=False),
        sa.Column('expected', sa.String(length=80), nullable=False),
        sa.Column('actual', sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['reconcile_runs.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reconcile_issues_run_id', 'reconcile_issues', ['run_id'])


def downgrade() -> None:
    op.drop_index('ix_reconcile_issues_run_id', table_name='reconcile_issues')
    op.drop_table('reconcile_issues')
    op.drop_index('ix_reconcile_runs_chain', table_name='reconcile_runs')
    op.drop_table('reconcile_runs')
    op.drop_index('ix_player_holds_open', table_name='player_holds')
    op.drop_table('player_holds')
    op.drop_index('ix_chain_deposit_updated', table_name='chain_deposits')
    op.drop_index('ix_chain_deposit_player', table_name='chain_deposits')
    op.drop_index('ix_chain_deposit_block', table_name='chain_deposits')
    op.drop_index('ix_chain_deposit_state', table_name='chain_deposits')
    op.drop_table('chain_deposits')
    op.drop_table('chain_blocks')
