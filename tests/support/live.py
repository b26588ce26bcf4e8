"""A live casino for the tests that speak its websocket (the attacks of tests/security, the
several-workers test of tests/ui): a real ``casino run`` (production build) on a free
port with fresh data (SQLite, or PostgreSQL), optionally several web workers on a Redis,
its own anvil node (so the wallet's deposits and withdrawals are on), an admin and a
support account with 2FA on, and the services of this process pointed at its databases,
to set up players and to check afterwards what an attack or a test changed.

No browser: the attacker speaks Reflex's websocket protocol with
``tests.support.reflex_client.Tab``. ``Casino.tab`` opens one for an account.

The background jobs that could write money or account rows on their own (reconciliation,
sweeps, the batcher) run once at start and then only once a day here, and ``start`` waits
for their first runs, so a ``Snapshot`` taken around an attack sees only what the attack
did.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp

from tests.support.reflex_client import Tab
from tests.support.services import (
    ANVIL_MNEMONIC,
    Anvil,
    PgCluster,
    app_base_env,
    free_port,
    start_casino,
    stop_casino,
    web_workers_env,
)

ROOT = Path(__file__).resolve().parents[2]
UA = "Mozilla/5.0 (X11; Linux x86_64) hh-tests/attacker"
PASSWORD = "attack test pass phrase"
STAFF_PASSWORD = "staff only pass phrase 1"
GWEI_PER_ETH = 10**9
DAY = "86400"
# Jobs that may write money or account rows by themselves: start waits for their first
# run (at start) and they do not run again for a day.
QUIET_JOBS = ("eth-reconcile", "eth-sweep", "eth-batch", "ledger-check", "identity-cleanup")
# What a Snapshot compares: every table an attack could change to its profit, without
# the bookkeeping that legitimately moves during a test (a session's last_seen, job runs,
# audit rows and their outbox, the chain watcher's blocks).
SNAPSHOT_TABLES = {
    "identity": ("users", "user_sessions", "recovery_codes", "action_tokens", "role_requests"),
    "ledger": ("players", "ledger_accounts", "journal_entries", "postings",
               "pending_transfers", "adjustment_requests", "seed_pairs", "bets",
               "player_stats", "game_favourites", "withdrawals", "withdrawal_batches",
               "player_holds", "safe_payments", "safe_signatures", "reconcile_runs",
               "deposit_addresses"),
}
VOLATILE_COLUMNS = {"last_seen_at"}
# What the app's log shows when something broke on the server (Casino.server_errors).
SERVER_ERROR_MARKS = ("Traceback (most recent call last)", "[Reflex Backend Exception]",
                      "unhandled_exception")


def reset_process_state() -> None:
    """Forget cached settings, engines and limiters (after the environment changed)."""
    from casino_app.core.db import reset_databases
    from casino_app.core.settings import reset_settings_cache
    from casino_app.games.bets import reset_bankroll_cache
    from casino_app.games.config import reset_config
    from casino_app.payments.currencies import reset_currencies
    from casino_app.security.ratelimit import reset_limiter
    from casino_app.users.passwords import reset_password_context

    reset_databases()
    reset_settings_cache()
    reset_limiter()
    reset_password_context()
    reset_currencies()
    reset_bankroll_cache()
    reset_config()


@contextmanager
def adopted(env: dict[str, str]) -> Iterator[None]:
    """This process's services on the app's settings (its CASINO_* variables) while the
    block runs; the previous environment and fresh caches afterwards."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("CASINO_")}
    for k in saved:
        del os.environ[k]
    os.environ.update({k: v for k, v in env.items() if k.startswith("CASINO_")})
    reset_process_state()
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith("CASINO_")]:
            del os.environ[k]
        os.environ.update(saved)
        reset_process_state()


def ctx():  # noqa: ANN201 - users.sessions.RequestContext
    from casino_app.users.sessions import RequestContext

    return RequestContext("127.0.0.1", UA)


@dataclass
class Account:
    email: str
    password: str
    user_id: int
    player_id: str
    token: str
    role: str = "player"
    totp_secret: str | None = None

    def totp(self) -> pyotp.TOTP:
        assert self.totp_secret, "2FA is off for this account"
        return pyotp.TOTP(self.totp_secret)


