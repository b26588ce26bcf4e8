"""Spending from the cold wallet through PSBTs (BIP174, version 0): build the unsigned
transaction, check what each cosigner sends back, combine, finalise, extract.

The flow (the server never holds a cold key):

1. :func:`build_psbt` spends given cold outputs (:class:`ColdUtxo`) to given payments plus
   change back to a cold change address, at a fee rate, every input signalling RBF. Each
   input carries what a signer needs to recognise and sign it: the output it spends
   (``witness_utxo``; and the whole funding transaction, ``non_witness_utxo``, when given:
   Trezor and Ledger ask for it), the witness script and the BIP32 derivation of each
   cosigner key (master fingerprint + ``48'/coin'/account'/2'/chain/index``). The change
   output carries its witness script and derivations too, so a signer shows it as change
   rather than as a payment; the global map carries the cosigners' account keys
   (PSBT_GLOBAL_XPUB). The result (:class:`UnsignedPsbt`) is stored by the caller; it is the
   reference every upload is checked against.
2. Each cosigner downloads it (the ``.psbt`` file, its base64 text, or a QR code when it is
   small enough: :func:`qr_svg`), signs it on their own device, and uploads the result.
3. :func:`check_signed` reads the upload (binary, base64 or hex; at most
   :data:`MAX_UPLOAD_BYTES`) and checks it STRICTLY against the reference: the unsigned
   transaction byte for byte; every field we wrote either unchanged or left out (some
   devices strip metadata); as additions only partial signatures, a SIGHASH_ALL type, the
   funding transaction (checked against the outpoint), finalised inputs (their witness
   read back as signatures) and, in the global map, extended public keys (metadata some
   wallets list; never used here); every signature strict DER, low S, SIGHASH_ALL, valid (BIP143)
   for the input's amount and witness script, by one of the wallet's keys for that input;
   a cosigner's signatures covering every input. Anything else is refused with a
   :class:`PsbtError` that says what is wrong; nothing is kept from a refused upload. It
   returns :class:`SignedPsbt`: which cosigners signed, and the reference PSBT with only
   the verified signatures added (the normal form worth storing).
4. :func:`combine` merges several checked uploads; :func:`finalize` needs signatures of
   ``threshold`` distinct cosigners on every input, builds each witness (an empty item for
   CHECKMULTISIG's extra pop, the signatures in the order of their keys in the sorted
   witness script, the witness script) and returns the network transaction
   (:class:`FinalTransaction`: raw bytes, txid, vsize, fee) for the caller to record and
   broadcast (``rpc.BitcoinRPC.send_raw_transaction``).

Uploads are checked against the stored reference, never trusted for what they say about
themselves: a field a signer changed is refused, one it dropped is taken from the
reference. Which cosigner signed is known from the key alone (its derivation in the
reference), whatever the upload claims.

QR codes: one static QR of the base64 text, up to :data:`QR_MAX_CHARS` characters (QR
version 35 or less at error correction L, about 1,700 bytes of PSBT: what a camera still
reads off a screen). That holds a spend of one or two inputs to a few outputs (one input,
two payments and change weigh about 1,130 bytes, 1,510 characters); a larger PSBT gets no
QR (``qr_svg`` returns None) and the page offers the ``.psbt`` file, which every signer
reads (Sparrow, Electrum, Coldcard, Bitcoin Core). Animated multi-part QR codes (BC-UR,
BBQr) are not written.

Library: embit (transactions, BIP143 digests, libsecp256k1 through ctypes). The PSBT key-
value maps are read and written here, byte for byte, because the strict comparison needs
the exact bytes, which a parsing library normalises away.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casino_app.payments.btc import keys, tx
from casino_app.payments.btc.cold import ColdAddress, ColdWallet, parse_multisig
from casino_app.payments.btc.network import Network

MAGIC = b"psbt\xff"
MAX_PSBT_BYTES = 400_000        # what build_psbt writes at most
MAX_UPLOAD_BYTES = 1_000_000    # what an upload may weigh (base64 or hex text, or binary)
QR_MAX_CHARS = 2_300            # base64 characters in one static QR (version <= 35, level L)
SEQUENCE_RBF = 0xFFFFFFFD       # BIP125 opt-in: a stuck cold spend can be replaced
MIN_FEE_RATE = 1                # sat/vB: the default minimum relay fee
MAX_FEE_RATE = 10_000           # sat/vB: Core's default maxfeerate
MAX_STANDARD_WEIGHT = 400_000   # a larger transaction is not relayed
SIGHASH_ALL = 1
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_TXID = re.compile(r"^[0-9a-f]{64}$")

# PSBT key types (BIP174) this module writes or accepts.
G_UNSIGNED_TX, G_XPUB, G_VERSION = 0x00, 0x01, 0xFB
I_NON_WITNESS_UTXO, I_WITNESS_UTXO, I_PARTIAL_SIG, I_SIGHASH = 0x00, 0x01, 0x02, 0x03
I_WITNESS_SCRIPT, I_BIP32, I_FINAL_SCRIPTSIG, I_FINAL_WITNESS = 0x05, 0x06, 0x07, 0x08
O_WITNESS_SCRIPT, O_BIP32 = 0x01, 0x02

_NAMES = {
    "global": {0x00: "unsigned transaction", 0x01: "extended public key", 0x02: "transaction "
               "version (PSBTv2)", 0x03: "fallback locktime (PSBTv2)", 0x04: "input count "
               "(PSBTv2)", 0x05: "output count (PSBTv2)", 0x06: "modifiable flags (PSBTv2)",
               0xFB: "PSBT version", 0xFC: "proprietary field"},
    "input": {0x00: "funding transaction (non-witness UTXO)", 0x01: "witness UTXO",
              0x02: "partial signature", 0x03: "sighash type", 0x04: "redeem script",
              0x05: "witness script", 0x06: "BIP32 derivation", 0x07: "final scriptSig",
              0x08: "final script witness", 0x13: "Taproot key signature",
              0x14: "Taproot script signature", 0x15: "Taproot leaf script",
              0x16: "Taproot BIP32 derivation", 0x17: "Taproot internal key",
              0x18: "Taproot merkle root", 0xFC: "proprietary field"},
    "output": {0x00: "redeem script", 0x01: "witness script", 0x02: "BIP32 derivation",
               0x05: "Taproot internal key", 0x06: "Taproot tree", 0x07: "Taproot BIP32 "
               "derivation", 0xFC: "proprietary field"},
}


# --- errors ---------------------------------------------------------------------------------

class PsbtError(ValueError):
    """A PSBT (or a spend) we refuse; the message says why, for the staff member."""


class MalformedPsbt(PsbtError):
    """Not a PSBT we can read: garbage, truncated, not version 0, duplicate keys."""


class PsbtTooLarge(MalformedPsbt):
    """Larger than :data:`MAX_UPLOAD_BYTES` (or, when building, :data:`MAX_PSBT_BYTES`)."""


class PsbtMismatch(PsbtError):
    """Not the transaction we built, or a field we wrote was changed, or one was added."""


class BadSignature(PsbtError):
    """A signature that is not strict DER, not low-S, not SIGHASH_ALL, or does not verify."""


class ForeignKey(PsbtError):
    """A signature by a key that is not one of the cold wallet's keys for that input."""


