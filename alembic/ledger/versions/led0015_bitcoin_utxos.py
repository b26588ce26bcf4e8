"""bitcoin: the UTXO set of our wallets (btc_utxos); addresses widened to 90 characters
(bech32: Bitcoin Core's regtest P2WPKH addresses are 44 characters, P2WSH 62)

Revision ID: led0015
Revises: led0014
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0015'
down_revision: str | None = 'led0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WIDEN = (("deposit_addresses", "address"), ("chain_deposits", "address"),
          ("chain_deposits", "sender"), ("withdrawals", "address"),
          ("withdrawal_batches", "from_address"), ("withdrawal_batches", "to_address"))
_APPEND_ONLY = "deposit_addresses"  # its SQLite triggers go with a table rebuild


def _widen(old: int, new: int) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _WIDEN:
            op.alter_column(table, column, type_=sa.String(length=new),
                            existing_type=sa.String(length=old))
        return
    # SQLite changes a column's declared type by rebuilding the table (batch mode), which
    # drops its triggers: deposit_addresses gets its append-only triggers back (led0004).
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {_APPEND_ONLY}_no_{verb}")
    for table in dict.fromkeys(t for t, _c in _WIDEN):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in (c for t, c in _WIDEN if t == table):
                batch_op.alter_column(column, type_=sa.String(length=new),
                                      existing_type=sa.String(length=old),
                                      existing_nullable=False)
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"""CREATE TRIGGER {_APPEND_ONLY}_no_{verb.lower()} BEFORE {verb}
                       ON {_APPEND_ONLY}
                       BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY} is append-only'); END""")


def upgrade() -> None:
    op.create_table(
        'btc_utxos',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('chain', sa.String(length=16), nullable=False),
        sa.Column('txid', sa.String(length=64), nullable=False),
        sa.Column('vout', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=90), nullable=False),
        sa.Column('script_pubkey', sa.String(length=140), nullable=False),
        sa.Column('role', sa.String(length=8), nullable=False),
        sa.Column('key_chain', sa.Integer(), nullable=False),
        sa.Column('key_index', sa.Integer(), nullable=False),
        sa.Column('player_id', sa.String(length=36), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('block_height', sa.BigInteger(), nullable=True),
        sa.Column('block_hash', sa.String(length=64), nullable=True),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('spent_by', sa.String(length=64), nullable=True),
        sa.Column('spent_height', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("role IN ('deposit', 'hot', 'change', 'cold')",
                           name='ck_btc_utxo_role'),
        sa.CheckConstraint("state IN ('unspent', 'reserved', 'spent', 'dropped')",
                           name='ck_btc_utxo_state'),
        sa.CheckConstraint('amount > 0 AND vout >= 0', name='ck_btc_utxo_amount'),
        sa.CheckConstraint("(role = 'deposit') = (player_id IS NOT NULL)",
                           name='ck_btc_utxo_player'),
        sa.CheckConstraint("state IN ('unspent', 'dropped') OR spent_by IS NOT NULL",
                           name='ck_btc_utxo_spent_by'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chain', 'txid', 'vout', name='uq_btc_utxo'),
    )
    op.create_index('ix_btc_utxo_spendable', 'btc_utxos', ['chain', 'role', 'state'])
    op.create_index('ix_btc_utxo_block', 'btc_utxos', ['chain', 'block_height'])
    op.create_index('ix_btc_utxo_spent_by', 'btc_utxos', ['chain', 'spent_by'])
    op.create_index('ix_btc_utxo_player', 'btc_utxos', ['player_id'])
    op.create_index('ix_btc_utxo_updated', 'btc_utxos', ['updated_at'])
    _widen(42, 90)


def downgrade() -> None:
    _widen(90, 42)
    for name in ('ix_btc_utxo_updated', 'ix_btc_utxo_player', 'ix_btc_utxo_spent_by',
                 'ix_btc_utxo_block', 'ix_btc_utxo_spendable'):
        op.drop_index(name, table_name='btc_utxos')
    op.drop_table('btc_utxos')
