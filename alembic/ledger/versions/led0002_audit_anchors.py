"""audit anchors

Copies of the audit log's head (identity database) kept in the ledger database, so a
rewritten audit chain no longer verifies. Append-only, like audit_log.

Revision ID: led0002
Revises: led0001
Create Date: 2026-11-23 20:37:37.848538
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'led0002'
down_revision: str | None = 'led0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_anchors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('audit_id')
    )

    # Anchors are never changed or removed: the database refuses UPDATE and DELETE.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_anchors_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_anchors is append-only'; END $$""")
        op.execute("""CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE OR DELETE
                      ON audit_anchors
                      FOR EACH ROW EXECUTE FUNCTION audit_anchors_append_only()""")
        op.execute("""CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
                      FOR EACH STATEMENT EXECUTE FUNCTION audit_anchors_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER audit_anchors_no_{verb.lower()} BEFORE {verb}
                           ON audit_anchors
                           BEGIN SELECT RAISE(ABORT, 'audit_anchors is append-only'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_anchors_no_update ON audit_anchors")
        op.execute("DROP TRIGGER IF EXISTS audit_anchors_no_truncate ON audit_anchors")
        op.execute("DROP FUNCTION IF EXISTS audit_anchors_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_anchors_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_anchors_no_delete")
    op.drop_table('audit_anchors')
