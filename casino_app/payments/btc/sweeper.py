"""Sweeps of deposit coins into the hot wallet, and the hot wallet's band (the ``btc-sweep``
job every ``CASINO_BTC_SWEEP_SECONDS``; a signing job: ``casino worker`` in production).

A Bitcoin deposit is already one of the wallet's coins (``btc_utxos`` role ``deposit``,
owned by ``m/84'/coin'/0'/0/i``), so a sweep is not needed to spend it, only to gather
many small coins into a few while fees are low, at the hot wallet's address where the
withdrawal batcher spends from. One run (:meth:`Sweeper.run`):

1. Open transactions of the sweeper's kinds (``sweep``, ``to_cold``) advance through the
   shared lifecycle (payments/sender.ChainSender, payments/btc/sender.BitcoinSender):
   rebroadcast byte for byte while the node does not know them, settled once after the
   confirmations with the miner fee booked ``btc-fee:bitcoin:<txid>`` fees -> custody,
   watched for deep reorgs. A ``to_cold`` is fee-bumped (RBF) like a withdrawal batch; a
   sweep never is (it pays the low sweep rate on purpose; its coins are deposits nobody
   else waits for, and nothing of ours spends its output before it confirms).
2. A sweep, at most one open at a time: the deposit coins that are FINAL and CREDITED
   (``btc_utxos`` role deposit, unspent, in a block at least ``CASINO_BTC_CONFIRMATIONS``
   deep as the watcher's stored tip counts, whose deposit (``chain_deposits``, same txid
   and output) is ``available``: credited and final). Never a coin whose deposit is dust,
   pending, over the pending cap, reversed, incoming or dropped, nor a coin a transaction
   of ours paid to a deposit address (no deposit row). When those coins hold at least
   ``CASINO_BTC_SWEEP_MIN`` together (the set, across addresses: one transaction
   consolidates many addresses), the oldest of them (at most ``MAX_SWEEP_INPUTS``) are
   spent in one transaction to the hot wallet's address ``m/84'/coin'/0'/1/0``, no change,
   at ``CASINO_BTC_SWEEP_FEE`` sat/vB. A coin whose input would cost more than a tenth of
   it at that rate (``UNECONOMIC_SHARE``) waits for a cheaper rate.
   **Dust.** Deposits below ``CASINO_BTC_DUST`` are recorded and never credited; their
   coins stay on the deposit address and are never swept: they are not in the books
   (custody holds what was credited), so moving them would change what the hot wallet
   holds against the books and spend up to a third of them on their input's fee, for the
   sake of a few hundred satoshis. Reconciliation finds them where the watcher recorded
   them (their ``chain_deposits`` rows in state ``dust``, their coins ``unspent`` on the
   deposit address).
3. The band (``CASINO_BTC_HOT_BAND`` "min:max", satoshis). The hot wallet's balance is its
   coins in the chain not yet spent by a block (roles hot and change, confirmed, unspent
   or reserved): what a node shows at its tip. Above max, one ``to_cold`` transaction
   sends the excess down to the MIDDLE of the band to a fresh cold receiving address
   (``(0, k)``, k = the highest the watcher has seen + 1: inside its window) at the
   node's fee rate, change to a hot change address; not while a hot-wallet transaction
   (a withdrawal batch, an earlier ``to_cold``) is open: decided on the settled balance.
   Below min: ``btc_hot_wallet_low`` is logged as an error every run, the gauge
   ``casino_hot_wallet_below_min{currency="BTC"}`` is 1, and the crossing is audited once
   (``chain.hot_wallet_low``; again after it went back above min; ``hot_band_state``,
   chain ``bitcoin``, so a restart does not alert again). Staff refill the hot wallet from
   cold: a PSBT signed by two admins (payments/btc/cold_payments.py).

**The books.** Nothing here moves players' money: the coins stay on addresses we control
(deposit addresses, the hot wallet, the cold wallet), so the custody account changes only
by the miner fee, booked once when the transaction is settled (fees -> custody), like
Ethereum's gas. ``withdrawal_batches.total`` of a sweep or a ``to_cold`` is the amount
moved.

The keys are used through payments/signer/btc.py: a sweep's inputs are signed with the
deposit addresses' keys ``m/84'/coin'/0'/0/i`` (their ``btc_utxos`` derivation). Crash
points are the sender's (``payments.sender.fault``: "signed", "broadcast", "bumped").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import HOT_WALLET_BELOW_MIN
from casino_app.core.settings import get_settings
from casino_app.payments.activity import chain_tip
from casino_app.payments.band_models import HotBand
from casino_app.payments.btc import addresses, keys
from casino_app.payments.btc import cold as cold_wallets
from casino_app.payments.btc.adapter import CURRENCY, parse_hot_band
from casino_app.payments.btc.models import BtcUtxo
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.sender import (
    DUST,
    INPUT_WEIGHT,
    BitcoinSender,
    BtcRunResult,
    Coin,
    Output,
    Selection,
    checked_runner,
    output_size,
    select_coins,
    vsize,
)
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.sender import OPEN, OpenBatch, Version
from casino_app.payments.withdrawal_models import WithdrawalBatch
from casino_app.security.audit import SYSTEM, AuditAction, record

log = get_logger("casino.btc.sweeper")

MAX_SWEEP_INPUTS = 200      # about 13,700 vB: one transaction, far below the 100,000 limit
UNECONOMIC_SHARE = 10       # a coin is swept when its input costs at most 1/10 of it
INPUT_VSIZE = -(-INPUT_WEIGHT // 4)


@dataclass
class SweepResult(BtcRunResult):
    swept: int = 0          # sweep transactions recorded
    to_cold: int = 0        # hot -> cold transactions recorded
    below_min: int = 0      # 1 while the hot wallet is below its band's minimum


class Sweeper(BitcoinSender):
    """Sweeps final, credited deposit coins into the hot wallet and keeps the hot wallet
    within its band (see the module docstring)."""

    KINDS = ("sweep", "to_cold")

    def __init__(self, rpc: BitcoinRPC, *, sweep_min: int | None = None,
                 sweep_fee: int | None = None, band: tuple[int, int] | None | bool = True,
                 cold: cold_wallets.ColdWallet | None | bool = True,
                 max_inputs: int = MAX_SWEEP_INPUTS, **kw: Any) -> None:
        super().__init__(rpc, **kw)
        st = get_settings()
        self.sweep_min = st.btc_sweep_min if sweep_min is None else sweep_min
        self.sweep_fee = st.btc_sweep_fee if sweep_fee is None else sweep_fee
        self.band = parse_hot_band(st.btc_hot_band) if band is True else (band or None)
        self.cold = cold_wallets.wallet_from_settings(st) if cold is True else (cold or None)
        self.max_inputs = max_inputs
        self.hot_script = keys.p2wpkh_script(
            self.signer.public_key(keys.CHANGE, addresses.HOT_INDEX, self.network))

    def run(self) -> SweepResult:
        res = SweepResult()
        for b in self._open_batches():
            self._advance(b, res)
        self.check_settled(res)
        self._sweep(res)
        self._keep_band(res)
        if any(v for k, v in res.as_dict().items() if k != "below_min"):
            log.info("btc_sweep_run", **res.as_dict())
        return res

    def _bump(self, b: OpenBatch, latest: Version, res: Any) -> None:
        """A sweep waits at its low rate (sent again while the node does not know it); a
        ``to_cold`` is bumped like a withdrawal batch."""
        if b.kind != "sweep":
            super()._bump(b, latest, res)
            return
        if latest.raw and not any(self._known(v.tx_hash) for v in self._versions(b.id)):
            if self._broadcast(b.id, latest):
                res.rebroadcast += 1

    def _open_kinds(self) -> set[str]:
        """The kinds of the hot wallet's open transactions (withdrawal batches included)."""
        with ledger_tx(readonly=True) as s:
            return set(s.execute(select(WithdrawalBatch.kind).where(
                WithdrawalBatch.chain == self.chain, WithdrawalBatch.from_address == self.hot,
                WithdrawalBatch.state.in_(OPEN))).scalars())

    # --- sweeps ---

    def final_height(self) -> int | None:
        """The highest block whose coins are final: the watcher's stored tip (never above
        the node's head) minus the confirmations, plus one; None before the watcher
        stored a block."""
        with ledger_tx(readonly=True) as s:
            tip = chain_tip(s, self.chain)
        if tip is None:
            return None
        final = min(int(tip), self._head()) - self.confirmations + 1
        return final if final >= 0 else None

    def sweepable(self, final: int) -> list[Coin]:
        """Final, credited deposit coins, oldest first (see the module docstring)."""
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(BtcUtxo).join(ChainDeposit, and_(
                ChainDeposit.chain == BtcUtxo.chain, ChainDeposit.tx_hash == BtcUtxo.txid,
                ChainDeposit.log_index == BtcUtxo.vout)).where(
                BtcUtxo.chain == self.chain, BtcUtxo.role == "deposit",
                BtcUtxo.state == "unspent", BtcUtxo.block_height.is_not(None),
                BtcUtxo.block_height <= final, ChainDeposit.state == "available")
                .order_by(BtcUtxo.block_height, BtcUtxo.id)).scalars()
            return [Coin(r.txid, r.vout, r.amount, bytes.fromhex(r.script_pubkey),
                         r.key_chain, r.key_index) for r in rows]

    def _sweep(self, res: SweepResult) -> None:
        if "sweep" in self._open_kinds():
            return  # one at a time: its coins are reserved, the next run takes the rest
        final = self.final_height()
        if final is None:
            return
        worth = [c for c in self.sweepable(final)
                 if c.value >= UNECONOMIC_SHARE * INPUT_VSIZE * self.sweep_fee]
        if sum(c.value for c in worth) < self.sweep_min:
            return
        coins = worth[:self.max_inputs]
        size = vsize(len(coins), [output_size(self.hot_script)])
        fee = self.sweep_fee * size
        value = sum(c.value for c in coins) - fee
        if value < DUST:
            return
        sel = Selection(tuple(coins), fee, 0, size, self.sweep_fee)
        batch_id = self._record_and_send("sweep", sel, [Output(self.hot_script, value)], res,
                                         total=value)
        if batch_id is not None:
            res.swept += 1
            log.info("btc_deposits_swept", batch_id=batch_id, coins=len(coins), amount=value,
                     fee=fee, fee_rate=self.sweep_fee, final=final)

    # --- the band ---

    def hot_balance(self) -> int:
        """The hot wallet's coins in the chain not yet spent by a block (satoshis)."""
        with ledger_tx(readonly=True) as s:
            return int(s.execute(select(func.coalesce(func.sum(BtcUtxo.amount), 0)).where(
                BtcUtxo.chain == self.chain, BtcUtxo.role.in_(("hot", "change")),
                BtcUtxo.state.in_(("unspent", "reserved")),
                BtcUtxo.block_height.is_not(None))).scalar_one())

    def _keep_band(self, res: SweepResult) -> None:
        if self.band is None:
            return
        lo, hi = self.band
        balance = self.hot_balance()
        if balance < lo:
            res.below_min += 1
            self._low_alert(balance, lo)
            return
        HOT_WALLET_BELOW_MIN.labels(CURRENCY).set(0)
        with ledger_tx() as s:
            self._band_crossed(s, False)
        if balance <= hi:
            return
        if self._open_kinds() & {"pay", "to_cold"}:
            return  # decide on the settled balance
        if self.cold is None:
            log.error("btc_hot_wallet_over_max_no_cold", balance=balance, maximum=hi,
                      hint="set CASINO_BTC_COLD_KEYS: the overflow goes to the cold wallet")
            return
        excess = balance - (lo + hi) // 2
        with ledger_tx(readonly=True) as s:
            seen = addresses.highest_seen(s, "cold", cold_wallets.RECEIVE)
        to = self.cold.receive_address(0 if seen is None else seen + 1)
        outputs = [Output(to.script_pubkey, excess)]
        sel = select_coins(self.spendable(), outputs, self.fee_rate())
        if sel is None:
            log.warning("btc_hot_wallet_to_cold_unfunded", balance=balance, excess=excess)
            return
        if self._record_and_send("to_cold", sel, outputs, res, total=excess) is not None:
            res.to_cold += 1
            log.info("btc_hot_wallet_to_cold", amount=excess, balance=balance, maximum=hi,
                     address=to.address, cold_index=to.index)

    def _band_crossed(self, s: Any, below: bool) -> bool:
        """Store whether the hot wallet is below its minimum; True when that changed."""
        row = s.execute(select(HotBand).where(HotBand.chain == self.chain,
                                              HotBand.currency == CURRENCY)
                        .with_for_update()).scalar_one_or_none()
        if (row.below if row is not None else False) == below:
            return False
        if row is None:
            s.add(HotBand(chain=self.chain, currency=CURRENCY, below=below,
                          changed_at=utcnow()))
        else:
            row.below, row.changed_at = below, utcnow()
        return True

    def _low_alert(self, balance: int, minimum: int) -> None:
        HOT_WALLET_BELOW_MIN.labels(CURRENCY).set(1)
        log.error("btc_hot_wallet_low", balance=balance, minimum=minimum,
                  hint="refill the hot wallet from the cold wallet: a PSBT signed by two "
                       "admins (staff page Withdrawals)")
        # The audit row commits before the band state: a crash in between alerts twice,
        # never not at all.
        with ledger_tx() as s:
            if self._band_crossed(s, True):
                with identity_tx() as i:
                    record(i, AuditAction.hot_wallet_low, SYSTEM, None, chain=self.chain,
                           currency=CURRENCY, balance=str(balance), minimum=str(minimum))


# --- the job ---------------------------------------------------------------------------------

_sweeper: Sweeper | None = None


def sweep_once() -> dict[str, int]:
    """The ``btc-sweep`` job: one run of the process's sweeper (built from the settings on
    first use, after checking that the node runs the configured network)."""
    global _sweeper
    st = get_settings()
    if not st.btc_rpc_url:
        return {}
    if _sweeper is None:
        _sweeper = checked_runner(Sweeper, st)
    return _sweeper.run().as_dict()