def enrol_2fa(account: Account) -> None:
    """Turn on 2FA through the services (the current code confirms it); the account's
    token is the rotated one afterwards."""
    from casino_app.users import accounts

    enrolment = accounts.start_totp(account.token, account.password, None, ctx())
    code = pyotp.TOTP(enrolment.secret).now()
    _, account.token = accounts.confirm_totp(account.token, code, ctx())
    account.totp_secret = enrolment.secret


def allow_address(account: Account, address: str, chain: str = "ethereum") -> None:
    """Put ``address`` on the player's withdrawal allow-list through the service (as the
    wallet page does after the second factor), so that a test's withdrawal to a fresh
    address is not refused for its cooling period."""
    from datetime import timedelta

    from casino_app.payments import withdrawal_addresses

    withdrawal_addresses.set_allowed(account.player_id, chain, address, True, timedelta(0))


def new_player(name: str = "Player", fun: bool = True) -> Account:
    """A registered, signed-in player (a session token of its own), with 1,000 FUN."""
    from casino_app.payments import demo
    from casino_app.users import accounts
    from tests.support.signup import sign_up

    email = f"{name.lower().replace(' ', '')}-{secrets.token_hex(4)}@example.com"
    token = sign_up(email_addr=email, password=PASSWORD, display_name=name,
                    date_of_birth="1990-01-01", ctx=ctx())
    me = accounts.current_user(token)
    assert me is not None
    if fun and demo.fun_balance(me.player_id) == 0:  # new accounts may start with FUN
        demo.top_up_fun(me.player_id, f"topup-{secrets.token_hex(8)}")
    return Account(email, PASSWORD, me.user_id, me.player_id, token)


def new_staff(role: str, name: str) -> Account:
    """A staff account (``casino admin create``'s service), signed in, with 2FA on."""
    from casino_app.users import accounts, staff
    from casino_app.users.models import Role

    email = f"{name}-{secrets.token_hex(4)}@example.com"
    user_id = staff.create_staff(email, STAFF_PASSWORD, Role(role))
    step = accounts.begin_login(email=email, password=STAFF_PASSWORD, ctx=ctx())
    assert step.session_token
    me = accounts.current_user(step.session_token)
    assert me is not None
    account = Account(email, STAFF_PASSWORD, user_id, me.player_id, step.session_token, role)
    enrol_2fa(account)
    return account


def victim_bets(victim: Account) -> tuple[int, int]:
    """A settled dice bet and an open 3-mine round of ``victim`` (1.00 FUN each), placed
    through the bet service: (dice bet id, mines round id)."""
    from casino_app.games import bets

    dice = bets.place_bet(victim.player_id, "dice", "FUN", 100,
                          {"target": "50.00", "direction": "over"}, secrets.token_hex(16))
    mines = bets.place_bet(victim.player_id, "mines", "FUN", 100, {"mines": 3},
                           secrets.token_hex(16))
    assert mines.state == "open"
    return dice.bet_id, mines.bet_id


def session_live(token: str) -> bool:
    from casino_app.users import accounts

    return accounts.current_user(token, touch=False) is not None


def balances(player_id: str) -> dict[str, tuple[int, int]]:
    """{currency: (available, reserved)} from the ledger."""
    from casino_app.core.db import ledger_tx
    from casino_app.payments import ledger

    with ledger_tx(readonly=True) as s:
        return {code: (b.available, b.reserved)
                for code, b in ledger.player_balances(s, player_id).items()}


def available(player_id: str, code: str) -> int:
    return balances(player_id).get(code, (0, 0))[0]


def row_of(model: Any, row_id: int) -> dict[str, Any]:
    """One row of a ledger model (Bet, SeedPair, Withdrawal...) as a dict, read now."""
    from casino_app.core.db import ledger_tx

    with ledger_tx(readonly=True) as s:
        obj = s.get(model, row_id)
        assert obj is not None, f"no {model.__name__} #{row_id}"
        return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def bets_of(player_id: str) -> list[dict[str, Any]]:
    """The player's bets, oldest first, as dicts."""
    from sqlalchemy import select

    from casino_app.core.db import ledger_tx
    from casino_app.games.models import Bet

    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(Bet).where(Bet.player_id == player_id).order_by(Bet.id))
        return [{c.key: getattr(b, c.key) for c in Bet.__table__.columns}
                for b in rows.scalars()]


