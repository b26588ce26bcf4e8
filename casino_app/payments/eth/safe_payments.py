"""Payments from the cold wallet, a Safe multisig whose owner keys belong to staff and are
never on the web server: large withdrawals and hot-wallet refills.

The flow, for a withdrawal waiting in ``awaiting_approval`` (payments/withdrawals.py):

1. An admin prepares the payment (:func:`prepare_withdrawal`): the Safe transaction is
   built and fixed (ETH: to the player's address with the amount as value; a token: a
   ``transfer(player, amount)`` call to the token contract; operation CALL only) with the
   Safe's next nonce not used by another open payment, and its EIP-712 ``safeTxHash`` is
   shown on the staff page.
2. Staff members sign that hash OFFLINE with their own owner key and submit the 65-byte
   signature (:func:`add_signature`). The server recovers the signer and refuses anything
   that is not an owner of the Safe; each owner signs once and each staff member signs
   once (database constraints), and the withdrawal's ``approved_by`` / ``approved_by_2``
   name the two staff members (a CHECK keeps them different).
3. With ``required`` signatures (two, or the Safe's threshold if higher) the payment is
   ``ready``; the job side (payments/eth/safe_exec.py) sends ``execTransaction`` from the
   hot wallet, which pays the gas, as a recorded hot-wallet transaction that the batcher
   broadcasts and settles (reservation posted, fee, gas), like its own batches.

Refills (:func:`request_refill`) follow the same path with the hot wallet as recipient;
they move no ledger money (both wallets are the casino's custody), only the gas is booked.

Rejecting a withdrawal (withdrawals.reject_withdrawal) or cancelling a refill
(:func:`cancel_payment`) cancels its open payment. A payment that already has its
signatures cannot be taken back (anyone holding them can still execute it at its Safe
nonce): it becomes ``cancelling``, keeps its Safe nonce (no other payment takes it) and,
for a withdrawal, the player's money stays reserved (the withdrawal is ``rejecting``)
until the Safe uses that nonce; the job (safe_exec.py) then settles it as paid if the
Safe executed it after all, as cancelled otherwise. The owners end it by executing a
rejection (an empty Safe transaction) with that nonce in the Safe.
Functions take an optional ledger ``session`` so the staff layer (users/staff_withdrawals)
writes its audit row in the same call, and an optional :class:`SafeInfo` (read from the
node otherwise) so no chain call happens inside a database transaction.

Nothing here signs a transaction or reads a key (the web process imports this module).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from eth_keys import keys as eth_keys
from eth_keys.constants import SECPK1_N
from eth_utils import keccak
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from web3 import Web3

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments.currencies import currency
from casino_app.payments.eth import chain, keys
from casino_app.payments.eth.safe_models import SafePayment, SafePaymentSignature
from casino_app.payments.eth.watcher import chain_assets, parse_tokens
from casino_app.payments.sender import tx_hashes
from casino_app.payments.withdrawal_models import Withdrawal

log = get_logger("casino.eth.safe")

CHAIN = "ethereum"
OPEN = ("awaiting_signatures", "ready", "sent", "cancelling")
MIN_APPROVALS = 2


# --- refusals: str() is safe to show to staff ------------------------------------------------

class SafeRefused(Exception):
    """A Safe payment action that was refused; nothing was stored."""


class SafeUnavailable(SafeRefused):
    pass


class PaymentNotFound(SafeRefused):
    def __init__(self) -> None:
        super().__init__("No such Safe payment.")


class NotSignable(SafeRefused):
    pass


class BadSignature(SafeRefused):
    pass


class NotAnOwner(BadSignature):
    pass


class AlreadySigned(SafeRefused):
    pass


# --- the Safe, as read from the node -----------------------------------------------------------

@dataclass(frozen=True)
class SafeInfo:
    address: str
    chain_id: int
    nonce: int                      # the Safe's next nonce on chain
    owners: tuple[str, ...]
    threshold: int
    per_unit: dict[str, int]        # on-chain units per ledger unit, per currency
    tokens: dict[str, str]          # code -> token contract
    hot: str                        # the hot wallet (refills go there)
    block: int = 0                  # the node's head, read before the rest


def safe_address() -> str:
    """``CASINO_ETH_SAFE_ADDRESS`` (checksummed), or :class:`SafeUnavailable`."""
    st = get_settings()
    if not st.eth_rpc_url or not st.eth_safe_address:
        raise SafeUnavailable("The cold wallet is not configured (CASINO_ETH_SAFE_ADDRESS "
                              "and CASINO_ETH_RPC_URL).")
    try:
        return keys.checksum(st.eth_safe_address)
    except ValueError:
        raise SafeUnavailable("CASINO_ETH_SAFE_ADDRESS is not an address.") from None


def safe_info(w3: Web3 | None = None) -> SafeInfo:
    """The Safe's owners, threshold and nonce, and the assets, from the node."""
    address = safe_address()
    st = get_settings()
    try:
        tokens = parse_tokens(st.eth_tokens)
        hot = keys.hot_wallet_address()
        w3 = w3 or chain.connect(st.eth_rpc_url)
        block = int(w3.eth.block_number)
        safe = chain.contract(w3, "SafeL2", address)
        owners = tuple(Web3.to_checksum_address(o) for o in safe.functions.getOwners().call())
        threshold = int(safe.functions.getThreshold().call())
        nonce = int(safe.functions.nonce().call())
        assets = chain_assets(w3, tokens)
        chain_id = int(w3.eth.chain_id)
    except SafeRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - node down, not a Safe, bad settings
        log.warning("eth_safe_unreadable", error=str(exc)[:200])
        raise SafeUnavailable("The Safe cannot be read from the Ethereum node right now. "
                              "Try again in a minute.") from None
    return SafeInfo(address, chain_id, nonce, owners, threshold,
                    {a.code: a.per_unit for a in assets}, tokens, hot, block)


