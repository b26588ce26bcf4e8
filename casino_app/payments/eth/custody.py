"""What staff see of Ethereum custody (read-only): per currency the hot wallet and the cold
Safe with their balances read live from the node, what the books say we hold (minus the
custody account), the hot wallet's band (``CASINO_ETH_HOT_BAND``), and the reconciliation
runs (payments/eth/reconcile.py) with their totals and issues.

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

from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments import ledger
from casino_app.payments.assets import native_per_unit
from casino_app.payments.currencies import currency
from casino_app.payments.eth.watcher import CHAIN, WEI_PER_GWEI, parse_tokens
from casino_app.payments.reconcile_models import ReconcileIssue, ReconcileRun

NODE_TIMEOUT = 3      # seconds per JSON-RPC request of the wallets page

_BALANCE_ABI = [{"name": "balanceOf", "type": "function", "stateMutability": "view",
                 "inputs": [{"name": "a", "type": "address"}],
                 "outputs": [{"name": "", "type": "uint256"}]},
                {"name": "decimals", "type": "function", "stateMutability": "view",
                 "inputs": [], "outputs": [{"name": "", "type": "uint8"}]}]


# --- the hot band ----------------------------------------------------------------------------

def parse_band(spec: str) -> dict[str, tuple[int, int]]:
    """``CASINO_ETH_HOT_BAND`` "CUR:min:max,..." (ledger base units: ETH in gwei) ->
    {CUR: (min, max)}; ValueError naming the variable for anything else."""
    out: dict[str, tuple[int, int]] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        bits = [b.strip() for b in part.split(":")]
        if len(bits) != 3 or not all(b.isascii() and b.isdigit() and len(b) <= 19
                                     for b in bits[1:]):
            raise ValueError(f"CASINO_ETH_HOT_BAND: '{part}' is not CUR:min:max "
                             "(base units)")
        try:
            code = currency(bits[0]).code
        except ValueError:
            raise ValueError(f"CASINO_ETH_HOT_BAND: unknown currency '{bits[0]}'") from None
        lo, hi = int(bits[1]), int(bits[2])
        if lo > hi:
            raise ValueError(f"CASINO_ETH_HOT_BAND: {code} minimum is above its maximum")
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
              chain: str = CHAIN) -> list[RunView]:
    """Reconciliation runs, newest first (``before_id``: the next page)."""
    q = select(ReconcileRun).where(ReconcileRun.chain == chain)
    if before_id is not None:
        q = q.where(ReconcileRun.id < before_id)
    return [_run_view(r) for r in s.execute(q.order_by(ReconcileRun.id.desc())
                                            .limit(limit)).scalars()]


def latest_run(s: Session, chain: str = CHAIN) -> RunView | None:
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
    token: str | None               # the ERC-20 contract; None for ether
    hot_balance: str                # exact text, "" when the node did not answer
    safe_balance: str
    custody: str                    # what the books say we hold (minus the custody account)
    band: str                       # "min – max", "" without a band
    band_status: str                # below / above / within / ""
    advice: str


@dataclass(frozen=True)
class Overview:
    hot_address: str
    safe_address: str
    node: str                       # "ok", "not configured", "unreachable"
    node_error: str
    config_errors: list[str]
    wallets: list[WalletView]
    latest: RunView | None


def _node_balances(url: str, tokens: dict[str, str], owners: dict[str, str],
                   timeout: int) -> dict[str, tuple[int, dict[str, int]]]:
    """{code: (per_unit, {owner name: on-chain balance})} read from the node now."""
    from casino_app.payments.eth import chain

    w3 = chain.connect(url, timeout=timeout)
    out: dict[str, tuple[int, dict[str, int]]] = {
        "ETH": (WEI_PER_GWEI, {k: int(w3.eth.get_balance(a)) for k, a in owners.items()})}
    for code, addr in tokens.items():
        c = w3.eth.contract(address=addr, abi=_BALANCE_ABI)
        extra = int(c.functions.decimals().call()) - currency(code).decimals
        per = 10**extra if extra >= 0 else None
        out[code] = (per or 0, {k: int(c.functions.balanceOf(a).call())
                                for k, a in owners.items()})
    return out


def overview(timeout: int = NODE_TIMEOUT, chain: str = CHAIN) -> Overview:
    """The wallets page: the configuration, the books (one read-only ledger transaction,
    closed before the node is asked), the balances from the node (``timeout`` per request;
    an error is reported, not raised)."""
    from casino_app.core.db import ledger_tx
    from casino_app.payments.eth import keys

    st = get_settings()
    errors: list[str] = []
    tokens: dict[str, str] = {}
    bands: dict[str, tuple[int, int]] = {}
    hot = ""
    try:
        tokens = parse_tokens(st.eth_tokens)
    except ValueError as exc:
        errors.append(str(exc))
    try:
        bands = parse_band(st.eth_hot_band)
    except ValueError as exc:
        errors.append(str(exc))
    try:
        hot = keys.hot_wallet_address()
    except (ConfigError, ValueError) as exc:
        errors.append(f"hot wallet: {exc}")
    safe = st.eth_safe_address
    owners = {k: a for k, a in (("hot", hot), ("safe", safe)) if a}
    codes = ["ETH", *tokens, *(c for c in bands if c not in tokens
                               and c not in ("ETH", "BTC") and currency(c).real_money)]
    with ledger_tx(readonly=True) as s:
        custody = {c: -ledger.house_total(s, c, "custody") for c in codes}
        latest = latest_run(s, chain)

    balances: dict[str, tuple[int, dict[str, int]]] = {}
    node, node_error = "ok", ""
    if not st.eth_rpc_url:
        node, node_error = "not configured", "No node is configured (CASINO_ETH_RPC_URL)."
    elif owners:
        try:
            balances = _node_balances(st.eth_rpc_url, tokens, owners, timeout)
        except Exception as exc:  # noqa: BLE001 - any node failure is shown, not raised
            node, node_error = "unreachable", f"node unreachable ({type(exc).__name__})"

    wallets = []
    for code in codes:
        per, found = balances.get(code, (known_per_unit(code), {}))
        hot_raw, safe_raw = found.get("hot"), found.get("safe")
        band = bands.get(code)
        status = band_status(hot_raw, per, band)
        wallets.append(WalletView(
            code, tokens.get(code),
            onchain_text(code, hot_raw, per) if hot_raw is not None else "",
            onchain_text(code, safe_raw, per) if safe_raw is not None else "",
            ledger_text(code, custody[code]),
            f"{ledger_text(code, band[0])} – {ledger_text(code, band[1])}" if band else "",
            status, BAND_ADVICE.get(status, "")))
    return Overview(hot, safe, node, node_error, errors, wallets, latest)
