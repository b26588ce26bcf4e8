"""Personal data sealed at rest: what an operator and a player would notice.

The identity database holds no email, name, birth date or IP address in clear; sign-in,
sign-up and staff search still find an account by its email (any case) through the blind
index; one address is one account; a sealed value copied to another account does not open;
``casino keys rotate`` re-seals everything (server seeds too) so the old key can go, and a
bad key or a damaged value stops it before it changes anything.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from casino_app.core.db import databases, identity_tx, ledger_tx
from casino_app.security import sealed
from casino_app.security.crypto import DecryptionError, keyring
from casino_app.users import accounts, staff
from casino_app.users.errors import ValidationFailed
from casino_app.users.models import Role, User
from casino_app.users.sessions import RequestContext
from tests.conftest import TEST_KEY
from tests.users.helpers import (
    PASSWORD,
    make_staff,
    new_email,
    reconfigure,
    register,
    rotated,
    sign_in,
    user_row,
    whoami,
)

NAME, DOB, IP = "Zebediah Quux", "1979-11-23", "203.0.113.77"


def _new_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _dump() -> str:
    """Every row of every identity table, as text; but the audit log, append-only and
    hash-chained, which keeps the IP address of each action in clear (docs/ARCHITECTURE.md:
    Encryption at rest)."""
    out = []
    with identity_tx(readonly=True) as s:
        names = databases().identity_engine.dialect.get_table_names(s.connection())
        for t in (n for n in names if n != "audit_log"):
            out += [repr(tuple(r)) for r in s.execute(text(f'SELECT * FROM "{t}"'))]  # noqa: S608
    return "\n".join(out)


def _blobs() -> dict[str, list]:
    import casino_app.migrations  # noqa: F401

    out: dict[str, list] = {}
    for c in sealed.registered():
        tx = identity_tx if c.database == "identity" else ledger_tx
        with tx(readonly=True) as s:
            out[c.name] = [bytes(b) if b is not None else None for (b,) in s.execute(text(
                f"SELECT {c.column} FROM {c.table} ORDER BY {c.key}"))]  # noqa: S608
    return out


def test_a_sealed_field_cannot_be_compared_in_a_query_by_mistake() -> None:
    with pytest.raises(TypeError, match="blind index"):
        select(User).where(User.email == "someone@example.com")


def test_personal_data_is_not_in_the_database_in_clear(any_env: str, base_env: Path) -> None:
    addr = new_email("zebediah.clear")
    register(addr, name=NAME, dob=DOB, ctx=RequestContext(ip=IP, user_agent="x"))
    pending = new_email("pending.person")
    accounts.start_registration(email=pending, password=PASSWORD, display_name="Pending Pat",
                                date_of_birth="1985-02-03", accept_terms=True,
                                ctx=RequestContext(ip="198.51.100.9"))
    accounts.request_password_reset(addr, RequestContext(ip="198.51.100.10"))
    with pytest.raises(Exception):  # noqa: B017, PT011 - a failed sign-in records its IP
        accounts.begin_login(email=addr, password="wrong password!",
                             ctx=RequestContext(ip="198.51.100.11"))
    me = whoami(sign_in(addr))
    assert me is not None and (me.email, me.display_name) == (addr, NAME)
    assert user_row(addr).date_of_birth.isoformat() == DOB

    rows = _dump().lower()
    for secret in (addr, addr.split("@")[0], pending, "pending pat", NAME.lower(), DOB,
                   "1985-02-03", IP, "198.51.100.9", "198.51.100.11"):
        assert secret.lower() not in rows, secret
    if any_env == "sqlite":  # the file itself (and its write-ahead log)
        raw = b"".join(p.read_bytes() for p in (base_env / "data").glob("identity.db*"))
        for secret in (addr, NAME, pending, "Pending Pat"):
            assert secret.encode() not in raw


def test_sign_in_and_reset_find_the_email_in_any_case_and_one_address_is_one_account(
        any_env: str) -> None:
    addr = new_email("Mixed.Case")
    register(addr)
    assert whoami(sign_in(addr.upper())).email == addr.lower()
    assert whoami(sign_in(f"  {addr.swapcase()} ")) is not None
    accounts.request_password_reset(addr.upper(), RequestContext(ip="192.0.2.1"))

    with pytest.raises(ValidationFailed):  # the same address again, any case
        staff.create_staff(addr.upper(), PASSWORD, Role.support)
    other, taken = user_row(register()[1]).id, user_row(addr).email_index
    with pytest.raises(IntegrityError), identity_tx() as s:  # and the database refuses it
        s.execute(update(User).where(User.id == other).values(email_index=taken))


def test_a_sealed_value_copied_to_another_account_does_not_open(any_env: str) -> None:
    _, victim = register(name="Victim Person")
    _, thief = register(name="Thief Person")
    thief_token = sign_in(thief)
    victim_id, thief_id = user_row(victim).id, user_row(thief).id
    with identity_tx() as s:
        stolen = s.execute(select(User.display_name_enc).where(User.id == victim_id)).scalar()
        s.execute(update(User).where(User.id == thief_id).values(display_name_enc=stolen))
    with pytest.raises(DecryptionError):
        user_row(thief).display_name  # noqa: B018
    with pytest.raises(DecryptionError):
        whoami(thief_token)


def test_key_rotation_reseals_everything_and_the_old_key_can_go(
        any_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    from casino_app.cli import main
    from casino_app.games import seeds

    token, addr = register(name=NAME)
    seeds.ensure(whoami(token).player_id)
    admin, _, _ = make_staff(Role.admin)  # a 2FA secret too
    before = _blobs()
    new = _new_key("k2")
    reconfigure(monkeypatch, ENCRYPTION_KEYS=f"{new},{TEST_KEY}")
    capsys.readouterr()
    assert main(["keys", "rotate", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "users.email_enc: 2 re-encrypted" in out and "seed_pairs.server_seed_sealed: 2 " \
        "re-encrypted" in out and "crypto_keys.sealed: 1 re-encrypted" in out
    after = _blobs()
    for name, values in after.items():
        assert all(v is None or keyring().key_id_of(v) == "k2" for v in values), name
    assert after["users.email_enc"] != before["users.email_enc"]
    assert main(["keys", "rotate"]) == 0  # again: nothing left to do, nothing changed
    assert "re-encrypted 0 values" in capsys.readouterr().out and _blobs() == after

    reconfigure(monkeypatch, ENCRYPTION_KEYS=new)  # the old key is gone
    me = whoami(sign_in(addr.upper()))
    assert me is not None and (me.email, me.display_name) == (addr, NAME)
    detail = staff.player_detail(admin, me.user_id, RequestContext(ip="192.0.2.9"))
    assert detail.last_login_ip and detail.sessions[0].ip
    assert [p.email for p in staff.find_players(admin, addr)] == [addr]
    with ledger_tx(readonly=True) as s:
        from casino_app.games.models import SeedPair

        for pair in s.scalars(select(SeedPair)):
            seeds._open(pair.player_id, pair.server_seed_hash, pair.server_seed_sealed)


def test_rotation_refuses_a_value_it_cannot_open_and_changes_nothing(
        any_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    from casino_app.cli import main

    _, addr = register()
    _, other = register()
    # a key that sealed values is missing from the keyring
    reconfigure(monkeypatch, ENCRYPTION_KEYS=_new_key("k3"))
    before = _blobs()
    assert main(["keys", "rotate"]) == 2
    err = capsys.readouterr().err
    assert "key 't1' is not in the keyring" in err and "nothing was re-encrypted" in err
    assert _blobs() == before

    # a damaged value, with every key present
    reconfigure(monkeypatch, ENCRYPTION_KEYS=f"{_new_key('k4')},{TEST_KEY}")
    other_id = user_row(other).id
    with identity_tx() as s:
        blob = bytearray(s.scalar(select(User.email_enc).where(User.id == other_id)))
        blob[-1] ^= 1
        s.execute(update(User).where(User.id == other_id).values(email_enc=bytes(blob)))
    before = _blobs()
    assert main(["keys", "rotate"]) == 2
    assert f"users.email_enc row {other_id}" in capsys.readouterr().err
    assert _blobs() == before


def test_a_rotation_that_stops_halfway_leaves_every_value_readable_and_resumes(
        any_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    addrs = [register(name=f"Person {i}")[1] for i in range(3)]
    new = _new_key("k5")
    reconfigure(monkeypatch, ENCRYPTION_KEYS=f"{new},{TEST_KEY}")
    real = sealed.Keyring.reseal
    calls = {"n": 0}

    def crash_after_some(self: sealed.Keyring, blob: bytes, context: str) -> bytes:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the operator's ^C, or a crash
        return real(self, blob, context)

    monkeypatch.setattr(sealed.Keyring, "reseal", crash_after_some)
    with pytest.raises(KeyboardInterrupt):
        rotated(batch=1)
    monkeypatch.setattr(sealed.Keyring, "reseal", real)
    def key_ids() -> set[str]:
        return {keyring().key_id_of(b) for values in _blobs().values() for b in values if b}

    assert key_ids() == {"k5", "t1"}  # stopped halfway: some values under each key
    assert [whoami(sign_in(a)).display_name for a in addrs] == [f"Person {i}"
                                                                for i in range(3)]
    assert sum(rotated(batch=1).values()) > 0  # the rest
    assert key_ids() == {"k5"}
    reconfigure(monkeypatch, ENCRYPTION_KEYS=new)  # the old key is gone
    assert [whoami(sign_in(a)).email for a in addrs] == addrs