def ledger_violations() -> list[str]:
    """What ``casino ledger check`` would report, as text (empty: clean)."""
    from casino_app.core.db import ledger_tx
    from casino_app.payments import ledger

    with ledger_tx(readonly=True) as s:
        return [f"{f.check}: {f.violations} {f.examples}" for f in ledger.check_invariants(s)
                if f.violations]


def _rows(engine: Any, table: str) -> list[str]:
    from sqlalchemy import MetaData, Table, select

    t = Table(table, MetaData(), autoload_with=engine)
    cols = [c for c in t.columns if c.name not in VOLATILE_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols)).fetchall()
    return sorted(repr(tuple(r)) for r in rows)


@dataclass
class Snapshot:
    """The rows of SNAPSHOT_TABLES at one moment; ``changes`` names what differs."""

    tables: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def take(cls) -> Snapshot:
        from casino_app.core.db import databases

        dbs = databases()
        engines = {"identity": dbs.identity_engine, "ledger": dbs.ledger_engine}
        return cls({f"{db}.{t}": _rows(engines[db], t)
                    for db, tables in SNAPSHOT_TABLES.items() for t in tables})

    def changes(self, later: Snapshot | None = None) -> dict[str, dict[str, list[str]]]:
        """{table: {"gone": rows, "new": rows}} between this snapshot and ``later``
        (default: now)."""
        later = later or Snapshot.take()
        out = {}
        for name, rows in self.tables.items():
            before, after = set(rows), set(later.tables[name])
            if before != after:
                out[name] = {"gone": sorted(before - after)[:5], "new": sorted(after - before)[:5]}
        return out


def audit_rows(action: str, actor_user_id: int | None = None,
               target_user_id: int | None = None) -> int:
    """How many audit rows record ``action`` (by that actor, on that target)."""
    from sqlalchemy import func, select

    from casino_app.core.db import identity_tx
    from casino_app.security.models import AuditEvent

    q = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    if actor_user_id is not None:
        q = q.where(AuditEvent.actor_user_id == actor_user_id)
    if target_user_id is not None:
        q = q.where(AuditEvent.target_user_id == target_user_id)
    with identity_tx(readonly=True) as s:
        return s.execute(q).scalar_one()


def seeds_in(text: str, server_seed_hash: str) -> set[str]:
    """The server seeds in ``text`` that hash to ``server_seed_hash`` (64 hex digits whose
    SHA-256, of the hex string, is the committed hash): a revealed seed, however shown."""
    return {m for m in re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text)
            if hashlib.sha256(m.encode()).hexdigest() == server_seed_hash}


def house_secrets(env: dict[str, str], tokens: list[str] = ()) -> dict[str, str]:
    """{what: value} that no browser may ever receive: every server seed not revealed
    (the active and next pairs, and a revealed pair whose bet is still open), the
    encryption keys, the hot wallet's seed phrase, the metrics token, the password
    hashes and TOTP secrets of every account, and the session ``tokens`` given. Read
    now, from the app's databases (call it inside ``adopted(env)``)."""
    from sqlalchemy import select

    from casino_app.core.db import identity_tx, ledger_tx
    from casino_app.games import seeds
    from casino_app.games.models import SeedPair
    from casino_app.security.crypto import keyring
    from casino_app.users import totp
    from casino_app.users.models import User

    out: dict[str, str] = {}
    for n, item in enumerate(env.get("CASINO_ENCRYPTION_KEYS", "").split(",")):
        key = item.split(":", 1)[-1].strip()
        if key:
            out[f"encryption key {n}"] = key
    for name in ("CASINO_ETH_HOT_SEED", "CASINO_METRICS_TOKEN"):
        if env.get(name):
            out[name] = env[name]
    with ledger_tx(readonly=True) as s:
        for p in s.execute(select(SeedPair)).scalars():
            if p.state != "revealed" or seeds.has_open_bets(s, p.id):
                out[f"server seed of pair #{p.id} ({p.state})"] = seeds._open(
                    p.player_id, p.server_seed_hash, bytes(p.server_seed_sealed))
    with identity_tx(readonly=True) as s:
        for u in s.execute(select(User)).scalars():
            out[f"password hash of user #{u.id}"] = u.password_hash
            for what, pending in (("totp_secret_enc", False), ("totp_pending_enc", True)):
                sealed = getattr(u, what)
                if sealed:
                    secret = keyring().open(bytes(sealed), totp._ctx(u.id, pending)).decode()
                    out[f"{what} of user #{u.id}"] = secret
    for n, token in enumerate(tokens):
        out[f"session token {n}"] = token
    return out


