"""The Bitcoin signer (payments/signer/btc.py): keys from the seed along BIP84 (BIP84's
published vectors), P2WPKH signatures checked three ways (BIP143's published vector for the
library it uses, an independent BIP143 digest and ECDSA check here, and the node, which
accepts, mines and confirms what it signs), and its refusals."""

from __future__ import annotations

import hashlib
import struct

import pytest

from casino_app.core.settings import ConfigError, reset_settings_cache
from casino_app.payments.btc import keys, tx
from casino_app.payments.btc.network import PRESETS
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.btc import Payment, SpendInput
from tests.support.bitcoin import BcoinNode, fresh_address

from .test_keys import BIP84_CHANGE_0, BIP84_PUBKEYS, BIP84_RECEIVE, BIP84_ZPUB

MNEMONIC = "abandon " * 11 + "about"
MAINNET = PRESETS["mainnet"]
REGTEST = PRESETS["regtest-bcoin"]
# BIP84: the private keys of m/84'/0'/0'/0/0, 0/1 and 1/0 (WIF, compressed, mainnet)
BIP84_WIFS = {(0, 0): "KyZpNDKnfs94vbrwhJneDi77V6jF64PWPF8x5cdJb8ifgg2DUc9d",
              (0, 1): "Kxpf5b8p3qX56DKEe5NqWbNUP9MnqoRFzZwHRtsFqhzuvUJsYZCy",
              (1, 0): "KxuoxufJL5csa1Wieb2kp29VNdn92Us8CoaUG3aGtPtcF3AzeXvF"}


@pytest.fixture(autouse=True)
def _fresh_keys():
    signer.forget()
    yield
    signer.forget()


def test_bip84_vectors_from_the_mnemonic():
    from bitcoinlib.keys import Key

    assert signer.account_xpub(MAINNET, MNEMONIC) == BIP84_ZPUB
    for (chain, index), wif in BIP84_WIFS.items():
        key = signer.private_key(chain, index, MAINNET, MNEMONIC)
        assert Key(key.hex(), network="bitcoin", compressed=True).wif() == wif
    assert [signer.public_key(0, i, MAINNET, MNEMONIC).hex() for i in (0, 1)] == BIP84_PUBKEYS
    assert keys.p2wpkh_address(signer.public_key(1, 0, MAINNET, MNEMONIC), MAINNET) \
        == BIP84_CHANGE_0
    assert keys.deposit_address(0, signer.account_xpub(MAINNET, MNEMONIC), MAINNET) \
        == BIP84_RECEIVE[0]
    vpub = signer.account_xpub(REGTEST, MNEMONIC)  # coin type 1: another account
    assert vpub.startswith("vpub") and keys.parse_account_key(vpub, REGTEST).public_key \
        != keys.parse_account_key(BIP84_ZPUB, MAINNET).public_key


def test_bitcoinlib_signs_bip143s_native_p2wpkh_example_exactly():
    """The library the signer signs with, called as the signer calls it, gives BIP143's
    published digest and signature (RFC 6979, so byte for byte)."""
    from bitcoinlib.keys import Key
    from bitcoinlib.transactions import Transaction

    key = Key("619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9",
              network="bitcoin", compressed=True)
    p2pk = Key("bbc27228ddcb9209d7fd6f36b02f7dfa6252af40bb2f1cbc7a557da8027ff866",
               network="bitcoin")
    t = Transaction(network="bitcoin", witness_type="segwit", version=1, locktime=17)
    t.add_input(bytes.fromhex("9f96ade4b41d5433f4eda31e1738ec2b36f6e7d1420d94a6af99801a88f7f7ff"),
                0, keys=p2pk.public(), value=625_000_000, witness_type="legacy",
                script_type="signature", sequence=0xFFFFFFEE)
    t.add_input(bytes.fromhex("8ac60eb9575db5b2d987e29f301b5b819ea83a5c6579d282d189cc04b8e151ef"),
                1, keys=key.public(), value=600_000_000, witness_type="segwit",
                script_type="sig_pubkey", sequence=0xFFFFFFFF)
    t.add_output(112_340_000, lock_script=bytes.fromhex(
        "76a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac"))
    t.add_output(223_450_000, lock_script=bytes.fromhex(
        "76a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac"))
    assert t.signature_hash(1).hex() == \
        "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
    t.sign(key, index_n=1)
    assert t.inputs[1].witnesses[0].hex() == (
        "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c"
        "4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee01")


# --- an independent BIP143 check --------------------------------------------------------

def _dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _varint(n: int) -> bytes:
    return bytes([n]) if n < 0xFD else b"\xfd" + struct.pack("<H", n)