class NoSignature(PsbtError):
    """An upload that carries no signature at all."""


class IncompleteSignature(PsbtError):
    """A cosigner signed some inputs but not all."""


class NotEnoughSignatures(PsbtError):
    """Fewer distinct cosigners than the threshold signed every input."""


# --- values -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColdUtxo:
    """A cold output to spend: ``value`` satoshis at ``txid:vout``, paid to
    ``script_pubkey`` (as recorded from the chain), which must be the cold address
    ``(chain, index)``. ``prev_tx``: the whole funding transaction, for signers that check
    the amount against it (Trezor, Ledger); optional."""

    txid: str
    vout: int
    value: int
    script_pubkey: bytes
    chain: int
    index: int
    prev_tx: bytes | None = None


@dataclass(frozen=True)
class Payment:
    """An output: ``value`` satoshis to ``script_pubkey`` (``keys.validate_address(...)
    .script_pubkey``)."""

    script_pubkey: bytes
    value: int


@dataclass(frozen=True)
class ChangeOutput:
    vout: int
    value: int
    index: int      # the cold change address m/48'/coin'/account'/2'/1/index
    address: str


@dataclass(frozen=True)
class UnsignedPsbt:
    """What :func:`build_psbt` made: the PSBT (store it: it is the reference), the txid the
    signed transaction will have (segwit: signatures do not change it), the fee, the vsize
    the signed transaction will have at most (signatures of 72 bytes) and the change."""

    psbt: bytes
    txid: str
    fee: int
    vsize: int
    change: ChangeOutput | None

    @property
    def base64(self) -> str:
        return to_base64(self.psbt)


@dataclass(frozen=True)
class SignedPsbt:
    """A checked upload (or several, combined): the reference PSBT with the verified
    signatures added (nothing else of the upload), the cosigners (master fingerprints,
    in configuration order) whose signatures cover every input, and the txid."""

    psbt: bytes
    signers: tuple[str, ...]
    txid: str

    @property
    def base64(self) -> str:
        return to_base64(self.psbt)


@dataclass(frozen=True)
class FinalTransaction:
    raw: bytes
    txid: str
    wtxid: str
    vsize: int
    fee: int
    signers: tuple[str, ...]   # the cosigners whose signatures are in the witnesses

    @property
    def hex(self) -> str:
        return self.raw.hex()


# --- building -------------------------------------------------------------------------------

