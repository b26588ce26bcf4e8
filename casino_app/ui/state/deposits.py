"""The wallet page's deposits: per configured currency the player's deposit address (with
its QR code: an EIP-681 URI on Ethereum, a BIP21 URI on Bitcoin; a copy button and a
network warning), the deposits found on chain (Bitcoin's unconfirmed ones as incoming)
and what is withdrawable, pending, confirming or incoming.

A view only: every handler re-checks the caller on the server (``caller``) and reads the
caller's own addresses and deposits; the currency a browser picks is checked against the
configured ones. Open wallet tabs are registered with ui/push.py, whose loop refreshes
them (``_pushed``) when a watcher records a deposit, confirms one, or a chain moves.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
from datetime import datetime

import reflex as rx
import segno

from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import activity, wallet_view
from casino_app.payments.btc import addresses as btc_addresses
from casino_app.payments.btc import keys as btc_keys
from casino_app.payments.btc import network as btc_network
from casino_app.payments.currencies import currency
from casino_app.payments.eth import adapter as eth_adapter
from casino_app.payments.eth import addresses
from casino_app.payments.eth.watcher import parse_tokens
from casino_app.payments.wallet_view import WalletView
from casino_app.ui import push, routes
from casino_app.ui.state.session import caller

log = get_logger("casino.ui.deposits")

STATE_LABELS = {"incoming": "incoming", "seen": "confirming", "pending": "pending",
                "available": "available", "reversed": "reversed", "dust": "too small"}
ETHEREUM, BITCOIN = "ethereum", "bitcoin"
MAX_ROWS = 50


# --- pure helpers (tested in tests/ui/test_deposits_state.py) --------------------------------

def configured() -> dict[str, str | None]:
    """{currency code: token contract (None for ether)} of what this server takes, in
    display order; empty when no Ethereum node is configured."""
    st = get_settings()
    if not st.eth_rpc_url:
        return {}
    out: dict[str, str | None] = {"ETH": None}
    try:
        out.update(parse_tokens(st.eth_tokens))
    except ValueError:
        log.warning("wallet_bad_eth_tokens")  # the config check reports it; ether still works
    return out


def bitcoin_on() -> bool:
    """Whether this server takes Bitcoin deposits (a Bitcoin node is configured)."""
    return bool(get_settings().btc_rpc_url)


def deposit_codes() -> list[str]:
    """Every currency the wallet shows a deposit card for, in display order."""
    return [*configured(), *(["BTC"] if bitcoin_on() else [])]


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code: an SVG data URI (rendered here, nothing sent elsewhere)."""
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="svg", scale=5, border=2, dark="#111111",
                                     light="#ffffff")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def network_warning(code: str, chain_id: int) -> str:
    return (f"Send only {code} on {eth_adapter.network_name(chain_id)} (chain id {chain_id}) "
            "to this address; other networks or coins are lost.")


def btc_network_name(net: btc_network.Network) -> str:
    return "Bitcoin mainnet" if net.is_mainnet else net.label


def btc_network_warning(net: btc_network.Network) -> str:
    return (f"Send only Bitcoin (BTC) on {btc_network_name(net)} to this address; other "
            "networks or coins are lost.")


def eth_note(needed: int) -> str:
    return (f"Deposits count after {needed} confirmations; from the first one they are "
            "playable (within a limit) but not withdrawable.")


def btc_note(needed: int) -> str:
    return ("A deposit shows as incoming as soon as the network sees it, and becomes "
            "playable (within a limit) once it is in a block; after "
            f"{needed} confirmations it can be withdrawn.")


def short_hash(tx_hash: str) -> str:
    return f"{tx_hash[:10]}…{tx_hash[-6:]}" if len(tx_hash) > 18 else tx_hash


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def confirmations_text(state: str, confirmations: int, needed: int) -> str:
    if state in ("reversed", "dust"):
        return "–"
    if state == "available":
        return f"{needed} of {needed}"
    return f"{min(confirmations, needed)} of {needed}"