def _parse(raw: bytes) -> dict:
    """Version, inputs (outpoint, sequence), outputs (serialized), witnesses, locktime."""
    pos = 6

    def varint() -> int:
        nonlocal pos
        v = raw[pos]
        pos += 1
        if v == 0xFD:
            v = struct.unpack("<H", raw[pos:pos + 2])[0]
            pos += 2
        return v
    ins, outs, wits = [], [], []
    for _ in range(varint()):
        outpoint = raw[pos:pos + 36]
        pos += 36
        size = varint()  # (not `pos += varint()`: varint() moves pos)
        pos += size
        ins.append((outpoint, raw[pos:pos + 4]))
        pos += 4
    for _ in range(varint()):
        start = pos
        pos += 8
        size = varint()
        pos += size
        outs.append(raw[start:pos])
    for _ in ins:
        items = []
        for _ in range(varint()):
            n = varint()
            items.append(raw[pos:pos + n])
            pos += n
        wits.append(items)
    return {"version": raw[:4], "ins": ins, "outs": outs, "wits": wits, "lock": raw[-4:]}


def bip143_digest(p: dict, n: int, pubkey_hash: bytes, value: int) -> bytes:
    hash_prevouts = _dsha(b"".join(o for o, _ in p["ins"]))
    hash_sequence = _dsha(b"".join(s for _, s in p["ins"]))
    hash_outputs = _dsha(b"".join(p["outs"]))
    script_code = b"\x19\x76\xa9\x14" + pubkey_hash + b"\x88\xac"
    outpoint, sequence = p["ins"][n]
    return _dsha(p["version"] + hash_prevouts + hash_sequence + outpoint + script_code
                 + struct.pack("<q", value) + sequence + hash_outputs + p["lock"]
                 + struct.pack("<I", 1))


def verify_p2wpkh_signatures(raw: bytes, values: list[int]) -> None:
    from fastecdsa import curve, ecdsa
    from fastecdsa.encoding.der import DEREncoder
    from fastecdsa.encoding.sec1 import SEC1Encoder

    p = _parse(raw)
    for n, (sig, pub) in enumerate(p["wits"]):
        assert sig[-1] == 1  # SIGHASH_ALL
        r, s = DEREncoder.decode_signature(sig[:-1])
        assert s <= curve.secp256k1.q // 2  # low S (BIP62/146 standardness)
        digest = bip143_digest(p, n, keys.hash160(pub), values[n])
        point = SEC1Encoder.decode_public_key(pub, curve.secp256k1)
        assert ecdsa.verify((r, s), digest, point, curve=curve.secp256k1, prehashed=True)


def test_the_independent_digest_matches_bip143s_example():
    unsigned = bytes.fromhex(
        "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f00000000"
        "00eeffffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a01000000"
        "00ffffffff02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac90"
        "93510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000")
    p = _parse(unsigned[:4] + b"\x00\x01" + unsigned[4:-4] + b"\x00\x00" + unsigned[-4:])
    digest = bip143_digest(p, 1, bytes.fromhex("1d0f172a0ecb48aee1be1f2687d2963ae33f71a1"),
                           600_000_000)
    assert digest.hex() == "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"


# --- signing for the node ---------------------------------------------------------------

def _input(node: BcoinNode, funding, chain: int, index: int, words: str) -> SpendInput:
    out = node.rpc.raw_transaction(funding.txid).outputs[funding.vout]
    return SpendInput(txid=funding.txid, vout=funding.vout, value=out.value,
                      script_pubkey=out.script_pubkey, chain=chain, index=index)


