"""game providers: providers (secrets sealed), their games, launch sessions, rounds,
transactions (idempotency by provider transaction id, tombstones), receipts, alerts

Revision ID: led0021_game_providers
Revises: led0020_settle_bankroll_last
Create Date: 2026-12-05 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0021_game_providers'
down_revision: str | None = 'led0020_settle_bankroll_last'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'providers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('dialect', sa.String(length=16), nullable=False),
        sa.Column('base_url', sa.String(length=300), nullable=False),
        sa.Column('currencies', sa.String(length=200), nullable=False),
        sa.Column('operator_ref', sa.String(length=64), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('peer_public_key', sa.Text(), nullable=True),
        sa.Column('own_public_key', sa.Text(), nullable=True),
        sa.Column('secret_sealed', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('disabled_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint("dialect IN ('hub88', 'bgaming')", name='ck_provider_dialect'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'provider_games',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=False),
        sa.Column('game_code', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('category', sa.String(length=40), nullable=False),
        sa.Column('rtp_e4', sa.Integer(), nullable=False),
        sa.Column('volatility', sa.String(length=20), nullable=False),
        sa.Column('thumb_url', sa.String(length=300), nullable=False),
        sa.Column('demo', sa.Boolean(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('fair_scheme', sa.String(length=32), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('rtp_e4 >= 0 AND rtp_e4 <= 1000000', name='ck_provider_game_rtp'),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider_id', 'game_code', name='uq_provider_game'),
    )
    op.create_table(
        'provider_sessions',
        sa.Column('id', _ID, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('game_code', sa.String(length=100), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_provider_session_player', 'provider_sessions', ['player_id', 'id'])
    op.create_table(
        'provider_rounds',
        sa.Column('id', _ID, nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=False),
        sa.Column('round_ref', sa.String(length=128), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('game_code', sa.String(length=100), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('staked', sa.BigInteger(), nullable=False),
        sa.Column('paid', sa.BigInteger(), nullable=False),
        sa.Column('fair_scheme', sa.String(length=32), nullable=False),
        sa.Column('seed_hash', sa.String(length=128), nullable=False),
        sa.Column('seed', sa.String(length=256), nullable=False),
        sa.Column('fair_state', sa.String(length=8), nullable=False),
        sa.Column('fair_detail', sa.String(length=300), nullable=False),
        sa.Column('opened_at', sa.DateTime(), nullable=False),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'closed')", name='ck_provider_round_state'),
        sa.CheckConstraint("fair_state IN ('none', 'pending', 'ok', 'mismatch')",
                           name='ck_provider_round_fair'),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider_id', 'round_ref', name='uq_provider_round'),
    )
    op.create_index('ix_provider_round_player', 'provider_rounds', ['player_id', 'id'])
    op.create_index('ix_provider_round_game', 'provider_rounds',
                    ['provider_id', 'game_code', 'closed_at'])
    op.create_table(
        'provider_receipts',
        sa.Column('id', _ID, nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=False),
        sa.Column('path', sa.String(length=64), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('signature', sa.String(length=1024), nullable=False),
        sa.Column('status', sa.String(length=40), nullable=False),
        sa.Column('response', sa.LargeBinary(), nullable=True),
        sa.Column('response_signature', sa.String(length=1024), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_provider_receipt_provider', 'provider_receipts', ['provider_id', 'id'])
    op.create_table(
        'provider_txs',
        sa.Column('id', _ID, nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=False),
        sa.Column('tx_ref', sa.String(length=128), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('round_id', _ID, nullable=True),
        sa.Column('player_id', sa.String(length=36), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('reference_ref', sa.String(length=128), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('rolled_back', sa.Boolean(), nullable=False),
        sa.Column('receipt_id', _ID, nullable=True),
        sa.Column('response', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('bet', 'win', 'rollback', 'tombstone')",
                           name='ck_provider_tx_kind'),
        sa.CheckConstraint('amount >= 0', name='ck_provider_tx_amount'),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.ForeignKeyConstraint(['receipt_id'], ['provider_receipts.id']),
        sa.ForeignKeyConstraint(['round_id'], ['provider_rounds.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider_id', 'tx_ref', name='uq_provider_tx'),
    )
    op.create_index('ix_provider_tx_round', 'provider_txs', ['round_id', 'id'])
    op.create_table(
        'provider_alerts',
        sa.Column('id', _ID, nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('severity', sa.String(length=8), nullable=False),
        sa.Column('subject', sa.String(length=160), nullable=False),
        sa.Column('bucket', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(), nullable=False),
        sa.Column('last_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider_id', 'kind', 'subject', 'bucket',
                            name='uq_provider_alert'),
    )
    op.create_index('ix_provider_alert_recent', 'provider_alerts', ['id'])


def downgrade() -> None:
    for table in ('provider_alerts', 'provider_txs', 'provider_receipts', 'provider_rounds',
                  'provider_sessions', 'provider_games', 'providers'):
        op.drop_table(table)
