"""The Ethereum deposit watcher: follows blocks, records deposits once, credits them and
takes credits back when their block leaves the chain.

One pass (``Watcher.poll``), run by the ``eth-watch`` job under a lease:

1. Reorg check: the stored tip's hash is compared with the node's block at that height;
   a mismatch walks back to the common ancestor and reverses what the dropped blocks
   credited (``_rewind``).
2. Scan: from the block after the cursor (the highest stored block) up to
   ``CASINO_ETH_BLOCKS_PER_POLL`` blocks: native transfers to our addresses (successful
   top-level transactions) and ERC-20 ``Transfer`` logs to them. Each block is stored with
   its hash and parent hash, with its deposits, in one ledger transaction: a crash
   resumes from the cursor and nothing is applied twice (UNIQUE (chain, tx, log index);
   credit entries keyed by the deposit and its credit count). A block whose parent hash is
   not the stored tip's hash stops the scan: the next pass rewinds.
3. Confirmations (``_confirm``): a deposit seen in a block has 1 confirmation; it is
   credited at once as pending (playable, not withdrawable) while the player's pending
   credits stay within ``CASINO_ETH_PENDING_CAP``, else when it becomes available at
   ``CASINO_ETH_CONFIRMATIONS``. Below ``CASINO_ETH_DUST`` it is recorded, never credited.

A reversed deposit whose money was already spent leaves the player owing the rest (a
``debt`` account) and puts a hold on the player for staff review; never a silent edit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import BlockNotFound

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.currencies import currency
from casino_app.payments.eth.watch_models import ChainBlock, ChainDeposit, PlayerHold

log = get_logger("casino.eth.watcher")

CHAIN = "ethereum"
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)").to_0x_hex()
# A reorg deeper than this is not walked back automatically: the watcher stops and alerts.
MAX_REORG_DEPTH = 256
WEI_PER_GWEI = 10**9
CHUNK = 50  # blocks fetched in one JSON-RPC batch and stored in one ledger transaction


class WatcherStopped(Exception):
    """The chain does not match the stored blocks beyond MAX_REORG_DEPTH (or the settings
    are wrong): nothing was changed, staff must look."""


@dataclass(frozen=True)
class Asset:
    code: str            # the ledger currency
    token: str | None    # the ERC-20 contract (checksummed); None: the native coin
    per_unit: int        # on-chain units per ledger unit (ETH: wei per gwei)


def parse_amounts(spec: str, what: str) -> dict[str, int]:
    """"CUR:amount,CUR:amount" (base units) -> {CUR: amount}; ValueError names ``what``."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"([A-Z]{2,8}):(\d{1,19})", part)
        if m is None:
            raise ValueError(f"{what}: '{part}' is not CUR:amount (base units)")
        out[currency(m.group(1)).code] = int(m.group(2))
    return out


def parse_tokens(spec: str) -> dict[str, str]:
    """CASINO_ETH_TOKENS "USDT:0x...,USDC:0x..." -> {code: checksummed address}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        code, _, addr = part.partition(":")
        if not Web3.is_address(addr):
            raise ValueError(f"CASINO_ETH_TOKENS: '{part}' is not CUR:0xaddress")
        cur = currency(code.strip())
        if not cur.real_money or cur.code in ("ETH", "BTC"):
            raise ValueError(f"CASINO_ETH_TOKENS: {cur.code} is not an ERC-20 currency")
        out[cur.code] = Web3.to_checksum_address(addr)
    return out


_DECIMALS_ABI = [{"name": "decimals", "type": "function", "stateMutability": "view",
                  "inputs": [], "outputs": [{"name": "", "type": "uint8"}]}]


def chain_assets(w3: Web3, tokens: dict[str, str]) -> list[Asset]:
    """ETH and the configured tokens, with each token's decimals read from the chain."""
    assets = [Asset("ETH", None, WEI_PER_GWEI)]
    for code, addr in tokens.items():
        onchain = w3.eth.contract(address=addr, abi=_DECIMALS_ABI).functions.decimals().call()
        extra = onchain - currency(code).decimals
        if extra < 0:
            raise WatcherStopped(f"{code} has {onchain} decimals on chain, fewer than the "
                                 f"ledger's {currency(code).decimals}")
        assets.append(Asset(code, addr, 10**extra))
    return assets


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else Web3.to_hex(value)


