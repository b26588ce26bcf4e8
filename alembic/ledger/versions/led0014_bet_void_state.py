"""bets: a Mines round whose seed pair was revealed while it was open is ended as
"void" (its stake returned), since its server seed may have been shown

Revision ID: led0014
Revises: led0013
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'led0014'
down_revision: str | None = 'led0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "state IN ('open', 'won', 'lost')"
_NEW = "state IN ('open', 'won', 'lost', 'void')"


def _check(sql: str) -> None:
    with op.batch_alter_table('bets', schema=None) as batch_op:
        batch_op.drop_constraint('ck_bet_state', type_='check')
        batch_op.create_check_constraint('ck_bet_state', sql)


def upgrade() -> None:
    _check(_NEW)


def downgrade() -> None:
    _check(_OLD)
