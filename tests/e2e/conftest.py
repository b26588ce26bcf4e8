"""End-to-end fixtures: the real app (``casino run``, production build, one port) started
once per test session on a free port with fresh data, a real local SMTP server (aiosmtpd)
receiving its mail, and Playwright driving Debian's Chromium."""

from __future__ import annotations

import base64
import email
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support.services import (
    ANVIL_MNEMONIC,
    Anvil,
    free_port,
    start_casino,
    stop_casino,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CASINO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "staff only passphrase 1"
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 860}

pytestmark = pytest.mark.e2e


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        msg = email.message_from_bytes(envelope.content)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, subject: str, timeout: float = 20.0) -> Message:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for m in reversed(self.messages):
                    if m["To"] == to and subject.lower() in (m["Subject"] or "").lower():
                        return m
            time.sleep(0.2)
        raise AssertionError(f"no mail to {to} about {subject!r} within {timeout}s")

    def count(self, to: str, subject: str) -> int:
        with self.lock:
            return sum(1 for m in self.messages
                       if m["To"] == to and subject.lower() in (m["Subject"] or "").lower())


def link_in(msg: Message) -> str:
    body = msg.get_payload(decode=True).decode()
    found = re.search(r"https?://\S+", body)
    assert found, body
    return found.group(0)


_SESSION_INBOX: list[Inbox] = []


def session_inbox() -> Inbox:
    """The one SMTP server every app of the test session mails to (``smtp``): where
    ``flows.register`` reads the sign-up link, as a person reads their mail."""
    assert _SESSION_INBOX, "the smtp fixture is not running"
    return _SESSION_INBOX[0]


@pytest.fixture(scope="session")
def smtp() -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port  # type: ignore[attr-defined]
    _SESSION_INBOX.append(inbox)
    yield inbox
    _SESSION_INBOX.remove(inbox)
    controller.stop()


@dataclass
class LiveApp:
    url: str
    data_dir: Path
    env: dict[str, str]
    log: Path

    def account(self, email: str) -> tuple[int, str]:
        """(id, player_id) of the account of ``email``, read from the app's identity file:
        emails are sealed, so the row is found by the blind index under the app's keys."""
        from casino_app.core.settings import parse_keyring
        from casino_app.security.crypto import Keyring, blind_index, normalise_email
        from casino_app.security.sealed import EMAIL_INDEX_KEY

        ring = Keyring(parse_keyring(self.env["CASINO_ENCRYPTION_KEYS"]))
        with sqlite3.connect(self.data_dir / "identity.db") as db:
            (blob,) = db.execute("SELECT sealed FROM crypto_keys WHERE name = ?",
                                 (EMAIL_INDEX_KEY,)).fetchone()
            key = ring.open(blob, f"crypto_keys.sealed:{EMAIL_INDEX_KEY}")
            return db.execute("SELECT id, player_id FROM users WHERE email_index = ?",
                              (blind_index(key, normalise_email(email)),)).fetchone()


def app_env(smtp: Inbox, tmp: Path, port: int) -> dict[str, str]:
    """The environment of a private ``casino run``: this process's, without its CASINO_
    settings, plus a fresh data folder, the port, the test mail server and a new key."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CASINO_") and k != "REFLEX_REDIS_URL"}
    env.update({
        "CASINO_DATA_DIR": str(tmp / "data"),
        "CASINO_PORT": str(port),
        "CASINO_PUBLIC_URL": f"http://localhost:{port}",
        "CASINO_SMTP_HOST": "127.0.0.1",
        "CASINO_SMTP_PORT": str(smtp.port),  # type: ignore[attr-defined]
        "CASINO_SMTP_STARTTLS": "false",
        "CASINO_ENCRYPTION_KEYS": "e2e:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        # the development game provider only where a test asks for it
        "CASINO_DEV_PROVIDERS": "false",
    })
    return env


class _LiveServer:
    """The session's shared app, started by the first test that asks for it."""

    def __init__(self, env: dict[str, str], port: int, tmp: Path) -> None:
        self.env, self.port, self.tmp = env, port, tmp
        self.proc: subprocess.Popen | None = None

    def current(self) -> LiveApp:
        if self.proc is None:
            self.proc = start_casino(self.env, self.port, self.tmp / "app.log", ROOT)
        return LiveApp(f"http://localhost:{self.port}", self.tmp / "data", self.env,
                       self.tmp / "app.log")

    def stop(self) -> None:
        if self.proc is not None:
            stop_casino(self.proc)
            self.proc = None