def estimate_vsize(n_inputs: int, output_scripts: Sequence[bytes], threshold: int,
                   n_keys: int) -> int:
    """The vsize of a transaction spending ``n_inputs`` m-of-n P2WSH outputs to
    ``output_scripts`` once signed, counting 72-byte signatures (the largest low-S DER
    signature with its sighash byte): never below the real one, so the fee rate paid is
    at least the one asked for."""
    script_len = 3 + 34 * n_keys
    witness = (_cs_len(threshold + 2) + 1 + threshold * (1 + 72)
               + _cs_len(script_len) + script_len)
    base = 4 + _cs_len(n_inputs) + n_inputs * 41 + _cs_len(len(output_scripts)) + 4
    base += sum(8 + _cs_len(len(s)) + len(s) for s in output_scripts)
    weight = 4 * base + 2 + n_inputs * witness
    return -(-weight // 4)


def build_psbt(wallet: ColdWallet, utxos: Sequence[ColdUtxo], payments: Sequence[Payment], *,
               fee_rate: int, change_index: int, locktime: int = 0,
               max_fee_rate: int = MAX_FEE_RATE) -> UnsignedPsbt:
    """The unsigned PSBT spending ``utxos`` to ``payments`` and the rest, less the fee
    (``fee_rate`` sat/vB on the estimated vsize), to the cold change address
    ``(1, change_index)``; no change output when the rest is below the P2WSH dust limit
    (it goes to the fee). Inputs signal RBF. PsbtError (nothing built) for an input that is
    not the cold address it names, an output spent twice, a funding transaction that does
    not match, a dust or non-standard payment, a fee rate out of bounds, inputs that do not
    cover payments and fee, or a transaction too large to relay."""
    from embit.script import Script
    from embit.transaction import Transaction, TransactionInput, TransactionOutput

    net = wallet.network
    if not utxos:
        raise PsbtError("a cold spend needs at least one input")
    if not payments:
        raise PsbtError("a cold spend needs at least one payment")
    if isinstance(fee_rate, bool) or not isinstance(fee_rate, int) \
            or not MIN_FEE_RATE <= fee_rate <= max_fee_rate:
        raise PsbtError(f"the fee rate must be a whole number of sat/vB between "
                        f"{MIN_FEE_RATE} and {max_fee_rate}, not {fee_rate!r}")
    if isinstance(locktime, bool) or not isinstance(locktime, int) \
            or not 0 <= locktime < 2**32:
        raise PsbtError("bad locktime")
    addresses: list[ColdAddress] = []
    seen: set[tuple[str, int]] = set()
    for n, utxo in enumerate(utxos):
        addresses.append(_check_utxo(wallet, n, utxo, seen))
    for n, pay in enumerate(payments):
        _check_payment(n, pay, net)
    try:
        change_addr = wallet.change_address(change_index)
    except ValueError as exc:
        raise PsbtError(f"change: {exc}") from None

    total_in = sum(u.value for u in utxos)
    total_pay = sum(p.value for p in payments)
    scripts = [bytes(p.script_pubkey) for p in payments]
    m, n_keys = wallet.threshold, len(wallet.cosigners)
    vsize = estimate_vsize(len(utxos), [*scripts, change_addr.script_pubkey], m, n_keys)
    change = total_in - total_pay - fee_rate * vsize
    if change < 0:
        raise PsbtError(f"the inputs ({total_in} sat) do not cover the payments "
                        f"({total_pay} sat) and the fee ({fee_rate * vsize} sat for "
                        f"{vsize} vB at {fee_rate} sat/vB)")
    outputs = list(zip(scripts, [p.value for p in payments], strict=True))
    change_out: ChangeOutput | None = None
    if change >= keys.DUST_LIMITS[keys.AddressKind.p2wsh]:
        change_out = ChangeOutput(vout=len(outputs), value=change, index=change_addr.index,
                                  address=change_addr.address)
        outputs.append((change_addr.script_pubkey, change))
    else:  # too small to be worth an output: it goes to the fee
        vsize = estimate_vsize(len(utxos), scripts, m, n_keys)
    fee = total_in - sum(v for _, v in outputs)
    if 4 * vsize > MAX_STANDARD_WEIGHT:
        raise PsbtError(f"{len(utxos)} inputs make a transaction too large to relay "
                        f"({vsize} vB): spend fewer outputs at once")

    unsigned = Transaction(
        version=2, locktime=locktime,
        vin=[TransactionInput(bytes.fromhex(u.txid), u.vout, sequence=SEQUENCE_RBF)
             for u in utxos],
        vout=[TransactionOutput(v, Script(s)) for s, v in outputs])
    tx_bytes = unsigned.serialize()
    glob: dict[bytes, bytes] = {bytes([G_UNSIGNED_TX]): tx_bytes}
    for xpub, origin in wallet.global_xpubs():
        glob[bytes([G_XPUB]) + xpub] = origin
    inputs = []
    for utxo, addr in zip(utxos, addresses, strict=True):
        fields = {bytes([I_WITNESS_UTXO]): _txout(utxo.value, addr.script_pubkey),
                  bytes([I_WITNESS_SCRIPT]): addr.witness_script}
        if utxo.prev_tx is not None:
            fields[bytes([I_NON_WITNESS_UTXO])] = bytes(utxo.prev_tx)
        for origin in addr.keys:
            fields[bytes([I_BIP32]) + origin.public_key] = origin.value()
        inputs.append(fields)
    outs: list[dict[bytes, bytes]] = [{} for _ in outputs]
    if change_out is not None:
        outs[change_out.vout] = {bytes([O_WITNESS_SCRIPT]): change_addr.witness_script,
                                 **{bytes([O_BIP32]) + o.public_key: o.value()
                                    for o in change_addr.keys}}
    raw = _serialize(glob, inputs, outs)
    if len(raw) > MAX_PSBT_BYTES:
        raise PsbtTooLarge(f"the PSBT would weigh {len(raw)} bytes (at most "
                           f"{MAX_PSBT_BYTES}): spend fewer outputs at once, or leave out "
                           "the funding transactions")
    return UnsignedPsbt(psbt=raw, txid=tx.txid_of(tx_bytes), fee=fee, vsize=vsize,
                        change=change_out)


def _check_utxo(wallet: ColdWallet, n: int, utxo: ColdUtxo,
                seen: set[tuple[str, int]]) -> ColdAddress:
    from embit.transaction import Transaction

    if not isinstance(utxo.txid, str) or not _TXID.match(utxo.txid):
        raise PsbtError(f"input {n}: the txid must be 64 lowercase hex digits")
    if isinstance(utxo.vout, bool) or not isinstance(utxo.vout, int) \
            or not 0 <= utxo.vout < 2**32:
        raise PsbtError(f"input {n}: bad output index")
    if (utxo.txid, utxo.vout) in seen:
        raise PsbtError(f"input {n}: {utxo.txid}:{utxo.vout} is spent twice")
    seen.add((utxo.txid, utxo.vout))
    if isinstance(utxo.value, bool) or not isinstance(utxo.value, int) \
            or not 0 < utxo.value <= keys.MAX_SATS:
        raise PsbtError(f"input {n}: the value must be a positive number of satoshis")
    try:
        addr = wallet.address(utxo.index, utxo.chain)
    except ValueError as exc:
        raise PsbtError(f"input {n}: {exc}") from None
    if bytes(utxo.script_pubkey) != addr.script_pubkey:
        raise PsbtError(f"input {n}: the output {utxo.txid}:{utxo.vout} is not paid to the "
                        f"cold address ({utxo.chain}, {utxo.index}) {addr.address}")
    if utxo.prev_tx is not None:
        try:
            prev = Transaction.parse(bytes(utxo.prev_tx))
            ok = tx.txid_of(bytes(utxo.prev_tx)) == utxo.txid and utxo.vout < len(prev.vout)
        except Exception:  # noqa: BLE001 - any parse failure: not that transaction
            ok = False
        if not ok or prev.vout[utxo.vout].value != utxo.value \
                or prev.vout[utxo.vout].script_pubkey.data != addr.script_pubkey:
            raise PsbtError(f"input {n}: prev_tx is not the transaction {utxo.txid} paying "
                            f"{utxo.value} sat to {addr.address} at output {utxo.vout}")
    return addr


def _check_payment(n: int, pay: Payment, net: Network) -> None:
    if isinstance(pay.value, bool) or not isinstance(pay.value, int) \
            or not 0 < pay.value <= keys.MAX_SATS:
        raise PsbtError(f"payment {n}: the value must be a positive number of satoshis")
    address = keys.script_address(bytes(pay.script_pubkey), net)
    if address is None:
        raise PsbtError(f"payment {n}: only P2PKH, P2SH, P2WPKH, P2WSH and P2TR outputs")
    kind = keys.validate_address(address, net).kind
    if pay.value < keys.DUST_LIMITS[kind]:
        raise PsbtError(f"payment {n}: {pay.value} sat to a {kind} output is dust (below "
                        f"{keys.DUST_LIMITS[kind]} sat)")


# --- text, files and QR codes ---------------------------------------------------------------

def to_base64(psbt: bytes) -> str:
    """The PSBT as base64 text (what Core's RPCs and most wallets' "paste" take)."""
    return base64.b64encode(psbt).decode()


def decode(data: bytes | str) -> bytes:
    """The PSBT bytes of an upload: a binary ``.psbt`` file, or its base64 or hex text
    (surrounding white space and line breaks ignored). PsbtTooLarge above
    :data:`MAX_UPLOAD_BYTES`, before anything is decoded; MalformedPsbt for anything else."""
    if isinstance(data, str):
        if len(data) > MAX_UPLOAD_BYTES:
            raise PsbtTooLarge(_too_large(len(data)))
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedPsbt("not a PSBT: the text is neither base64 nor hex") from None
    elif not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedPsbt("not a PSBT")
    data = bytes(data)
    if len(data) > MAX_UPLOAD_BYTES:
        raise PsbtTooLarge(_too_large(len(data)))
    if data.startswith(MAGIC):
        return data
    text = re.sub(rb"\s+", b"", data)
    if not text:
        raise MalformedPsbt("the upload is empty")
    if text[:10].lower() == b"70736274ff":
        try:
            return bytes.fromhex(text.decode())
        except ValueError:
            raise MalformedPsbt("not a PSBT: bad hex") from None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPsbt("not a PSBT: it is neither a .psbt file nor its base64 or hex "
                            "text") from None
    if not raw.startswith(MAGIC):
        raise MalformedPsbt("not a PSBT: the decoded bytes do not start with 'psbt'")
    return raw


def qr_svg(psbt: bytes) -> str | None:
    """The PSBT's base64 text as one QR code (an SVG data URI), or None when it is longer
    than :data:`QR_MAX_CHARS`: then offer the ``.psbt`` file instead."""
    import segno

    text = to_base64(psbt)
    if len(text) > QR_MAX_CHARS:
        return None
    buf = io.BytesIO()
    segno.make(text, error="l", micro=False).save(buf, kind="svg", scale=3, border=4,
                                                  dark="#111111", light="#ffffff")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


# --- checking uploads -----------------------------------------------------------------------

@dataclass
class _Psbt:
    glob: dict[bytes, bytes]
    inputs: list[dict[bytes, bytes]]
    outputs: list[dict[bytes, bytes]]
    tx_bytes: bytes
    tx: Any  # embit Transaction


@dataclass
class _Input:
    value: int
    witness_script: bytes
    keys: dict[bytes, int]     # public key -> cosigner index (the keys of this input)


@dataclass
class _Reference:
    psbt: _Psbt
    inputs: list[_Input]
    txid: str


def check_signed(wallet: ColdWallet, unsigned: bytes, upload: bytes | str) -> SignedPsbt:
    """Check a cosigner's upload against the reference ``unsigned`` (from
    :func:`build_psbt`); PsbtError saying what is wrong, else the verified signatures."""
    ref = _reference(wallet, unsigned)
    sigs = _upload_signatures(wallet, ref, upload)
    if not any(sigs):
        raise NoSignature("this PSBT carries no signature: sign it on your device, then "
                          "upload what the device gives back")
    return _signed(wallet, ref, sigs)


def combine(wallet: ColdWallet, unsigned: bytes,
            uploads: Sequence[bytes | str]) -> SignedPsbt:
    """The signatures of several uploads (each checked as :func:`check_signed` does; the
    first refusal is raised and nothing is combined) on the reference PSBT."""
    ref = _reference(wallet, unsigned)
    return _signed(wallet, ref, _merged(wallet, ref, uploads))


def only_cosigner(wallet: ColdWallet, unsigned: bytes, upload: bytes | str,
                  fingerprint: str) -> SignedPsbt:
    """The signatures of ONE cosigner (``fingerprint``) of an upload (checked as
    :func:`check_signed` does) on the reference PSBT: what an admin who brought that
    cosigner is counted for, whatever else their upload carried. IncompleteSignature when
    that cosigner did not sign every input."""
    ref = _reference(wallet, unsigned)
    wanted = [n for n, c in enumerate(wallet.cosigners) if c.fingerprint == fingerprint]
    if not wanted:
        raise ForeignKey(f"{fingerprint!r} is not one of the cold wallet's cosigners")
    sigs = _upload_signatures(wallet, ref, upload)
    kept = [{pub: sig for pub, sig in found.items() if inp.keys[pub] == wanted[0]}
            for inp, found in zip(ref.inputs, sigs, strict=True)]
    signed = _signed(wallet, ref, kept)
    if signed.signers != (fingerprint,):
        raise IncompleteSignature(f"cosigner {fingerprint} did not sign every input")
    return signed


def finalize(wallet: ColdWallet, unsigned: bytes,
             uploads: Sequence[bytes | str]) -> FinalTransaction:
    """The network transaction, once signatures of ``threshold`` distinct cosigners cover
    every input (uploads are checked and combined first; a combined PSBT is an upload
    too). NotEnoughSignatures otherwise, naming who has signed."""
    from embit.script import Witness
    from embit.transaction import Transaction

    ref = _reference(wallet, unsigned)
    sigs = _merged(wallet, ref, uploads)
    signers = _complete_signers(wallet, ref, sigs)
    m = wallet.threshold
    if len(signers) < m:
        need = f"{m} of the {len(wallet.cosigners)} cosigners must sign"
        if not signers:
            raise NotEnoughSignatures(f"{need}; no cosigner has signed yet")
        have = ", ".join(wallet.cosigners[c].fingerprint for c in sorted(signers))
        again = len(uploads) > len(signers)
        raise NotEnoughSignatures(
            f"{need}; so far only {len(signers)} ({have}) "
            f"{'has' if len(signers) == 1 else 'have'} signed every input"
            + (": the same cosigner's signatures were given more than once" if again else ""))
    chosen = set(sorted(signers)[:m])
    final = Transaction.parse(ref.psbt.tx_bytes)
    for i, (inp, found) in enumerate(zip(ref.inputs, sigs, strict=True)):
        _, order = parse_multisig(inp.witness_script)
        items = [found[p] for p in order if p in found and inp.keys[p] in chosen]
        final.vin[i].witness = Witness([b"", *items[:m], inp.witness_script])
    raw = final.serialize()
    info = tx.facts(raw)
    if info.txid != ref.txid:  # cannot happen: witnesses do not change the txid
        raise PsbtError("the finalised transaction has another txid")
    fee = sum(i.value for i in ref.inputs) - sum(o.value for o in final.vout)
    return FinalTransaction(raw=raw, txid=info.txid, wtxid=info.wtxid, vsize=info.vsize,
                            fee=fee, signers=tuple(wallet.cosigners[c].fingerprint
                                                   for c in sorted(chosen)))


def _merged(wallet: ColdWallet, ref: _Reference,
            uploads: Sequence[bytes | str]) -> list[dict[bytes, bytes]]:
    if isinstance(uploads, bytes | str) or not uploads:
        raise PsbtError("give a list of uploaded PSBTs")
    merged: list[dict[bytes, bytes]] = [{} for _ in ref.inputs]
    for n, upload in enumerate(uploads):
        try:
            sigs = _upload_signatures(wallet, ref, upload)
        except PsbtError as exc:
            raise type(exc)(f"upload {n + 1}: {exc}") from None
        for into, found in zip(merged, sigs, strict=True):
            for pub, sig in found.items():
                into.setdefault(pub, sig)
    return merged


def _signed(wallet: ColdWallet, ref: _Reference, sigs: list[dict[bytes, bytes]]) -> SignedPsbt:
    signers = _complete_signers(wallet, ref, sigs)
    inputs = [dict(m) for m in ref.psbt.inputs]
    for fields, found in zip(inputs, sigs, strict=True):
        for pub, sig in found.items():
            fields[bytes([I_PARTIAL_SIG]) + pub] = sig
    raw = _serialize(ref.psbt.glob, inputs, ref.psbt.outputs)
    return SignedPsbt(psbt=raw, signers=tuple(wallet.cosigners[c].fingerprint
                                              for c in sorted(signers)), txid=ref.txid)


def _complete_signers(wallet: ColdWallet, ref: _Reference,
                      sigs: list[dict[bytes, bytes]]) -> set[int]:
    """The cosigners who signed every input; IncompleteSignature for one who signed some."""
    per_input = [{inp.keys[p] for p in found} for inp, found in zip(ref.inputs, sigs,
                                                                      strict=True)]
    anyone = set().union(*per_input)
    complete = set.intersection(*per_input) if per_input else set()
    for c in sorted(anyone - complete):
        signed = [str(i) for i, s in enumerate(per_input) if c in s]
        missing = [str(i) for i, s in enumerate(per_input) if c not in s]
        raise IncompleteSignature(
            f"cosigner {wallet.cosigners[c].fingerprint} signed input(s) {', '.join(signed)} "
            f"but not {', '.join(missing)}: every input must be signed (was the PSBT signed "
            "with the right wallet?)")
    return complete


def _reference(wallet: ColdWallet, unsigned: bytes) -> _Reference:
    """Our own PSBT, parsed and checked against the wallet (a stored PSBT that the wallet
    did not make, or made under other keys, is refused)."""
    try:
        ref = _parse(bytes(unsigned))
    except MalformedPsbt as exc:
        raise PsbtError(f"the reference PSBT is unreadable: {exc}") from None
    inputs = []
    for i, fields in enumerate(ref.inputs):
        origins = [(k[1:], v) for k, v in fields.items() if k[0] == I_BIP32]
        paths = {_path_of(v)[-2:] for _, v in origins}
        if len(paths) != 1 or len(origins) != len(wallet.cosigners):
            raise PsbtError(f"the reference PSBT's input {i} is not one of this cold wallet's")
        chain, index = paths.pop()
        try:
            addr = wallet.address(index, chain)
        except ValueError:
            raise PsbtError(f"the reference PSBT's input {i} is not one of this cold "
                            "wallet's") from None
        expected = {bytes([I_WITNESS_SCRIPT]): addr.witness_script,
                    **{bytes([I_BIP32]) + o.public_key: o.value() for o in addr.keys}}
        value, spk = _read_txout(fields.get(bytes([I_WITNESS_UTXO]), b""))
        if spk != addr.script_pubkey or any(fields.get(k) != v for k, v in expected.items()):
            raise PsbtError(f"the reference PSBT's input {i} does not match the cold wallet "
                            "(were CASINO_BTC_COLD_KEYS changed since it was built?)")
        inputs.append(_Input(value=value, witness_script=addr.witness_script,
                             keys={o.public_key: o.cosigner for o in addr.keys}))
    return _Reference(psbt=ref, inputs=inputs, txid=tx.txid_of(ref.tx_bytes))


def _upload_signatures(wallet: ColdWallet, ref: _Reference,
                       upload: bytes | str) -> list[dict[bytes, bytes]]:
    """The verified signatures of an upload, per input (public key -> signature)."""
    theirs = _parse(decode(upload))
    _same_transaction(wallet, ref, theirs)
    _same_fields("global", ref.psbt.glob, theirs.glob, _global_addition)
    sigs: list[dict[bytes, bytes]] = []
    for i, (ours, fields) in enumerate(zip(ref.psbt.inputs, theirs.inputs, strict=True)):
        inp = ref.inputs[i]
        found: dict[bytes, bytes] = {}

        def addition(key: bytes, value: bytes, i: int = i, inp: _Input = inp,
                     found: dict[bytes, bytes] = found) -> None:
            _input_addition(wallet, ref, i, inp, key, value, found)

        _same_fields(f"input {i}", ours, fields, addition)
        sigs.append(found)
    for o, (ours, fields) in enumerate(zip(ref.psbt.outputs, theirs.outputs, strict=True)):
        _same_fields(f"output {o}", ours, fields, None)
    return sigs


def _same_transaction(wallet: ColdWallet, ref: _Reference, theirs: _Psbt) -> None:
    if theirs.tx_bytes == ref.psbt.tx_bytes:
        return
    ours, other = ref.psbt.tx, theirs.tx
    net = wallet.network
    why = "its transaction differs"
    if len(other.vin) != len(ours.vin):
        why = (f"it spends {len(other.vin)} input(s) where we built {len(ours.vin)} "
               "(an input was added or removed)")
    elif len(other.vout) != len(ours.vout):
        why = (f"it has {len(other.vout)} output(s) where we built {len(ours.vout)} "
               "(an output was added or removed)")
    else:
        for n, (a, b) in enumerate(zip(ours.vin, other.vin, strict=True)):
            if (a.txid, a.vout) != (b.txid, b.vout):
                why = (f"input {n} spends {b.txid.hex()}:{b.vout}, not "
                       f"{a.txid.hex()}:{a.vout}")
                break
            if a.sequence != b.sequence:
                why = f"input {n}'s sequence was changed"
                break
        else:
            for n, (a, b) in enumerate(zip(ours.vout, other.vout, strict=True)):
                if (a.value, a.script_pubkey.data) != (b.value, b.script_pubkey.data):
                    why = (f"output {n} pays {b.value} sat to "
                           f"{_show_script(b.script_pubkey.data, net)}; we built "
                           f"{a.value} sat to {_show_script(a.script_pubkey.data, net)}")
                    break
            else:
                if (other.version, other.locktime) != (ours.version, ours.locktime):
                    why = "its version or locktime was changed"
    raise PsbtMismatch(f"this PSBT is not the transaction we built ({why}): sign the PSBT "
                       "downloaded from this withdrawal, unchanged")


def _same_fields(scope: str, ours: Mapping[bytes, bytes], theirs: Mapping[bytes, bytes],
                 addition: Any) -> None:
    """Every field of ``theirs`` is ours unchanged, or an addition ``addition`` accepts
    (it raises otherwise). Fields of ours that ``theirs`` left out are fine."""
    kind = scope.split()[0]
    for key, value in theirs.items():
        if key in ours:
            if ours[key] != value:
                raise PsbtMismatch(f"{scope}: its {_name(kind, key)} was changed: sign the "
                                   "PSBT downloaded from this withdrawal, unchanged")
        elif addition is None:
            raise PsbtMismatch(f"{scope}: a field was added ({_name(kind, key)}); nothing "
                               f"may be added to an {kind}")
        else:
            addition(key, value)


def _global_addition(key: bytes, value: bytes) -> None:
    if key == bytes([G_VERSION]) and value == b"\x00\x00\x00\x00":
        return  # an explicit version 0
    if key[0] == G_XPUB and len(key) == 79:
        return  # a signer's wallet lists its extended keys: metadata, never used here
    raise PsbtMismatch(f"a global field was added ({_name('global', key)}); only signatures "
                       "may be added")


def _input_addition(wallet: ColdWallet, ref: _Reference, i: int, inp: _Input, key: bytes,
                    value: bytes, found: dict[bytes, bytes]) -> None:
    t = key[0]
    if t == I_PARTIAL_SIG:
        pub = key[1:]
        _verify(wallet, ref, i, inp, pub, value)
        if pub in found and found[pub] != value:
            raise BadSignature(f"input {i}: two different signatures by the same key")
        found[pub] = value
    elif t == I_SIGHASH and len(key) == 1:
        if value != SIGHASH_ALL.to_bytes(4, "little"):
            raise BadSignature(f"input {i}: the sighash type was set to "
                               f"{int.from_bytes(value, 'little')}; only SIGHASH_ALL (1) is "
                               "accepted")
    elif t == I_NON_WITNESS_UTXO and len(key) == 1:
        _check_funding(ref, i, inp, value)
    elif t == I_FINAL_SCRIPTSIG and len(key) == 1:
        if value:
            raise PsbtMismatch(f"input {i}: a native segwit input has an empty scriptSig")
    elif t == I_FINAL_WITNESS and len(key) == 1:
        for pub, sig in _final_witness_signatures(wallet, ref, i, inp, value).items():
            found.setdefault(pub, sig)
    else:
        raise PsbtMismatch(f"input {i}: a field was added ({_name('input', key)}); only "
                           "signatures may be added")


def _check_funding(ref: _Reference, i: int, inp: _Input, value: bytes) -> None:
    from embit.transaction import Transaction

    vin = ref.psbt.tx.vin[i]
    try:
        prev = Transaction.parse(value)
        ok = tx.txid_of(value) == vin.txid.hex() and vin.vout < len(prev.vout) \
            and prev.vout[vin.vout].value == inp.value
    except Exception:  # noqa: BLE001 - unreadable: not the funding transaction
        ok = False
    if not ok:
        raise PsbtMismatch(f"input {i}: the funding transaction added is not the one it "
                           "spends")


def _final_witness_signatures(wallet: ColdWallet, ref: _Reference, i: int, inp: _Input,
                              value: bytes) -> dict[bytes, bytes]:
    """The signatures in a finalised input's witness (Core and Sparrow finalise when they
    hold enough signatures): ``<empty> <sig>... <witness script>``, checked."""
    items = _read_witness(value)
    if items is None or len(items) < 3 or items[0] != b"" \
            or items[-1] != inp.witness_script:
        raise PsbtMismatch(f"input {i}: its final witness is not this cold address's "
                           "multisig witness")
    found: dict[bytes, bytes] = {}
    for sig in items[1:-1]:
        for pub in inp.keys:
            if pub not in found and _valid(ref, i, inp, pub, sig):
                found[pub] = sig
                break
        else:
            raise BadSignature(f"input {i}: a signature in its final witness is not valid "
                               "for any of the cold wallet's keys")
    return found


def _verify(wallet: ColdWallet, ref: _Reference, i: int, inp: _Input, pub: bytes,
            sig: bytes) -> None:
    if pub not in inp.keys:
        if any(pub in other.keys for other in ref.inputs):
            raise ForeignKey(f"input {i}: signed by a key of another input: the PSBT was "
                             "tampered with")
        raise ForeignKey(f"input {i}: signed by a key that is not one of the cold wallet's "
                         f"({pub.hex()[:16]}...): sign with a cosigner's device holding "
                         f"one of the keys {', '.join(wallet.fingerprints)}")
    who = wallet.cosigners[inp.keys[pub]].fingerprint
    if not sig or sig[-1] != SIGHASH_ALL:
        raise BadSignature(f"input {i}: cosigner {who}'s signature is not SIGHASH_ALL")
    try:
        _, s = _der_rs(sig[:-1])
    except ValueError:
        raise BadSignature(f"input {i}: cosigner {who}'s signature is not strict DER "
                           "(BIP66)") from None
    if s > _SECP256K1_ORDER // 2:
        raise BadSignature(f"input {i}: cosigner {who}'s signature has a high S value "
                           "(nodes do not relay it)")
    if not _valid(ref, i, inp, pub, sig):
        raise BadSignature(f"input {i}: cosigner {who}'s signature does not verify for this "
                           "transaction (a damaged file, or signed for another transaction)")


def _valid(ref: _Reference, i: int, inp: _Input, pub: bytes, sig: bytes) -> bool:
    """Whether ``sig`` (DER + SIGHASH_ALL) by ``pub`` signs input ``i`` (BIP143)."""
    from embit import ec
    from embit.script import Script

    if not sig or sig[-1] != SIGHASH_ALL:
        return False
    try:
        _, s = _der_rs(sig[:-1])
        if s > _SECP256K1_ORDER // 2:
            return False
        digest = ref.psbt.tx.sighash_segwit(i, Script(inp.witness_script), inp.value,
                                            SIGHASH_ALL)
        return bool(ec.PublicKey.parse(pub).verify(ec.Signature.parse(sig[:-1]), digest))
    except Exception:  # noqa: BLE001 - embit raises several kinds for a bad signature
        return False


def _der_rs(der: bytes) -> tuple[int, int]:
    """(r, s) of a strict DER signature (BIP66's rules, without the sighash byte)."""
    n = len(der)
    if not 8 <= n <= 72 or der[0] != 0x30 or der[1] != n - 2 or der[2] != 0x02:
        raise ValueError("not DER")
    rlen = der[3]
    if 5 + rlen >= n or der[4 + rlen] != 0x02:
        raise ValueError("not DER")
    slen = der[5 + rlen]
    if rlen + slen + 6 != n:
        raise ValueError("not DER")
    r, s = der[4:4 + rlen], der[6 + rlen:]
    for part in (r, s):
        if not part or part[0] & 0x80 or (len(part) > 1 and part[0] == 0
                                           and not part[1] & 0x80):
            raise ValueError("not DER")
    return int.from_bytes(r, "big"), int.from_bytes(s, "big")


# --- the PSBT container (BIP174 key-value maps) ----------------------------------------------

def _parse(raw: bytes) -> _Psbt:
    """A version 0 PSBT, read strictly: canonical sizes, no duplicate key, exactly one map
    per input and output of the unsigned transaction, nothing after the last map."""
    from embit.transaction import Transaction

    if len(raw) > MAX_UPLOAD_BYTES:
        raise PsbtTooLarge(_too_large(len(raw)))
    if not raw.startswith(MAGIC):
        raise MalformedPsbt("not a PSBT (it does not start with 'psbt')")
    pos = len(MAGIC)
    glob, pos = _read_map(raw, pos, "the global map")
    version = glob.get(bytes([G_VERSION]))
    if version is not None and version != b"\x00\x00\x00\x00":
        raise MalformedPsbt("this is a PSBT of version "
                            f"{int.from_bytes(version, 'little')}; export it as version 0 "
                            "(the default of Sparrow, Core and hardware wallets)")
    tx_bytes = glob.get(bytes([G_UNSIGNED_TX]))
    if tx_bytes is None:
        raise MalformedPsbt("the PSBT has no unsigned transaction")
    try:
        unsigned = Transaction.parse(tx_bytes)
        canonical = unsigned.serialize() == tx_bytes
    except Exception:  # noqa: BLE001 - embit raises several kinds on garbage
        canonical = False
    if not canonical or any(i.script_sig.data or i.witness.items for i in unsigned.vin):
        raise MalformedPsbt("the PSBT's unsigned transaction is unreadable or not unsigned")
    inputs, outputs = [], []
    for n in range(len(unsigned.vin)):
        fields, pos = _read_map(raw, pos, f"input {n}'s map")
        inputs.append(fields)
    for n in range(len(unsigned.vout)):
        fields, pos = _read_map(raw, pos, f"output {n}'s map")
        outputs.append(fields)
    if pos != len(raw):
        raise MalformedPsbt("the PSBT has bytes after its last map")
    return _Psbt(glob=glob, inputs=inputs, outputs=outputs, tx_bytes=tx_bytes, tx=unsigned)


def _read_map(raw: bytes, pos: int, what: str) -> tuple[dict[bytes, bytes], int]:
    fields: dict[bytes, bytes] = {}
    while True:
        size, pos = _read_cs(raw, pos, what)
        if size == 0:
            return fields, pos
        key, pos = raw[pos:pos + size], pos + size
        size, pos = _read_cs(raw, pos, what)
        value, pos = raw[pos:pos + size], pos + size
        if pos > len(raw):
            raise MalformedPsbt(f"the PSBT is cut short (in {what})")
        if key in fields:
            raise MalformedPsbt(f"the PSBT repeats a key in {what}")
        fields[key] = value


def _read_cs(raw: bytes, pos: int, what: str) -> tuple[int, int]:
    if pos >= len(raw):
        raise MalformedPsbt(f"the PSBT is cut short (in {what})")
    first = raw[pos]
    if first < 0xFD:
        return first, pos + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    if pos + 1 + width > len(raw):
        raise MalformedPsbt(f"the PSBT is cut short (in {what})")
    value = int.from_bytes(raw[pos + 1:pos + 1 + width], "little")
    if value < {2: 0xFD, 4: 0x10000, 8: 0x100000000}[width]:
        raise MalformedPsbt(f"the PSBT has a non-canonical size (in {what})")
    return value, pos + 1 + width


def _cs(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _cs_len(n: int) -> int:
    return len(_cs(n))


def _serialize(glob: Mapping[bytes, bytes], inputs: Sequence[Mapping[bytes, bytes]],
               outputs: Sequence[Mapping[bytes, bytes]]) -> bytes:
    out = bytearray(MAGIC)
    for fields in (glob, *inputs, *outputs):
        for key in sorted(fields):
            out += _cs(len(key)) + key + _cs(len(fields[key])) + fields[key]
        out += b"\x00"
    return bytes(out)


def _txout(value: int, script: bytes) -> bytes:
    return value.to_bytes(8, "little") + _cs(len(script)) + script


def _read_txout(data: bytes) -> tuple[int, bytes]:
    if len(data) < 9:
        raise PsbtError("the reference PSBT has an unreadable witness UTXO")
    size, pos = _read_cs(data, 8, "a witness UTXO")
    if pos + size != len(data):
        raise PsbtError("the reference PSBT has an unreadable witness UTXO")
    return int.from_bytes(data[:8], "little"), data[pos:]


def _read_witness(data: bytes) -> list[bytes] | None:
    try:
        count, pos = _read_cs(data, 0, "a witness")
        items = []
        for _ in range(count):
            size, pos = _read_cs(data, pos, "a witness")
            if pos + size > len(data):
                return None
            items.append(data[pos:pos + size])
            pos += size
    except MalformedPsbt:
        return None
    return items if pos == len(data) else None


def _path_of(origin: bytes) -> tuple[int, ...]:
    if len(origin) < 4 or len(origin) % 4:
        raise PsbtError("the reference PSBT has an unreadable BIP32 derivation")
    return tuple(int.from_bytes(origin[k:k + 4], "little") for k in range(4, len(origin), 4))


def _name(kind: str, key: bytes) -> str:
    return _NAMES[kind].get(key[0], f"unknown field of type 0x{key[0]:02x}")


def _show_script(script: bytes, net: Network) -> str:
    return keys.script_address(script, net) or f"script {script.hex()}"


def _too_large(size: int) -> str:
    return (f"the upload weighs {size} bytes; a PSBT of a cold spend is far smaller (at most "
            f"{MAX_UPLOAD_BYTES} bytes are read)")


__all__ = ["BadSignature", "ChangeOutput", "ColdUtxo", "FinalTransaction",
           "ForeignKey", "IncompleteSignature", "MalformedPsbt", "NoSignature",
           "NotEnoughSignatures", "Payment", "PsbtError", "PsbtMismatch", "PsbtTooLarge",
           "SignedPsbt", "UnsignedPsbt", "build_psbt", "check_signed", "combine",
           "decode", "estimate_vsize", "finalize", "only_cosigner", "qr_svg", "to_base64"]