def leaked(text: str, secrets_: dict[str, str]) -> list[str]:
    """The names of the ``house_secrets`` that appear in ``text``."""
    return sorted(name for name, value in secrets_.items() if value and value in text)


def wait_for(what: str, check: Any, timeout: float = 120.0, every: float = 0.2) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# --- the app --------------------------------------------------------------------------------

@dataclass
class Casino:
    url: str
    env: dict[str, str]
    tmp: Path
    chain: Anvil
    admin: Account
    support: Account
    db: str = "sqlite"
    proc: subprocess.Popen | None = None
    _sender: int = 0

    @property
    def log(self) -> Path:
        return self.tmp / "app.log"

    def log_size(self) -> int:
        """Where the app's log ends now (``server_errors`` reads from there)."""
        return self.log.stat().st_size

    def server_errors(self, since: int) -> list[str]:
        """The server errors the app logged after offset ``since``: Python tracebacks,
        Reflex's "Backend Exception" (an exception escaping a handler) and our own
        ``unhandled_exception`` (one escaping an HTTP route); each with a few lines."""
        with self.log.open("rb") as fh:
            fh.seek(since)
            lines = fh.read().decode("utf-8", "replace").splitlines()
        return ["\n".join(lines[i:i + 12]) for i, line in enumerate(lines)
                if any(mark in line for mark in SERVER_ERROR_MARKS)]

    def tab(self, who: Account | None = None, page: str = "/", token: str | None = None,
            **kw: Any) -> Tab:
        """A new browser tab of ``who`` (or a visitor; ``token``: any session token), not
        connected yet: ``await tab.open()`` (or ``async with`` it, which closes it)."""
        return Tab(self.url, token if token is not None else (who.token if who else ""),
                   page, user_agent=UA, **kw)

    def fund_eth(self, player: Account, gwei: int) -> None:
        """A real deposit: ETH sent on the chain to the player's deposit address, credited
        by the app's watcher; returns once it is withdrawable."""
        from web3 import Web3

        from casino_app.payments import activity
        from casino_app.payments.eth import addresses

        before = activity.withdrawable_amounts(player.player_id, ["ETH"])["ETH"]
        to = addresses.deposit_address(player.player_id)
        w3 = self.chain.w3
        # a sender that is none of our deposit addresses (they are anvil's accounts)
        sender = w3.eth.account.create()
        self.chain.rpc("anvil_setBalance", [sender.address, hex(10**20)])
        tx = {"to": to, "value": gwei * 10**9, "gas": 21_000, "chainId": self.chain.chain_id,
              "nonce": 0, "maxFeePerGas": Web3.to_wei(50, "gwei"),
              "maxPriorityFeePerGas": Web3.to_wei(1, "gwei")}
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
        wait_for(f"the deposit of {gwei} gwei to be withdrawable",
                 lambda: activity.withdrawable_amounts(player.player_id, ["ETH"])["ETH"]
                 >= before + gwei)


def _jobs_done(names: tuple[str, ...]) -> bool:
    from sqlalchemy import select

    from casino_app.core.db import ledger_tx
    from casino_app.jobs.models import JobState

    with ledger_tx(readonly=True) as s:
        done = {r.name for r in s.execute(select(JobState)).scalars()
                if r.last_finished_at is not None}
    return set(names) <= done


