"""The staff wallets page's Bitcoin side (read-only): the hot wallet (its address /1/0 and
its change addresses, which the batcher spends together) and the cold multisig (the sum
over the cold descriptor's addresses, receiving and change, in the watcher's window), both
read live from the node (``BitcoinRPC.address_utxos``: confirmed coins at the node's tip;
on Bitcoin Core a ``scantxoutset``, which reads the whole UTXO set), next to what the books
say we hold (minus the custody account) and the hot band ``CASINO_BTC_HOT_BAND``. Only
reads settings and balances: the band job and the refills are the sweeper's (not here).
"""

from __future__ import annotations

from casino_app.core.db import ledger_tx
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments import ledger
from casino_app.payments.btc import cold as cold_wallets
from casino_app.payments.btc import keys
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.adapter import CHAIN, CURRENCY, parse_hot_band
from casino_app.payments.btc.addresses import Wallet
from casino_app.payments.btc.reconcile import controlled, holdings
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.custody import (
    BAND_ADVICE,
    Overview,
    WalletView,
    band_status,
    latest_run,
    ledger_text,
)

NODE_TIMEOUT = 3      # seconds per JSON-RPC request of the wallets page (Core's scan: longer)


def overview(timeout: float = NODE_TIMEOUT, chain: str = CHAIN) -> Overview:
    """The Bitcoin section of the wallets page: the configuration, the books (one
    read-only ledger transaction, closed before the node is asked), the balances from the
    node (an error is reported, not raised)."""
    st = get_settings()
    errors: list[str] = []
    band: tuple[int, int] | None = None
    hot, cold_text, net_label = "", "", ""
    network = cold = None
    try:
        network = networks.from_settings(st)
        net_label = network.label
    except (ConfigError, ValueError) as exc:
        errors.append(str(exc))
    try:
        band = parse_hot_band(st.btc_hot_band)
    except ValueError as exc:
        errors.append(str(exc))
    xpub = ""
    try:
        xpub = keys.account_xpub()
        hot = keys.hot_wallet_address(xpub, network)
    except (ConfigError, ValueError) as exc:
        errors.append(f"hot wallet: {exc}")
    try:
        cold = cold_wallets.wallet_from_settings(st)
        cold_text = cold.descriptor(None) if cold is not None else ""
    except (ConfigError, ValueError) as exc:
        errors.append(str(exc))
    scripts = {}
    with ledger_tx(readonly=True) as s:
        custody = -ledger.house_total(s, CURRENCY, "custody")
        latest = latest_run(s, chain)
        if xpub and network is not None:
            scripts = {script: o for script, o in controlled(
                s, Wallet(xpub, network, cold), chain, deposits=False).items()
                if o.role in ("hot", "change", "cold")}

    node, node_error, at_block = "ok", "", None
    hot_raw = cold_raw = None
    if not st.btc_rpc_url:
        node, node_error = "not configured", "No node is configured (CASINO_BTC_RPC_URL)."
    elif scripts:
        rpc = BitcoinRPC(st.btc_rpc_url, st.btc_rpc_user, st.btc_rpc_password,
                         timeout=timeout, dialect=st.btc_rpc_dialect)
        try:
            at_block, _, by_role, _ = holdings(rpc, scripts)
            hot_raw = by_role.get("hot", 0) + by_role.get("change", 0)
            cold_raw = by_role.get("cold", 0) if cold is not None else None
        except Exception as exc:  # noqa: BLE001 - any node failure is shown, not raised
            node, node_error = "unreachable", f"node unreachable ({type(exc).__name__})"
        finally:
            rpc.close()
    status = band_status(hot_raw, 1, band)
    wallet = WalletView(
        CURRENCY, None, ledger_text(CURRENCY, hot_raw) if hot_raw is not None else "",
        ledger_text(CURRENCY, cold_raw) if cold_raw is not None else "",
        ledger_text(CURRENCY, custody),
        f"{ledger_text(CURRENCY, band[0])} – {ledger_text(CURRENCY, band[1])}" if band else "",
        status, BAND_ADVICE.get(status, ""))
    return Overview(hot, cold_text, node, node_error, errors, [wallet], latest, chain=chain,
                    network=net_label, at_block=at_block)
