"""The Bitcoin network's parameters come from configuration: presets, the bech32 prefix and
confirmation overrides, and `casino config check` naming each bad Bitcoin setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from casino_app.cli import main
from casino_app.core.settings import BTC_NETWORKS, get_settings, reset_settings_cache
from casino_app.payments.btc import network

from .test_keys import BIP84_ZPUB, SLIP132_YPUB


def test_presets():
    assert tuple(network.PRESETS) == BTC_NETWORKS
    main, test = network.PRESETS["mainnet"], network.PRESETS["testnet"]
    assert (main.bech32_hrp, main.coin_type, main.node_chains) == ("bc", 0, ("main",))
    assert main.account_key_forms == {network.XPUB: "xpub", network.ZPUB: "zpub"}
    assert (test.bech32_hrp, test.coin_type, test.confirmations) == ("tb", 1, 6)
    assert test.account_key_forms == {network.TPUB: "tpub", network.VPUB: "vpub"}
    assert network.PRESETS["signet"].node_chains == ("signet",)
    assert network.PRESETS["regtest-core"].bech32_hrp == "bcrt"
    bcoin = network.PRESETS["regtest-bcoin"]
    assert (bcoin.bech32_hrp, bcoin.p2pkh_version, bcoin.p2sh_version) == ("rb", 0x3C, 0x26)
    assert bcoin.account_path() == "m/84'/1'/0'" and main.account_path(2) == "m/84'/0'/2'"


def test_settings_pick_the_preset_and_override_prefix_and_confirmations(
        base_env: Path, monkeypatch: pytest.MonkeyPatch):
    assert network.current() == network.PRESETS["mainnet"]
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-core")
    monkeypatch.setenv("CASINO_BTC_BECH32_HRP", "rb")
    monkeypatch.setenv("CASINO_BTC_CONFIRMATIONS", "5")
    reset_settings_cache()
    net = network.current()
    assert (net.name, net.bech32_hrp, net.confirmations, net.coin_type) == \
        ("regtest-core", "rb", 5, 1)


def test_the_rpc_password_can_come_from_a_file(base_env: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]):
    secret = base_env / "rpc-password"
    secret.write_text("s3cret-rpc\n")
    monkeypatch.setenv("CASINO_BTC_RPC_PASSWORD_FILE", str(secret))
    reset_settings_cache()
    assert get_settings().btc_rpc_password == "s3cret-rpc"
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "btc_rpc_password = (set)" in out and "s3cret-rpc" not in out


@pytest.mark.parametrize(("env", "text"), [
    ({"CASINO_BTC_NETWORK": "bitcoin"}, "CASINO_BTC_NETWORK: unknown network 'bitcoin' (one of "
                                        "mainnet, testnet, signet, regtest-core, regtest-bcoin)"),
    ({"CASINO_BTC_BECH32_HRP": "BC"}, "CASINO_BTC_BECH32_HRP: not a bech32 prefix"),
    ({"CASINO_BTC_BECH32_HRP": "b c"}, "CASINO_BTC_BECH32_HRP: not a bech32 prefix"),
    ({"CASINO_BTC_RPC_URL": "127.0.0.1:8332"}, "CASINO_BTC_RPC_URL: must be an http://"),
    ({"CASINO_BTC_RPC_DIALECT": "knots"}, "CASINO_BTC_RPC_DIALECT: must be auto"),
    ({"CASINO_BTC_CONFIRMATIONS": "-1"}, "CASINO_BTC_CONFIRMATIONS:"),
    ({"CASINO_BTC_RPC_TIMEOUT": "0"}, "CASINO_BTC_RPC_TIMEOUT:"),
    ({"CASINO_BTC_XPUB": BIP84_ZPUB, "CASINO_BTC_NETWORK": "testnet"},
     "CASINO_BTC_XPUB: this zpub is a mainnet key, but the casino runs on Bitcoin testnet"),
    ({"CASINO_BTC_XPUB": SLIP132_YPUB}, "CASINO_BTC_XPUB: this ypub is a P2SH-wrapped"),
    ({"CASINO_BTC_XPUB": BIP84_ZPUB[:-2] + "zz"}, "CASINO_BTC_XPUB: not an extended public key"),
])
def test_config_check_names_a_bad_bitcoin_setting(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], text: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"casino: configuration error: {text}" in err, err


def test_config_check_accepts_a_bitcoin_setup(base_env: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("CASINO_BTC_NETWORK", "mainnet")
    monkeypatch.setenv("CASINO_BTC_XPUB", BIP84_ZPUB)
    monkeypatch.setenv("CASINO_BTC_RPC_URL", "http://user:pw@127.0.0.1:8332/")
    reset_settings_cache()
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "btc_rpc_url = http://***@127.0.0.1:8332" in out and ":pw@" not in out