# --- views ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignatureView:
    owner: str
    staff_id: int
    at: datetime


@dataclass(frozen=True)
class SafePaymentView:
    id: int
    kind: str                       # withdrawal or refill
    withdrawal_id: int | None
    currency: str
    amount: int                     # ledger base units
    recipient: str
    safe: str
    chain_id: int
    to: str                         # the Safe transaction: to, value (wei), data, nonce
    value_wei: int
    data: str
    operation: int
    safe_nonce: int
    safe_tx_hash: str
    required: int
    signatures: tuple[SignatureView, ...]
    state: str
    tx_hash: str | None             # the execTransaction (latest signed version until mined)
    failure: str | None
    requested_by: int
    created_at: datetime
    updated_at: datetime

    @property
    def signed_by(self) -> tuple[int, ...]:
        return tuple(s.staff_id for s in self.signatures)


def _views(s: Session, rows: list[SafePayment]) -> list[SafePaymentView]:
    if not rows:
        return []
    sigs: dict[int, list[SignatureView]] = {}
    for sig in s.execute(select(SafePaymentSignature).where(
            SafePaymentSignature.payment_id.in_([p.id for p in rows]))
            .order_by(SafePaymentSignature.id)).scalars():
        sigs.setdefault(sig.payment_id, []).append(
            SignatureView(sig.owner, sig.staff_id, sig.created_at))
    hashes = tx_hashes(s, {p.batch_id for p in rows if p.batch_id is not None})
    return [SafePaymentView(
        p.id, p.kind, p.withdrawal_id, p.currency, p.amount, p.recipient, p.safe_address,
        p.chain_id, p.to_address, int(p.value_wei), p.call_data, p.operation, p.safe_nonce,
        p.safe_tx_hash, p.required, tuple(sigs.get(p.id, ())), p.state,
        p.tx_hash or (hashes.get(p.batch_id) if p.batch_id else None), p.failure,
        p.requested_by, p.created_at, p.updated_at) for p in rows]


