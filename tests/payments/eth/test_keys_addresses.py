"""Hot wallet keys and deposit addresses: the web side derives addresses from the account
xpub only, the signer alone reads the seed, and an address is handed out once and never
given to another player (SQLite and PostgreSQL, under concurrency)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from eth_account import Account
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError
from structlog.testing import capture_logs

from casino_app.core.db import LedgerBase, databases, ledger_tx
from casino_app.core.settings import ConfigError, reset_settings_cache
from casino_app.migrations import alembic_config, current
from casino_app.payments.address_models import DepositAddress
from casino_app.payments.eth import addresses, keys
from casino_app.payments.signer import seed

# anvil's (and hardhat's) development mnemonic and its first two accounts
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_XPUB = ("xpub6Ce9NcJvTk36xtLSrJLZqE7wtgA5deCeYs7rSQtreh4cj6ByPtrg9sD7V2FNFLPnf8heNP3FGk"
              "eV9qwfzvZNSd54JoNXVsXFYSYwHsnJxqP")
ANVIL_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ROOT_XPUB = ("xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8Yt"
             "GqsefD265TMg7usUDFdp6W1EGMcet8")  # depth 0: BIP32 test vector 1's master key
ACCOUNT_XPRV = ("xprv9yeny6n2dNUokQFykGoZU6BDLeKbEBUoBeCFe2VF6MXdrHrprMYRc4tddncDRxrJCy7GtPDk68z"
                "RcgWtGFveqdCV5NyhZwVgMoZVbTm78vx")  # the private twin of ANVIL_XPUB
ACCOUNT_ZPUB = ("zpub6rJfywekm784fUigX1upFQJxEcSyWtBeP6AJ1CgdQhpNqHpRuDBoPzXPXSAYF9hdUQwFsLENC5M"
                "avRAoSKPQ36SG3UmNfhAE5tgE4xXG1d6")  # the same key with segwit version bytes


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_ENV", "production")
    monkeypatch.setenv("CASINO_IDENTITY_DB_URL", "postgresql://casino:pw@db/identity")
    monkeypatch.setenv("CASINO_LEDGER_DB_URL", "postgres://casino:pw@db/ledger")
    monkeypatch.setenv("REFLEX_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("CASINO_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("CASINO_PUBLIC_URL", "https://casino.example.com/")
    monkeypatch.setenv("CASINO_METRICS_TOKEN", "m" * 32)
    reset_settings_cache()


def _setenv(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    reset_settings_cache()


# --- keys -------------------------------------------------------------------------------

def test_anvil_mnemonic_gives_its_known_accounts_from_the_xpub_and_the_private_keys() -> None:
    xpub = seed.account_xpub(ANVIL_MNEMONIC)
    assert xpub == ANVIL_XPUB
    assert keys.address_at(xpub, 0) == ANVIL_0
    assert keys.address_at(xpub, 1) == ANVIL_1
    for i, expected in ((0, ANVIL_0), (1, ANVIL_1)):
        private = seed.private_key_at(ANVIL_MNEMONIC, i)
        assert len(private) == 32
        assert Account.from_key(private).address == expected
    # a further index agrees between the public and the private derivation as well
    assert (keys.address_at(xpub, 2**31 - 1)
            == Account.from_key(seed.private_key_at(ANVIL_MNEMONIC, 2**31 - 1)).address)


@pytest.mark.parametrize(("xpub", "says"), [
    ("", "empty"),
    ("not a key", "not a valid xpub"),
    (ANVIL_XPUB[:-1] + "x", "checksum"),        # bitcoinlib alone would accept this one
    (ANVIL_XPUB[:40] + ANVIL_XPUB[41:], "not a valid xpub"),
    (ACCOUNT_XPRV, "PRIVATE"),
    (ACCOUNT_ZPUB, "starting with 'xpub'"),
    (ROOT_XPUB, "depth 0"),
    (None, "string"),
])
def test_address_at_refuses_what_is_not_an_account_xpub(xpub: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        keys.address_at(xpub, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("index", [-1, 2**31, 2**40, True, 1.0, "1", None])
def test_address_at_refuses_an_index_outside_the_non_hardened_range(index: object) -> None:
    with pytest.raises(ValueError, match="derivation index"):
        keys.address_at(ANVIL_XPUB, index)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="derivation index"):
        seed.private_key_at(ANVIL_MNEMONIC, index)  # type: ignore[arg-type]


def test_checksum_accepts_one_case_spellings_and_refuses_a_wrong_checksum() -> None:
    assert keys.is_checksum_address(ANVIL_0)
    assert not keys.is_checksum_address(ANVIL_0.lower())
    assert not keys.is_checksum_address(ANVIL_0[2:])
    assert not keys.is_checksum_address(None)
    assert keys.checksum(ANVIL_0.lower()) == ANVIL_0
    assert keys.checksum("0x" + ANVIL_0[2:].upper()) == ANVIL_0
    assert keys.checksum(f"  {ANVIL_0}\n") == ANVIL_0
    wrong = ANVIL_0.replace("f39F", "F39F")  # one letter's case changed
    assert not keys.is_checksum_address(wrong)
    with pytest.raises(ValueError, match="checksum"):
        keys.checksum(wrong)
    for bad in ("", "0x123", ANVIL_0 + "0", "0X" + ANVIL_0[2:], ANVIL_0[:-1] + "g", 5):
        with pytest.raises(ValueError, match="0x followed by 40"):
            keys.checksum(bad)


# --- the seed and the xpub the web process sees -----------------------------------------------

def test_development_seed_is_created_once_private_and_announced(base_env: Path) -> None:
    data = base_env / "data"
    with capture_logs() as logs:
        words = seed.load_seed()
    path = data / seed.DEV_SEED_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(words.split()) == 24 and path.read_text().strip() == words
    created = [e for e in logs if e["log_level"] == "warning"]
    assert len(created) == 1 and "DEVELOPMENT HOT WALLET SEED CREATED" in created[0]["event"]
    assert words not in str(logs)
    # the xpub is left for the web process, which reads it without the seed
    xpub = seed.account_xpub(words)
    assert (data / keys.DEV_XPUB_FILE).read_text().strip() == xpub
    assert keys.hot_wallet_xpub() == xpub

    with capture_logs() as again:
        assert seed.load_seed() == words                     # reused, not replaced
    assert path.read_text().strip() == words
    assert [e["event"] for e in again if e["log_level"] == "warning"] in (
        [], ["using the DEVELOPMENT hot wallet seed: for development only"])
    assert seed.prepare_hot_wallet() == xpub
    assert sorted(p.name for p in data.iterdir()) == sorted([keys.DEV_XPUB_FILE, seed.DEV_SEED_FILE])


def test_concurrent_first_runs_share_one_development_seed(base_env: Path) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        results.append(seed.load_seed())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and len(set(results)) == 1
    assert not [p for p in (base_env / "data").iterdir() if p.name.endswith(".tmp")]


def test_the_web_side_never_opens_the_seed(base_env: Path) -> None:
    # before the signer ran there is no xpub, and asking creates no seed
    with pytest.raises(ConfigError, match="CASINO_ETH_XPUB"):
        keys.hot_wallet_xpub()
    assert not (base_env / "data" / seed.DEV_SEED_FILE).exists()
    # and the web-side modules do not even import the signer
    probe = ("import sys, casino_app.payments.eth.addresses, casino_app.payments.eth.keys; "
             "print(sorted(m for m in sys.modules if m.startswith('casino_app.payments.signer')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip() == "[]"


def test_seed_comes_from_the_file_or_the_variable_named_in_settings(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED", ANVIL_MNEMONIC.replace(" ", "  "))
    assert seed.load_seed() == ANVIL_MNEMONIC
    assert seed.prepare_hot_wallet() == ANVIL_XPUB          # development: xpub file written
    assert keys.hot_wallet_xpub() == ANVIL_XPUB

    file = base_env / "hot.seed"
    other = seed._mnemonic().to_mnemonic(bytes(range(16)))
    fd = os.open(file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (other + "\n").encode())
    os.close(fd)
    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED_FILE", str(file))
    assert seed.load_seed() == other                          # the file wins
    assert not (base_env / "data" / seed.DEV_SEED_FILE).exists()

    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED_FILE", str(base_env / "missing.seed"))
    with pytest.raises(ConfigError, match="CASINO_ETH_HOT_SEED_FILE: cannot read"):
        seed.load_seed()


@pytest.mark.parametrize("bad", [
    "test test test test test test test test test test test test",   # bad checksum
    "test test test test test test test test test test test junq",   # unknown word
    "test test test",
])
def test_a_bad_seed_is_refused_without_repeating_its_words(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED", bad)
    with pytest.raises(ConfigError, match="CASINO_ETH_HOT_SEED: not a") as err:
        seed.load_seed()
    assert "test" not in str(err.value) and "junq" not in str(err.value)


def test_production_without_a_seed_or_xpub_refuses(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    data = base_env / "data"
    data.mkdir()
    (data / seed.DEV_SEED_FILE).write_text(ANVIL_MNEMONIC)   # never used in production
    (data / keys.DEV_XPUB_FILE).write_text(ANVIL_XPUB)
    with pytest.raises(ConfigError, match="CASINO_ETH_HOT_SEED_FILE.*CASINO_ETH_HOT_SEED"):
        seed.load_seed()
    with pytest.raises(ConfigError, match="CASINO_ETH_XPUB: production"):
        keys.hot_wallet_xpub()

    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED", ANVIL_MNEMONIC)
    with pytest.raises(ConfigError, match="CASINO_ETH_XPUB: production"):
        seed.prepare_hot_wallet()
    _setenv(monkeypatch, "CASINO_ETH_XPUB", ANVIL_XPUB)
    assert seed.prepare_hot_wallet() == ANVIL_XPUB
    assert keys.hot_wallet_xpub() == ANVIL_XPUB


def test_an_xpub_that_is_not_the_seeds_is_refused_at_start(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED", ANVIL_MNEMONIC)
    other = seed.account_xpub(seed._mnemonic().to_mnemonic(bytes(range(16))))
    _setenv(monkeypatch, "CASINO_ETH_XPUB", other)
    with pytest.raises(ConfigError, match="cannot spend"):
        seed.prepare_hot_wallet()
    _setenv(monkeypatch, "CASINO_ETH_XPUB", ACCOUNT_XPRV)
    with pytest.raises(ConfigError, match="CASINO_ETH_XPUB: .*PRIVATE"):
        keys.hot_wallet_xpub()


# --- deposit addresses -------------------------------------------------------------------

@pytest.fixture
def wallet(any_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    _setenv(monkeypatch, "CASINO_ETH_XPUB", ANVIL_XPUB)
    return any_env


def _rows(chain: str = "ethereum") -> list[tuple[str, int, str]]:
    with ledger_tx(readonly=True) as s:
        return [tuple(r) for r in s.execute(
            select(DepositAddress.player_id, DepositAddress.derivation_index,
                   DepositAddress.address).where(DepositAddress.chain == chain)
            .order_by(DepositAddress.derivation_index))]


def test_deposit_address_is_stable_per_player_and_never_shared(wallet: str) -> None:
    a = addresses.deposit_address("player-a")
    b = addresses.deposit_address("player-b")
    assert (a, b) == (ANVIL_0, ANVIL_1)
    assert keys.is_checksum_address(a) and keys.is_checksum_address(b)
    assert addresses.deposit_address("player-a") == a
    assert addresses.deposit_address("player-b") == b
    # another chain has its own row (and index space) for the same player
    assert addresses.deposit_address("player-b", chain="sepolia") == ANVIL_0
    assert _rows() == [("player-a", 0, ANVIL_0), ("player-b", 1, ANVIL_1)]

    with ledger_tx(readonly=True) as s:
        assert addresses.all_addresses(s, "ethereum") == {ANVIL_0: "player-a",
                                                          ANVIL_1: "player-b"}
        assert addresses.count(s, "ethereum") == 2
        assert addresses.count(s, "sepolia") == 1
        found = addresses.owners(s, "ethereum", [ANVIL_0.lower(), "0x" + ANVIL_1[2:].upper(),
                                                 "0x" + "00" * 20, "garbage", ANVIL_0])
        assert found == {ANVIL_0: "player-a", ANVIL_1: "player-b"}
        assert addresses.owners(s, "sepolia", [ANVIL_1]) == {}


@pytest.mark.parametrize(("player", "chain"), [
    ("", "ethereum"), ("x" * 37, "ethereum"), ("a b", "ethereum"), ("p;--", "ethereum"),
    (None, "ethereum"), ("player-a", "Ethereum"), ("player-a", ""), ("player-a", "x" * 17),
])
@pytest.mark.usefixtures("app_env")
def test_deposit_address_refuses_bad_player_ids_and_chains(
        monkeypatch: pytest.MonkeyPatch, player: object, chain: object) -> None:
    _setenv(monkeypatch, "CASINO_ETH_XPUB", ANVIL_XPUB)
    with pytest.raises(ValueError, match="bad"):
        addresses.deposit_address(player, chain)  # type: ignore[arg-type]
    assert _rows() == []


def test_deposit_address_needs_the_xpub(any_env: str) -> None:
    with pytest.raises(ConfigError, match="CASINO_ETH_XPUB"):
        addresses.deposit_address("player-a")
    assert _rows() == []


def test_deposit_addresses_are_append_only(wallet: str) -> None:
    addresses.deposit_address("player-a")
    for sql in ("UPDATE deposit_addresses SET player_id = 'thief'",
                "DELETE FROM deposit_addresses"):
        with pytest.raises(DBAPIError, match="append-only"), ledger_tx() as s:
            s.execute(text(sql))
    assert _rows() == [("player-a", 0, ANVIL_0)]


@pytest.mark.postgres
@pytest.mark.usefixtures("pg_env")
def test_concurrent_requests_give_each_player_one_address_and_each_index_one_player(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _setenv(monkeypatch, "CASINO_ETH_XPUB", ANVIL_XPUB)
    players = [f"race-{i}" for i in range(10)] * 2        # 20 requests, two per player
    barrier = threading.Barrier(len(players))
    got: list[object] = [None] * len(players)

    def ask(i: int) -> None:
        barrier.wait()
        try:
            got[i] = addresses.deposit_address(players[i])
        except Exception as exc:  # noqa: BLE001 - checked below
            got[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(players))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(a, str) for a in got), [a for a in got if not isinstance(a, str)]
    by_player: dict[str, set[object]] = {}
    for p, a in zip(players, got, strict=True):
        by_player.setdefault(p, set()).add(a)
    assert all(len(v) == 1 for v in by_player.values())   # same answer to both requests
    assert len({a for v in by_player.values() for a in v}) == 10

    rows = _rows()
    assert [i for _, i, _ in rows] == list(range(10))
    assert sorted(p for p, _, _ in rows) == sorted(set(players))
    for player, index, address in rows:
        assert by_player[player] == {address}
        assert keys.address_at(ANVIL_XPUB, index) == address


# --- the migration ------------------------------------------------------------------------

def test_migration_led0004_upgrades_and_downgrades(any_env: str) -> None:
    engine = databases().ledger_engine
    cfg = alembic_config("ledger")
    assert "deposit_addresses" in inspect(engine).get_table_names()
    # the migration builds exactly what the model declares
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), LedgerBase.metadata)
    assert [d for d in diffs if "deposit_addresses" in repr(d)] == []

    command.downgrade(cfg, "led0003")
    assert current("ledger") == "led0003"
    assert "deposit_addresses" not in inspect(engine).get_table_names()
    if any_env == "sqlite":  # its triggers went with it
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                     "AND name LIKE 'deposit_addresses%'")).all() == []
    command.upgrade(cfg, "led0004")
    assert current("ledger") == "led0004"
    command.upgrade(cfg, "head")
    assert "deposit_addresses" in inspect(engine).get_table_names()