@dataclass
class PollResult:
    head: int = 0
    tip: int | None = None
    blocks: int = 0
    deposits: int = 0
    credited: int = 0
    made_available: int = 0
    reversed: int = 0
    players: set[str] = field(default_factory=set)  # whose deposits changed (push to tabs)


@dataclass
class _Found:
    tx_hash: str
    log_index: int
    asset: Asset
    address: str
    sender: str
    raw: int


class Watcher:
    """Follows one chain for the deposit addresses in the ledger database."""

    def __init__(self, w3: Web3, assets: Sequence[Asset], chain: str = CHAIN,
                 confirmations: int | None = None, pending_cap: dict[str, int] | None = None,
                 dust: dict[str, int] | None = None, batch: int | None = None,
                 start_block: int | None = None, finality: str | None = None) -> None:
        st = get_settings()
        self.w3, self.chain, self.assets = w3, chain, list(assets)
        self.confirmations = confirmations or st.eth_confirmations
        self.pending_cap = (pending_cap if pending_cap is not None
                            else parse_amounts(st.eth_pending_cap, "CASINO_ETH_PENDING_CAP"))
        self.dust = dust if dust is not None else parse_amounts(st.eth_dust, "CASINO_ETH_DUST")
        self.batch = batch or st.eth_blocks_per_poll
        self.start_block = start_block
        self.finality = finality or st.eth_finality
        self._by_token = {a.token.lower(): a for a in self.assets if a.token}
        self._native = next(a for a in self.assets if a.token is None)
        self._owners: dict[str, str] = {}   # lowercase address -> player_id
        self._owner_count = -1

    # --- addresses ---

    def _refresh_owners(self, s: Session) -> None:
        from casino_app.payments.eth import addresses

        count = addresses.count(s, self.chain)
        if count != self._owner_count:
            self._owners = {a.lower(): p for a, p in
                            addresses.all_addresses(s, self.chain).items()}
            self._owner_count = count

    # --- the pass ---

    def poll(self) -> PollResult:
        res = PollResult(head=self.w3.eth.block_number)
        with ledger_tx() as s:
            self._refresh_owners(s)
            tip = self._tip(s)
        if tip is not None:
            node_hash = self._node_hash(tip.number) if res.head >= tip.number else None
            if node_hash is None:
                # The node is behind our stored tip (lagging, or another backend behind a
                # load balancer): not a reorg. Change nothing; look again next pass.
                log.warning("eth_node_behind", tip=tip.number, head=res.head)
                res.tip = tip.number
                return res
            if node_hash != tip.hash:
                self._rewind(tip, res)
                with ledger_tx(readonly=True) as s:
                    tip = self._tip(s)
        if tip is None:
            start = (self.start_block if self.start_block is not None
                     else max(0, res.head - self.confirmations))
        else:
            start = tip.number + 1
        end = min(res.head, start + self.batch - 1)
        if start <= end:
            self._scan(start, end, tip, res)
        with ledger_tx() as s:
            tip = self._tip(s)
            res.tip = tip.number if tip else None
            if tip is not None:
                self._confirm(s, tip.number, res, self._finalized())
        if res.blocks or res.credited or res.made_available or res.reversed:
            log.info("eth_watch", head=res.head, tip=res.tip, blocks=res.blocks,
                     deposits=res.deposits, credited=res.credited,
                     made_available=res.made_available, reversed=res.reversed)
        return res

    def _tip(self, s: Session) -> ChainBlock | None:
        return s.execute(select(ChainBlock).where(ChainBlock.chain == self.chain)
                         .order_by(ChainBlock.number.desc()).limit(1)).scalar_one_or_none()

    def _node_hash(self, number: int) -> str | None:
        """The node's block hash at ``number``; None when it has no block there. Any other
        failure (timeout, node error) propagates: the pass fails and changes nothing."""
        try:
            return _hex(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    # --- scanning ---

    def _scan(self, start: int, end: int, tip: ChainBlock | None, res: PollResult) -> None:
        logs: dict[int, list[Any]] = {}
        if self._by_token:
            for entry in self.w3.eth.get_logs({
                    "fromBlock": start, "toBlock": end, "topics": [TRANSFER_TOPIC],
                    "address": [a.token for a in self.assets if a.token]}):
                logs.setdefault(entry["blockNumber"], []).append(entry)
        parent = tip.hash if tip is not None else None
        for first in range(start, end + 1, CHUNK):
            last = min(end, first + CHUNK - 1)
            # One JSON-RPC batch for the chunk's blocks; one ledger transaction for the
            # chunk (its blocks and their deposits together: a crash resumes at the cursor).
            with self.w3.batch_requests() as batch:
                for number in range(first, last + 1):
                    batch.add(self.w3.eth.get_block(number, True))
                blocks = batch.execute()
            rows: list[tuple[int, str, str, list[_Found]]] = []
            moved = False
            for number, block in zip(range(first, last + 1), blocks, strict=True):
                block_hash, parent_hash = _hex(block["hash"]), _hex(block["parentHash"])
                if parent is not None and parent_hash != parent:
                    log.warning("eth_chain_moved", block=number)  # the next pass rewinds
                    moved = True
                    break
                found = self._native_deposits(block)
                for entry in logs.get(number, []):
                    if _hex(entry["blockHash"]) != block_hash:
                        log.warning("eth_logs_moved", block=number)
                        moved = True
                        break
                    hit = self._token_deposit(entry)
                    if hit is not None:
                        found.append(hit)
                if moved:
                    break
                rows.append((number, block_hash, parent_hash, found))
                parent = block_hash
            if rows:
                with ledger_tx() as s:
                    now = utcnow()
                    for number, block_hash, parent_hash, found in rows:
                        s.add(ChainBlock(chain=self.chain, number=number, hash=block_hash,
                                         parent_hash=parent_hash, seen_at=now))
                        for f in found:
                            if self._record(s, f, number, block_hash, res):
                                res.deposits += 1
                res.blocks += len(rows)
            if moved:
                return

    def _native_deposits(self, block: Any) -> list[_Found]:
        out = []
        for tx in block["transactions"]:
            to = tx.get("to")
            if not to or tx["value"] <= 0 or to.lower() not in self._owners:
                continue
            # A reverted call keeps no value: only a successful transaction is a deposit.
            if self.w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                continue
            # Our own transaction (the sweeper's gas top-up from the hot wallet) moves
            # coins between our addresses: not a deposit.
            if self._sent_by_us(_hex(tx["hash"])):
                continue
            out.append(_Found(_hex(tx["hash"]), -1, self._native,
                              Web3.to_checksum_address(to), Web3.to_checksum_address(tx["from"]),
                              int(tx["value"])))
        return out

    def _sent_by_us(self, tx_hash: str) -> bool:
        """A transaction we recorded before broadcasting it (payments/eth/batcher)."""
        from casino_app.payments.eth.withdrawal_models import WithdrawalBatchTx

        with ledger_tx(readonly=True) as s:
            return s.execute(select(WithdrawalBatchTx.id).where(
                WithdrawalBatchTx.tx_hash == tx_hash).limit(1)).first() is not None

    def _token_deposit(self, entry: Any) -> _Found | None:
        topics = entry["topics"]
        if len(topics) != 3:
            return None
        to = "0x" + _hex(topics[2])[-40:]
        if to.lower() not in self._owners:
            return None
        asset = self._by_token.get(_hex(entry["address"]).lower())
        if asset is None:
            return None
        raw = int(_hex(entry["data"]), 16) if _hex(entry["data"]) not in ("0x", "") else 0
        if raw <= 0:
            return None
        return _Found(_hex(entry["transactionHash"]), int(entry["logIndex"]), asset,
                      Web3.to_checksum_address(to),
                      Web3.to_checksum_address("0x" + _hex(topics[1])[-40:]), raw)

    def _record(self, s: Session, f: _Found, number: int, block_hash: str,
                res: PollResult) -> bool:
        """Store a deposit (once). A deposit that a reorg reversed and that is mined again
        gets its new block and will be credited again. True when something was stored."""
        row = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.tx_hash == f.tx_hash,
            ChainDeposit.log_index == f.log_index)).scalar_one_or_none()
        amount = f.raw // f.asset.per_unit
        dust = amount < max(1, self.dust.get(f.asset.code, 0))
        now = utcnow()
        if row is None:
            s.add(ChainDeposit(
                chain=self.chain, tx_hash=f.tx_hash, log_index=f.log_index,
                block_number=number, block_hash=block_hash, currency=f.asset.code,
                address=f.address, sender=f.sender, player_id=self._owners[f.address.lower()],
                amount_raw=str(f.raw), amount=amount, state="dust" if dust else "seen",
                credits=0, owed=0, created_at=now, updated_at=now))
        elif row.state == "reversed":
            row.block_number, row.block_hash, row.updated_at = number, block_hash, now
            row.state = "dust" if dust else "seen"
        else:
            return False  # already recorded in a block we still hold
        res.players.add(self._owners[f.address.lower()])
        return True

    # --- confirmations and credits ---

    def _finalized(self) -> int | None:
        """The node's ``finalized`` block when CASINO_ETH_FINALITY=finalized (None: count
        confirmations; also when the node has no such tag, which is logged)."""
        if self.finality != "finalized":
            return None
        try:
            return int(self.w3.eth.get_block("finalized")["number"])
        except Exception:  # noqa: BLE001 - a node without the tag: fall back, say so
            log.warning("eth_no_finalized_tag", fallback_confirmations=self.confirmations)
            return None

    def _confirm(self, s: Session, tip: int, res: PollResult,
                 finalized: int | None = None) -> None:
        rows = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.state.in_(("seen", "pending")))
            .order_by(ChainDeposit.id).with_for_update()).scalars().all()
        for row in rows:
            confs = tip - row.block_number + 1
            final = (row.block_number <= finalized if finalized is not None
                     else confs >= self.confirmations)
            if row.state == "pending":
                if final:
                    row.state, row.updated_at = "available", utcnow()
                    res.made_available += 1
                    res.players.add(row.player_id)
                continue
            if not final and not self._within_cap(s, row):
                continue
            self._credit(s, row)
            row.state = "available" if final else "pending"
            row.updated_at = utcnow()
            res.credited += 1
            res.made_available += final
            res.players.add(row.player_id)

    def _within_cap(self, s: Session, row: ChainDeposit) -> bool:
        cap = self.pending_cap.get(row.currency, 0)
        pending = s.execute(select(func.coalesce(func.sum(ChainDeposit.amount), 0)).where(
            ChainDeposit.player_id == row.player_id, ChainDeposit.currency == row.currency,
            ChainDeposit.state == "pending")).scalar_one()
        return int(pending) + row.amount <= cap

    def _credit(self, s: Session, row: ChainDeposit) -> None:
        row.credits += 1
        ledger.transfer(
            s, f"deposit:{self.chain}:{row.tx_hash}:{row.log_index}:{row.credits}", "deposit",
            ledger.house_account(s, row.currency, "custody"),
            ledger.player_account(s, row.player_id, row.currency), row.amount,
            memo=f"{self.chain} deposit {row.tx_hash}")

    # --- reorgs ---

    def _rewind(self, tip: ChainBlock, res: PollResult) -> None:
        """Walk back to the last stored block the node still has, drop the stored blocks
        above it and reverse their deposits (one transaction)."""
        with ledger_tx(readonly=True) as s:
            stored = dict(s.execute(
                select(ChainBlock.number, ChainBlock.hash).where(
                    ChainBlock.chain == self.chain,
                    ChainBlock.number > tip.number - MAX_REORG_DEPTH)).all())
        ancestor = None
        for number in sorted(stored, reverse=True):
            node_hash = self._node_hash(number)
            if node_hash is None:  # the node lost blocks below its head: not a reorg
                log.warning("eth_rewind_node_gap", block=number)
                return
            if node_hash == stored[number]:
                ancestor = number
                break
        if ancestor is None:
            raise WatcherStopped(
                f"no stored block of the last {MAX_REORG_DEPTH} is on the node's chain "
                f"(stored tip {tip.number}): the watcher stops; check the node")
        with ledger_tx() as s:
            rows = s.execute(select(ChainDeposit).where(
                ChainDeposit.chain == self.chain, ChainDeposit.block_number > ancestor,
                ChainDeposit.state != "reversed").order_by(ChainDeposit.id)
                .with_for_update()).scalars().all()
            for row in rows:
                self._reverse(s, row)
                res.reversed += 1
                res.players.add(row.player_id)
            dropped = s.query(ChainBlock).filter(
                ChainBlock.chain == self.chain, ChainBlock.number > ancestor
            ).delete(synchronize_session=False)
        log.warning("eth_reorg", ancestor=ancestor, dropped_blocks=dropped,
                    reversed=res.reversed)

    def _reverse(self, s: Session, row: ChainDeposit) -> None:
        credited = row.state in ("pending", "available")
        row.state, row.updated_at = "reversed", utcnow()
        if not credited:
            return
        player = ledger.player_account(s, row.player_id, row.currency)
        custody = ledger.house_account(s, row.currency, "custody")
        bal = ledger.balance_of(s, player, lock=True)
        back = min(row.amount, max(0, bal.balance - bal.reserved))
        owed = row.amount - back
        moves = [(custody, row.amount)]
        if back:
            moves.append((player, -back))
        if owed:
            moves.append((ledger.account(s, row.player_id, row.currency, "debt"), -owed))
        ledger.post_entry(
            s, f"deposit-reversal:{self.chain}:{row.tx_hash}:{row.log_index}:{row.credits}",
            "deposit_reversal", moves, memo=f"{self.chain} reorg dropped {row.tx_hash}")
        if owed:
            row.owed += owed
            s.add(PlayerHold(player_id=row.player_id, reason="deposit_reversed",
                             detail=f"{self.chain} {row.tx_hash}: owes {owed} "
                                    f"{row.currency} base units", created_at=utcnow()))
            log.warning("eth_reversed_spent_deposit", player_id=row.player_id,
                        tx=row.tx_hash, currency=row.currency, owed=owed)