@pytest.fixture(scope="session")
def _live_server(smtp: Inbox, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[_LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    env = app_env(smtp, tmp, port)
    env.update({
        # Many sign-ins from one address in a few minutes: the limits are tested elsewhere.
        "CASINO_RATE_LOGIN_IP": "500/minute",
        "CASINO_RATE_LOGIN_ACCOUNT": "100/minute",
        "CASINO_RATE_REGISTER_IP": "100/minute",
        "CASINO_RATE_RESET_IP": "100/minute",
        "CASINO_RATE_RESET_ACCOUNT": "20/minute",
    })
    casino = str(Path(sys.executable).parent / "casino")
    casino_cli(env, "migrate")  # `admin create` reads a migrated database
    created = subprocess.run([casino, "admin", "create", "--email", ADMIN_EMAIL],  # noqa: S603
                             input=ADMIN_PASSWORD + "\n", env=env, text=True,
                             capture_output=True, timeout=120, cwd=ROOT)
    assert created.returncode == 0, created.stderr
    server = _LiveServer(env, port, tmp)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_app(_live_server: _LiveServer) -> LiveApp:
    """The app most browser tests share (one data folder for the session)."""
    return _live_server.current()


def casino_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run a ``casino`` subcommand against the app's settings; its output."""
    casino = str(Path(sys.executable).parent / "casino")
    done = subprocess.run([casino, *args], input=stdin, env=env, text=True,  # noqa: S603
                          capture_output=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    """A private anvil node (auto-mining) for the tests of one module."""
    node = Anvil()
    try:
        node.start()
        yield node
    finally:
        node.stop()


@contextmanager
def eth_app(smtp: Inbox, chain: Anvil, tmp: Path, settings: dict[str, str],
            staff: tuple[tuple[str, str, str], ...] = ()) -> Iterator[LiveApp]:
    """``casino run`` following ``chain`` with anvil's mnemonic as hot seed (so deposit
    addresses are anvil's accounts: fine for a test), a fast watcher, fresh data, plus
    ``settings``; the ``staff`` accounts (email, password, role) created before it starts."""
    from casino_app.payments.signer.seed import account_xpub

    port = free_port()
    env = app_env(smtp, tmp, port)
    env.update({
        "CASINO_RATE_REGISTER_IP": "100/minute",
        "CASINO_ETH_RPC_URL": chain.url,
        "CASINO_ETH_CHAIN_ID": str(chain.chain_id),
        "CASINO_ETH_HOT_SEED": ANVIL_MNEMONIC,
        "CASINO_ETH_XPUB": account_xpub(ANVIL_MNEMONIC),
        "CASINO_ETH_WATCH_SECONDS": "0.5",
        "CASINO_ETH_PENDING_CAP": "ETH:100000000000",
        **settings,
    })
    if staff:
        casino_cli(env, "migrate")  # `admin create` reads a migrated database
    for email_, password, role in staff:
        casino_cli(env, "admin", "create", "--email", email_, "--role", role,
                   stdin=password + "\n")
    log = tmp / "app.log"
    proc = start_casino(env, port, log, ROOT)
    try:
        yield LiveApp(f"http://localhost:{port}", tmp / "data", env, log)
    finally:
        stop_casino(proc)


@pytest.fixture(scope="module")
def bitcoin_chain() -> Iterator[object]:
    """A private bcoin regtest node (tests/support/bitcoin.py) for the tests of one
    module, started past segwit's activation with a funded test wallet."""
    from tests.support.bitcoin import BcoinNode

    node = BcoinNode()
    try:
        node.start()
        yield node
    finally:
        node.stop()


@contextmanager
def btc_app(smtp: Inbox, node, tmp: Path, settings: dict[str, str],  # noqa: ANN001
            chain: Anvil | None = None, words: str = ANVIL_MNEMONIC,
            staff: tuple[tuple[str, str, str], ...] = ()) -> Iterator[LiveApp]:
    """``casino run`` following the private bcoin ``node`` (regtest-bcoin), with ``words``
    as the hot wallet's seed (its BIP84 account key as ``CASINO_BTC_XPUB``), a fast
    watcher (0.5 s) and batcher (1 s), fresh data, plus ``settings``; with ``chain`` (an
    anvil) Ethereum too, so the wallet has a BTC tab beside ETH's; the ``staff`` accounts
    (email, password, role) created before it starts."""
    from casino_app.payments.btc.network import PRESETS
    from casino_app.payments.signer import btc as btc_signer
    from casino_app.payments.signer.seed import account_xpub

    port = free_port()
    env = app_env(smtp, tmp, port)
    env.update({
        "CASINO_RATE_REGISTER_IP": "100/minute",
        "CASINO_ETH_HOT_SEED": words,
        "CASINO_BTC_NETWORK": "regtest-bcoin",
        "CASINO_BTC_RPC_URL": node.url,
        "CASINO_BTC_RPC_USER": "hashhouse",
        "CASINO_BTC_RPC_PASSWORD": node.api_key,
        "CASINO_BTC_RPC_DIALECT": "bcoin",
        "CASINO_BTC_XPUB": btc_signer.account_xpub(PRESETS["regtest-bcoin"], words),
        "CASINO_BTC_WATCH_SECONDS": "0.5",
        "CASINO_BTC_BATCH_SECONDS": "1",
    })
    if chain is not None:
        env.update({"CASINO_ETH_RPC_URL": chain.url,
                    "CASINO_ETH_CHAIN_ID": str(chain.chain_id),
                    "CASINO_ETH_XPUB": account_xpub(words)})
    env.update(settings)
    if staff:
        casino_cli(env, "migrate")  # `admin create` reads a migrated database
    for email_, password, role in staff:
        casino_cli(env, "admin", "create", "--email", email_, "--role", role,
                   stdin=password + "\n")
    log = tmp / "app.log"
    proc = start_casino(env, port, log, ROOT)
    try:
        yield LiveApp(f"http://localhost:{port}", tmp / "data", env, log)
    finally:
        stop_casino(proc)


@pytest.fixture(scope="module")
def playwright_session() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_session) -> Iterator[object]:  # noqa: ANN001
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def profile_context(playwright_session, live_app: LiveApp, tmp_path: Path):  # noqa: ANN001, ANN201
    """A browser with a real (non-incognito) profile: what installing a PWA needs."""
    ctx = playwright_session.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
        base_url=live_app.url, viewport=PHONE)
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture(params=[pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return request.param


@pytest.fixture
def new_context(browser, live_app: LiveApp, viewport: dict[str, int]):  # noqa: ANN001, ANN201
    """Each call is another device: its own cookies and localStorage."""
    contexts = []

    def make(**kw):  # noqa: ANN003, ANN202
        ctx = browser.new_context(viewport=viewport, base_url=live_app.url, **kw)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        return ctx

    yield make
    for c in contexts:
        c.close()