def _view(s: Session, p: SafePayment) -> SafePaymentView:
    s.flush()
    return _views(s, [p])[0]


def payments(states: tuple[str, ...] | None = None, limit: int = 100,
             session: Session | None = None) -> list[SafePaymentView]:
    """Safe payments (all kinds), newest first; only those in ``states`` when given."""
    with _tx(session, readonly=True) as s:
        q = select(SafePayment).order_by(SafePayment.id.desc()).limit(limit)
        if states:
            q = q.where(SafePayment.state.in_(states))
        return _views(s, list(s.execute(q).scalars()))


def payments_for(withdrawal_ids: set[int], session: Session | None = None
                 ) -> dict[int, SafePaymentView]:
    """The latest Safe payment of each withdrawal that has one."""
    if not withdrawal_ids:
        return {}
    with _tx(session, readonly=True) as s:
        rows = list(s.execute(select(SafePayment).where(
            SafePayment.withdrawal_id.in_(withdrawal_ids)).order_by(SafePayment.id))
            .scalars())
        return {v.withdrawal_id: v for v in _views(s, rows) if v.withdrawal_id is not None}


def get_payment(payment_id: int, session: Session | None = None) -> SafePaymentView | None:
    with _tx(session, readonly=True) as s:
        p = s.get(SafePayment, payment_id)
        return None if p is None else _view(s, p)


@contextmanager
def _tx(session: Session | None, readonly: bool = False) -> Iterator[Session]:
    if session is not None:
        yield session
    else:
        with ledger_tx(readonly=readonly) as s:
            yield s


# --- building the Safe transaction ---------------------------------------------------------------

def safe_call(info: SafeInfo, code: str, recipient: str, amount: int) -> tuple[str, int, bytes]:
    """(to, value in wei, data) of the Safe transaction paying ``amount`` ledger units of
    ``code`` to ``recipient``."""
    per = info.per_unit.get(code)
    if per is None:
        raise SafeUnavailable(f"{code} is not configured on this chain.")
    if code == "ETH":
        return recipient, amount * per, b""
    return info.tokens[code], 0, chain.erc20_transfer_data(recipient, amount * per)


def _hash_of(p: SafePayment) -> str:
    return Web3.to_hex(chain.safe_tx_hash(
        p.chain_id, p.safe_address, p.to_address, int(p.value_wei),
        bytes(HexBytes(p.call_data)), p.safe_nonce, operation=p.operation))


def _free_nonce(s: Session, info: SafeInfo) -> int:
    """The lowest Safe nonce from the chain's next one that no open payment holds (a
    cancelled payment's nonce is taken again, so later payments are not stuck behind it;
    a ``cancelling`` one's is not: its signatures could still use it)."""
    used = set(s.execute(select(SafePayment.nonce_slot).where(
        SafePayment.chain == CHAIN, SafePayment.safe_address == info.address,
        SafePayment.nonce_slot >= info.nonce)).scalars())
    n = info.nonce
    while n in used:
        n += 1
    return n


def _create(s: Session, info: SafeInfo, kind: str, code: str, amount: int, recipient: str,
            staff_id: int, withdrawal_id: int | None) -> SafePayment:
    to, value, data = safe_call(info, code, recipient, amount)
    for _ in range(5):  # a concurrent prepare may take the same nonce: the next one then
        now = utcnow()
        nonce = _free_nonce(s, info)
        p = SafePayment(chain=CHAIN, kind=kind, withdrawal_id=withdrawal_id,
                        active_withdrawal_id=withdrawal_id, currency=code, amount=amount,
                        recipient=recipient, safe_address=info.address,
                        chain_id=info.chain_id, to_address=to, value_wei=str(value),
                        call_data=Web3.to_hex(data), operation=0, safe_nonce=nonce,
                        nonce_slot=nonce, safe_tx_hash="",
                        prepared_block=info.block or None,
                        required=max(MIN_APPROVALS, info.threshold),
                        state="awaiting_signatures", requested_by=staff_id, created_at=now,
                        updated_at=now)
        p.safe_tx_hash = _hash_of(p)
        try:
            with s.begin_nested():
                s.add(p)
                s.flush()
            break
        except IntegrityError:
            continue
    else:
        raise SafeUnavailable("Another payment is being prepared. Try again.")
    log.info("eth_safe_payment_prepared", payment_id=p.id, kind=kind, currency=code,
             amount=amount, safe_nonce=p.safe_nonce, staff_id=staff_id)
    return p


