"""Bitcoin public keys and addresses without a node: BIP84 deposit addresses derived from
the account's public key (BIP84's published vectors), bech32/bech32m (BIP173/BIP350
vectors), the checks on an address a player types, BIP21 URIs, and where the web side finds
the account key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from casino_app.core.settings import (
    ConfigError,
    Environment,
    get_settings,
    reset_settings_cache,
)
from casino_app.payments.btc import bech32, keys, network
from casino_app.payments.btc.keys import AddressKind

MAINNET = network.PRESETS["mainnet"]
TESTNET = network.PRESETS["testnet"]
REGTEST_CORE = network.PRESETS["regtest-core"]
REGTEST_BCOIN = network.PRESETS["regtest-bcoin"]

# BIP84's test vectors (mnemonic "abandon abandon ... about"): the account m/84'/0'/0' as a
# zpub (its public twin, as SLIP-132 lists it) and the addresses BIP84 lists.
BIP84_ZPUB = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCTo"
              "UG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs")
BIP84_RECEIVE = ["bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
                 "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"]
BIP84_CHANGE_0 = "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
BIP84_PUBKEYS = ["0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c",
                 "03e775fd51f0dfb8cd865d9ff1cca2a158cf651fe997fdc9fee9c1d3b5e995ea77"]
BIP84_ZPRV = ("zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvg"
              "GpNgYSJA9iefm1yYNZKEm7z6qUWCroSQnE")
BIP84_ROOT_ZPUB = ("zpub6jftahH18ngZxLmXaKw3GSZzZsszmt9WqedkyZdezFtWRFBZqsQH5hyUmb4pCEeZGmVfQuP"
                   "5bedXTB8is6fTv19U1GQRyQUKQGUTzyHACMF")
SLIP132_YPUB = ("ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXr"
                "zBx9979FfaHxHcrArf3zbeJJJUZPf663zsP")


def with_version(xpub: str, version: bytes) -> str:
    """The same extended key under other version bytes (zpub -> xpub, vpub, tpub)."""
    payload = keys.b58check_decode(xpub)
    return keys.b58check_encode(version + payload[4:])


# --- BIP84 ----------------------------------------------------------------------------------

def test_bip84_vectors_from_the_account_zpub():
    assert [keys.address_at(BIP84_ZPUB, keys.RECEIVE, i, MAINNET) for i in (0, 1)] \
        == BIP84_RECEIVE
    assert keys.address_at(BIP84_ZPUB, keys.CHANGE, 0, MAINNET) == BIP84_CHANGE_0
    assert [keys.public_key_at(BIP84_ZPUB, 0, i, MAINNET).hex() for i in (0, 1)] \
        == BIP84_PUBKEYS
    assert keys.deposit_address(1, BIP84_ZPUB, MAINNET) == BIP84_RECEIVE[1]
    assert keys.hot_wallet_address(BIP84_ZPUB, MAINNET) == BIP84_CHANGE_0


def test_plain_xpub_form_is_taken_as_p2wpkh_and_gives_the_same_addresses():
    xpub = with_version(BIP84_ZPUB, network.XPUB)
    assert xpub.startswith("xpub")
    assert keys.parse_account_key(xpub, MAINNET).form == "xpub"
    assert keys.deposit_address(0, xpub, MAINNET) == BIP84_RECEIVE[0]


@pytest.mark.parametrize("net", [TESTNET, REGTEST_CORE, REGTEST_BCOIN],
                         ids=lambda n: n.name)
def test_test_networks_take_vpub_or_tpub_and_write_their_own_prefix(net):
    vpub = with_version(BIP84_ZPUB, network.VPUB)
    tpub = with_version(BIP84_ZPUB, network.TPUB)
    assert vpub.startswith("vpub") and tpub.startswith("tpub")
    program = keys.validate_address(BIP84_RECEIVE[0], MAINNET).script_pubkey[2:]
    expected = bech32.encode_segwit(net.bech32_hrp, 0, program)
    assert keys.deposit_address(0, vpub, net) == expected == keys.deposit_address(0, tpub, net)
    assert expected.startswith(net.bech32_hrp + "1q")


def test_a_configured_prefix_overrides_the_preset():
    custom = replace(REGTEST_CORE, bech32_hrp="zz")
    vpub = with_version(BIP84_ZPUB, network.VPUB)
    assert keys.deposit_address(0, vpub, custom).startswith("zz1q")


@pytest.mark.parametrize(("text", "net", "message"), [
    (BIP84_ZPRV, MAINNET, "PRIVATE key (zprv)"),
    (with_version(BIP84_ZPRV, bytes.fromhex("0488ade4")), MAINNET, "PRIVATE key (xprv)"),
    (SLIP132_YPUB, MAINNET, "BIP49"),
    (with_version(BIP84_ZPUB, bytes.fromhex("02aa7ed3")), MAINNET, "multisig"),
    (BIP84_ZPUB, TESTNET, "this zpub is a mainnet key"),
    (with_version(BIP84_ZPUB, network.VPUB), MAINNET, "this vpub is a test network key"),
    (BIP84_ROOT_ZPUB, MAINNET, "depth 0"),
    (BIP84_ZPUB[:-1] + ("t" if BIP84_ZPUB[-1] != "t" else "u"), MAINNET, "checksum"),
    ("zpub0OIl", MAINNET, "cannot appear"),
    ("  ", MAINNET, "empty"),
])
def test_account_keys_that_are_refused_say_why(text, net, message):
    with pytest.raises(ValueError) as err:
        keys.parse_account_key(text, net)
    assert message in str(err.value)


def test_derivation_index_is_checked():
    for bad in (-1, 2**31, True, "3", 1.0):
        with pytest.raises(ValueError, match="index"):
            keys.deposit_address(bad, BIP84_ZPUB, MAINNET)
    with pytest.raises(ValueError, match="chain"):
        keys.public_key_at(BIP84_ZPUB, 2, 0, MAINNET)


# --- bech32 / bech32m -----------------------------------------------------------------------

BECH32_VALID = [
    "A12UEL5L", "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "?1ezyfcl",
]
BECH32M_VALID = [
    "A1LQFN3A", "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v", "?1v759aa",
]
BECH32M_INVALID = [
    "\x201xj0phk", "\x7f1g6xzxy", "\x801vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m", "1qyrz8wqd2c9m", "y1b0jsk6g", "lt1igcx5c0", "in1muywd", "mm1crxm3i",
    "au1s5cgom", "M1VUXWEZ", "16plkw9", "1p2gdwpf",
]


@pytest.mark.parametrize("text", BECH32_VALID)
def test_bip173_valid_strings(text):
    hrp, data, encoding = bech32.decode(text)
    assert encoding is bech32.Encoding.BECH32
    assert bech32.encode(hrp, data, encoding) == text.lower()


@pytest.mark.parametrize("text", BECH32M_VALID)
def test_bip350_valid_strings(text):
    hrp, data, encoding = bech32.decode(text)
    assert encoding is bech32.Encoding.BECH32M
    assert bech32.encode(hrp, data, encoding) == text.lower()


@pytest.mark.parametrize("text", BECH32M_INVALID)
def test_bip350_invalid_strings(text):
    with pytest.raises(bech32.Bech32Error):
        bech32.decode(text)


SEGWIT_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
]
SEGWIT_INVALID = [
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    "bc1gmk9yu",
]


@pytest.mark.parametrize(("text", "script"), SEGWIT_VALID)
def test_bip350_segwit_addresses(text, script):
    hrp, version, program, _ = bech32.decode_segwit(text)
    expected = bytes.fromhex(script)
    assert version == (0 if expected[0] == 0 else expected[0] - 0x50)
    assert program == expected[2:]
    assert bech32.encode_segwit(hrp, version, program) == text.lower()


@pytest.mark.parametrize("text", SEGWIT_INVALID)
def test_bip350_invalid_segwit_addresses(text):
    with pytest.raises(bech32.Bech32Error):
        bech32.decode_segwit(text)


# --- addresses a player types ---------------------------------------------------------------

def test_valid_withdrawal_addresses_give_their_output_script():
    wpkh = keys.validate_address("  BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4 ", MAINNET)
    assert wpkh == keys.Address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", AddressKind.p2wpkh,
                             bytes.fromhex("0014751e76e8199196d454941c45d1b3a323f1433bd6"))
    p2tr = keys.validate_address(SEGWIT_VALID[-1][0], MAINNET)
    assert p2tr.kind is AddressKind.p2tr and p2tr.script_pubkey.hex() == SEGWIT_VALID[-1][1]
    wsh = keys.validate_address(SEGWIT_VALID[1][0], TESTNET)
    assert wsh.kind is AddressKind.p2wsh and wsh.script_pubkey.hex() == SEGWIT_VALID[1][1]
    p2pkh = keys.validate_address("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", MAINNET)
    assert p2pkh.kind is AddressKind.p2pkh
    assert p2pkh.script_pubkey.hex() == "76a91477bff20c60e522dfaa3350c39b030a5d004e839a88ac"
    p2sh = keys.validate_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", MAINNET)
    assert p2sh.kind is AddressKind.p2sh
    assert p2sh.script_pubkey.hex() == "a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87"
    for a in (wpkh, p2tr, wsh, p2pkh, p2sh):
        net = TESTNET if a is wsh else MAINNET
        assert keys.script_address(a.script_pubkey, net) == a.text


@pytest.mark.parametrize(("text", "net", "message"), [
    ("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", MAINNET, "Bitcoin testnet or signet"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", TESTNET, "Bitcoin mainnet"),
    ("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", REGTEST_BCOIN, "Bitcoin regtest"),
    ("ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea", MAINNET, "prefix 'ltc'"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", MAINNET, "checksum does not match"),
    ("bc1qw508d6qejxtdg4y5R3ZARVARY0C5XW7KV8F3T4", MAINNET, "mixes upper and lower case"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", MAINNET, "bech32m checksum"),
    (SEGWIT_VALID[3][0], MAINNET, "future segwit version (16"),
    (SEGWIT_VALID[2][0], MAINNET, "future segwit version (1, 40"),
    ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", MAINNET, "checksum does not match"),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", MAINNET, "a Bitcoin test network"),
    ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", REGTEST_BCOIN, "Bitcoin mainnet"),
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", MAINNET, "not"),
    ("", MAINNET, "Enter a Bitcoin address"),
])
def test_refused_withdrawal_addresses_say_why(text, net, message):
    with pytest.raises(ValueError) as err:
        keys.validate_address(text, net)
    assert message in str(err.value)


# --- BIP21 ----------------------------------------------------------------------------------

def test_bip21_uri():
    addr = BIP84_RECEIVE[0]
    assert keys.bip21_uri(addr, network=MAINNET) == f"bitcoin:{addr}"
    assert keys.bip21_uri(addr.upper(), 150_000, label="HashHouse deposit",
                          message="a&b=c ü", network=MAINNET) == (
        f"bitcoin:{addr}?amount=0.0015&label=HashHouse%20deposit&message=a%26b%3Dc%20%C3%BC")
    assert keys.bip21_uri(addr, 100_000_000, network=MAINNET).endswith("?amount=1")
    assert keys.bip21_uri(addr, 1, network=MAINNET).endswith("?amount=0.00000001")
    with pytest.raises(ValueError):
        keys.bip21_uri(addr, 0, network=MAINNET)
    with pytest.raises(ValueError):
        keys.bip21_uri(addr, network=TESTNET)


def test_format_btc_is_exact():
    assert keys.format_btc(0) == "0"
    assert keys.format_btc(2_099_999_997_690_000) == "20999999.9769"
    assert keys.format_btc(123_456_789) == "1.23456789"
    for bad in (-1, 21_000_000 * 10**8 + 1, 1.5, True):
        with pytest.raises(ValueError):
            keys.format_btc(bad)


# --- where the web side finds the account key -----------------------------------------------

def test_account_xpub_from_settings_or_the_signers_file(base_env, monkeypatch):
    vpub = with_version(BIP84_ZPUB, network.VPUB)
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    reset_settings_cache()
    with pytest.raises(ConfigError, match="signer has not written"):
        keys.account_xpub()
    keys.dev_xpub_path().parent.mkdir(parents=True, exist_ok=True)
    keys.dev_xpub_path().write_text(vpub + "\n")
    assert keys.account_xpub() == vpub
    assert keys.deposit_address(0).startswith("rb1q")
    monkeypatch.setenv("CASINO_BTC_XPUB", BIP84_ZPUB)
    reset_settings_cache()
    with pytest.raises(ConfigError, match="CASINO_BTC_XPUB: this zpub is a mainnet key"):
        keys.account_xpub()
    monkeypatch.setenv("CASINO_BTC_NETWORK", "mainnet")
    reset_settings_cache()
    assert keys.deposit_address(0) == BIP84_RECEIVE[0]
    monkeypatch.delenv("CASINO_BTC_XPUB")
    reset_settings_cache()
    production = get_settings().model_copy(update={"env": Environment.production})
    monkeypatch.setattr(keys, "get_settings", lambda: production)
    with pytest.raises(ConfigError, match="production needs"):
        keys.account_xpub()  # the signer's file is never read in production