def start(tmp: Path, db: str = "sqlite", cluster: PgCluster | None = None,
          redis_url: str | None = None, workers: int = 1) -> Casino:
    """Start the app (see the module's docstring); ``stop`` it afterwards. ``workers``
    web processes on the one port share per-tab state through Redis (``redis_url``)."""
    from casino_app.payments.signer.seed import account_xpub

    chain = Anvil().start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = app_base_env()
    env.update(web_workers_env(redis_url, workers))
    env.update({
        "CASINO_DATA_DIR": str(tmp / "data"),
        "CASINO_PORT": str(port),
        "CASINO_PUBLIC_URL": url,
        "CASINO_ENCRYPTION_KEYS": "sec:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        # accounts are made by this process, from one address, many per minute
        "CASINO_RATE_REGISTER_IP": "1000/minute",
        "CASINO_RATE_LOGIN_IP": "1000/minute",
        "CASINO_RATE_LOGIN_ACCOUNT": "100/minute",
        "CASINO_RATE_RESET_IP": "1000/minute",
        # /api/metrics wants this bearer token, as in production
        "CASINO_METRICS_TOKEN": secrets.token_urlsafe(32),
        # accounts start empty: the attacks count every unit (new_player tops FUN up)
        "CASINO_FUN_WELCOME": "0",
        # the chain: withdrawals on, deposits withdrawable at one confirmation
        "CASINO_ETH_RPC_URL": chain.url,
        "CASINO_ETH_CHAIN_ID": str(chain.chain_id),
        "CASINO_ETH_HOT_SEED": ANVIL_MNEMONIC,
        "CASINO_ETH_XPUB": account_xpub(ANVIL_MNEMONIC),
        "CASINO_ETH_CONFIRMATIONS": "1",
        "CASINO_ETH_WATCH_SECONDS": "0.5",
        "CASINO_ETH_RECONCILE_SECONDS": DAY,
        "CASINO_ETH_SWEEP_SECONDS": DAY,
        "CASINO_ETH_BATCH_SECONDS": DAY,
    })
    if db == "postgres":
        assert cluster is not None
        tag = secrets.token_hex(4)
        env["CASINO_IDENTITY_DB_URL"] = cluster.create_database(f"sec_id_{tag}")
        env["CASINO_LEDGER_DB_URL"] = cluster.create_database(f"sec_led_{tag}")
    try:
        with adopted(env):
            from casino_app.migrations import upgrade_all

            upgrade_all()  # before the app starts, so the two never migrate at once
            admin = new_staff("admin", "admin")
            support = new_staff("support", "support")
        casino_cli(env, "ledger", "fund", "--currency", "ETH", "--amount", "100",
                   "--reference", "security suite bankroll")
        proc = start_casino(env, port, tmp / "app.log", ROOT)
    except BaseException:
        chain.stop()
        raise
    casino = Casino(url, env, tmp, chain, admin, support, db, proc)
    try:
        with adopted(env):
            wait_for("the first runs of the background jobs", lambda: _jobs_done(QUIET_JOBS))
    except BaseException:
        stop(casino)
        raise
    return casino


def stop(casino: Casino) -> None:
    try:
        if casino.proc is not None:
            stop_casino(casino.proc)
    finally:
        casino.chain.stop()


@contextmanager
def running(tmp: Path, **kw: Any) -> Iterator[Casino]:
    """``start`` (same arguments), and ``stop`` when the block ends, however it ends."""
    target = start(tmp, **kw)
    try:
        yield target
    finally:
        stop(target)


def casino_cli(env: dict[str, str], *args: str) -> str:
    """Run a ``casino`` subcommand against the app's settings; its output."""
    exe = str(Path(sys.executable).parent / "casino")
    done = subprocess.run([exe, *args], env=env, text=True, capture_output=True,  # noqa: S603
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def user_by_id(user_id: int) -> Any:
    """The identity database's row of user ``user_id``, detached (read it after the
    session is gone)."""
    from casino_app.core.db import identity_tx
    from casino_app.users.models import User

    with identity_tx(readonly=True) as s:
        user = s.get(User, user_id)
        assert user is not None
        s.expunge(user)
        return user
