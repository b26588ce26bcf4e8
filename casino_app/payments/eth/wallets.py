"""The staff wallets page's Ethereum side (read-only): per currency the hot wallet and the
cold Safe with their balances read live from the node, next to what the books say we hold
(minus the custody account) and the hot wallet's band (``CASINO_ETH_HOT_BAND``). The
books' side, the band and the exact amounts are payments/custody.py's.
"""

from __future__ import annotations

from casino_app.core.db import ledger_tx
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments import ledger
from casino_app.payments.currencies import currency
from casino_app.payments.custody import (
    BAND_ADVICE,
    Overview,
    WalletView,
    band_status,
    known_per_unit,
    latest_run,
    ledger_text,
    onchain_text,
    parse_band,
)
from casino_app.payments.eth import chain as eth_chain
from casino_app.payments.eth import keys
from casino_app.payments.eth.watcher import CHAIN, WEI_PER_GWEI, parse_tokens

NODE_TIMEOUT = 3      # seconds per JSON-RPC request of the wallets page

_BALANCE_ABI = [{"name": "balanceOf", "type": "function", "stateMutability": "view",
                 "inputs": [{"name": "a", "type": "address"}],
                 "outputs": [{"name": "", "type": "uint256"}]},
                {"name": "decimals", "type": "function", "stateMutability": "view",
                 "inputs": [], "outputs": [{"name": "", "type": "uint8"}]}]


def _node_balances(url: str, tokens: dict[str, str], owners: dict[str, str],
                   timeout: int) -> dict[str, tuple[int, dict[str, int]]]:
    """{code: (per_unit, {owner name: on-chain balance})} read from the node now."""
    w3 = eth_chain.connect(url, timeout=timeout)
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
    if st.eth_rpc_url:  # without a node there is no hot wallet to look at (nor an error)
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
        node, node_error = "not configured", (
            "No node is configured (CASINO_ETH_RPC_URL): Ethereum custody is off, and "
            "players play with FUN. For a local chain, run `casino devnet` and use the "
            "settings it prints.")
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
