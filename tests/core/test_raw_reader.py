"""The raw reader of the session check (core.db.RawReader): one connection per thread and
one per event loop, replaced when the server ended it, closed when the loop has ended."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from casino_app.core.db import databases


def _readers(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity "
                         "WHERE application_name = 'casino-reader'").fetchone()[0]


def _end_readers(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = 'casino-reader'")


def test_one_connection_per_loop_replaced_when_the_server_ends_it(
        pg_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    reader = databases().identity_reader
    url = reader.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def many() -> list:
        return await asyncio.gather(*(reader.one_async("SELECT 1", ()) for _ in range(20)))

    made = []
    real = psycopg.AsyncConnection.connect

    async def connect(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        made.append(1)
        return await real(*a, **kw)

    with monkeypatch.context() as m:
        m.setattr(psycopg.AsyncConnection, "connect", connect)
        assert asyncio.run(many()) == [(1,)] * 20   # twenty events at once: one connection
    assert made == [1] and _readers(url) == 1
    assert asyncio.run(many()) == [(1,)] * 20   # a new loop: the ended loop's one closed
    assert _readers(url) == 1
    assert reader.one("SELECT 1", ()) == (1,)   # this thread's own
    assert _readers(url) == 2
    _end_readers(url)                           # a server restart, an idle timeout
    assert reader.one("SELECT 1", ()) == (1,)
    assert asyncio.run(many()) == [(1,)] * 20
    reader.close()
    assert _readers(url) == 0


def test_sqlite_reads_in_the_loop_and_sees_what_is_committed(app_env) -> None:  # noqa: ANN001
    from sqlalchemy import text

    from casino_app.core.db import identity_tx

    reader = databases().identity_reader
    assert reader.sqlite and reader.param == "?"
    count = "SELECT count(*) FROM users"
    assert asyncio.run(reader.one_async(count, ())) == (0,)
    with identity_tx() as s:
        s.execute(text("INSERT INTO users (email_enc, email_index, password_hash, "
                       "display_name_enc, player_id, role, created_at, password_changed_at) "
                       "VALUES (x'00', 'i', 'x', x'00', 'p-raw', 'player', '2026-12-04', "
                       "'2026-12-04')"))
    assert reader.one(count, ()) == (1,)