@pytest.mark.bitcoin
def test_the_node_accepts_and_confirms_what_the_signer_signs(bitcoin_node: BcoinNode):
    """A sweep of a deposit address plus a hot-wallet coin, paying a player and change back
    to the hot wallet: the web side's address (from the vpub) is the signer's key; the node
    takes the transaction, mines it, and its view matches what the signer returned."""
    node, rpc = bitcoin_node, bitcoin_node.rpc
    vpub = signer.account_xpub(REGTEST, MNEMONIC)
    deposit = keys.deposit_address(5, vpub, REGTEST)  # what the web side hands out
    hot = keys.hot_wallet_address(vpub, REGTEST)
    assert hot == keys.p2wpkh_address(signer.public_key(1, 0, REGTEST, MNEMONIC), REGTEST)
    f1 = node.fund(deposit, 250_000, mine=False)
    f2 = node.fund(hot, 1_000_000)
    inputs = [_input(node, f1, 0, 5, MNEMONIC), _input(node, f2, 1, 0, MNEMONIC)]
    player = keys.validate_address(fresh_address(), REGTEST)
    signed = signer.sign_p2wpkh(
        inputs, [Payment(player.script_pubkey, 600_000),
                 Payment(keys.validate_address(hot, REGTEST).script_pubkey, 649_000)],
        network=REGTEST, words=MNEMONIC)
    assert signed.fee == 1_000 and signed.vsize == tx.facts(signed.raw).vsize
    verify_p2wpkh_signatures(signed.raw, [250_000, 1_000_000])
    assert rpc.send_raw_transaction(signed.raw) == signed.txid
    entry = rpc.mempool_entry(signed.txid)
    assert entry is not None and (entry.fee, entry.vsize) == (1_000, signed.vsize)
    (block_hash,) = node.mine(1)
    mined = rpc.raw_transaction(signed.txid)
    assert mined.block_hash == block_hash and mined.confirmations == 1
    assert mined.wtxid == signed.wtxid and mined.raw == signed.raw
    assert [(o.value, o.script_pubkey) for o in mined.outputs] == [
        (600_000, player.script_pubkey),
        (649_000, keys.validate_address(hot, REGTEST).script_pubkey)]
    assert all(i.sequence == signer.SEQUENCE_RBF for i in mined.inputs)
    assert rpc.tx_out(f1.txid, f1.vout) is None and rpc.tx_out(f2.txid, f2.vout) is None
    node.mine(1)
    assert rpc.raw_transaction(signed.txid).confirmations == 2


@pytest.mark.bitcoin
def test_refusals_sign_nothing(bitcoin_node: BcoinNode):
    node = bitcoin_node
    vpub = signer.account_xpub(REGTEST, MNEMONIC)
    funding = node.fund(keys.deposit_address(9, vpub, REGTEST), 100_000, mine=False)
    good = _input(node, funding, 0, 9, MNEMONIC)
    to = keys.validate_address(fresh_address(), REGTEST).script_pubkey

    def sign(inputs, outputs, **kw):
        return signer.sign_p2wpkh(inputs, outputs, network=REGTEST, words=MNEMONIC, **kw)

    assert sign([good], [Payment(to, 99_000)]).fee == 1_000
    cases = [
        ([SpendInput(**{**good.__dict__, "index": 8})], [Payment(to, 99_000)],
         "is not paid to the key m/84'/1'/0'/0/8"),
        ([SpendInput(**{**good.__dict__, "chain": 1})], [Payment(to, 99_000)], "not paid"),
        ([good, good], [Payment(to, 99_000)], "spent twice"),
        ([good], [Payment(to, 100_001)], "exceed the inputs"),
        ([good], [Payment(to, 99_950)], "below 1 sat/vB"),
        ([good], [Payment(to, 293)], "dust"),
        ([good], [Payment(b"\x6a\x04test", 1_000)], "only P2PKH"),
        ([good], [Payment(to, 0)], "positive"),
        ([good], [], "at least one input and one output"),
        ([SpendInput(**{**good.__dict__, "txid": good.txid.upper()})], [Payment(to, 1_000)],
         "64 lowercase hex"),
    ]
    for inputs, outputs, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            sign(inputs, outputs)
    with pytest.raises(ValueError, match="above the ceiling of 50 sat/vB"):
        sign([good], [Payment(to, 80_000)], max_fee_rate=50)


# --- start-up -------------------------------------------------------------------------------

def test_prepare_btc_wallet(base_env, monkeypatch):
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", MNEMONIC)
    monkeypatch.setenv("CASINO_BTC_NETWORK", "mainnet")
    reset_settings_cache()
    assert signer.prepare_btc_wallet() == BIP84_ZPUB  # development: written for the web side
    assert keys.dev_xpub_path().read_text().strip() == BIP84_ZPUB
    assert keys.account_xpub() == BIP84_ZPUB
    assert keys.deposit_address(0) == BIP84_RECEIVE[0]
    xpub_form = keys.b58check_encode(bytes.fromhex("0488b21e")
                                     + keys.b58check_decode(BIP84_ZPUB)[4:])
    monkeypatch.setenv("CASINO_BTC_XPUB", xpub_form)  # the same key in its plain form
    reset_settings_cache()
    assert signer.prepare_btc_wallet() == xpub_form
    other = signer.account_xpub(MAINNET, "legal winner thank year wave sausage worth useful "
                                         "legal winner thank yellow")
    monkeypatch.setenv("CASINO_BTC_XPUB", other)
    reset_settings_cache()
    with pytest.raises(ConfigError, match="not the BIP84 account key .m/84'/0'/0'. of the hot"):
        signer.prepare_btc_wallet()
