"""The Bitcoin withdrawal batcher: pays the queued BTC withdrawals from the hot wallet in one
transaction per interval, and never pays a withdrawal twice.

One run (``Batcher.run``, the ``btc-batch`` job every ``CASINO_BTC_BATCH_SECONDS``, under
the job's lease, in the jobs process: it signs through payments/signer/btc.py):

1. Open batches first (payments/sender.ChainSender with Bitcoin's answers,
   payments/btc/sender.BitcoinSender): a version mined at ``CASINO_BTC_CONFIRMATIONS``
   settles the batch once (each withdrawal whose output is in it posted, its fee to
   ``fees``, the miner fee booked fees -> custody); a recorded version that the node does
   not know (never broadcast: a crash; or dropped by a reorg) is broadcast again byte for
   byte; one not mined after ``CASINO_BTC_FEE_BUMP_SECONDS`` is replaced (RBF) at a
   higher rate.
2. Settled batches whose block a reorg replaced are found and alerted (and broadcast
   again).
3. One new transaction: the oldest queued BTC withdrawals (at most ``MAX_PER_BATCH``; a
   player on hold waits), one output each (the player's address, the exact amount), plus
   change to a new change address of the hot wallet, over the hot wallet's confirmed coins
   chosen largest first, at the node's fee rate within the floor and ceiling. When the
   coins do not pay them all, the oldest that fit are paid and the rest stay queued: if
   the hot wallet's unconfirmed change would pay them the run just waits for it (info log),
   otherwise it alerts (error log ``btc_hot_wallet_short``,
   ``casino_btc_payment_anomalies_total{anomaly="hot_wallet_short"}``; refilling from the
   cold wallet is staff's, with the hot band's alert). A withdrawal whose address is not
   payable on the configured network (the setting changed) or whose amount is below the
   dust limit of its address type fails with its reservation voided.
   The transaction is signed and recorded (batch, plan, change address, withdrawals
   ``batched``, coins ``reserved``, raw bytes) in one ledger transaction BEFORE the
   broadcast; a new batch does not wait for the open ones (their coins are reserved, so no
   two unconfirmed transactions share a coin or a withdrawal, unless one replaces the
   other).

Large withdrawals (``CASINO_BTC_WITHDRAW_LARGE`` and above) wait in ``awaiting_approval``
(payments/withdrawals.py) and are never taken here: they are paid from the cold wallet by
PSBT once two admins approved (payments/btc/cold_payments.py; the ``btc-batch`` job also
runs payments/btc/cold_sender.py, which follows those transactions); staff can reject
them.

Crash points (``payments.sender.fault``): "signed" (recorded, not broadcast), "broadcast"
(sent, not recorded as sent), "bumped" (a replacement recorded, not broadcast).
"""

from __future__ import annotations

from sqlalchemy import update

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.btc import keys
from casino_app.payments.btc.adapter import CURRENCY
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.sender import (
    BitcoinSender,
    BtcRunResult,
    Output,
    checked_runner,
    fit,
)
from casino_app.payments.sender import queued
from casino_app.payments.withdrawal_models import Withdrawal

log = get_logger("casino.btc.batcher")

MAX_PER_BATCH = 250  # outputs: about 10,000 vB with the inputs, far below the 100,000 limit


class Batcher(BitcoinSender):
    """Pays queued BTC withdrawals from the hot wallet, one transaction per run."""

    KINDS = ("pay",)

    def __init__(self, rpc: BitcoinRPC, *, max_per_batch: int = MAX_PER_BATCH,
                 **kw: object) -> None:
        super().__init__(rpc, **kw)  # type: ignore[arg-type]
        self.max_per_batch = max_per_batch

    def run(self) -> BtcRunResult:
        res = BtcRunResult()
        for batch in self._open_batches():
            self._advance(batch, res)
        self.check_settled(res)
        self._start(res)
        if any(res.as_dict().values()):
            log.info("btc_batch_run", **res.as_dict())
        return res

    def _start(self, res: BtcRunResult) -> None:
        items = queued(self.chain, CURRENCY, self.max_per_batch)
        if not items:
            return
        outputs, unpayable = [], []
        for wid, address, amount in items:
            try:
                a = keys.validate_address(address, self.network)
            except ValueError:
                unpayable.append((wid, f"the address is not valid on {self.network.label}"))
                continue
            if amount < keys.DUST_LIMITS[a.kind]:
                unpayable.append((wid, f"below the network's dust limit for this address "
                                       f"({keys.DUST_LIMITS[a.kind]} sat)"))
                continue
            outputs.append(Output(a.script_pubkey, amount, wid))
        if unpayable:
            self._fail(unpayable, res)
        if not outputs:
            return
        rate = self.fee_rate()
        coins = self.spendable()
        chosen, sel = fit(outputs, coins, rate)
        if len(chosen) < len(outputs):
            used = set(sel.coins) if sel is not None else set()
            self._short([o for o in outputs if o not in chosen],
                        sum(c.value for c in coins if c not in used), rate, res)
        if sel is not None and chosen:
            self._record_and_send("pay", sel, chosen, res)

    def _fail(self, rows: list[tuple[int, str]], res: BtcRunResult) -> None:
        now = utcnow()
        with ledger_tx() as s:
            for wid, why in rows:
                done = s.execute(update(Withdrawal).where(
                    Withdrawal.id == wid, Withdrawal.state == "queued").values(
                    state="failed", failure=why[:200], updated_at=now)).rowcount
                if done:
                    ledger.void_pending(s, f"withdrawal:{wid}")
                    res.voided += 1
        log.warning("btc_withdrawals_unpayable", ids=[w for w, _ in rows])

    def _short(self, left: list[Output], have: int, rate: int, res: BtcRunResult) -> None:
        """Withdrawals the confirmed coins do not pay: wait for our own change when it
        would pay them, else alert."""
        res.short += len(left)
        needed = sum(o.value for o in left)
        incoming = self.incoming()
        if have + incoming >= needed + rate * 200:  # about the fee of a small batch
            log.info("btc_batch_waiting_for_change", withdrawals=len(left), needed=needed,
                     incoming=incoming)
            return
        res.anomalies += 1
        self.anomaly_metric.labels("hot_wallet_short").inc()
        log.error("btc_hot_wallet_short", withdrawals=len(left), needed=needed,
                  confirmed=have, incoming=incoming,
                  hint="the hot wallet's coins do not pay the queue: the oldest that fit "
                       "were paid, the rest wait; refill the hot wallet from the cold one")


# --- the job ---------------------------------------------------------------------------------

_batcher: Batcher | None = None


def batch_once() -> dict[str, int]:
    """The ``btc-batch`` job: one run of the process's batcher (built from the settings on
    first use, after checking that the node runs the configured network)."""
    global _batcher
    st = get_settings()
    if not st.btc_rpc_url:
        return {}
    if _batcher is None:
        _batcher = checked_runner(Batcher, st)
    return _batcher.run().as_dict()