def withdrawable(s: Session, player_id: str, currency_code: str) -> int:
    """Available balance minus deposits credited but not yet confirmed (not withdrawable)."""
    bal = ledger.player_balances(s, player_id).get(currency_code)
    if bal is None:
        return 0
    pending = s.execute(select(func.coalesce(func.sum(ChainDeposit.amount), 0)).where(
        ChainDeposit.player_id == player_id, ChainDeposit.currency == currency_code,
        ChainDeposit.state == "pending")).scalar_one()
    return max(0, bal.balance - bal.reserved - int(pending))


def deposits_of(s: Session, player_id: str, limit: int = 50) -> list[ChainDeposit]:
    return list(s.execute(select(ChainDeposit).where(ChainDeposit.player_id == player_id)
                          .order_by(ChainDeposit.id.desc()).limit(limit)).scalars())



_watcher: Watcher | None = None


def watch_once() -> dict[str, int]:
    """The ``eth-watch`` job: one pass of the process's watcher (built on first use from
    the settings; a failed pass is retried by the next one and resumes from the cursor)."""
    global _watcher
    if _watcher is None:
        st = get_settings()
        w3 = Web3(Web3.HTTPProvider(st.eth_rpc_url, request_kwargs={"timeout": 10}))
        _watcher = Watcher(w3, chain_assets(w3, parse_tokens(st.eth_tokens)))
    res = _watcher.poll()
    return {"head": res.head, "tip": res.tip or 0, "blocks": res.blocks,
            "credited": res.credited, "reversed": res.reversed}