@dataclasses.dataclass
class CurrencyCard:
    code: str
    name: str
    uri: str
    qr: str
    warning: str
    withdrawable: str
    pending: str
    confirming: str
    address: str = ""
    needed: int = 0       # confirmations to become withdrawable
    note: str = ""
    incoming: str = ""    # unconfirmed deposits (Bitcoin); "" where there are none to show


@dataclasses.dataclass
class DepositRow:
    id: int
    when: str
    currency: str
    amount: str
    state: str
    label: str
    confirmations: str
    tx: str
    tx_short: str


def deposit_row(d: activity.Deposit, needed: int) -> DepositRow:
    return DepositRow(d.id, fmt_time(d.created_at), d.currency,
                      currency(d.currency).format(d.amount), d.state,
                      STATE_LABELS.get(d.state, d.state),
                      confirmations_text(d.state, d.confirmations, needed), d.tx_hash,
                      short_hash(d.tx_hash))


def cards(address: str, view: activity.PlayerDeposits, assets: dict[str, str | None],
          chain_id: int, needed: int = 0) -> list[CurrencyCard]:
    out = []
    for code, token in assets.items():
        cur = currency(code)
        uri = eth_adapter.payment_uri(address, chain_id, token)
        out.append(CurrencyCard(
            code, cur.name, uri, qr_data_uri(uri), network_warning(code, chain_id),
            cur.format(view.withdrawable.get(code, 0)), cur.format(view.pending.get(code, 0)),
            cur.format(view.confirming.get(code, 0)), address, needed, eth_note(needed)))
    return out


def btc_card(address: str, view: activity.PlayerDeposits, net: btc_network.Network
             ) -> CurrencyCard:
    """The Bitcoin card: the BIP21 URI of the address in the QR code, the network named."""
    cur = currency("BTC")
    uri = btc_keys.bip21_uri(address, network=net)
    return CurrencyCard(
        "BTC", cur.name, uri, qr_data_uri(uri), btc_network_warning(net),
        cur.format(view.withdrawable.get("BTC", 0)), cur.format(view.pending.get("BTC", 0)),
        cur.format(view.confirming.get("BTC", 0)), address, net.confirmations,
        btc_note(net.confirmations), cur.format(view.incoming.get("BTC", 0)))


def merged_rows(views: list[tuple[activity.PlayerDeposits, int]]) -> list[DepositRow]:
    """Every chain's deposits in one list, newest first (each with its chain's
    confirmations)."""
    both = [(d, needed) for view, needed in views for d in view.deposits]
    both.sort(key=lambda x: (x[0].created_at, x[0].id), reverse=True)
    return [deposit_row(d, needed) for d, needed in both[:MAX_ROWS]]


# --- the state -------------------------------------------------------------------------------

