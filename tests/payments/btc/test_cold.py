"""The cold wallet's keys and addresses (payments/btc/cold.py), without a node: BIP67's key
sorting, BIP383's sortedmulti scripts, BIP48 P2WSH addresses as Bitcoin Core derives them,
Trezor's BIP48 vector (xpub and Zpub forms of the same keys), the output descriptor and its
BIP380 checksum read back by another implementation (embit's descriptor parser), and every
refusal of a bad cosigner key, each with its message; `casino config check` names them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from casino_app.cli import main
from casino_app.core.settings import ConfigError, reset_settings_cache
from casino_app.payments.btc import bech32, cold
from casino_app.payments.btc.network import PRESETS
from tests.support.cosigners import OUTSIDER, TestCosigner, cold_keys_setting, cosigners

MAINNET, TESTNET = PRESETS["mainnet"], PRESETS["testnet"]
REGTEST = PRESETS["regtest-bcoin"]

# BIP67's test vectors: keys as listed -> the sorted 2-of-n redeem script.
BIP67 = [
    (["02ff12471208c14bd580709cb2358d98975247d8765f92bc25eab3b2763ed605f8",
      "02fe6f0a5a297eb38c391581c4413e084773ea23954d93f7753db7dc0adc188b2f"],
     "522102fe6f0a5a297eb38c391581c4413e084773ea23954d93f7753db7dc0adc188b2f2102ff12471208c14"
     "bd580709cb2358d98975247d8765f92bc25eab3b2763ed605f852ae"),
    (["02632b12f4ac5b1d1b72b2a3b508c19172de44f6f46bcee50ba33f3f9291e47ed0",
      "027735a29bae7780a9755fae7a1c4374c656ac6a69ea9f3697fda61bb99a4f3e77",
      "02e2cc6bd5f45edd43bebe7cb9b675f0ce9ed3efe613b177588290ad188d11b404"],
     "522102632b12f4ac5b1d1b72b2a3b508c19172de44f6f46bcee50ba33f3f9291e47ed021027735a29bae778"
     "0a9755fae7a1c4374c656ac6a69ea9f3697fda61bb99a4f3e772102e2cc6bd5f45edd43bebe7cb9b675f0ce"
     "9ed3efe613b177588290ad188d11b40453ae"),
    (["030000000000000000000000000000000000004141414141414141414141414141",
      "020000000000000000000000000000000000004141414141414141414141414141",
      "020000000000000000000000000000000000004141414141414141414141414140",
      "030000000000000000000000000000000000004141414141414141414141414140"],
     "522102000000000000000000000000000000000000414141414141414141414141414021020000000000000"
     "000000000000000000000004141414141414141414141414141210300000000000000000000000000000000"
     "000041414141414141414141414141402103000000000000000000000000000000000000414141414141414"
     "141414141414154ae"),
    (["022df8750480ad5b26950b25c7ba79d3e37d75f640f8e5d9bcd5b150a0f85014da",
      "03e3818b65bcc73a7d64064106a859cc1a5a728c4345ff0b641209fba0d90de6e9",
      "021f2f6e1e50cb6a953935c3601284925decd3fd21bc445712576873fb8c6ebc18"],
     "5221021f2f6e1e50cb6a953935c3601284925decd3fd21bc445712576873fb8c6ebc1821022df8750480ad5"
     "b26950b25c7ba79d3e37d75f640f8e5d9bcd5b150a0f85014da2103e3818b65bcc73a7d64064106a859cc1a"
     "5a728c4345ff0b641209fba0d90de6e953ae"),
]

# Three BIP48 P2WSH testnet account keys (m/48'/1'/0'/2', depth 4, child 2') and the
# 2-of-3 sortedmulti addresses Bitcoin Core 27 derives for them (receive and change 0..2),
# as published with a multisig wallet's verified address vectors.
CORE_TPUBS = [
    "tpubDFH9dgzveyD8zTbPUFuLrGmCydNvxehyNdUXKJAQN8x4aZ4j6UZqGfnqFrD4NqyaTVGKbvEW54tsvPTK2Uo"
    "SbCC1PJY8iCNiwTL3RWZEheQ",
    "tpubDFPtPArj4GzBEFHohegg1Xatrc1Fi9oSox5LzuSRX91miwQxuUrEpBxpvDRsmZYJKYFhgdK3UStsjC8JKXf"
    "UbMinjFqiEM4uNwzVaCaHpys",
    "tpubDEfobrrtptRTbKf4gysDhoabneABDTAcdj3Vbn4XwPsLE2pmqpizSPRG6zHsbAMuiSgWmWPsYCLHTKTPpyr"
    "GJ5rAoTpKoQNZcxodiPf2tSJ",
]
CORE_RECEIVE = ["tb1qmv9kucx4tjtyfwddc3698p2flxqvts89n8kllr0hvdv7qs4z476s70nuf5",
                "tb1q80kfzwjz9cu95wgvpd9qr8pmkasr8en00ldsy4f9fqryhug4swns0eek2a",
                "tb1q82yt0ypaqzf4fhesr3zpqm3cxw29l4ep2he8tjtgqczgwc8c5yjsu6r8sa"]
CORE_CHANGE = ["tb1qp58f8l2cmpl8wx5ms7gcr7zfamsspr47rn45j4z3v6drakeffk6q6ezllu",
               "tb1q4p97zsp4e8emyqtruzvefap66nrmkhmy76uat3a45pznmp8hj6hqfjljt6",
               "tb1qq2tzrj967nj85dnp8plx9hra3pd3saeur72ydcaw2zrwflvfzjnstrmn79"]

# Trezor's firmware tests (test_getaddress_show.py, VECTORS_MULTISIG): the seed
# "all all ... all" (master fingerprint 5c9e228d), accounts m/48'/0'/{0,1,2}'/2', as Zpub and
# as xpub, and the P2WSH address of /0/0 with the keys in that order (Trezor keeps the
# order it is given; sortedmulti sorts).
TREZOR_ZPUBS = [
    "Zpub75Et2JhCgFchAwrkdQ2PWeCiEnLmQ8R8a8aANPL5r9a6L4VC9amvLtbmnZaEnS7m3YHd1ZnSYjKp1rFTZLm"
    "2cQ2CAuiEyNYaYWyeWEFGEmP",
    "Zpub75DZyTGNUMVhGRgG7GsoF2FrsAAM48dPMMfYSo9G7iRxUg9FyuG3nMUSeYMXSF2rHtDNpv8skZZyDNzBq5x"
    "5znFtsPSDoaAXk5zBUBfdhSh",
    "Zpub75f5ZgwmCYW37REirFNaE8DBg9qKJznqD498DsTAbX89Lk6tA98huCGM29mHAhwYTo1PSbWLQHXvsmMhDB8"
    "W9dFt3Eb2o6hT7HLDrcPebM5",
]
TREZOR_XPUBS = [
    "xpub6EgGHjcvovyN3nK921zAGPfuB41cJXkYRdt3tLGmiMyvbgHpss4X1eRZwShbEBb1znz2e2bCkCED87QZpin"
    "3sSYKbmCzQ9Sc7LaV98ngdeX",
    "xpub6EexEtC6c2rN9G8eVtqZzmj3oRqBxXxoCryRxk5wyvqnkHwtiBYeT7JEoRUsszW7F8unTNwdx2UNKe9J6Ty"
    "7Fpn2JEvyEM4ZJub274iiT1V",
    "xpub6F6Tq7sVLDrhzFh7EsLLysgNcRWADQ8F4ZT1jpPrTjXycMuWtRRJZx69B2tdcTQoR3ho54K6bkSKz2WoUZ9"
    "XQfn1U65nDsbUg6w4VZ5HWdA",
]
TREZOR_ADDRESS = "bc1qqn9s63wly66rhzyz36hwzsa83augj5lve3ucqk5cpt5yvvze5ctsdfcg88"


def core_wallet() -> cold.ColdWallet:
    keys = [cold.parse_cosigner(f"[{n:08x}/48h/1h/0h/2h]{t}", TESTNET)
            for n, t in enumerate(CORE_TPUBS, 1)]
    return cold.ColdWallet(tuple(keys), 2, TESTNET)


# --- scripts and addresses against published vectors ------------------------------------

@pytest.mark.parametrize(("listed", "script"), BIP67)
def test_bip67_vectors_sort_the_keys_of_the_witness_script(listed, script):
    made = cold.multisig_script(2, [bytes.fromhex(k) for k in listed])
    assert made.hex() == script
    assert cold.parse_multisig(made) == (2, sorted(bytes.fromhex(k) for k in listed))


def test_bip383_sortedmulti_vector_with_derived_keys():
    """BIP383: sortedmulti(2, xpubA/*, xpubB/0/0/*) at indexes 0, 1, 2 (keys derived with
    the same public derivation the wallet uses)."""
    from embit import bip32

    a = bip32.HDKey.from_string("xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZ"
                                "RkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL")
    b = bip32.HDKey.from_string("xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWg"
                                "qbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y")
    expected = [
        "5221025d5fc65ebb8d44a5274b53bac21ff8307fec2334a32df05553459f8b1f7fe1b62102fbd47cc80340"
        "98f0e6a94c6aeee8528abf0a2153a5d8e46d325b7284c046784652ae",
        "52210264fd4d1f5dea8ded94c61e9641309349b62f27fbffe807291f664e286bfbe6472103f4ece6dfccfa"
        "37b211eb3d0af4d0c61dba9ef698622dc17eecdf764beeb005a652ae",
        "5221022ccabda84c30bad578b13c89eb3b9544ce149787e5b538175b1d1ba259cbb83321024d902e1a2fc7"
        "a8755ab5b694c575fce742c48d9ff192e63df5193e4c7afe1f9c52ae",
    ]
    b0 = b.derive([0])
    for i, script in enumerate(expected):
        pubs = [a.derive([i]).key.sec(),
                cold._derive(b0.key.sec(), b0.chain_code, 0, i)]  # the wallet's derivation
        assert cold.multisig_script(2, pubs).hex() == script


def test_bip48_p2wsh_addresses_are_the_ones_bitcoin_core_derives():
    wallet = core_wallet()
    assert [wallet.receive_address(i).address for i in range(3)] == CORE_RECEIVE
    assert [wallet.change_address(i).address for i in range(3)] == CORE_CHANGE
    addr = wallet.address(1)
    assert addr.script_pubkey == b"\x00\x20" + hashlib.sha256(addr.witness_script).digest()
    assert bech32.decode_segwit(addr.address)[2] == addr.script_pubkey[2:]
    # each key's origin: its cosigner's fingerprint and m/48'/1'/0'/2'/0/1, sorted as in the
    # script
    assert [k.public_key for k in addr.keys] == cold.parse_multisig(addr.witness_script)[1]
    h = cold.HARDENED
    assert {k.path for k in addr.keys} == {(48 + h, 1 + h, 0 + h, 2 + h, 0, 1)}
    assert sorted(k.fingerprint.hex() for k in addr.keys) == ["00000001", "00000002",
                                                              "00000003"]
    # the order of the keys in the configuration does not change the addresses
    shuffled = cold.ColdWallet(tuple(reversed(wallet.cosigners)), 2, TESTNET)
    assert shuffled.receive_address(0).address == CORE_RECEIVE[0]


def test_trezor_bip48_vector_xpub_and_zpub_are_the_same_keys():
    zpubs = [cold.parse_cosigner(f"[5c9e228d/48h/0h/{n}h/2h]{z}", MAINNET)
             for n, z in enumerate(TREZOR_ZPUBS)]
    xpubs = [cold.parse_cosigner(f"[5c9e228d/48h/0h/{n}h/2h]{x}", MAINNET)
             for n, x in enumerate(TREZOR_XPUBS)]
    assert [z.public_key for z in zpubs] == [x.public_key for x in xpubs]
    assert [z.xpub(MAINNET) for z in zpubs] == TREZOR_XPUBS
    # the keys in Trezor's order give Trezor's address (our P2WSH of a witness script) ...
    pubs = [c.child_public_key(0, 0) for c in zpubs]
    script = bytes([0x52]) + b"".join(b"\x21" + p for p in pubs) + bytes([0x53, 0xAE])
    assert bech32.encode_segwit("bc", 0, hashlib.sha256(script).digest()) == TREZOR_ADDRESS
    # ... and the test's own signers derive as Trezor does (same seed, same account key)
    assert TestCosigner(OUTSIDER, MAINNET).account_key() == TREZOR_XPUBS[0]
    assert TestCosigner(OUTSIDER, MAINNET).fingerprint == "5c9e228d"
    # three accounts of ONE seed are one cosigner: refused
    with pytest.raises(ValueError, match="same master key .fingerprint 5c9e228d.: one seed is "
                                         "one cosigner"):
        cold.ColdWallet(tuple(zpubs), 2, MAINNET)


def test_descriptor_has_the_bip380_checksum_and_gives_the_same_addresses_elsewhere():
    from embit.descriptor import Descriptor
    from embit.networks import NETWORKS

    assert cold.add_checksum("raw(deadbeef)") == "raw(deadbeef)#89f8spxm"  # BIP380's vector
    wallet = core_wallet()
    receive, change, both = wallet.descriptor(0), wallet.descriptor(1), wallet.descriptor(None)
    assert receive.startswith("wsh(sortedmulti(2,[00000001/48h/1h/0h/2h]" + CORE_TPUBS[0]
                              + "/0/*,[00000002/48h/1h/0h/2h]")
    assert "/1/*," in change and "/<0;1>/*," in both
    for text, chain in ((receive, 0), (change, 1)):
        body, checksum = text.split("#")
        assert cold.add_checksum(body) == text and len(checksum) == 8
        desc = Descriptor.from_string(body)
        for i in range(3):
            expected = (CORE_RECEIVE if chain == 0 else CORE_CHANGE)[i]
            assert desc.derive(i).address(NETWORKS["test"]) == expected
    global_xpubs = wallet.global_xpubs()
    assert len(global_xpubs) == 3 and global_xpubs[0][1] == bytes.fromhex("00000001") + \
        b"".join((i + cold.HARDENED).to_bytes(4, "little") for i in (48, 1, 0, 2))


def test_test_cosigners_build_a_wallet_from_either_key_form():
    signers = cosigners(REGTEST)
    plain = cold.ColdWallet(cold.parse_cold_keys(cold_keys_setting(signers), REGTEST), 2,
                            REGTEST)
    slip132 = cold.ColdWallet(cold.parse_cold_keys(
        "\n".join(c.entry("slip132") for c in signers), REGTEST), 2, REGTEST)
    assert signers[0].account_key("slip132").startswith("Vpub")
    assert plain.receive_address(7) == slip132.receive_address(7)
    assert plain.receive_address(7).address.startswith("rb1q")
    assert plain.fingerprints == tuple(c.fingerprint for c in signers)


# --- refusals --------------------------------------------------------------------------------

def _entries() -> list[str]:
    return [c.entry() for c in cosigners(TESTNET)]


def _refusals() -> list[tuple[str, str, str]]:
    good = _entries()
    one = cosigners(TESTNET)[0]
    fp = one.fingerprint
    zpub_form = TestCosigner(one.mnemonic, TESTNET)
    main = TestCosigner(one.mnemonic, MAINNET)
    vpub_single = one.root.derive("m/84h/1h/0h").to_public().to_base58(
        version=bytes.fromhex("045f1cf6"))
    ypub_wrapped = one.root.derive("m/48h/1h/0h/1h").to_public().to_base58(
        version=bytes.fromhex("024289ef"))
    depth3 = one.root.derive("m/48h/1h/0h").to_public().to_base58(
        version=bytes.fromhex("043587cf"))
    return [
        ("private", one.entry().split("]")[0] + "]" + one.account_private(),
         "this is an extended PRIVATE key (tprv)"),
        ("single-key vpub", f"[{fp}/48h/1h/0h/2h]{vpub_single}",
         "this vpub is a single-key native segwit (BIP84) account"),
        ("wrapped Upub", f"[{fp}/48h/1h/0h/2h]{ypub_wrapped}",
         "this Upub is a P2SH-wrapped multisig account (BIP48 script type 1')"),
        ("mainnet key", f"[{fp}/48h/1h/0h/2h]{main.account_key()}",
         "this xpub is a mainnet key, but the casino runs on Bitcoin testnet"),
        ("depth", f"[{fp}/48h/1h/0h/2h]{depth3}", "the key is not the account key"),
        ("path purpose", f"[{fp}/84h/1h/0h/2h]{zpub_form.account_key()}",
         "is not a BIP48 P2WSH account of Bitcoin testnet"),
        ("path coin", f"[{fp}/48h/0h/0h/2h]{zpub_form.account_key()}",
         "is not a BIP48 P2WSH account of Bitcoin testnet"),
        ("path script type", f"[{fp}/48h/1h/0h/1h]{zpub_form.account_key()}",
         "is not a BIP48 P2WSH account"),
        ("no origin", one.account_key(), "has no key origin"),
        ("bad fingerprint", f"[xyz/48h/1h/0h/2h]{one.account_key()}",
         "'xyz' is not a master key fingerprint"),
        ("derivation suffix", one.entry() + "/0/*", "without '/0/*' after it"),
        ("checksum typo", one.entry()[:-1] + ("A" if one.entry()[-1] != "A" else "B"),
         "not an extended public key"),
        ("bad step", f"[{fp}/48h/1x/0h/2h]{one.account_key()}", "'1x' is not a derivation"),
        ("same key twice", ",".join([good[0], good[1], good[0]]),
         "the same account key is given twice"),
        ("one key", good[0], "a cold wallet needs at least 2 cosigner keys"),
    ]


@pytest.mark.parametrize("case", range(15))
def test_bad_cosigner_keys_are_refused_with_a_message(case):
    name, text, message = _refusals()[case]
    entries = text if "," in text or name == "one key" else ",".join([text, *_entries()[1:]])
    with pytest.raises(ValueError) as err:
        cold.ColdWallet(cold.parse_cold_keys(entries, TESTNET), 2, TESTNET)
    assert message in str(err.value), (name, str(err.value))


@pytest.mark.parametrize("threshold", [0, 1, 4, True])
def test_the_threshold_is_between_two_and_the_number_of_keys(threshold):
    keys = cold.parse_cold_keys(",".join(_entries()), TESTNET)
    with pytest.raises(ValueError, match="the threshold must be between 2 .four eyes."):
        cold.ColdWallet(keys, threshold, TESTNET)
    assert cold.ColdWallet(keys, 3, TESTNET).address(0).witness_script[0] == 0x53


def test_index_and_chain_are_checked():
    wallet = core_wallet()
    for bad in (-1, 2**31, "1", True):
        with pytest.raises(ValueError, match="the address index must be an integer"):
            wallet.address(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the chain is 0"):
        wallet.address(0, 2)


# --- settings and `casino config check` -----------------------------------------------------

def test_wallet_from_settings(base_env: Path, monkeypatch: pytest.MonkeyPatch):
    assert cold.wallet_from_settings() is None
    with pytest.raises(ConfigError, match="CASINO_BTC_COLD_KEYS is empty"):
        cold.cold_wallet()
    monkeypatch.setenv("CASINO_BTC_NETWORK", "testnet")
    monkeypatch.setenv("CASINO_BTC_COLD_KEYS", " , ".join(f"[{n:08x}/48h/1h/0h/2h]{t}"
                                                          for n, t in enumerate(CORE_TPUBS, 1)))
    reset_settings_cache()
    assert cold.cold_wallet().receive_address(2).address == CORE_RECEIVE[2]
    monkeypatch.setenv("CASINO_BTC_COLD_THRESHOLD", "3")
    reset_settings_cache()
    assert cold.cold_wallet().threshold == 3
    monkeypatch.setenv("CASINO_BTC_NETWORK", "mainnet")
    reset_settings_cache()
    with pytest.raises(ConfigError, match="CASINO_BTC_COLD_KEYS: the path m/48h/1h/0h/2h"):
        cold.wallet_from_settings()


@pytest.mark.parametrize(("env", "text"), [
    ({"CASINO_BTC_NETWORK": "testnet", "CASINO_BTC_COLD_KEYS": CORE_TPUBS[0]},
     "CASINO_BTC_COLD_KEYS: 'tpubDFH9dgzveyD8zTbP...' has no key origin"),
    ({"CASINO_BTC_COLD_KEYS": ",".join(f"[{n:08x}/48h/1h/0h/2h]{t}"
                                       for n, t in enumerate(CORE_TPUBS, 1))},
     "CASINO_BTC_COLD_KEYS: the path m/48h/1h/0h/2h of cosigner 00000001 is not a BIP48 P2WSH "
     "account of Bitcoin: m/48h/0h/<account>h/2h"),
    ({"CASINO_BTC_NETWORK": "testnet", "CASINO_BTC_COLD_THRESHOLD": "1"},
     "CASINO_BTC_COLD_THRESHOLD:"),
])
def test_config_check_names_a_bad_cold_setting(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], text: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"casino: configuration error: {text}" in err, err


def test_config_check_accepts_a_cold_wallet(base_env: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    monkeypatch.setenv("CASINO_BTC_COLD_KEYS", cold_keys_setting(cosigners(REGTEST), "slip132"))
    reset_settings_cache()
    assert main(["config", "check"]) == 0
    assert "btc_cold_threshold = 2" in capsys.readouterr().out


def test_casino_cold_wallet_prints_the_descriptors_and_addresses(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    assert main(["cold-wallet"]) == 2
    assert "CASINO_BTC_COLD_KEYS is empty" in capsys.readouterr().err
    monkeypatch.setenv("CASINO_BTC_NETWORK", "testnet")
    monkeypatch.setenv("CASINO_BTC_COLD_KEYS", ",".join(f"[{n:08x}/48h/1h/0h/2h]{t}"
                                                        for n, t in enumerate(CORE_TPUBS, 1)))
    reset_settings_cache()
    assert main(["cold-wallet", "--addresses", "2"]) == 0
    out = capsys.readouterr().out
    wallet = core_wallet()
    assert "2-of-3 P2WSH multisig on Bitcoin testnet" in out
    assert f"cosigner 00000002  m/48h/1h/0h/2h  {CORE_TPUBS[1]}" in out
    assert f"descriptor (receive): {wallet.descriptor(0)}" in out
    assert f"descriptor (both, BIP389): {wallet.descriptor(None)}" in out
    assert f"receive 1: {CORE_RECEIVE[1]}" in out and "receive 2:" not in out
