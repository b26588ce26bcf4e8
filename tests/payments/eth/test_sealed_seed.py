"""The hot wallet seed sealed with a passphrase: the signer opens it with the passphrase
from a file (or the variable, or the terminal), refuses a wrong passphrase or an edited
file with a clear message and no word of the seed, and a seed kept in clear still works
(development) with a warning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from casino_app.cli import main
from casino_app.core.settings import ConfigError, reset_settings_cache
from casino_app.payments.signer import sealed_seed, seed

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_XPUB = ("xpub6Ce9NcJvTk36xtLSrJLZqE7wtgA5deCeYs7rSQtreh4cj6ByPtrg9sD7V2FNFLPnf8heNP3FGk"
              "eV9qwfzvZNSd54JoNXVsXFYSYwHsnJxqP")
PASSPHRASE = "correct horse battery staple"
CHEAP = sealed_seed.MIN_COST  # tests: the lowest cost the file may name


def _setenv(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    reset_settings_cache()
    seed._opened.clear()


def _write(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    return path


def test_the_signer_opens_a_sealed_seed_with_the_passphrase_from_a_file(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    plain = _write(base_env / "hot.seed", ANVIL_MNEMONIC + "\n")
    secret = _write(base_env / "passphrase", PASSPHRASE + "\n")
    _setenv(monkeypatch, "CASINO_SEED_PASSPHRASE_FILE", str(secret))
    out = base_env / "hot.sealed"
    assert main(["keys", "seal-seed", "--in", str(plain), "--out", str(out),
                 "--cost", str(CHEAP)]) == 0
    assert "sealed the seed into" in capsys.readouterr().out
    text = out.read_text()
    assert "junk" not in text and "test" not in text and oct(out.stat().st_mode)[-3:] == "600"
    assert main(["keys", "seal-seed", "--in", str(plain), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err  # never overwritten

    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED_FILE", str(out))
    with capture_logs() as logs:
        assert seed.load_seed() == ANVIL_MNEMONIC
        assert seed.prepare_hot_wallet() == ANVIL_XPUB
    assert not any("in clear" in e["event"] for e in logs)
    secret.unlink()  # opened once per process: the passphrase is not read again
    assert seed.load_seed() == ANVIL_MNEMONIC

    # the same file, passphrase from the variable instead
    monkeypatch.delenv("CASINO_SEED_PASSPHRASE_FILE")
    _setenv(monkeypatch, "CASINO_SEED_PASSPHRASE", PASSPHRASE)
    assert seed.load_seed() == ANVIL_MNEMONIC


def test_a_wrong_passphrase_an_edited_file_or_no_passphrase_is_refused_clearly(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = sealed_seed.seal(ANVIL_MNEMONIC, PASSPHRASE, cost=CHEAP)
    file = _write(base_env / "hot.sealed", good)
    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED_FILE", str(file))
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(ConfigError, match="give its passphrase with CASINO_SEED_PASSPHRASE"):
        seed.load_seed()

    _setenv(monkeypatch, "CASINO_SEED_PASSPHRASE", "not the passphrase at all")
    with pytest.raises(ConfigError) as exc:
        seed.load_seed()
    assert "CASINO_ETH_HOT_SEED_FILE: the passphrase does not open" in str(exc.value)

    _setenv(monkeypatch, "CASINO_SEED_PASSPHRASE", PASSPHRASE)
    doc = json.loads(good)
    for field, value in (("n", CHEAP * 2), ("ciphertext", doc["nonce"] * 3), ("format", "x"),
                         ("n", 2)):
        _write(file, json.dumps({**doc, field: value}))
        seed._opened.clear()
        with pytest.raises(ConfigError) as exc:
            seed.load_seed()
        assert "junk" not in str(exc.value) and str(exc.value).startswith(
            "CASINO_ETH_HOT_SEED_FILE: ")
    _write(file, "{not json")
    seed._opened.clear()
    with pytest.raises(ConfigError, match="damaged"):
        seed.load_seed()
    with pytest.raises(sealed_seed.SealedSeedError, match="at least 12"):
        sealed_seed.seal(ANVIL_MNEMONIC, "short")


def test_a_seed_in_clear_still_works_with_a_warning(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _setenv(monkeypatch, "CASINO_ETH_HOT_SEED", ANVIL_MNEMONIC)
    seed._warned.clear()
    with capture_logs() as logs:
        assert seed.load_seed() == ANVIL_MNEMONIC
    assert any("stored in clear" in e["event"] and e["source"] == "CASINO_ETH_HOT_SEED"
               for e in logs)
