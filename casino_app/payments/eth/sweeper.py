"""Sweeps and the hot wallet's band (the ``eth-sweep`` job every
``CASINO_ETH_SWEEP_SECONDS``).

One run (``Sweeper.run``):

1. Open transactions of the sweeper's kinds (``sweep``, ``topup``, ``to_cold``) advance as
   the batcher's do (payments/sender.ChainSender, payments/eth/sender.EthereumSender): a
   recorded raw transaction is rebroadcast byte for byte, a stuck one fee-bumped with the
   same nonce, a mined one settled once after the confirmations with its gas booked as
   ``eth-gas:<chain>:<tx>`` fees -> custody (rounded up to gwei). A token transfer counts as done only with status
   1 AND the token's ``Transfer`` log (USDT returns nothing).
2. Sweeps: the deposit addresses with a final deposit (not reversed) of a currency in a
   block after the final block of their last confirmed sweep of it (``sweep_marks.swept_to``;
   so a run reads the balances of the addresses that got something new, not of every
   address that ever received a deposit), at most one new transaction per address and
   none while one of its transactions is open. A sweep that ended without moving the
   coins (reverted, or mined without the token's ``Transfer`` log, or its nonce used by
   another transaction) is tried again after a backoff (``SWEEP_RETRY_SECONDS``, doubled
   each time, at most a day); from the ``SWEEP_ALERT_AFTER``-th in a row an error is
   logged each time and ``chain.sweep_failing`` audited once. Only FINAL coins move: the
   amount is the lower of the address's balance at the final block (the watcher's tip
   minus ``CASINO_ETH_CONFIRMATIONS`` - 1, or the node's finalized block with
   ``CASINO_ETH_FINALITY=finalized``) and its balance now, so a deposit a reorg could
   still drop is never forwarded and the hot wallet is never left short by one.
   - tokens first: ``transfer(hot wallet, amount)`` signed with the deposit address's key
     (``m/44'/60'/0'/0/i``, payments/signer/eth.py). When the address lacks the gas, a
     ``topup`` from the hot wallet comes first (to ``CASINO_ETH_SWEEP_TOPUP``, at least
     twice the transfer's gas); the sweep follows in a later run once the top-up settled.
     What the sweep's gas leaves of the top-up stays on the address for the next token
     sweep (sending it back alone would cost a transfer's gas and a new top-up later); it
     moves with the address's next ETH deposit.
   - then ETH: the balance minus the gas (reserved at a fee that allows two fee bumps).
   Amounts below ``CASINO_ETH_SWEEP_MIN`` stay where they are.
3. The band (``CASINO_ETH_HOT_BAND`` "CUR:min:max", base units): above max, one
   ``to_cold`` transaction sends the excess down to the MIDDLE of the band to the cold Safe
   (``CASINO_ETH_SAFE_ADDRESS``), so the wallet neither flaps back over max at the next
   deposit nor under min at the next withdrawal; not while a transaction of the hot
   wallet in that currency is open. Below min: ``eth_hot_wallet_low`` is logged as an
   error every run, ``casino_hot_wallet_below_min{currency}`` is 1, and the crossing is
   audited once (``chain.hot_wallet_low``; again after it went back above min). The band
   state is stored (``hot_band_state``), so a restart does not alert again and a crossing
   while the jobs process was down is alerted by its first run. Staff refill it from the
   Safe (two approvals; payments/eth/safe_payments.py).

None of this moves players' money in the ledger: the coins stay on addresses we control
(reconciliation counts the deposit addresses, the hot wallet and the Safe); only the gas
is booked, as the house's fees. A gas top-up is such a move too: its value stays custody
while it sits on the deposit address, and what it pays for is booked when it is burnt
(the top-up's own gas, then the token sweep's, each ``eth-gas:<chain>:<tx>``), so the
fees are exactly the gas spent and reconciliation balances at every step. The gas
top-up is not a deposit: the watcher skips transactions we recorded.

The keys are used through payments/signer/eth.py; this module runs in the jobs process.
Crash points are the sender's (``payments.sender.fault``: "signed", "broadcast", "bumped").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select
from web3 import Web3

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import HOT_WALLET_BELOW_MIN
from casino_app.core.settings import get_settings
from casino_app.payments.activity import chain_tip
from casino_app.payments.address_models import DepositAddress
from casino_app.payments.assets import Asset, parse_amounts
from casino_app.payments.band_models import HotBand
from casino_app.payments.custody import parse_band
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.eth import chain as chain_tools
from casino_app.payments.eth.sender import EthereumSender, _bumped
from casino_app.payments.eth.sweep_models import SweepMark
from casino_app.payments.eth.watcher import CHAIN, WEI_PER_GWEI, parse_tokens
from casino_app.payments.sender import OPEN, OpenBatch, RunResult
from casino_app.payments.withdrawal_models import WithdrawalBatch
from casino_app.security.audit import SYSTEM, AuditAction, record

log = get_logger("casino.eth.sweeper")

ETH_TRANSFER_GAS = 21_000   # a plain transfer to an address without code
RPC_BATCH = 200             # balance reads per JSON-RPC batch
SWEEP_RETRY_SECONDS = 600   # first wait after a failed sweep (doubled each time)
SWEEP_RETRY_MAX = 86_400    # longest wait between tries
SWEEP_ALERT_AFTER = 3       # failed sweeps in a row of one address and currency: alert


class SweepSigner(Protocol):
    def hot_address(self) -> str: ...
    def sign_transaction(self, tx: dict[str, Any]) -> tuple[bytes, str]: ...
    def sign_deposit_transaction(self, index: int, tx: dict[str, Any]
                                 ) -> tuple[bytes, str]: ...


@dataclass
class SweepResult(RunResult):
    swept: int = 0          # sweep transactions recorded
    topped_up: int = 0      # gas top-ups recorded
    to_cold: int = 0        # hot -> cold transactions recorded
    below_min: int = 0      # currencies whose hot wallet is below its band's minimum
    sweeps_failing: int = 0  # addresses whose sweep failed SWEEP_ALERT_AFTER times or more


def _transfer_args(data: str) -> tuple[str, int] | None:
    """(to, amount) of ``transfer(address,uint256)`` call data, None for anything else."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    if len(raw) != 68 or raw[:4] != chain_tools.erc20_transfer_data(
            chain_tools.ZERO_ADDRESS, 0)[:4]:
        return None
    return Web3.to_checksum_address(raw[16:36]), int.from_bytes(raw[36:68], "big")