def prepare_withdrawal(withdrawal_id: int, staff_id: int, *, session: Session | None = None,
                       info: SafeInfo | None = None) -> SafePaymentView:
    """The Safe payment of a withdrawal waiting for approval, created on first use (an
    existing open one is returned as it is)."""
    info = info or safe_info()
    with _tx(session) as s:
        w = s.execute(select(Withdrawal).where(Withdrawal.id == withdrawal_id)
                      .with_for_update()).scalar_one_or_none()
        if w is None or w.state != "awaiting_approval":
            raise NotSignable("This withdrawal is not waiting for approval.")
        if w.chain != CHAIN:  # e.g. a large Bitcoin withdrawal: its cold wallet is not a Safe
            raise NotSignable(f"This is a {w.chain} withdrawal: the Safe pays Ethereum "
                              "only. It waits for its own cold-wallet payment (or reject it).")
        found = s.execute(select(SafePayment).where(
            SafePayment.active_withdrawal_id == w.id)).scalar_one_or_none()
        if found is not None:
            return _view(s, found)
        p = _create(s, info, "withdrawal", w.currency, w.amount, w.address, staff_id, w.id)
        return _view(s, p)


def request_refill(currency_code: str, amount: int | str, staff_id: int, *,
                   session: Session | None = None, info: SafeInfo | None = None
                   ) -> SafePaymentView:
    """A payment from the Safe to the hot wallet of ``amount`` (base units, or a decimal
    string) of ``currency_code``; owners sign it like a withdrawal."""
    if not isinstance(currency_code, str):
        raise NotSignable("Choose a currency.")
    try:
        cur = currency(currency_code.strip().upper())
    except ValueError as exc:
        raise NotSignable(str(exc)) from None
    if isinstance(amount, bool) or not isinstance(amount, int | str):
        raise NotSignable("Enter an amount.")
    try:
        value = amount if isinstance(amount, int) else cur.parse(amount.strip())
    except ValueError as exc:
        raise NotSignable(str(exc)) from None
    if value <= 0:
        raise NotSignable("Enter a positive amount.")
    info = info or safe_info()
    if cur.code not in info.per_unit:
        raise NotSignable(f"{cur.code} is not held on this chain.")
    with _tx(session) as s:
        p = _create(s, info, "refill", cur.code, value, info.hot, staff_id, None)
        return _view(s, p)


# --- signatures ---------------------------------------------------------------------------------

def _parse_signature(text: object) -> tuple[int, int, int]:
    if not isinstance(text, str):
        raise BadSignature("Paste the signature: 0x followed by 130 hex characters.")
    t = "".join(text.split())
    t = t[2:] if t[:2].lower() == "0x" else t
    if len(t) != 130:
        raise BadSignature("A signature is 65 bytes: 0x followed by 130 hex characters.")
    try:
        raw = bytes.fromhex(t)
    except ValueError:
        raise BadSignature("A signature is written in hex (0-9, a-f).") from None
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]


def _recover(digest: bytes, r: int, s: int, v: int) -> str | None:
    try:
        sig = eth_keys.Signature(vrs=(v, r, s))
        return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except Exception:  # noqa: BLE001 - out-of-range r/s, no such point
        return None