class DepositsState(rx.State):
    enabled: bool = False      # a chain (Ethereum or Bitcoin) is configured
    btc_off: bool = False      # no Bitcoin node: the page says BTC deposits are off
    loaded: bool = False
    address: str = ""          # the selected currency's deposit address
    network: str = ""          # Ethereum's network name
    chain_id: int = 0
    needed: int = 0            # the selected currency's confirmations to be withdrawable
    codes: list[str] = []
    selected: str = ""
    cards: list[CurrencyCard] = []
    deposits: list[DepositRow] = []
    message: str = ""

    def _clear(self) -> None:
        self.address, self.cards, self.deposits, self.codes = "", [], [], []
        self.loaded, self.message = False, ""

    async def _load(self, player_id: str, view: WalletView | None = None) -> None:
        """Read the player's addresses (each made on first view) and deposits (from
        ``view``, or one read of every chain's)."""
        assets = configured()
        btc = bitcoin_on()
        st = get_settings()
        self._set("enabled", bool(assets) or btc)
        self._set("btc_off", not btc)
        self._set("network", eth_adapter.network_name(st.eth_chain_id))
        self._set("chain_id", st.eth_chain_id)
        if not (assets or btc):
            self._clear()
            self._set("needed", st.eth_confirmations)
            self.loaded = True
            return
        cards_: list[CurrencyCard] = []
        views: list[tuple[activity.PlayerDeposits, int]] = []
        failed = []
        eth_address = btc_address = None
        if assets:
            try:
                eth_address = await asyncio.to_thread(addresses.deposit_address, player_id)
            except Exception as exc:  # noqa: BLE001 - an unconfigured xpub, a busy database
                log.warning("wallet_address_failed", chain=ETHEREUM, error=type(exc).__name__)
                failed.append("Ethereum")
        if btc:
            try:
                net = btc_network.from_settings(st)
                btc_address = await asyncio.to_thread(btc_addresses.deposit_address,
                                                      player_id)
            except Exception as exc:  # noqa: BLE001 - no account key yet, a busy database
                log.warning("wallet_address_failed", chain=BITCOIN, error=type(exc).__name__)
                failed.append("Bitcoin")
        if view is None:
            view = await asyncio.to_thread(wallet_view.read, player_id,
                                           deposits=chains_shown(), rows=MAX_ROWS)
        if eth_address is not None and ETHEREUM in view.deposits:
            found = view.deposits[ETHEREUM]
            cards_ += await asyncio.to_thread(cards, eth_address, found, assets,
                                              st.eth_chain_id, st.eth_confirmations)
            views.append((found, st.eth_confirmations))
        if btc_address is not None and BITCOIN in view.deposits:
            found = view.deposits[BITCOIN]
            cards_.append(await asyncio.to_thread(btc_card, btc_address, found, net))
            views.append((found, net.confirmations))
        codes = [c.code for c in cards_]
        self._set("codes", codes)
        if self.selected not in codes:
            self.selected = codes[0] if codes else ""
        self._set("cards", cards_)
        self._show_selected()
        self._set("deposits", merged_rows(views))
        self._set("message", "" if not failed else
                  f"Your {' and '.join(failed)} deposit address is not available right now. "
                  "Please try again in a minute.")
        self._set("loaded", True)

    def _show_selected(self) -> None:
        card_ = next((c for c in self.cards if c.code == self.selected), None)
        self._set("address", card_.address if card_ else "")
        self._set("needed", card_.needed if card_ else 0)

    def _set(self, name: str, value: object) -> None:
        # Reflex sends every assigned var to the browser: a push that changed one deposit
        # should not send the QR codes again.
        if getattr(self, name) != value:
            setattr(self, name, value)

    def _on_wallet_page(self) -> bool:
        return (self.router.url.path or "").rstrip("/") == routes.WALLET

    @rx.event
    async def on_open(self):
        """on_load of the wallet page: the caller's own address and deposits; the tab is
        registered for live updates."""
        _, me = await caller(self)
        if me is None:
            self._clear()
            return rx.redirect(routes.login_then(routes.WALLET))
        # Registered before the read: a change committed between the two is then pushed
        # (once more, harmlessly) rather than missed until the next one.
        watch(self, me.player_id)
        await self._load(me.player_id)
        return None

    @rx.event
    async def show(self, code: str | list[str]):
        """Show another currency's address card (one of the configured currencies)."""
        _, me = await caller(self)
        if me is None:
            self._clear()
            return rx.redirect(routes.login_then(routes.WALLET))
        if isinstance(code, str) and code in self.codes and code in deposit_codes():
            self.selected = code
            self._show_selected()
        return None


# --- what other states may ask of the deposit cards ---------------------------------------

def chains_shown() -> dict[str, list[str]]:
    """{chain: currencies} of the deposits the page shows (the configured chains)."""
    out: dict[str, list[str]] = {}
    if assets := configured():
        out[ETHEREUM] = list(assets)
    if bitcoin_on():
        out[BITCOIN] = ["BTC"]
    return out


async def show_view(state: DepositsState, view: WalletView) -> None:
    """Show the deposits of one wallet read (``payments.wallet_view``)."""
    await state._load(view.player_id, view)


def on_wallet_page(state: DepositsState) -> bool:
    return state._on_wallet_page()


def forget(state: DepositsState) -> None:
    """The tab no longer shows this player's wallet: nothing of it stays in its state."""
    state._clear()


def watch(state: DepositsState, player_id: str) -> None:
    """Register the tab for live updates of ``player_id``'s wallet (when a chain is on)."""
    if configured() or bitcoin_on():
        push.watch_tab(state.router.session.client_token, player_id)
