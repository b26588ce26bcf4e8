"""personal data sealed per field; emails found by a blind index

Emails, names, birth dates and IP addresses of ``users``, ``pending_registrations``,
``user_sessions`` and ``login_attempts`` move into ``*_enc`` columns sealed under the
keyring (AES-256-GCM, bound to table, column and row: security/sealed.py), and emails
get ``email_index`` (HMAC-SHA256 under a key kept sealed in the new ``crypto_keys``
table), UNIQUE on ``users``. Existing rows are converted with the keyring of the
settings (CASINO_ENCRYPTION_KEYS) and the plaintext columns dropped. Downgrade opens
them back into plaintext columns (every key that sealed a value must be configured).

Revision ID: ide0005
Revises: ide0004
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = 'ide0005'
down_revision: str | None = 'ide0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (row column the values are bound to, [(plain column, kind, nullable)])
_FIELDS: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {
    'users': ('player_id', [('email', 'str', False), ('display_name', 'str', False),
                            ('date_of_birth', 'date', True), ('last_login_ip', 'str', True),
                            ('previous_login_ip', 'str', True)]),
    'pending_registrations': ('token_hash', [('email', 'str', False),
                                             ('display_name', 'str', False),
                                             ('date_of_birth', 'date', False)]),
    'user_sessions': ('token_hash', [('ip', 'str', False)]),
    'login_attempts': ('user_id', [('ip', 'str', False)]),
}
_PLAIN_TYPES = {'email': sa.String(length=254), 'display_name': sa.String(length=40),
                'date_of_birth': sa.Date(), 'last_login_ip': sa.String(length=64),
                'previous_login_ip': sa.String(length=64), 'ip': sa.String(length=64)}
_INDEXED = ('users', 'pending_registrations')


def _ring() -> Any:
    from casino_app.core.settings import get_settings
    from casino_app.security.crypto import Keyring

    return Keyring(get_settings().keyring)


def _text(value: Any, kind: str) -> str:
    if kind == 'date':
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    return str(value)


def upgrade() -> None:
    from casino_app.security.crypto import blind_index, normalise_email
    from casino_app.security.sealed import load_index_key

    op.create_table('crypto_keys',
                    sa.Column('name', sa.String(length=32), nullable=False),
                    sa.Column('sealed', sa.LargeBinary(), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    for table, (_row, fields) in _FIELDS.items():
        with op.batch_alter_table(table) as b:
            for name, _kind, _null in fields:
                b.add_column(sa.Column(f'{name}_enc', sa.LargeBinary(), nullable=True))
            if table in _INDEXED:
                b.add_column(sa.Column('email_index', sa.String(length=64), nullable=True))

    conn = op.get_bind()
    ring = key = None
    for table, (row, fields) in _FIELDS.items():
        names = ', '.join(n for n, _k, _n in fields)
        rows = conn.execute(sa.text(f'SELECT id, {row}, {names} FROM {table}')).all()  # noqa: S608
        if not rows:
            continue
        ring = ring or _ring()
        if table in _INDEXED and key is None:
            key = load_index_key(conn, ring)
        sets = ', '.join(f'{n}_enc = :{n}' for n, _k, _n in fields)
        if table in _INDEXED:
            sets += ', email_index = :email_index'
        params = []
        for r in rows:
            p: dict[str, Any] = {'id': r[0]}
            for i, (name, kind, _null) in enumerate(fields):
                value = r[2 + i]
                p[name] = None if value is None else ring.seal(
                    _text(value, kind).encode(), f'{table}.{name}:{r[1]}')
            if table in _INDEXED:
                p['email_index'] = blind_index(key, normalise_email(r[2]))
            params.append(p)
        conn.execute(sa.text(f'UPDATE {table} SET {sets} WHERE id = :id'), params)  # noqa: S608

    with op.batch_alter_table('pending_registrations') as b:
        b.drop_index('ix_pending_registrations_email')
    for table, (_row, fields) in _FIELDS.items():
        with op.batch_alter_table(table) as b:
            for name, _kind, nullable in fields:
                if not nullable:
                    b.alter_column(f'{name}_enc', existing_type=sa.LargeBinary(),
                                   nullable=False)
                b.drop_column(name)
            if table in _INDEXED:
                b.alter_column('email_index', existing_type=sa.String(length=64),
                               nullable=False)
            if table == 'users':
                b.create_unique_constraint('uq_users_email_index', ['email_index'])
            if table == 'pending_registrations':
                b.create_index('ix_pending_registrations_email_index', ['email_index'])


def downgrade() -> None:
    for table, (_row, fields) in _FIELDS.items():
        with op.batch_alter_table(table) as b:
            for name, _kind, _null in fields:
                b.add_column(sa.Column(name, _PLAIN_TYPES[name], nullable=True))

    conn = op.get_bind()
    ring = None
    for table, (row, fields) in _FIELDS.items():
        names = ', '.join(f'{n}_enc' for n, _k, _n in fields)
        rows = conn.execute(sa.text(f'SELECT id, {row}, {names} FROM {table}')).all()  # noqa: S608
        if not rows:
            continue
        ring = ring or _ring()
        sets = ', '.join(f'{n} = :{n}' for n, _k, _n in fields)
        params = []
        for r in rows:
            p: dict[str, Any] = {'id': r[0]}
            for i, (name, kind, _null) in enumerate(fields):
                blob = r[2 + i]
                plain = None if blob is None else ring.open(
                    bytes(blob), f'{table}.{name}:{r[1]}').decode()
                p[name] = date.fromisoformat(plain) if kind == 'date' and plain else plain
            params.append(p)
        conn.execute(sa.text(f'UPDATE {table} SET {sets} WHERE id = :id'), params)  # noqa: S608

    for table, (_row, fields) in _FIELDS.items():
        with op.batch_alter_table(table) as b:
            if table == 'users':
                b.drop_constraint('uq_users_email_index', type_='unique')
            if table == 'pending_registrations':
                b.drop_index('ix_pending_registrations_email_index')
            if table in _INDEXED:
                b.drop_column('email_index')
            for name, _kind, nullable in fields:
                if not nullable:
                    b.alter_column(name, existing_type=_PLAIN_TYPES[name], nullable=False)
                b.drop_column(f'{name}_enc')
            if table == 'users':
                b.create_unique_constraint('users_email_key', ['email'])
            if table == 'pending_registrations':
                b.create_index('ix_pending_registrations_email', ['email'])
    op.drop_table('crypto_keys')
