"""Payments from the Bitcoin cold wallet by PSBT: large withdrawals and refills of the hot
wallet, approved by two different admins, each bringing a different cosigner's signature.

The cold wallet is the 2-of-3 P2WSH multisig of payments/btc/cold.py: the server holds
the cosigners' account PUBLIC keys only (``CASINO_BTC_COLD_KEYS``). Nothing here signs or
reads a key: the web process runs all of it.

The flow (users/staff_withdrawals.py checks the caller is an admin and audits each step):

1. **Prepare** (:func:`plan_withdrawal` / :func:`plan_refill`, then :func:`record_plan`; or
   :func:`prepare_withdrawal` / :func:`request_refill` for both): a large withdrawal
   waiting in ``awaiting_approval`` (or a refill of the hot wallet, its amount in BTC)
   gets a PSBT: coin selection over the cold wallet's confirmed coins (largest first, the
   fewest inputs), one output paying the player's address (or the hot wallet) the exact
   amount, change back to a cold change address (``(1, k)``: the next after every change
   index the watcher saw and every live payment took, never beyond the watcher's window),
   at the node's fee rate within ``CASINO_BTC_FEE_FLOOR`` and ``_CEILING``
   (payments/btc/psbt.build_psbt; each input carries its funding transaction when the
   node has it, for hardware wallets). The node is read before any database
   transaction; the coins are then reserved (``btc_utxos`` ``reserved``, ``spent_by`` =
   the transaction's id, which the unsigned transaction fixes: segwit) IN THE SAME ledger
   transaction that stores the payment and its reference PSBT; a coin another payment
   took meanwhile makes the recording fail (:class:`Stale`) and the caller prepares again.
2. **Sign** (:func:`add_signature`): each admin downloads the PSBT (file, base64, QR),
   signs it on their own device with their cosigner key and uploads the result. The
   upload is checked strictly against the stored reference (psbt.check_signed: the same
   unsigned transaction byte for byte, valid BIP143 signatures by the wallet's keys, ...);
   a refused upload changes nothing. The admin is counted for ONE cosigner (the first
   of their upload not counted yet); ``btc_cold_signatures`` is UNIQUE per payment on the
   staff member and on the cosigner, so the same person uploading twice, or uploading two
   cosigners' signatures at once, counts once, and a cosigner's key counts once whoever
   brings it. A withdrawal's ``approved_by`` / ``approved_by_2`` name the two admins (a
   CHECK keeps them different).
3. **Broadcast**: with ``required`` (the wallet's threshold) admins counted, the counted
   signatures (exactly those: one cosigner per admin) are combined and finalised, and in
   the SAME ledger transaction as the last approval the transaction is recorded as a
   ``withdrawal_batches`` row of kind ``cold`` (``from_address`` :data:`SENDER`, its plan
   as the hot wallet's batches write it, version 0 with the raw bytes), the payment
   ``sent`` and the withdrawal ``batched``; only after that commits is it broadcast
   (:func:`broadcast`). From there the ``btc-batch`` job (payments/btc/cold_sender.py)
   rebroadcasts the same bytes after a crash, settles it once after the confirmations
   (reservation and fee posted, the miner fee booked fees -> custody) and watches it for
   reorgs, like the hot wallet's batches.

**Taking a payment back** (:func:`take_back`: a rejected withdrawal, through the chain
adapter; :func:`cancel_refill`). Before the approvals are complete the payment is
cancelled and its coins are free again, UNLESS the uploads so far carried signatures of
``required`` different cosigners (``seen``; one admin may have uploaded a PSBT signed with
two devices): whoever holds those files can finalise and broadcast the transaction, so
it cannot be taken back at once. It becomes ``cancelling``: its coins stay reserved, a
withdrawal stays reserved too (``rejecting``), and the job settles it when one of its coins
is spent at the confirmed depth: by the payment itself (someone broadcast it: paid,
audited ``btc.cold_rejected_payment_executed`` and logged as an error) or by another
transaction (cancelled; the reservation is voided). Staff end it by spending one of its
coins back to the cold wallet with their cosigners (a "double spend to ourselves", see
the README's runbook); nothing on the server can do it for them. A payment that was sent
(fully approved) cannot be taken back: it is on the network.

What is not ours to decide here: who is an admin (users/staff_withdrawals.py), the chain's
view of the coins (the watcher), the settling (the job).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments import holds, ledger
from casino_app.payments import sender as shared_sender
from casino_app.payments.btc import addresses, keys, psbt, utxos
from casino_app.payments.btc import cold as cold_wallets
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.cold import ColdWallet
from casino_app.payments.btc.models import BtcColdPayment, BtcColdSignature, BtcUtxo
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.currencies import currency
from casino_app.payments.withdrawal_models import (
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)

if TYPE_CHECKING:
    from casino_app.security import outbox

log = get_logger("casino.btc.cold")

CHAIN = addresses.CHAIN
CURRENCY = "BTC"
SENDER = "cold"     # withdrawal_batches.from_address of the cold wallet's recorded spends
KIND = "cold"       # and their kind
LIVE = ("awaiting_signatures", "sent", "cancelling")   # payments holding their coins
MAX_INPUTS = 50     # a cold spend of more coins is refused: consolidate first
MIN_CONFIRMATIONS = 1
ON_HOLD = ("The player is under staff review (a hold): release the hold before this "
           "withdrawal is prepared or approved.")


# --- refusals: str() is safe to show to staff ------------------------------------------------

class ColdRefused(Exception):
    """A cold payment action that was refused; nothing was stored."""


class ColdUnavailable(ColdRefused):
    pass


class PaymentNotFound(ColdRefused):
    def __init__(self) -> None:
        super().__init__("No such cold payment.")


class NotSignable(ColdRefused):
    pass


class BadUpload(ColdRefused):
    pass


class AlreadySigned(ColdRefused):
    pass


class ColdShort(ColdRefused):
    pass


class Stale(Exception):
    """The coins or the change address of a plan were taken by another payment between
    planning and recording: plan again."""


# --- views ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColdSignatureView:
    cosigner: str        # the cosigner's master key fingerprint
    staff_id: int        # the admin who uploaded it
    at: datetime


@dataclass(frozen=True)
class ColdPaymentView:
    id: int
    kind: str                       # withdrawal or refill
    withdrawal_id: int | None
    amount: int                     # satoshis to the recipient
    recipient: str
    txid: str                       # fixed by the unsigned transaction
    psbt: str                       # the reference PSBT, base64
    inputs: int
    input_total: int
    fee: int
    vsize: int
    fee_rate: int
    change_value: int
    required: int
    signatures: tuple[ColdSignatureView, ...]
    seen: tuple[str, ...]           # cosigners whose signatures were uploaded (counted or not)
    state: str
    batch_state: str | None         # its recorded transaction: signed (not broadcast yet),
                                    # sent, confirmed, failed
    block: int | None
    failure: str | None
    requested_by: int
    created_at: datetime
    updated_at: datetime

    @property
    def signed_by(self) -> tuple[int, ...]:
        return tuple(s.staff_id for s in self.signatures)

    @property
    def filename(self) -> str:
        return f"hashhouse-{self.kind}-{self.withdrawal_id or self.id}-{self.txid[:8]}.psbt"

    @property
    def spendable_uploads(self) -> bool:
        """Signatures of enough cosigners were uploaded (by anyone) to spend it."""
        return len(self.seen) >= self.required


@dataclass(frozen=True)
class Recorded:
    """A fully approved payment, recorded as a transaction to broadcast."""

    batch_id: int
    txid: str
    raw: str


@dataclass(frozen=True)
class Signed:
    """An accepted upload: the payment, the cosigner the admin is counted for, the
    cosigners of the upload that were not counted (already counted, or one person's
    second key), and the transaction to broadcast when this was the last approval."""

    view: ColdPaymentView
    cosigner: str
    not_counted: tuple[str, ...]
    recorded: Recorded | None


@dataclass(frozen=True)
class ColdBalance:
    """The cold wallet's coins as the watcher recorded them (satoshis): confirmed and
    unspent, reserved by a payment, and unconfirmed (in the mempool)."""

    confirmed: int
    reserved: int
    unconfirmed: int
    coins: int


def _inputs(p: BtcColdPayment) -> list[list[Any]]:
    """[txid, vout, value, chain, index, script hex] of each coin the payment spends."""
    return json.loads(p.inputs)


def _views(s: Session, rows: Sequence[BtcColdPayment]) -> list[ColdPaymentView]:
    if not rows:
        return []
    sigs: dict[int, list[BtcColdSignature]] = {}
    for sig in s.execute(select(BtcColdSignature).where(
            BtcColdSignature.payment_id.in_([p.id for p in rows]))
            .order_by(BtcColdSignature.id)).scalars():
        sigs.setdefault(sig.payment_id, []).append(sig)
    batches = {b.id: (b.state, b.block_number) for b in s.execute(select(WithdrawalBatch).where(
        WithdrawalBatch.id.in_([p.batch_id for p in rows if p.batch_id]))).scalars()} \
        if any(p.batch_id for p in rows) else {}
    out = []
    for p in rows:
        mine = sigs.get(p.id, [])
        seen = sorted({fp for r in mine for fp in r.seen.split(",") if fp})
        coins = _inputs(p)
        state, block = batches.get(p.batch_id, (None, None)) if p.batch_id else (None, None)
        out.append(ColdPaymentView(
            p.id, p.kind, p.withdrawal_id, p.amount, p.recipient, p.txid, p.psbt,
            len(coins), sum(int(c[2]) for c in coins), p.fee, p.vsize, p.fee_rate,
            p.change_value, p.required,
            tuple(ColdSignatureView(r.cosigner, r.staff_id, r.created_at) for r in mine),
            tuple(seen), p.state, state, block, p.failure, p.requested_by, p.created_at,
            p.updated_at))
    return out


def _view(s: Session, p: BtcColdPayment) -> ColdPaymentView:
    return _views(s, [p])[0]


def payments_for(withdrawal_ids: Iterable[int], session: Session | None = None
                 ) -> dict[int, ColdPaymentView]:
    """withdrawal id -> its live cold payment, or its latest one."""
    ids = sorted(set(withdrawal_ids))

    def read(s: Session) -> dict[int, ColdPaymentView]:
        if not ids:
            return {}
        rows = s.execute(select(BtcColdPayment).where(
            BtcColdPayment.withdrawal_id.in_(ids)).order_by(BtcColdPayment.id)).scalars().all()
        out: dict[int, ColdPaymentView] = {}
        for v in _views(s, rows):
            if v.withdrawal_id is None:  # the query selected payments of these withdrawals
                continue
            best = out.get(v.withdrawal_id)
            if best is None or v.state in LIVE or best.state not in LIVE:
                out[v.withdrawal_id] = v
        return out

    if session is not None:
        return read(session)
    with ledger_tx(readonly=True) as s:
        return read(s)


def refills(limit: int = 30, session: Session | None = None) -> list[ColdPaymentView]:
    """The latest refills of the hot wallet from cold, newest first."""
    def read(s: Session) -> list[ColdPaymentView]:
        return _views(s, s.execute(select(BtcColdPayment).where(
            BtcColdPayment.chain == CHAIN, BtcColdPayment.kind == "refill")
            .order_by(BtcColdPayment.id.desc()).limit(limit)).scalars().all())

    if session is not None:
        return read(session)
    with ledger_tx(readonly=True) as s:
        return read(s)


def get_payment(payment_id: int) -> ColdPaymentView | None:
    with ledger_tx(readonly=True) as s:
        p = s.get(BtcColdPayment, payment_id)
        return None if p is None else _view(s, p)


def cold_balance(session: Session | None = None) -> ColdBalance:
    """What the cold wallet holds, from the UTXO set (for a staff wallets view)."""
    def read(s: Session) -> ColdBalance:
        rows = s.execute(select(BtcUtxo.state, BtcUtxo.block_height, BtcUtxo.amount).where(
            BtcUtxo.chain == CHAIN, BtcUtxo.role == "cold",
            BtcUtxo.state.in_(("unspent", "reserved")))).all()
        return ColdBalance(
            sum(a for st, h, a in rows if st == "unspent" and h is not None),
            sum(a for st, _, a in rows if st == "reserved"),
            sum(a for st, h, a in rows if st == "unspent" and h is None), len(rows))

    if session is not None:
        return read(session)
    with ledger_tx(readonly=True) as s:
        return read(s)


# --- the wallet and the node -----------------------------------------------------------------

def wallet() -> ColdWallet:
    """The configured cold wallet, or ColdUnavailable."""
    try:
        found = cold_wallets.wallet_from_settings()
    except ConfigError as exc:
        raise ColdUnavailable(str(exc)) from None
    if found is None:
        raise ColdUnavailable("The Bitcoin cold wallet is not configured "
                              "(CASINO_BTC_COLD_KEYS).")
    return found


def _rpc() -> BitcoinRPC:
    st = get_settings()
    if not st.btc_rpc_url:
        raise ColdUnavailable("No Bitcoin node is configured (CASINO_BTC_RPC_URL).")
    return BitcoinRPC.from_settings(st)


def _unreadable(exc: Exception) -> ColdUnavailable:
    log.warning("btc_cold_node_unreadable", error=str(exc)[:200])
    return ColdUnavailable("The Bitcoin node cannot be read right now. Try again in a minute.")


def fee_rate(rpc: BitcoinRPC) -> int:
    """sat/vB: the node's estimate for CASINO_BTC_FEE_TARGET blocks (the fallback without
    one), within the floor and the ceiling (the hot wallet's rule)."""
    st = get_settings()
    try:
        estimate = rpc.estimate_fee(st.btc_fee_target).sat_per_vb
    except Exception as exc:  # noqa: BLE001 - node down or refusing: nothing prepared
        raise _unreadable(exc) from None
    rate = st.btc_fee_fallback if estimate is None else estimate
    return min(max(rate, st.btc_fee_floor), st.btc_fee_ceiling)


# --- preparing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Coin:
    txid: str
    vout: int
    value: int
    script: bytes
    chain: int
    index: int


@dataclass(frozen=True)
class Planned:
    """A PSBT built from the coins the ledger showed, not stored yet (:func:`record_plan`);
    ``existing``: the withdrawal already has a live payment (nothing to record)."""

    kind: str
    withdrawal_id: int | None
    amount: int
    recipient: str
    built: psbt.UnsignedPsbt | None
    coins: tuple[_Coin, ...]
    change_index: int | None
    fee_rate: int
    required: int
    existing: ColdPaymentView | None = None


def _cold_coins(s: Session) -> list[_Coin]:
    """Confirmed unspent cold coins; never the change of a cold payment not settled yet
    (``utxos.unsettled_txids``: its cosigners may still replace it)."""
    rows = s.execute(select(BtcUtxo).where(
        BtcUtxo.chain == CHAIN, BtcUtxo.role == "cold", BtcUtxo.state == "unspent",
        BtcUtxo.block_height.is_not(None),
        BtcUtxo.txid.not_in(utxos.unsettled_txids(CHAIN)))).scalars()
    return [_Coin(r.txid, r.vout, r.amount, bytes.fromhex(r.script_pubkey), r.key_chain,
                  r.key_index) for r in rows]


def _change_index(s: Session) -> int:
    """The next cold change index: after every one the watcher saw paid and every live
    payment took; refused beyond the watcher's window (it would not see the change)."""
    seen = addresses.highest_seen(s, "cold", cold_wallets.CHANGE)
    taken = s.execute(select(func.max(BtcColdPayment.change_index)).where(
        BtcColdPayment.chain == CHAIN, BtcColdPayment.state.in_(LIVE))).scalar_one()
    top = -1 if seen is None else seen
    k = max(top, -1 if taken is None else taken) + 1
    if k > top + addresses.CHANGE_GAP:
        raise NotSignable("Too many cold payments are waiting: their change addresses would "
                          "be beyond what the watcher looks at. Finish or cancel some first.")
    return k


def _select(pool: Sequence[_Coin], amount: int, script: bytes, rate: int,
            w: ColdWallet) -> list[_Coin]:
    """Largest first, until the payment and the fee (with a change output) are paid."""
    coins = sorted(pool, key=lambda c: (-c.value, c.txid, c.vout))
    taken: list[_Coin] = []
    for c in coins[:MAX_INPUTS]:
        taken.append(c)
        size = psbt.estimate_vsize(len(taken), [script, bytes(34)], w.threshold,
                                   len(w.cosigners))
        if sum(x.value for x in taken) >= amount + rate * size:
            return taken
    total = sum(c.value for c in coins)
    raise ColdShort(f"The cold wallet's confirmed coins ({keys.format_btc(total)} BTC in "
                    f"{len(coins)} coins; at most {MAX_INPUTS} per payment) do not pay "
                    f"{keys.format_btc(amount)} BTC and the fee at {rate} sat/vB.")


def _funding(rpc: BitcoinRPC, coins: Sequence[_Coin]) -> dict[str, bytes]:
    """The funding transactions of the coins (hardware wallets check amounts against
    them); whatever the node cannot give is left out (the witness UTXO is enough for
    Sparrow, Core and Electrum)."""
    txids = sorted({c.txid for c in coins})
    try:
        found = rpc.transactions(txids)
    except Exception as exc:  # noqa: BLE001 - optional metadata
        log.warning("btc_cold_funding_unknown", error=str(exc)[:200])
        return {}
    return {t: tx.raw for t, tx in zip(txids, found, strict=True)
            if tx is not None and tx.raw is not None}


def _plan(kind: str, withdrawal_id: int | None, amount: int, recipient: str,
          rpc: BitcoinRPC | None, w: ColdWallet) -> Planned:
    net = w.network
    try:
        script = keys.validate_address(recipient, net).script_pubkey
    except ValueError:
        raise NotSignable(f"The address {recipient} is not valid on {net.label}: reject "
                          "this withdrawal.") from None
    own = rpc is None
    node = rpc or _rpc()
    try:
        rate = fee_rate(node)
        head = node.block_count()
        with ledger_tx(readonly=True) as s:
            pool = _cold_coins(s)
            change_index = _change_index(s)
            used = set(s.execute(select(BtcColdPayment.txid).where(
                BtcColdPayment.chain == CHAIN)).scalars())
        chosen = _select(pool, amount, script, rate, w)
        funding = _funding(node, chosen)
    finally:
        if own:
            node.close()

    def build(with_funding: bool, locktime: int) -> psbt.UnsignedPsbt:
        utxos = [psbt.ColdUtxo(c.txid, c.vout, c.value, c.script, c.chain, c.index,
                               funding.get(c.txid) if with_funding else None)
                 for c in chosen]
        return psbt.build_psbt(w, utxos, [psbt.Payment(script, amount)], fee_rate=rate,
                               change_index=change_index, locktime=locktime)

    # nLockTime: the node's height (as wallets set it against fee sniping), lowered until
    # the transaction is one no earlier payment had: a payment cancelled and asked for
    # again the same way would otherwise be the same transaction, and the signatures
    # uploaded for the cancelled one would count for the new one.
    try:
        for locktime in range(max(0, head), max(-1, head - 50), -1):
            try:
                built = build(True, locktime)
            except psbt.PsbtTooLarge:
                built = build(False, locktime)
            if built.txid not in used:
                break
        else:
            raise NotSignable("The PSBT cannot be built: every nearby lock time gives the "
                              "transaction of an earlier payment. Try again after a block.")
    except psbt.PsbtError as exc:
        raise NotSignable(f"The PSBT cannot be built: {exc}") from None
    return Planned(kind, withdrawal_id, amount, recipient, built, tuple(chosen),
                   change_index if built.change is not None else None, rate, w.threshold)


def plan_withdrawal(withdrawal_id: int, *, rpc: BitcoinRPC | None = None,
                    cold: ColdWallet | None = None) -> Planned:
    """The PSBT paying a large BTC withdrawal waiting for approval (reads the node; stores
    nothing); ``existing`` when it has a live payment already."""
    w_ = cold or wallet()
    with ledger_tx(readonly=True) as s:
        w = s.get(Withdrawal, withdrawal_id)
        if w is None or w.state != "awaiting_approval":
            raise NotSignable("This withdrawal is not waiting for approval.")
        if w.chain != CHAIN:
            raise NotSignable(f"This is a {w.chain} withdrawal: the Bitcoin cold wallet pays "
                              "Bitcoin only.")
        found = s.execute(select(BtcColdPayment).where(
            BtcColdPayment.active_withdrawal_id == w.id)).scalar_one_or_none()
        if found is not None:
            return Planned("withdrawal", w.id, w.amount, w.address, None, (), None, 0,
                           w_.threshold, _view(s, found))
        if holds.on_hold(s, w.player_id):
            raise NotSignable(ON_HOLD)
        amount, address = w.amount, w.address
    return _plan("withdrawal", withdrawal_id, amount, address, rpc, w_)


def parse_refill(amount: object) -> int:
    """A refill amount in satoshis: an int, or the BTC text an admin typed."""
    if isinstance(amount, bool) or not isinstance(amount, int | str):
        raise NotSignable("Enter an amount in BTC, e.g. 0.5.")
    try:
        value = amount if isinstance(amount, int) else currency(CURRENCY).parse(amount)
    except ValueError as exc:
        raise NotSignable(str(exc)) from None
    if value <= 0:
        raise NotSignable("Enter a positive amount.")
    return value


def plan_refill(amount: object, *, rpc: BitcoinRPC | None = None,
                cold: ColdWallet | None = None) -> Planned:
    """The PSBT moving ``amount`` (satoshis, or BTC text) from cold to the hot wallet."""
    value = parse_refill(amount)
    w_ = cold or wallet()
    try:
        hot = keys.hot_wallet_address(network=w_.network)
    except ConfigError as exc:
        raise ColdUnavailable(str(exc)) from None
    return _plan("refill", None, value, hot, rpc, w_)


def record_plan(plan: Planned, staff_id: int, *, audit: outbox.Entry | None = None
                ) -> tuple[ColdPaymentView, bool]:
    """Store a planned payment and reserve its coins, in one ledger transaction (the
    audit row ``audit`` staged in it). (view, True) when stored; (the live payment, False)
    when the withdrawal has one already. Stale when a coin or the change address was
    taken meanwhile (nothing stored: plan again)."""
    if plan.existing is not None:
        return plan.existing, False
    if plan.built is None:
        raise RuntimeError("a cold payment plan without a payment")
    now = utcnow()
    with ledger_tx() as s:
        if plan.withdrawal_id is not None:
            w = s.execute(select(Withdrawal).where(Withdrawal.id == plan.withdrawal_id)
                          .with_for_update()).scalar_one_or_none()
            if w is None or w.state != "awaiting_approval":
                raise NotSignable("This withdrawal is not waiting for approval.")
            found = s.execute(select(BtcColdPayment).where(
                BtcColdPayment.active_withdrawal_id == w.id)).scalar_one_or_none()
            if found is not None:
                return _view(s, found), False
        if plan.change_index is not None and s.execute(select(BtcColdPayment.id).where(
                BtcColdPayment.chain == CHAIN, BtcColdPayment.state.in_(LIVE),
                BtcColdPayment.change_index == plan.change_index)).first() is not None:
            raise Stale()
        n = s.execute(update(BtcUtxo).where(
            BtcUtxo.chain == CHAIN, BtcUtxo.role == "cold",
            tuple_(BtcUtxo.txid, BtcUtxo.vout).in_([(c.txid, c.vout) for c in plan.coins]),
            BtcUtxo.state == "unspent", BtcUtxo.block_height.is_not(None))
            .values(state="reserved", spent_by=plan.built.txid, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if n != len(plan.coins):
            raise Stale()
        change = plan.built.change
        p = BtcColdPayment(
            chain=CHAIN, kind=plan.kind, withdrawal_id=plan.withdrawal_id,
            active_withdrawal_id=plan.withdrawal_id, amount=plan.amount,
            recipient=plan.recipient, txid=plan.built.txid, psbt=plan.built.base64,
            inputs=json.dumps([[c.txid, c.vout, c.value, c.chain, c.index, c.script.hex()]
                               for c in plan.coins], separators=(",", ":")),
            fee=plan.built.fee, vsize=plan.built.vsize, fee_rate=plan.fee_rate,
            change_index=change.index if change else None,
            change_value=change.value if change else 0, required=plan.required,
            state="awaiting_signatures", requested_by=staff_id, created_at=now,
            updated_at=now)
        s.add(p)
        try:
            s.flush()
        except IntegrityError:
            raise Stale() from None  # the withdrawal got a payment meanwhile
        view = _view(s, p)
        if audit is not None:
            audit.stage(s, view)
    log.info("btc_cold_payment_prepared", payment_id=view.id, kind=view.kind,
             withdrawal_id=view.withdrawal_id, amount=view.amount, txid=view.txid,
             inputs=view.inputs, fee=view.fee, fee_rate=view.fee_rate, staff_id=staff_id)
    return view, True


def _prepare(make: Any, staff_id: int, audit: outbox.Entry | None) -> ColdPaymentView:
    for _ in range(3):
        try:
            return record_plan(make(), staff_id, audit=audit)[0]
        except Stale:
            continue
    raise ColdUnavailable("Other cold payments are being prepared at the same time. Try "
                          "again.")


def prepare_withdrawal(withdrawal_id: int, staff_id: int, *, audit: outbox.Entry | None = None,
                       rpc: BitcoinRPC | None = None, cold: ColdWallet | None = None
                       ) -> ColdPaymentView:
    """The cold payment of a large BTC withdrawal, prepared once (a live one is returned
    as it is)."""
    return _prepare(lambda: plan_withdrawal(withdrawal_id, rpc=rpc, cold=cold), staff_id,
                    audit)


def request_refill(amount: object, staff_id: int, *, audit: outbox.Entry | None = None,
                   rpc: BitcoinRPC | None = None, cold: ColdWallet | None = None
                   ) -> ColdPaymentView:
    """A refill of the hot wallet from cold (``amount``: satoshis, or BTC text)."""
    return _prepare(lambda: plan_refill(amount, rpc=rpc, cold=cold), staff_id, audit)


# --- signatures ------------------------------------------------------------------------------

def _check_upload(upload: object) -> bytes | str:
    if isinstance(upload, bytes | bytearray):
        data: bytes | str = bytes(upload)
    elif isinstance(upload, str):
        data = upload
    else:
        raise BadUpload("Upload the signed PSBT: the .psbt file your device wrote, or its "
                        "base64 text.")
    if len(data) > psbt.MAX_UPLOAD_BYTES:
        raise BadUpload(f"This upload is too large ({len(data)} bytes; a signed PSBT of a "
                        f"cold payment is far smaller, at most {psbt.MAX_UPLOAD_BYTES}).")
    if not data or (isinstance(data, str) and not data.strip()):
        raise BadUpload("The upload is empty: choose the signed .psbt file or paste its "
                        "base64 text.")
    return data


_NOT_SIGNABLE = {
    "sent": "This payment has its approvals and was sent.",
    "confirmed": "This payment was paid.",
    "cancelling": "This payment was taken back and is being cancelled: do not sign it.",
    "cancelled": "This payment was cancelled.",
    "failed": "This payment failed: prepare the withdrawal again.",
}


def add_signature(payment_id: int, staff_id: int, upload: object, *,
                  audit: outbox.Entry | None = None, cold: ColdWallet | None = None) -> Signed:
    """An admin's approval: their signed PSBT (binary, base64 or hex), checked strictly
    against the reference. ``staff_id`` is counted for one cosigner of it; with
    ``required`` different admins counted, the payment is finalised and recorded (see the
    module docstring) in this same ledger transaction; the caller then calls
    :func:`broadcast` with :attr:`Signed.recorded`. Raises a :class:`ColdRefused` (nothing
    stored) for a refused upload, a second approval by the same admin, a cosigner counted
    already, a payment that cannot be signed."""
    data = _check_upload(upload)
    w_ = cold or wallet()
    now = utcnow()
    with ledger_tx() as s:
        p = s.execute(select(BtcColdPayment).where(BtcColdPayment.id == payment_id)
                      .with_for_update()).scalar_one_or_none()
        if p is None or p.chain != CHAIN:
            raise PaymentNotFound()
        if p.state != "awaiting_signatures":
            raise NotSignable(_NOT_SIGNABLE.get(p.state, f"This payment is {p.state}."))
        w = None
        if p.withdrawal_id is not None:
            w = s.execute(select(Withdrawal).where(Withdrawal.id == p.withdrawal_id)
                          .with_for_update()).scalar_one()
            if w.state != "awaiting_approval":
                raise NotSignable("This withdrawal is not waiting for approval.")
            if holds.on_hold(s, w.player_id):
                raise NotSignable(ON_HOLD)
        reference = base64.b64decode(p.psbt)
        try:
            signed = psbt.check_signed(w_, reference, data)
        except psbt.PsbtError as exc:
            raise BadUpload(f"Upload refused: {exc}") from None
        rows = s.execute(select(BtcColdSignature).where(
            BtcColdSignature.payment_id == p.id).order_by(BtcColdSignature.id)).scalars().all()
        mine = [r for r in rows if r.staff_id == staff_id]
        if mine:
            raise AlreadySigned(f"You already approved this payment (cosigner "
                                f"{mine[0].cosigner}): a different admin must bring another "
                                "cosigner's signature.")
        counted = {r.cosigner for r in rows}
        new = [fp for fp in signed.signers if fp not in counted]
        if not new:
            raise AlreadySigned(f"Cosigner {', '.join(signed.signers)} already signed this "
                                "payment: sign it with another cosigner's device.")
        chosen = new[0]
        only = psbt.only_cosigner(w_, reference, signed.psbt, chosen)
        try:
            with s.begin_nested():
                s.add(BtcColdSignature(payment_id=p.id, cosigner=chosen, staff_id=staff_id,
                                       psbt=only.base64, seen=",".join(signed.signers),
                                       created_at=now))
                if w is not None:
                    if w.approved_by is None:
                        w.approved_by = staff_id
                    elif w.approved_by_2 is None:
                        w.approved_by_2 = staff_id
                    w.updated_at = now
                s.flush()
        except IntegrityError:
            raise AlreadySigned("This cosigner or admin has already signed this "
                                "payment.") from None
        recorded = None
        if len(rows) + 1 >= p.required:
            final = psbt.finalize(w_, reference,
                                  [base64.b64decode(r.psbt) for r in rows] + [only.psbt])
            if final.txid != p.txid:  # cannot happen: witnesses do not change a txid
                raise NotSignable("The finalised transaction is not the prepared one.")
            recorded = record_transaction(s, p, w, final.txid, final.hex, final.vsize,
                                          final.fee, now)
        p.updated_at = now
        result = Signed(_view(s, p), chosen, tuple(fp for fp in signed.signers
                                                   if fp != chosen), recorded)
        if audit is not None:
            audit.stage(s, result)
    log.info("btc_cold_payment_signed", payment_id=p.id, cosigner=chosen, staff_id=staff_id,
             approvals=len(rows) + 1, required=result.view.required,
             recorded=recorded is not None)
    return result


def record_transaction(s: Session, p: BtcColdPayment, w: Withdrawal | None, txid: str,
                       raw_hex: str, vsize: int, fee: int, now: datetime) -> Recorded:
    """Record the payment's signed transaction (in the caller's ledger transaction, the
    payment and withdrawal rows locked) as a ``withdrawal_batches`` row of kind ``cold``
    with version 0: the plan as the hot wallet's sender writes it (payments/btc/sender.Plan),
    the payment ``sent``, the withdrawal ``batched``. Its coins are reserved already (by
    the same txid)."""
    coins = _inputs(p)
    change = None
    to_address = ""
    if p.change_index is not None:
        addr = wallet().change_address(p.change_index)
        change = {"index": p.change_index, "script": addr.script_pubkey.hex()}
        to_address = addr.address
    script = keys.validate_address(p.recipient, networks.current()).script_pubkey
    plan = {"inputs": [{"txid": c[0], "vout": int(c[1]), "value": int(c[2]), "script": c[5],
                        "key": [int(c[3]), int(c[4])]} for c in coins],
            "outputs": [{"script": script.hex(), "value": p.amount,
                         "withdrawal": p.withdrawal_id}],
            "change": change}
    for _ in range(5):  # two payments recorded at once may take the same sequence number
        top = s.execute(select(func.max(WithdrawalBatch.nonce)).where(
            WithdrawalBatch.chain == CHAIN, WithdrawalBatch.from_address == SENDER)
        ).scalar_one()
        try:
            with s.begin_nested():
                batch = WithdrawalBatch(
                    chain=CHAIN, kind=KIND, currency=CURRENCY, from_address=SENDER,
                    nonce=0 if top is None else int(top) + 1, state="signed",
                    to_address=to_address, value_wei=str(p.amount),
                    call_data=json.dumps(plan, separators=(",", ":")), gas_limit=vsize,
                    total=p.amount if p.kind == "withdrawal" else 0, created_at=now,
                    updated_at=now)
                s.add(batch)
                s.flush()
                break
        except IntegrityError:
            continue
    else:
        raise ColdUnavailable("Another cold payment is being recorded. Try again.")
    s.add(WithdrawalBatchTx(batch_id=batch.id, version=0, tx_hash=txid, raw_tx=raw_hex,
                            max_fee_per_gas=p.fee_rate, max_priority_fee_per_gas=fee,
                            created_at=now))
    if w is not None:
        w.state, w.batch_id, w.updated_at = "batched", batch.id, now
    p.state, p.batch_id, p.updated_at = "sent", batch.id, now
    s.flush()
    log.info("btc_cold_payment_recorded", payment_id=p.id, batch_id=batch.id, txid=txid,
             fee=fee, vsize=vsize)
    return Recorded(batch.id, txid, raw_hex)


def broadcast(rec: Recorded, rpc: BitcoinRPC | None = None) -> bool:
    """Send a recorded cold payment (after its ledger transaction committed); True when the
    node took it. A refusal or a crash is not lost: the ``btc-batch`` job rebroadcasts
    recorded transactions that the node does not know."""
    shared_sender._fault("signed", rec.batch_id)
    own = rpc is None
    try:
        node = rpc or _rpc()
    except ColdUnavailable:
        return False
    try:
        node.send_raw_transaction(rec.raw)
    except Exception as exc:  # noqa: BLE001 - the job sends it again
        log.warning("btc_cold_payment_broadcast_refused", batch_id=rec.batch_id,
                    txid=rec.txid, error=str(exc)[:300])
        return False
    finally:
        if own:
            node.close()
    shared_sender._fault("broadcast", rec.batch_id)
    now = utcnow()
    with ledger_tx() as s:
        s.execute(update(WithdrawalBatchTx).where(
            WithdrawalBatchTx.batch_id == rec.batch_id, WithdrawalBatchTx.version == 0,
            WithdrawalBatchTx.broadcast_at.is_(None)).values(broadcast_at=now))
        s.execute(update(WithdrawalBatch).where(
            WithdrawalBatch.id == rec.batch_id, WithdrawalBatch.state == "signed")
            .values(state="sent", broadcast_at=now, updated_at=now))
    log.info("btc_cold_payment_broadcast", batch_id=rec.batch_id, txid=rec.txid)
    return True


# --- taking back -----------------------------------------------------------------------------

def free_coins(s: Session, p: BtcColdPayment, now: datetime) -> int:
    """The payment's coins still reserved by it are unspent again."""
    return s.execute(update(BtcUtxo).where(
        BtcUtxo.chain == CHAIN, BtcUtxo.state == "reserved", BtcUtxo.spent_by == p.txid,
        tuple_(BtcUtxo.txid, BtcUtxo.vout).in_([(c[0], int(c[1])) for c in _inputs(p)]))
        .values(state="unspent", spent_by=None, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount


def cancel(s: Session, p: BtcColdPayment, reason: str) -> None:
    """Cancelled: its coins free, its withdrawal (if any) free of it."""
    now = utcnow()
    freed = free_coins(s, p, now)
    p.state, p.failure, p.updated_at = "cancelled", reason[:200], now
    p.active_withdrawal_id = None
    log.info("btc_cold_payment_cancelled", payment_id=p.id, coins_freed=freed)


def _seen(s: Session, p: BtcColdPayment) -> set[str]:
    return {fp for seen in s.execute(select(BtcColdSignature.seen).where(
        BtcColdSignature.payment_id == p.id)).scalars() for fp in seen.split(",") if fp}


def take_back_payment(s: Session, p: BtcColdPayment, reason: str) -> None:
    """Take back a payment waiting for approvals (row locked): cancelled, its coins free;
    or ``cancelling`` when signatures of ``required`` cosigners were uploaded (whoever
    holds them can still broadcast it: its coins stay reserved until one is spent)."""
    if p.state != "awaiting_signatures":
        return
    if len(_seen(s, p)) >= p.required:
        p.state, p.failure, p.updated_at = "cancelling", reason[:200], utcnow()
        log.warning("btc_cold_payment_cancelling", payment_id=p.id, txid=p.txid,
                    hint="signatures of enough cosigners were uploaded: it can still be "
                         "broadcast; spend one of its coins back to the cold wallet")
        return
    cancel(s, p, reason)


def take_back(s: Session, withdrawal_id: int, reason: str) -> bool:
    """Staff rejected a withdrawal (in the caller's transaction, its row locked): take back
    its live payment. True when it is ``cancelling``: the withdrawal's money must stay
    reserved until its coins are spent."""
    held = False
    for p in s.execute(select(BtcColdPayment).where(
            BtcColdPayment.active_withdrawal_id == withdrawal_id,
            BtcColdPayment.state == "awaiting_signatures").with_for_update()).scalars():
        take_back_payment(s, p, reason)
        held = held or p.state == "cancelling"
    return held


def cancel_refill(payment_id: int, staff_id: int, reason: str, *,
                  audit: outbox.Entry | None = None) -> ColdPaymentView:
    """Cancel a refill waiting for approvals (``cancelling`` when it cannot be taken back
    at once; see :func:`take_back_payment`)."""
    with ledger_tx() as s:
        p = s.execute(select(BtcColdPayment).where(BtcColdPayment.id == payment_id)
                      .with_for_update()).scalar_one_or_none()
        if p is None or p.chain != CHAIN:
            raise PaymentNotFound()
        if p.kind != "refill":
            raise NotSignable("Reject the withdrawal instead.")
        if p.state != "awaiting_signatures":
            raise NotSignable(f"This refill is {p.state}: it can no longer be cancelled.")
        take_back_payment(s, p, reason or "cancelled by staff")
        view = _view(s, p)
        if audit is not None:
            audit.stage(s, view)
    log.info("btc_cold_refill_cancelled", payment_id=payment_id, staff_id=staff_id,
             state=view.state)
    return view


def cancelling_note(view: ColdPaymentView) -> str:
    """What staff must know about a ``cancelling`` payment."""
    return ("Cancelling: signatures of enough cosigners were uploaded, so whoever holds them "
            f"can still broadcast transaction {view.txid}. Its coins stay reserved until one "
            "of them is spent: spend one back to the cold wallet with two cosigners (see the "
            "runbook) to cancel it; if it is broadcast instead, it is paid.")


def void_withdrawal(s: Session, w: Withdrawal, why: str) -> None:
    """A ``rejecting`` withdrawal whose payment can no longer pay: rejected, voided."""
    ledger.void_pending(s, f"withdrawal:{w.id}")
    w.state, w.updated_at = "rejected", utcnow()
    w.failure = (w.failure or why)[:200]
