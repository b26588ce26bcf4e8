"""What staff see of custody, the books' side, on any chain (read-only): the hot wallet's
band and where a balance stands in it, exact on-chain amounts, the reconciliation runs
(written by payments/eth/reconcile.py and payments/btc/reconcile.py) with their totals and
issues, and the shape of the wallets overview. What the chain holds now is read from its
node by its adapter (payments/eth/wallets.py: the hot wallet and the cold Safe;
payments/btc/wallets.py: the hot wallet with its change, and the cold multisig).

On-chain amounts are ints in on-chain units (wei, token units). They are shown exactly:
in ledger units with ``Currency.format`` when they divide evenly, otherwise (ETH's sub-gwei
rest) with all the on-chain decimals (18 for ETH); never rounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.payments.assets import native_per_unit
from casino_app.payments.chains import DEFAULT_CHAIN
from casino_app.payments.currencies import currency
from casino_app.payments.reconcile_models import ReconcileIssue, ReconcileRun

# --- the hot band ----------------------------------------------------------------------------

def parse_band(spec: str, what: str = "CASINO_ETH_HOT_BAND") -> dict[str, tuple[int, int]]:
    """A hot band setting "CUR:min:max,..." (ledger base units: ETH in gwei) ->
    {CUR: (min, max)}; ValueError naming the variable ``what`` for anything else (each
    chain has its own; Ethereum's is ``CASINO_ETH_HOT_BAND``)."""
    out: dict[str, tuple[int, int]] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        bits = [b.strip() for b in part.split(":")]
        if len(bits) != 3 or not all(b.isascii() and b.isdigit() and len(b) <= 19
                                     for b in bits[1:]):
            raise ValueError(f"{what}: '{part}' is not CUR:min:max (base units)")
        try:
            code = currency(bits[0]).code
        except ValueError:
            raise ValueError(f"{what}: unknown currency '{bits[0]}'") from None
        lo, hi = int(bits[1]), int(bits[2])
        if lo > hi:
            raise ValueError(f"{what}: {code} minimum is above its maximum")
        out[code] = (lo, hi)
    return out


BELOW, ABOVE, WITHIN = "below", "above", "within"
BAND_ADVICE = {BELOW: "below minimum: refill from cold",
               ABOVE: "above maximum: sweep to cold", WITHIN: "within band"}


def band_status(balance_raw: int | None, per_unit: int | None,
                band: tuple[int, int] | None) -> str:
    """below / above / within for the hot wallet's on-chain balance against the band
    (ledger units); "" when the band or the balance is unknown."""
    if band is None or balance_raw is None or not per_unit:
        return ""
    lo, hi = band
    if balance_raw < lo * per_unit:
        return BELOW
    if balance_raw > hi * per_unit:
        return ABOVE
    return WITHIN


# --- exact amounts ---------------------------------------------------------------------------

def ledger_text(code: str, amount: int) -> str:
    """Ledger base units with all their decimals: ``0.010000000 ETH``."""
    cur = currency(code)
    sign = "-" if amount < 0 else ""
    return f"{sign}{cur.format(abs(amount), cur.decimals)} {cur.code}"


def onchain_text(code: str, raw: int, per_unit: int | None) -> str:
    """On-chain units as exact text: in ledger units when they divide evenly, otherwise
    with every on-chain decimal (ETH: 18); raw units when the conversion is unknown."""
    if not per_unit:
        return f"{raw} on-chain units of {code}"
    if raw % per_unit == 0:
        return ledger_text(code, raw // per_unit)
    cur = currency(code)
    places = cur.decimals + len(str(per_unit)) - 1   # per_unit is a power of ten
    sign = "-" if raw < 0 else ""
    value = Decimal(abs(raw)).scaleb(-places)
    return f"{sign}{value:,.{places}f} {cur.code}"


def known_per_unit(code: str, stored: dict[str, Any] | None = None) -> int | None:
    """On-chain units per ledger unit: stored with the run, else a native coin's (ETH's
    wei per gwei)."""
    value = (stored or {}).get(code)
    if isinstance(value, int) and value > 0:
        return value
    return native_per_unit(code)


# --- reconciliation runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class TotalView:
    currency: str
    onchain: str
    expected: str
    difference: str      # on chain minus expected; "" when they match
    matches: bool


@dataclass(frozen=True)
class RunView:
    id: int
    block: int
    block_hash: str
    started_at: datetime
    finished_at: datetime
    clean: bool
    issues: int
    addresses: int
    totals: list[TotalView]


@dataclass(frozen=True)
class IssueView:
    id: int
    currency: str
    kind: str
    detail: str
    expected: str
    actual: str


def _int(text: object) -> int | None:
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if isinstance(text, str) and text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        return int(text)
    return None


def _totals(summary: str) -> tuple[int, list[TotalView]]:
    try:
        data = json.loads(summary or "{}")
    except ValueError:
        return 0, []
    if not isinstance(data, dict):
        return 0, []
    units = data.get("per_unit") if isinstance(data.get("per_unit"), dict) else {}
    out = []
    totals = data.get("totals") if isinstance(data.get("totals"), dict) else {}
    for code in sorted(totals):
        t = totals[code] if isinstance(totals[code], dict) else {}
        onchain, expected = _int(t.get("onchain")), _int(t.get("expected"))
        if onchain is None or expected is None:
            continue
        per = known_per_unit(code, units)
        diff = onchain - expected
        out.append(TotalView(code, onchain_text(code, onchain, per),
                             onchain_text(code, expected, per),
                             "" if diff == 0 else ("+" if diff > 0 else "")
                             + onchain_text(code, diff, per), diff == 0))
    addresses = data.get("addresses")
    return addresses if isinstance(addresses, int) else 0, out


def _run_view(r: ReconcileRun) -> RunView:
    addresses, totals = _totals(r.summary)
    return RunView(r.id, r.block_number, r.block_hash, r.started_at, r.finished_at, r.clean,
                   r.issues, addresses, totals)


def runs_page(s: Session, before_id: int | None = None, limit: int = 20,
              chain: str = DEFAULT_CHAIN) -> list[RunView]:
    """Reconciliation runs, newest first (``before_id``: the next page)."""
    q = select(ReconcileRun).where(ReconcileRun.chain == chain)
    if before_id is not None:
        q = q.where(ReconcileRun.id < before_id)
    return [_run_view(r) for r in s.execute(q.order_by(ReconcileRun.id.desc())
                                            .limit(limit)).scalars()]


def latest_run(s: Session, chain: str = DEFAULT_CHAIN) -> RunView | None:
    runs = runs_page(s, None, 1, chain)
    return runs[0] if runs else None


def run_issues(s: Session, run_id: int) -> tuple[RunView | None, list[IssueView]]:
    run = s.get(ReconcileRun, run_id)
    if run is None:
        return None, []
    units = {}
    try:
        data = json.loads(run.summary or "{}")
        units = data.get("per_unit", {}) if isinstance(data, dict) else {}
    except ValueError:
        pass
    rows = s.execute(select(ReconcileIssue).where(ReconcileIssue.run_id == run_id)
                     .order_by(ReconcileIssue.id)).scalars()
    out = []
    for i in rows:
        per = known_per_unit(i.currency, units if isinstance(units, dict) else {})
        # balance issues are in on-chain units; a credit's expected amount is in ledger
        # units (ChainDeposit.amount), a missing deposit's actual in on-chain units
        exp, act = _int(i.expected), _int(i.actual)
        if i.kind == "credit_not_on_chain":
            exp_text = ledger_text(i.currency, exp) if exp is not None else i.expected
        else:
            exp_text = onchain_text(i.currency, exp, per) if exp is not None else i.expected
        act_text = onchain_text(i.currency, act, per) if act is not None else i.actual
        out.append(IssueView(i.id, i.currency, i.kind, i.detail, exp_text, act_text))
    return _run_view(run), out


# --- wallets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WalletView:
    currency: str
    token: str | None               # the ERC-20 contract; None for ether and bitcoin
    hot_balance: str                # exact text, "" when the node did not answer
    safe_balance: str               # the cold wallet (Ethereum: the Safe)
    custody: str                    # what the books say we hold (minus the custody account)
    band: str                       # "min – max", "" without a band
    band_status: str                # below / above / within / ""
    advice: str


@dataclass(frozen=True)
class Overview:
    """One chain's wallets page section."""

    hot_address: str
    safe_address: str               # the cold wallet: Ethereum's Safe, Bitcoin's descriptor
    node: str                       # "ok", "not configured", "unreachable"
    node_error: str
    config_errors: list[str]
    wallets: list[WalletView]
    latest: RunView | None
    chain: str = DEFAULT_CHAIN
    network: str = ""               # shown to staff: "Bitcoin regtest"
    at_block: int | None = None     # the node's block the balances were read at