def verify_signature(safe_tx_hash: str, signature: object, owners: tuple[str, ...]
                     ) -> tuple[str, str]:
    """(owner, signature as the Safe takes it) of an owner's signature of ``safe_tx_hash``.

    Accepted: a signature of the hash itself (EIP-712 typed data, ``cast wallet sign
    --no-hash``; v 27/28 or 0/1) and an ``eth_sign`` / ``personal_sign`` of the 32-byte
    hash (v 31/32 as the Safe marks it, or 27/28 when only that recovers to an owner).
    Contract and pre-approved signatures (v 0/1 in the Safe's sense) are not accepted.
    """
    r, s, v = _parse_signature(signature)
    digest = bytes(HexBytes(safe_tx_hash))
    prefixed = keccak(b"\x19Ethereum Signed Message:\n32" + digest)
    tries: list[tuple[bytes, int, int]] = []   # (digest, recovery id, Safe's v)
    if v in (0, 1, 27, 28):
        rid = v % 27
        tries += [(digest, rid, 27 + rid), (prefixed, rid, 31 + rid)]
    elif v in (31, 32):
        tries.append((prefixed, v - 31, v))
    else:
        raise BadSignature("This is not an owner's ECDSA signature (v must be 27 or 28).")
    if not (0 < r < SECPK1_N and 0 < s <= SECPK1_N // 2):
        raise BadSignature("This signature is malformed (r or s out of range).")
    recovered = []
    for d, rid, safe_v in tries:
        owner = _recover(d, r, s, rid)
        if owner is not None and owner in owners:
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([safe_v])
            return owner, Web3.to_hex(sig)
        if owner is not None:
            recovered.append(owner)
    raise NotAnOwner("This signature is not from an owner of the Safe"
                     + (f" (it recovers to {recovered[0]})." if recovered else ".")
                     + " Sign the Safe transaction hash shown with your owner key.")


def add_signature(payment_id: int, staff_id: int, signature: object, *,
                  session: Session | None = None, info: SafeInfo | None = None
                  ) -> SafePaymentView:
    """Store an owner's signature submitted by ``staff_id`` (an admin: checked by the
    staff layer). For a withdrawal it is that staff member's approval; with ``required``
    signatures from different staff members the payment is ready to be sent."""
    info = info or safe_info()
    with _tx(session) as s:
        p = s.execute(select(SafePayment).where(SafePayment.id == payment_id)
                      .with_for_update()).scalar_one_or_none()
        if p is None:
            raise PaymentNotFound()
        if p.state != "awaiting_signatures":
            raise NotSignable({"ready": "This payment has all its signatures already.",
                               "sent": "This payment was already sent.",
                               "cancelling": "This payment was rejected and is being "
                                             "cancelled: do not sign it."}.get(
                p.state, f"This payment is {p.state}."))
        if (p.safe_address, p.chain_id) != (info.address, info.chain_id) \
                or _hash_of(p) != p.safe_tx_hash:
            raise NotSignable("This payment does not match the configured Safe; reject it "
                              "and prepare it again.")
        if p.safe_nonce < info.nonce:
            raise NotSignable("The Safe has used this payment's nonce for another "
                              "transaction; it will be cancelled (prepare it again).")
        owner, sig = verify_signature(p.safe_tx_hash, signature, info.owners)
        mine = s.execute(select(SafePaymentSignature).where(
            SafePaymentSignature.payment_id == p.id)).scalars().all()
        if any(x.staff_id == staff_id for x in mine):
            raise AlreadySigned("You already signed this payment: a different staff member "
                                "must give the second approval.")
        if any(x.owner == owner for x in mine):
            raise AlreadySigned(f"Owner {owner} already signed this payment: the next "
                                "signature must come from another owner.")
        w = None
        if p.withdrawal_id is not None:
            w = s.execute(select(Withdrawal).where(Withdrawal.id == p.withdrawal_id)
                          .with_for_update()).scalar_one()
            if w.state != "awaiting_approval":
                raise NotSignable("This withdrawal is not waiting for approval.")
        now = utcnow()
        try:
            with s.begin_nested():
                s.add(SafePaymentSignature(payment_id=p.id, owner=owner, signature=sig,
                                           staff_id=staff_id, created_at=now))
                if w is not None:
                    if w.approved_by is None:
                        w.approved_by = staff_id
                    elif w.approved_by_2 is None:
                        w.approved_by_2 = staff_id
                    w.updated_at = now
                s.flush()
        except IntegrityError:
            raise AlreadySigned("This owner or staff member has already signed this "
                                "payment.") from None
        count = len(mine) + 1
        if count >= p.required:
            p.state = "ready"
        p.updated_at = now
        log.info("eth_safe_payment_signed", payment_id=p.id, owner=owner, staff_id=staff_id,
                 signatures=count, required=p.required)
        return _view(s, p)


def cancel_payment(payment_id: int, staff_id: int, reason: str, *,
                   session: Session | None = None) -> SafePaymentView:
    """Cancel a refill that is not sent yet (withdrawals: withdrawals.reject_withdrawal):
    ``cancelled``, or ``cancelling`` when it has its signatures (:func:`take_back`)."""
    with _tx(session) as s:
        p = s.execute(select(SafePayment).where(SafePayment.id == payment_id)
                      .with_for_update()).scalar_one_or_none()
        if p is None:
            raise PaymentNotFound()
        if p.kind != "refill":
            raise NotSignable("Reject the withdrawal instead.")
        if p.state not in ("awaiting_signatures", "ready"):
            raise NotSignable(f"This payment is {p.state}: it can no longer be cancelled.")
        take_back(p, reason or "cancelled by staff")
        log.info("eth_safe_payment_cancelled", payment_id=p.id, staff_id=staff_id,
                 state=p.state)
        return _view(s, p)


def _cancel(p: SafePayment, reason: str) -> None:
    p.state, p.failure, p.updated_at = "cancelled", reason[:200], utcnow()
    p.nonce_slot = p.active_withdrawal_id = None


def cancelling_note(safe_nonce: int) -> str:
    """What staff must know about a ``cancelling`` payment (shown on the staff page)."""
    return (f"Cancelling: waiting for the Safe nonce {safe_nonce} to be used by another "
            "transaction; the owners should execute a rejection (an empty transaction "
            f"with nonce {safe_nonce}) in the Safe. If they execute this payment instead, "
            "it is paid.")


def take_back(p: SafePayment, reason: str) -> None:
    """Staff take back an unsent payment (awaiting signatures or ready; row locked):
    cancelled at once unless it has its signatures (``ready``): anyone holding them can
    still execute it, so it is ``cancelling`` and keeps its Safe nonce (and its
    withdrawal) until the Safe uses that nonce (safe_exec.py settles it then)."""
    if p.state != "ready":
        _cancel(p, reason)
        return
    p.state, p.failure, p.updated_at = "cancelling", reason[:200], utcnow()
    log.warning("eth_safe_payment_cancelling", payment_id=p.id, safe_nonce=p.safe_nonce)


def cancel_for_withdrawal(s: Session, withdrawal_id: int, reason: str) -> bool:
    """Take back the open, unsent payment of a withdrawal that staff rejected (in the
    caller's transaction, the withdrawal row locked); True when it is ``cancelling``: the
    withdrawal's money must stay reserved until the Safe uses its nonce."""
    held = False
    for p in s.execute(select(SafePayment).where(
            SafePayment.active_withdrawal_id == withdrawal_id,
            SafePayment.state.in_(("awaiting_signatures", "ready"))).with_for_update()
            ).scalars():
        take_back(p, reason)
        held = held or p.state == "cancelling"
    return held


def packed_signatures(s: Session, payment_id: int) -> bytes:
    """The stored signatures in the Safe's order (owners ascending)."""
    rows = s.execute(select(SafePaymentSignature).where(
        SafePaymentSignature.payment_id == payment_id)).scalars().all()
    return chain.pack_signatures(chain.SafeSignature(r.owner, bytes(HexBytes(r.signature)))
                                 for r in rows)