class Sweeper(EthereumSender):
    """Moves final coins from deposit addresses to the hot wallet and keeps the hot wallet
    within its band (see the module docstring)."""

    KINDS = ("sweep", "topup", "to_cold")

    def __init__(self, w3: Web3, tokens: dict[str, str], *,
                 signer: SweepSigner | None = None, chain: str = CHAIN,
                 confirmations: int | None = None, fee_bump_seconds: float | None = None,
                 minimums: dict[str, int] | None = None,
                 band: dict[str, tuple[int, int]] | None = None, safe: str | None = None,
                 topup_gwei: int | None = None, finality: str | None = None) -> None:
        super().__init__(w3, tokens, signer=signer, chain=chain, confirmations=confirmations,
                         fee_bump_seconds=fee_bump_seconds)
        st = get_settings()
        self.minimums = (minimums if minimums is not None
                         else parse_amounts(st.eth_sweep_min, "CASINO_ETH_SWEEP_MIN"))
        self.band = band if band is not None else parse_band(st.eth_hot_band)
        safe = st.eth_safe_address if safe is None else safe
        self.safe = Web3.to_checksum_address(safe) if safe else None
        self.topup_wei = (st.eth_sweep_topup if topup_gwei is None else topup_gwei) \
            * WEI_PER_GWEI
        self.finality = finality or st.eth_finality
        self._index: dict[str, int] = {}

    # --- signing with the sender's key ---

    def _open_where(self) -> list[Any]:
        return []  # sweeps are sent by the deposit addresses

    def _sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        sender = Web3.to_checksum_address(tx["from"])
        if sender == self.hot:
            return self.signer.sign_transaction(tx)
        index = self._index.get(sender)
        if index is None:
            with ledger_tx(readonly=True) as s:
                index = s.execute(select(DepositAddress.derivation_index).where(
                    DepositAddress.chain == self.chain, DepositAddress.address == sender)
                ).scalar_one()
            self._index[sender] = index
        return self.signer.sign_deposit_transaction(index, tx)  # type: ignore[attr-defined]

    def _succeeded(self, b: OpenBatch, receipt: Any) -> bool:
        asset = self.assets.get(b.currency)
        if asset is None or asset.token is None or b.kind == "topup":
            return True
        args = _transfer_args(b.data)
        return args is not None and chain_tools.transfer_succeeded(
            receipt, asset.token, b.from_address, args[0], args[1])

    # --- the run ---

    def run(self) -> SweepResult:
        res = SweepResult()
        for b in self._open_batches():
            self._advance(b, res)
        final = self._final_block()
        if final is not None:
            self._sweep(final, res)
        self._keep_band(res)
        if any(v for k, v in res.as_dict().items() if k not in ("below_min",
                                                                 "sweeps_failing")):
            log.info("eth_sweep_run", **res.as_dict())
        return res

    def _open_rows(self) -> list[tuple[str, str, str, str]]:
        """(kind, currency, from, to) of every open transaction on the chain (all kinds)."""
        with ledger_tx(readonly=True) as s:
            return [tuple(r) for r in s.execute(select(
                WithdrawalBatch.kind, WithdrawalBatch.currency, WithdrawalBatch.from_address,
                WithdrawalBatch.to_address).where(WithdrawalBatch.chain == self.chain,
                                                  WithdrawalBatch.state.in_(OPEN)))]

    def _final_block(self) -> int | None:
        """The newest block whose deposits are final, and that the watcher has processed
        (None before the watcher stored a block)."""
        with ledger_tx(readonly=True) as s:
            tip = chain_tip(s, self.chain)
        if tip is None:
            log.debug("eth_sweep_no_watcher_block")
            return None
        top = min(tip, self.w3.eth.block_number)
        final = top - self.confirmations + 1
        if self.finality == "finalized":
            try:
                final = int(self.w3.eth.get_block("finalized")["number"])
            except Exception:  # noqa: BLE001 - no finalized tag: count confirmations
                log.debug("eth_no_finalized_tag", fallback_confirmations=self.confirmations)
        final = min(final, top)
        return final if final >= 0 else None

    def _balances(self, pairs: Sequence[tuple[str, str]], block: int | str
                  ) -> dict[tuple[str, str], int]:
        """{(address, currency): on-chain units at ``block``} (JSON-RPC batches)."""
        calls = []
        for addr, code in pairs:
            asset = self.assets[code]
            if asset.token is None:
                calls.append(lambda a=addr: self.w3.eth.get_balance(a, block))
            else:
                data = chain_tools.erc20(self.w3, asset.token).encode_abi("balanceOf", [addr])
                calls.append(lambda t=asset.token, d=data: self.w3.eth.call(
                    {"to": t, "data": d}, block))
        out: list[Any] = []
        for i in range(0, len(calls), RPC_BATCH):
            with self.w3.batch_requests() as batch:
                for c in calls[i:i + RPC_BATCH]:
                    batch.add(c())
                out.extend(batch.execute())
        values = [v if isinstance(v, int) else int.from_bytes(bytes(v), "big") if v else 0
                  for v in out]
        return dict(zip(pairs, values, strict=True))

    # --- sweeps ---

    def _candidates(self, final: int) -> dict[str, set[str]]:
        """{deposit address: currencies to look at}: a final deposit (not reversed) in a
        block after the one its last confirmed sweep covered, not waiting for a retry."""
        latest = (select(ChainDeposit.address, ChainDeposit.currency,
                         func.max(ChainDeposit.block_number).label("block"))
                  .where(ChainDeposit.chain == self.chain, ChainDeposit.state != "reversed",
                         ChainDeposit.block_number <= final)
                  .group_by(ChainDeposit.address, ChainDeposit.currency).subquery())
        out: dict[str, set[str]] = {}
        with ledger_tx(readonly=True) as s:
            for addr, code in s.execute(
                    select(latest.c.address, latest.c.currency).outerjoin(SweepMark, and_(
                        SweepMark.chain == self.chain, SweepMark.address == latest.c.address,
                        SweepMark.currency == latest.c.currency)).where(
                        or_(SweepMark.swept_to.is_(None), latest.c.block > SweepMark.swept_to),
                        or_(SweepMark.retry_at.is_(None), SweepMark.retry_at <= utcnow()))):
                if code in self.assets:
                    out.setdefault(addr, set()).add(code)
        return out

    def _mark_open(self, addr: str, code: str, batch_id: int, final: int) -> None:
        """Remember the sweep just recorded and the final block its amount was read at."""
        with ledger_tx() as s:
            mark = s.get(SweepMark, (self.chain, addr, code))
            if mark is None:
                mark = SweepMark(chain=self.chain, address=addr, currency=code, failures=0)
                s.add(mark)
            mark.open_batch_id, mark.open_final, mark.updated_at = batch_id, final, utcnow()

    def _close_marks(self, res: SweepResult) -> None:
        """Sweeps that ended since the last run: a confirmed one moves ``swept_to`` to the
        final block it was recorded at; a failed one waits for a retry (backoff), and the
        SWEEP_ALERT_AFTER-th failure in a row is audited."""
        now = utcnow()
        alerts = []
        with ledger_tx() as s:
            for mark, state, failure in s.execute(
                    select(SweepMark, WithdrawalBatch.state, WithdrawalBatch.failure)
                    .join(WithdrawalBatch, WithdrawalBatch.id == SweepMark.open_batch_id)
                    .where(SweepMark.chain == self.chain,
                           WithdrawalBatch.state.in_(("confirmed", "failed")))):
                if state == "confirmed":
                    mark.swept_to = max(mark.swept_to or 0, mark.open_final or 0)
                    mark.failures, mark.retry_at = 0, None
                else:
                    mark.failures += 1
                    wait = min(SWEEP_RETRY_SECONDS * 2 ** (mark.failures - 1), SWEEP_RETRY_MAX)
                    mark.retry_at = now + timedelta(seconds=wait)
                    if mark.failures >= SWEEP_ALERT_AFTER:
                        alerts.append((mark.address, mark.currency, mark.failures, failure))
                    log.warning("eth_sweep_retry_later", address=mark.address,
                                currency=mark.currency, failures=mark.failures,
                                retry_at=mark.retry_at.isoformat(), reason=failure)
                mark.open_batch_id = mark.open_final = None
                mark.updated_at = now
            if alerts:
                with identity_tx() as i:
                    for addr, code, failures, failure in alerts:
                        log.error("eth_sweep_failing", address=addr, currency=code,
                                  failures=failures, reason=failure,
                                  hint="the coins stay on the deposit address: look at it")
                        if failures == SWEEP_ALERT_AFTER:
                            record(i, AuditAction.sweep_failing, SYSTEM, None,
                                   chain=self.chain, address=addr, currency=code,
                                   failures=failures, reason=failure or "")
        res.sweeps_failing += len(alerts)

    def _sweep(self, final: int, res: SweepResult) -> None:
        self._close_marks(res)
        busy = {sender if kind == "sweep" else to for kind, _, sender, to in self._open_rows()
                if kind in ("sweep", "topup")}
        candidates = {a: c for a, c in self._candidates(final).items() if a not in busy}
        if not candidates:
            return
        # Every candidate's ETH too: a token sweep's gas must be final coins as well.
        pairs = sorted({(a, c) for a, codes in candidates.items() for c in codes} |
                       {(a, "ETH") for a in candidates})
        at_final, now = self._balances(pairs, final), self._balances(pairs, "latest")

        def usable(addr: str, code: str) -> int:
            return min(at_final[(addr, code)], now[(addr, code)])

        for addr in sorted(candidates):
            tokens = sorted(c for c in candidates[addr] if self.assets[c].token)
            done = False
            for code in tokens:
                amount, asset = usable(addr, code), self.assets[code]
                if amount > 0 and amount >= self.minimums.get(code, 0) * asset.per_unit:
                    self._sweep_token(addr, asset, amount, usable(addr, "ETH"), final, res)
                    done = True
                    break
            if not done and "ETH" in candidates[addr]:
                self._sweep_eth(addr, usable(addr, "ETH"), final, res)

    def _sweep_eth(self, addr: str, amount: int, final: int, res: SweepResult) -> None:
        max_fee, tip = self._fees()
        reserve = ETH_TRANSFER_GAS * _bumped(_bumped(max_fee))  # room for two fee bumps
        value = amount - reserve
        if value <= 0 or value < self.minimums.get("ETH", 0) * WEI_PER_GWEI:
            return
        batch_id = self._record_and_send("sweep", "ETH", self.hot, value, "0x", [], res,
                                         sender=addr, gas=ETH_TRANSFER_GAS,
                                         fees=(max_fee, tip), total=value // WEI_PER_GWEI)
        if batch_id is not None:
            self._mark_open(addr, "ETH", batch_id, final)
            res.swept += 1

    def _sweep_token(self, addr: str, asset: Asset, amount: int, eth_now: int, final: int,
                     res: SweepResult) -> None:
        """``eth_now``: the address's final ETH (what its gas may come from)."""
        if asset.token is None:
            raise RuntimeError(f"{asset.code} is not a token")
        data = Web3.to_hex(chain_tools.erc20_transfer_data(self.hot, amount))
        estimate = self._estimate(asset.token, 0, data, addr)
        if estimate is None:
            log.error("eth_sweep_would_revert", address=addr, currency=asset.code)
            return
        gas = estimate * 6 // 5
        max_fee, tip = self._fees()
        need = gas * max_fee
        if eth_now < need:
            value = max(self.topup_wei, 2 * need) - eth_now
            if self.w3.eth.get_balance(self.hot) < value + ETH_TRANSFER_GAS * max_fee:
                log.error("eth_hot_wallet_short", currency="ETH", needed=value,
                          purpose="gas top-up")
                return
            if self._record_and_send("topup", "ETH", addr, value, "0x", [], res,
                                     gas=ETH_TRANSFER_GAS, total=value // WEI_PER_GWEI
                                     ) is not None:
                res.topped_up += 1
            return
        batch_id = self._record_and_send("sweep", asset.code, asset.token, 0, data, [], res,
                                         sender=addr, gas=gas, fees=(max_fee, tip),
                                         total=amount // asset.per_unit)
        if batch_id is not None:
            self._mark_open(addr, asset.code, batch_id, final)
            res.swept += 1

    # --- the band ---

    def _keep_band(self, res: SweepResult) -> None:
        codes = [c for c in self.band if c in self.assets]
        if not codes:
            return
        open_rows = self._open_rows()
        held = self._balances([(self.hot, c) for c in codes], "latest")
        for code in codes:
            asset, (lo, hi) = self.assets[code], self.band[code]
            balance = held[(self.hot, code)]
            if balance < lo * asset.per_unit:
                res.below_min += 1
                self._low_alert(code, balance, lo * asset.per_unit)
                continue
            HOT_WALLET_BELOW_MIN.labels(code).set(0)
            with ledger_tx() as s:
                self._band_crossed(s, code, False)
            if balance <= hi * asset.per_unit:
                continue
            # Not while a transaction of the hot wallet in this currency is open (a batch
            # being paid, an earlier to_cold): decide on the settled balance.
            if any(sender == self.hot and (cur == code or (code == "ETH" and kind == "topup"))
                   for kind, cur, sender, _ in open_rows):
                continue
            if not self.safe:
                log.error("eth_hot_wallet_over_max_no_safe", currency=code, balance=balance)
                continue
            excess = balance - (lo + hi) // 2 * asset.per_unit
            if asset.token is None:
                to, value, data = self.safe, excess, "0x"
            else:
                to, value = asset.token, 0
                data = Web3.to_hex(chain_tools.erc20_transfer_data(self.safe, excess))
            if self._record_and_send("to_cold", code, to, value, data, [], res,
                                     total=excess // asset.per_unit) is not None:
                res.to_cold += 1
                log.info("eth_hot_wallet_to_cold", currency=code, amount=excess,
                         balance=balance, maximum=hi * asset.per_unit)

    def _band_crossed(self, s: Any, code: str, below: bool) -> bool:
        """Store whether the hot wallet is below its minimum in ``code``; True when that
        changed (no stored state counts as not below)."""
        row = s.execute(select(HotBand).where(HotBand.chain == self.chain,
                                              HotBand.currency == code)
                        .with_for_update()).scalar_one_or_none()
        if (row.below if row is not None else False) == below:
            return False
        if row is None:
            s.add(HotBand(chain=self.chain, currency=code, below=below, changed_at=utcnow()))
        else:
            row.below, row.changed_at = below, utcnow()
        return True

    def _low_alert(self, code: str, balance: int, minimum: int) -> None:
        HOT_WALLET_BELOW_MIN.labels(code).set(1)
        log.error("eth_hot_wallet_low", currency=code, balance=balance, minimum=minimum,
                  hint="refill the hot wallet from the cold Safe")
        # The audit row commits before the band state: a crash in between alerts twice,
        # never not at all.
        with ledger_tx() as s:
            if self._band_crossed(s, code, True):
                with identity_tx() as i:
                    record(i, AuditAction.hot_wallet_low, SYSTEM, None, chain=self.chain,
                           currency=code, balance=str(balance), minimum=str(minimum))


# --- the job ---------------------------------------------------------------------------------

_sweeper: Sweeper | None = None


def sweep_once() -> dict[str, int]:
    """The ``eth-sweep`` job: one run of the process's sweeper (built from the settings on
    first use)."""
    global _sweeper
    if _sweeper is None:
        st = get_settings()
        w3 = Web3(Web3.HTTPProvider(st.eth_rpc_url, request_kwargs={"timeout": 10}))
        _sweeper = Sweeper(w3, parse_tokens(st.eth_tokens))
    return _sweeper.run().as_dict()
