"""Cold spends through PSBTs (payments/btc/psbt.py), without a node: what the unsigned PSBT
carries (read back by another implementation, embit's parser), cosigners signing on their
own copies (embit's signer, keys held by the test), the checks on each upload, combining,
finalising, and every refusal with its message. The node judges the result in
test_cold_node.py."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest

from casino_app.payments.btc import cold, keys, tx
from casino_app.payments.btc import psbt as P
from casino_app.payments.btc.network import PRESETS
from tests.support.cosigners import MNEMONICS, cosigners, wallet_of

NET = PRESETS["regtest-bcoin"]
SIGNERS = cosigners(NET)
WALLET = wallet_of(SIGNERS, NET)
A, B, C = SIGNERS


def txid(n: int) -> str:
    return hashlib.sha256(f"funding {n}".encode()).hexdigest()


def utxo(n: int, value: int = 1_000_000, chain: int = 0, index: int | None = None
         ) -> P.ColdUtxo:
    index = n if index is None else index
    return P.ColdUtxo(txid(n), n % 3, value, WALLET.address(index, chain).script_pubkey, chain,
                      index)


def payments() -> list[P.Payment]:
    return [P.Payment(b"\x00\x14" + bytes(range(20)), 250_000),
            P.Payment(WALLET.address(9).script_pubkey, 100_000)]


def spend(n_inputs: int = 1, fee_rate: int = 3) -> P.UnsignedPsbt:
    return P.build_psbt(WALLET, [utxo(n) for n in range(n_inputs)], payments(),
                        fee_rate=fee_rate, change_index=4)


def edit(raw: bytes, change) -> bytes:
    """The PSBT after ``change`` (a function of embit's PSBT object), as a tampering device
    or a man in the middle would hand it back."""
    from embit.psbt import PSBT

    p = PSBT.parse(raw)
    change(p)
    return p.serialize()


def rewrite_map(raw: bytes, scope: str, n: int, key: bytes, value: bytes | None) -> bytes:
    """Set (or, with None, drop) one field of one map, byte for byte."""
    parsed = P._parse(raw)
    maps = {"global": [parsed.glob], "input": parsed.inputs, "output": parsed.outputs}[scope]
    if value is None:
        maps[n].pop(key, None)
    else:
        maps[n][key] = value
    return P._serialize(parsed.glob, parsed.inputs, parsed.outputs)


# --- building -------------------------------------------------------------------------------

def test_the_unsigned_psbt_carries_what_signers_need():
    from embit.psbt import PSBT

    built = spend(2)
    p = PSBT.parse(built.psbt)  # another implementation reads it
    assert built.psbt.startswith(b"psbt\xff") and p.version is None  # BIP174 version 0
    assert tx.txid_of(p.tx.serialize()) == built.txid
    assert [i.sequence for i in p.tx.vin] == [P.SEQUENCE_RBF] * 2
    assert p.tx.version == 2 and p.tx.locktime == 0
    h = cold.HARDENED
    for n, inp in enumerate(p.inputs):
        addr = WALLET.address(n)
        assert inp.witness_utxo.value == 1_000_000
        assert inp.witness_utxo.script_pubkey.data == addr.script_pubkey
        assert inp.witness_script.data == addr.witness_script
        assert {pub.sec(): (d.fingerprint.hex(), d.derivation)
                for pub, d in inp.bip32_derivations.items()} == {
            k.public_key: (k.fingerprint.hex(), [48 + h, 1 + h, 0 + h, 2 + h, 0, n])
            for k in addr.keys}
        assert inp.non_witness_utxo is None and not inp.partial_sigs
    # outputs: the two payments as given, then the change, recognisable as ours
    change = WALLET.change_address(4)
    assert [(o.value, o.script_pubkey.data) for o in p.tx.vout[:2]] == \
        [(p_.value, p_.script_pubkey) for p_ in payments()]
    assert built.change == P.ChangeOutput(vout=2, value=p.tx.vout[2].value, index=4,
                                          address=change.address)
    assert p.tx.vout[2].script_pubkey.data == change.script_pubkey
    assert p.outputs[2].witness_script.data == change.witness_script
    assert {d.derivation[-2:] == [1, 4] for d in p.outputs[2].bip32_derivations.values()} \
        == {True}
    assert not p.outputs[0].bip32_derivations and not p.outputs[1].witness_script
    # the cosigners' account keys in the global map
    assert sorted(x.to_base58() for x in p.xpubs) == sorted(c.account_key() for c in SIGNERS)
    # money: integers; the fee is the fee rate on an upper bound of the signed vsize
    assert built.fee == 2_000_000 - 350_000 - built.change.value
    assert built.fee == 3 * built.vsize
    assert built.vsize == P.estimate_vsize(2, [o.script_pubkey.data for o in p.tx.vout], 2, 3)
    assert P.decode(built.base64) == built.psbt


def test_the_estimate_is_an_upper_bound_of_the_signed_size():
    for n in (1, 2, 5):
        built = spend(n, fee_rate=1)
        final = P.finalize(WALLET, built.psbt, [A.sign(built.psbt), C.sign(built.psbt)])
        assert final.vsize <= built.vsize <= final.vsize + n  # 72-byte signatures counted
        assert final.fee == built.fee and final.fee >= final.vsize


def test_change_below_dust_goes_to_the_fee():
    need = 350_000 + 3 * P.estimate_vsize(1, [*[p.script_pubkey for p in payments()],
                                              WALLET.change_address(0).script_pubkey], 2, 3)
    built = P.build_psbt(WALLET, [utxo(0, need + 200)], payments(), fee_rate=3,
                         change_index=0)
    assert built.change is None
    assert built.fee == need + 200 - 350_000
    assert built.vsize == P.estimate_vsize(1, [p.script_pubkey for p in payments()], 2, 3)


def test_the_funding_transaction_is_included_when_given_and_checked():
    from embit.psbt import PSBT
    from embit.script import Script
    from embit.transaction import Transaction, TransactionInput, TransactionOutput

    addr = WALLET.address(3)
    funding = Transaction(vin=[TransactionInput(bytes(32), 0)],
                          vout=[TransactionOutput(5_000, Script(b"\x00\x14" + bytes(20))),
                                TransactionOutput(700_000, Script(addr.script_pubkey))])
    raw = funding.serialize()
    good = P.ColdUtxo(tx.txid_of(raw), 1, 700_000, addr.script_pubkey, 0, 3, prev_tx=raw)
    built = P.build_psbt(WALLET, [good], payments(), fee_rate=2, change_index=0)
    assert PSBT.parse(built.psbt).inputs[0].non_witness_utxo.serialize() == raw
    final = P.finalize(WALLET, built.psbt, [B.sign(built.psbt), C.sign(built.psbt)])
    assert final.signers == (B.fingerprint, C.fingerprint)
    for wrong in (P.ColdUtxo(good.txid, 0, 700_000, addr.script_pubkey, 0, 3, prev_tx=raw),
                  P.ColdUtxo(good.txid, 1, 700_001, addr.script_pubkey, 0, 3, prev_tx=raw),
                  P.ColdUtxo(txid(1), 1, 700_000, addr.script_pubkey, 0, 3, prev_tx=raw)):
        with pytest.raises(P.PsbtError, match="prev_tx is not the transaction"):
            P.build_psbt(WALLET, [wrong], payments(), fee_rate=2, change_index=0)


@pytest.mark.parametrize(("utxos", "pays", "kwargs", "message"), [
    ([], None, {}, "at least one input"),
    ([0], [], {}, "at least one payment"),
    ([0, 0], None, {}, "is spent twice"),
    (["not ours"], None, {}, "is not paid to the cold address (0, 0)"),
    (["chain 2"], None, {}, "input 0: the chain is 0 (receiving) or 1 (change)"),
    ([0], [P.Payment(b"\x00\x14" + bytes(20), 293)], {}, "293 sat to a p2wpkh output is dust"),
    ([0], [P.Payment(b"\x6a\x01\x00", 1000)], {}, "only P2PKH, P2SH, P2WPKH, P2WSH and P2TR"),
    ([0], [P.Payment(b"\x00\x14" + bytes(20), 0)], {}, "must be a positive number of satoshis"),
    ([0], [P.Payment(b"\x00\x14" + bytes(20), 999_900)], {},
     "the inputs (1000000 sat) do not cover the payments (999900 sat) and the fee"),
    ([0], None, {"fee_rate": 0}, "the fee rate must be a whole number of sat/vB between 1"),
    ([0], None, {"fee_rate": 10_001}, "between 1 and 10000, not 10001"),
    ([0], None, {"fee_rate": 2.5}, "the fee rate must be a whole number"),
    ([0], None, {"change_index": -1}, "change: the address index must be an integer"),
])
def test_build_refusals(utxos, pays, kwargs, message):
    made = []
    for u in utxos:
        if u == "not ours":
            made.append(P.ColdUtxo(txid(0), 0, 10_000, b"\x00\x20" + bytes(32), 0, 0))
        elif u == "chain 2":
            made.append(P.ColdUtxo(txid(0), 0, 10_000, b"\x00\x20" + bytes(32), 2, 0))
        else:
            made.append(utxo(u))
    args = {"fee_rate": 2, "change_index": 0, **kwargs}
    with pytest.raises(P.PsbtError) as err:
        P.build_psbt(WALLET, made, payments() if pays is None else pays, **args)
    assert message in str(err.value)


def test_a_spend_too_large_to_relay_is_refused():
    many = [utxo(n, 10_000) for n in range(960)]
    with pytest.raises(P.PsbtError, match="960 inputs make a transaction too large to relay"):
        P.build_psbt(WALLET, many, payments(), fee_rate=1, change_index=0)


# --- uploads: files, text, QR codes -----------------------------------------------------------

def test_uploads_are_read_as_file_base64_or_hex():
    built = spend()
    b64 = built.base64
    wrapped = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\n"
    for form in (built.psbt, b64, wrapped, wrapped.encode(), built.psbt.hex(),
                 built.psbt.hex().upper()):
        assert P.decode(form) == built.psbt


def test_a_qr_code_for_a_small_psbt_and_the_file_for_a_large_one():
    small, large = spend(1), spend(3)
    assert len(small.base64) <= P.QR_MAX_CHARS < len(large.base64)
    uri = P.qr_svg(small.psbt)
    assert uri is not None and uri.startswith("data:image/svg+xml;base64,")
    assert b"<svg" in base64.b64decode(uri.split(",", 1)[1])
    assert P.qr_svg(large.psbt) is None


# --- signing, checking, combining, finalising ------------------------------------------------

def test_two_cosigners_sign_separately_and_the_service_finalises():
    built = spend(2)
    from_a = A.sign(built.psbt)            # each device gets the unsigned PSBT
    from_c = C.sign(built.base64)          # (as a file or as text) and signs its own copy
    checked_a = P.check_signed(WALLET, built.psbt, from_a)
    checked_c = P.check_signed(WALLET, built.psbt, P.to_base64(from_c))
    assert checked_a.signers == (A.fingerprint,) and checked_c.signers == (C.fingerprint,)
    assert checked_a.txid == built.txid
    combined = P.combine(WALLET, built.psbt, [checked_a.psbt, checked_c.base64])
    assert combined.signers == (A.fingerprint, C.fingerprint)
    # a combined PSBT is an upload like any other
    assert P.check_signed(WALLET, built.psbt, combined.psbt).signers == combined.signers
    final = P.finalize(WALLET, built.psbt, [combined.psbt])
    assert final == P.finalize(WALLET, built.psbt, [from_c, from_a])
    assert final.txid == built.txid and final.fee == built.fee
    assert final.signers == (A.fingerprint, C.fingerprint)
    assert tx.facts(final.raw).vsize == final.vsize
    _assert_witnesses(final.raw, built, {A.fingerprint, C.fingerprint})


def test_all_three_signatures_finalise_with_two():
    built = spend(1)
    final = P.finalize(WALLET, built.psbt, [s.sign(built.psbt) for s in SIGNERS])
    assert final.signers == (A.fingerprint, B.fingerprint)
    _assert_witnesses(final.raw, built, {A.fingerprint, B.fingerprint})


def test_a_second_signer_may_sign_the_first_ones_psbt():
    built = spend(1)
    both = C.sign(B.sign(built.psbt))
    assert P.check_signed(WALLET, built.psbt, both).signers == (B.fingerprint, C.fingerprint)
    assert P.finalize(WALLET, built.psbt, [both]).signers == (B.fingerprint, C.fingerprint)


def test_a_device_that_finalises_or_strips_metadata_is_understood():
    """Core's walletprocesspsbt finalises once it holds enough signatures (the partial
    signatures, scripts and derivations make way for the final witness); some devices
    strip the metadata they were given. Neither changes the transaction."""
    from embit.script import Witness

    built = spend(1)
    combined = P.combine(WALLET, built.psbt, [A.sign(built.psbt), B.sign(built.psbt)])
    final = P.finalize(WALLET, built.psbt, [combined.psbt])
    from embit.transaction import Transaction

    witness = Transaction.parse(final.raw).vin[0].witness

    def finalise(p):
        inp = p.inputs[0]
        inp.final_scriptwitness = Witness(witness.items)
        inp.partial_sigs.clear()
        inp.bip32_derivations.clear()
        inp.witness_script = None
        p.xpubs.clear()

    by_core = edit(built.psbt, finalise)
    assert P.check_signed(WALLET, built.psbt, by_core).signers == (A.fingerprint,
                                                                  B.fingerprint)
    assert P.finalize(WALLET, built.psbt, [by_core]).raw == final.raw


def _assert_witnesses(raw: bytes, built: P.UnsignedPsbt, signers: set[str]) -> None:
    """Each witness: empty, two signatures in the order of their keys in the witness
    script, the witness script; each signature verifies (checked here with embit)."""
    from embit import ec
    from embit.psbt import PSBT
    from embit.script import Script
    from embit.transaction import SIGHASH, Transaction

    final = Transaction.parse(raw)
    unsigned = PSBT.parse(built.psbt)
    for i, vin in enumerate(final.vin):
        items = vin.witness.items
        script = unsigned.inputs[i].witness_script.data
        assert len(items) == 4 and items[0] == b"" and items[3] == script
        _, order = cold.parse_multisig(script)
        digest = final.sighash_segwit(i, Script(script), unsigned.inputs[i].witness_utxo.value,
                                      SIGHASH.ALL)
        who = [next(p for p in order if ec.PublicKey.parse(p).verify(
            ec.Signature.parse(s[:-1]), digest)) for s in items[1:3]]
        assert order.index(who[0]) < order.index(who[1])  # CHECKMULTISIG's order
        fps = {d.fingerprint.hex() for p, d in unsigned.inputs[i].bip32_derivations.items()
               if p.sec() in who}
        assert fps == signers


# --- refusals -----------------------------------------------------------------------------

def test_one_signature_is_not_enough():
    built = spend()
    with pytest.raises(P.NotEnoughSignatures,
                       match=rf"2 of the 3 cosigners must sign; so far only 1 \({B.fingerprint}\)"
                             r" has signed every input$"):
        P.finalize(WALLET, built.psbt, [B.sign(built.psbt)])
    with pytest.raises(P.NotEnoughSignatures, match="must sign; no cosigner has signed yet"):
        P.finalize(WALLET, built.psbt, [built.psbt])


def test_the_same_cosigner_twice_is_one_signer():
    built = spend()
    first, again = A.sign(built.psbt), A.sign(built.base64)
    with pytest.raises(P.NotEnoughSignatures,
                       match="only 1 .* has signed every input: the same cosigner's "
                             "signatures were given more than once"):
        P.finalize(WALLET, built.psbt, [first, again])
    assert P.combine(WALLET, built.psbt, [first, again]).signers == (A.fingerprint,)


def test_a_signature_by_a_key_that_is_not_ours_is_refused():
    from embit import ec
    from embit.transaction import SIGHASH

    built = spend()
    key = ec.PrivateKey(secrets.token_bytes(32))

    def foreign(p):
        inp = p.inputs[0]
        digest = p.tx.sighash_segwit(0, inp.witness_script, inp.witness_utxo.value,
                                     SIGHASH.ALL)
        inp.partial_sigs[key.get_public_key()] = key.sign(digest).serialize() + b"\x01"

    upload = edit(A.sign(built.psbt), foreign)
    with pytest.raises(P.ForeignKey, match="input 0: signed by a key that is not one of the "
                                           "cold wallet's"):
        P.check_signed(WALLET, built.psbt, upload)
    # a signature moved to another input, by a key of ours
    two = spend(2)
    parsed = P._parse(A.sign(two.psbt))
    (key, sig), = [(k, v) for k, v in parsed.inputs[1].items() if k[0] == P.I_PARTIAL_SIG]
    moved = rewrite_map(A.sign(two.psbt), "input", 0, key, sig)
    with pytest.raises(P.ForeignKey, match="input 0: signed by a key of another input"):
        P.check_signed(WALLET, two.psbt, moved)
    # a whole wallet of other keys: its device finds nothing of its own to sign
    other = wallet_of(cosigners(NET, (*MNEMONICS[1:], "zoo " * 11 + "wrong")), NET)
    with pytest.raises(P.PsbtError, match="is not one of this cold wallet's|does not match"):
        P.check_signed(other, built.psbt, A.sign(built.psbt))


def test_changed_outputs_are_refused():
    built = spend()

    def pay_more(p):
        p.outputs[0].value += 10_000
        p.outputs[2].value -= 10_000

    with pytest.raises(P.PsbtMismatch, match="not the transaction we built .output 0 pays "
                                             "260000 sat to .*; we built 250000 sat"):
        P.check_signed(WALLET, built.psbt, A.sign(edit(built.psbt, pay_more)))

    thief = keys.validate_address(keys.script_address(b"\x00\x14" + bytes(20), NET), NET)

    def redirect(p):
        from embit.script import Script

        p.outputs[1].script_pubkey = Script(thief.script_pubkey)

    with pytest.raises(P.PsbtMismatch, match=f"output 1 pays 100000 sat to {thief.text}"):
        P.check_signed(WALLET, built.psbt, B.sign(edit(built.psbt, redirect)))

    def drop_change(p):
        p.outputs.pop()

    with pytest.raises(P.PsbtMismatch, match="it has 2 output.s. where we built 3"):
        P.check_signed(WALLET, built.psbt, edit(A.sign(built.psbt), drop_change))


def test_an_extra_input_is_refused():
    from embit.psbt import InputScope
    from embit.transaction import TransactionInput

    built = spend()
    signed = A.sign(built.psbt)

    def add(p):
        p.inputs.append(InputScope(vin=TransactionInput(bytes.fromhex(txid(7)), 0,
                                                        sequence=P.SEQUENCE_RBF)))

    with pytest.raises(P.PsbtMismatch, match="it spends 2 input.s. where we built 1 .an input "
                                             "was added or removed"):
        P.check_signed(WALLET, built.psbt, edit(signed, add))


def test_altered_or_added_fields_are_refused():
    built = spend(2)
    signed = C.sign(built.psbt)
    addr = WALLET.address(0)
    cases = [
        # the amount a signer is told it spends (the segwit fee attack)
        (rewrite_map(signed, "input", 0, b"\x01", P._txout(2_000_000, addr.script_pubkey)),
         P.PsbtMismatch, "input 0: its witness UTXO was changed"),
        (rewrite_map(signed, "input", 1, b"\x05", WALLET.address(5).witness_script),
         P.PsbtMismatch, "input 1: its witness script was changed"),
        (rewrite_map(signed, "output", 2, b"\x01", WALLET.address(5).witness_script),
         P.PsbtMismatch, "output 2: its witness script was changed"),
        (rewrite_map(signed, "output", 0, b"\x01", WALLET.address(5).witness_script),
         P.PsbtMismatch, "output 0: a field was added (witness script); nothing may be added to an output"),
        (rewrite_map(signed, "input", 0, b"\xfc\x05hello", b"x"), P.PsbtMismatch,
         "input 0: a field was added (proprietary field); only signatures may be added"),
        (rewrite_map(signed, "global", 0, b"\xfc\x00", b"x"), P.PsbtMismatch,
         "a global field was added (proprietary field)"),
        (rewrite_map(signed, "input", 0, b"\x03", (3).to_bytes(4, "little")), P.BadSignature,
         "input 0: the sighash type was set to 3; only SIGHASH_ALL"),
        (rewrite_map(signed, "global", 0, b"\xfb", (2).to_bytes(4, "little")),
         P.MalformedPsbt, "this is a PSBT of version 2; export it as version 0"),
        (rewrite_map(signed, "input", 1, b"\x00", b"\x02\x00\x00\x00\x00\x00\x00\x00\x00"),
         P.PsbtMismatch, "input 1: the funding transaction added is not the one it spends"),
    ]
    for upload, error, message in cases:
        with pytest.raises(error) as err:
            P.check_signed(WALLET, built.psbt, upload)
        assert message in str(err.value), message
    # a signer's wallet may list extended keys in the global map: metadata, accepted
    other_xpub = bytes([P.G_XPUB]) + bytes.fromhex("043587cf") + bytes(41) + b"\x02" + bytes(32)
    listed = rewrite_map(signed, "global", 0, other_xpub, bytes(4))
    assert P.check_signed(WALLET, built.psbt, listed).signers == (C.fingerprint,)
    # a field left out is fine (taken from the reference): here every derivation
    stripped = signed
    for origin in WALLET.address(0).keys:
        stripped = rewrite_map(stripped, "input", 0, b"\x06" + origin.public_key, None)
    assert P.check_signed(WALLET, built.psbt, stripped).signers == (C.fingerprint,)


def test_bad_signatures_are_refused():
    built = spend()
    signed = A.sign(built.psbt)
    parsed = P._parse(signed)
    (key, sig), = [(k, v) for k, v in parsed.inputs[0].items() if k[0] == 2]
    r, s = P._der_rs(sig[:-1])

    def der(r: int, s: int) -> bytes:
        def part(x: int) -> bytes:
            b = x.to_bytes(33, "big").lstrip(b"\x00")
            return b"\x02" + bytes([len(b) + (b[0] >= 0x80)]) + (b"\x00" if b[0] >= 0x80
                                                                  else b"") + b
        body = part(r) + part(s)
        return b"\x30" + bytes([len(body)]) + body

    flipped = bytearray(sig)
    flipped[10] ^= 1
    cases = [
        (bytes(flipped), "signature does not verify for this transaction"),
        (der(r, P._SECP256K1_ORDER - s) + b"\x01", "has a high S value"),
        (sig[:-1] + b"\x83", "signature is not SIGHASH_ALL"),
        (b"\x30\x06\x02\x01\x01\x02\x01\x01\x01", "does not verify"),
        (b"\x30\x07\x02\x02\x00\x01\x02\x01\x01\x01", "is not strict DER"),
        (b"", "is not SIGHASH_ALL"),
    ]
    for bad, message in cases:
        with pytest.raises(P.BadSignature) as err:
            P.check_signed(WALLET, built.psbt, rewrite_map(signed, "input", 0, key, bad))
        assert message in str(err.value) and A.fingerprint in str(err.value), message


def test_garbage_and_oversize_uploads_are_refused():
    built = spend()
    signed = A.sign(built.psbt)
    cases = [
        ("", P.MalformedPsbt, "the upload is empty"),
        ("not a psbt at all!", P.MalformedPsbt, "neither a .psbt file nor its base64"),
        ("cHNidP8BAH", P.MalformedPsbt, "neither a .psbt file nor its base64"),
        (base64.b64encode(b"hello world"), P.MalformedPsbt, "do not start with 'psbt'"),
        ("70736274ffzz", P.MalformedPsbt, "bad hex"),
        ("é" * 10, P.MalformedPsbt, "neither base64 nor hex"),
        (signed[:-5], P.MalformedPsbt, "cut short"),
        (signed + b"\x00", P.MalformedPsbt, "bytes after its last map"),
        (b"psbt\xff\x00", P.MalformedPsbt, "no unsigned transaction"),
        ("A" * (P.MAX_UPLOAD_BYTES + 1), P.PsbtTooLarge, "the upload weighs 1000001 bytes"),
        (b"psbt\xff" + bytes(P.MAX_UPLOAD_BYTES), P.PsbtTooLarge, "at most 1000000 bytes"),
        (built.psbt, P.NoSignature, "carries no signature: sign it on your device"),
        (spend(1, fee_rate=4).psbt, P.PsbtMismatch, "not the transaction we built"),
    ]
    for upload, error, message in cases:
        with pytest.raises(error) as err:
            P.check_signed(WALLET, built.psbt, upload)
        assert message in str(err.value), message
    # a repeated key inside a map: the witness script field (105 bytes) written twice
    field = b"\x01\x05\x69" + WALLET.address(0).witness_script
    at = signed.index(field)
    with pytest.raises(P.MalformedPsbt, match="repeats a key in input 0's map"):
        P.check_signed(WALLET, built.psbt, signed[:at] + field + signed[at:])


def test_an_input_signed_by_nobody_while_another_is_signed_is_incomplete():
    built = spend(2)
    signed = B.sign(built.psbt)
    parsed = P._parse(signed)
    only_first = signed
    for key in [k for k in parsed.inputs[1] if k[0] == 2]:
        only_first = rewrite_map(only_first, "input", 1, key, None)
    with pytest.raises(P.IncompleteSignature,
                       match=f"cosigner {B.fingerprint} signed input.s. 0 but not 1"):
        P.check_signed(WALLET, built.psbt, only_first)


def test_a_refused_upload_among_several_refuses_the_whole_and_changes_nothing():
    built = spend()
    reference = bytes(built.psbt)
    good, bad = A.sign(built.psbt), b"garbage"
    with pytest.raises(P.MalformedPsbt, match="upload 2: not a PSBT"):
        P.finalize(WALLET, built.psbt, [good, bad, C.sign(built.psbt)])
    with pytest.raises(P.PsbtError, match="give a list"):
        P.combine(WALLET, built.psbt, good)
    assert built.psbt == reference  # nothing is kept or changed by a refusal
    assert P.finalize(WALLET, built.psbt, [good, C.sign(built.psbt)]).txid == built.txid


def test_a_reference_the_wallet_did_not_make_is_refused():
    built = spend()
    three_of_three = wallet_of(SIGNERS, NET, threshold=3)
    with pytest.raises(P.PsbtError, match="does not match the cold wallet"):
        P.check_signed(three_of_three, built.psbt, A.sign(built.psbt))
    with pytest.raises(P.PsbtError, match="the reference PSBT is unreadable"):
        P.check_signed(WALLET, b"nonsense", A.sign(built.psbt))
