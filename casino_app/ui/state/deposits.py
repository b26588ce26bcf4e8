"""The wallet page's deposits: per configured currency the player's deposit address (with
its EIP-681 QR code and a network warning), the deposits found on chain and what is
withdrawable or still confirming.

A view only: every handler re-checks the caller on the server (``caller``) and reads the
caller's own address and deposits; the currency a browser picks is checked against the
configured ones. Open wallet tabs are registered with ui/push.py, whose loop refreshes
them (``_pushed``) when the watcher records a deposit, confirms one, or the chain moves.
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
from casino_app.payments import activity, withdrawals
from casino_app.payments.currencies import currency
from casino_app.payments.eth import adapter as eth_adapter
from casino_app.payments.eth import addresses
from casino_app.payments.eth.watcher import parse_tokens
from casino_app.ui import push, routes
from casino_app.ui.state.session import caller, session_of
from casino_app.users import accounts

log = get_logger("casino.ui.deposits")

STATE_LABELS = {"seen": "confirming", "pending": "pending", "available": "available",
                "reversed": "reversed", "dust": "too small"}


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


def withdraw_only() -> list[str]:
    """Currencies that can be withdrawn here but have no deposit card (yet): BTC when a
    Bitcoin node is configured. The wallet lists them after the deposit currencies, with
    their withdraw form only."""
    try:
        codes = withdrawals.currencies()
    except ValueError:  # a malformed CASINO_ETH_TOKENS: the config check names it
        return []
    shown = configured()
    return [c for c in codes if c not in shown]


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code: an SVG data URI (rendered here, nothing sent elsewhere)."""
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="svg", scale=5, border=2, dark="#111111",
                                     light="#ffffff")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def network_warning(code: str, chain_id: int) -> str:
    return (f"Send only {code} on {eth_adapter.network_name(chain_id)} (chain id {chain_id}) "
            "to this address; other networks or coins are lost.")


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
          chain_id: int) -> list[CurrencyCard]:
    out = []
    for code, token in assets.items():
        cur = currency(code)
        uri = eth_adapter.payment_uri(address, chain_id, token)
        out.append(CurrencyCard(
            code, cur.name, uri, qr_data_uri(uri), network_warning(code, chain_id),
            cur.format(view.withdrawable.get(code, 0)), cur.format(view.pending.get(code, 0)),
            cur.format(view.confirming.get(code, 0))))
    return out


# --- the state -------------------------------------------------------------------------------

class DepositsState(rx.State):
    enabled: bool = False      # a chain is configured (deposits or withdrawals)
    loaded: bool = False
    address: str = ""
    network: str = ""
    chain_id: int = 0
    needed: int = 0            # confirmations for a deposit to become withdrawable
    codes: list[str] = []
    selected: str = ""
    cards: list[CurrencyCard] = []
    deposits: list[DepositRow] = []
    message: str = ""

    def _clear(self) -> None:
        self.address, self.cards, self.deposits, self.codes = "", [], [], []
        self.loaded, self.message = False, ""

    async def _load(self, player_id: str) -> None:
        """Read the player's address and deposits; create the address on first view."""
        assets = configured()
        extra = withdraw_only()
        st = get_settings()
        self._set("enabled", bool(assets) or bool(extra))
        self._set("network", eth_adapter.network_name(st.eth_chain_id))
        self._set("chain_id", st.eth_chain_id)
        self._set("needed", st.eth_confirmations)
        if not assets and not extra:
            self._clear()
            self.loaded = True
            return
        codes = [*assets, *extra]
        if not assets:  # withdrawals only (BTC without Ethereum): no address, no deposits
            self._set("address", "")
            self._set("codes", codes)
            if self.selected not in codes:
                self.selected = codes[0]
            self._set("cards", [])
            self._set("deposits", [])
            self._set("message", "")
            self._set("loaded", True)
            return
        try:
            address = await asyncio.to_thread(addresses.deposit_address, player_id)
        except Exception as exc:  # noqa: BLE001 - an unconfigured xpub, a busy database
            log.warning("wallet_address_failed", error=type(exc).__name__)
            self._clear()
            self.message = "Your deposit address is not available right now. Please try " \
                           "again in a minute."
            self.loaded = True
            return
        view = await asyncio.to_thread(activity.player_deposits, player_id, list(assets))
        self._set("address", address)
        self._set("codes", codes)
        if self.selected not in codes:
            self.selected = codes[0]
        self._set("cards", await asyncio.to_thread(cards, address, view, assets,
                                                   self.chain_id))
        self._set("deposits", [deposit_row(d, self.needed) for d in view.deposits])
        self._set("message", "")
        self._set("loaded", True)

    def _set(self, name: str, value: object) -> None:
        # Reflex sends every assigned var to the browser: a push that changed one deposit
        # should not send the QR codes again.
        if getattr(self, name) != value:
            setattr(self, name, value)

    def _on_wallet_page(self) -> bool:
        return (self.router.url.path or "").rstrip("/") == routes.WALLET

    async def _pushed(self, player_id: str) -> bool:
        """Refresh from ui/push.py (under the tab's state lock): False when this tab no
        longer shows the wallet of ``player_id`` (the push loop then forgets it)."""
        if not self._on_wallet_page():
            return False
        # The session is re-checked, without counting as the player's use (a tab left
        # open on the wallet still signs out when idle).
        sess = await session_of(self)
        me = await asyncio.to_thread(accounts.current_user, sess.token, touch=False)
        if me is None or me.player_id != player_id:
            self._clear()
            return False
        await self._load(player_id)
        from casino_app.ui.state.wallet import WalletState
        from casino_app.ui.state.withdraw import WithdrawState

        wallet = await self.get_state(WalletState)
        await wallet._refresh(player_id)
        withdraw = await self.get_state(WithdrawState)
        await withdraw._refresh(player_id)
        return True

    @rx.event
    async def on_open(self):
        """on_load of the wallet page: the caller's own address and deposits; the tab is
        registered for live updates."""
        _, me = await caller(self)
        if me is None:
            self._clear()
            return rx.redirect(routes.login_then(routes.WALLET))
        await self._load(me.player_id)
        if self.enabled:
            push.watch_tab(self.router.session.client_token, me.player_id)
        return None

    @rx.event
    async def show(self, code: str | list[str]):
        """Show another currency's address card (one of the configured currencies)."""
        _, me = await caller(self)
        if me is None:
            self._clear()
            return rx.redirect(routes.login_then(routes.WALLET))
        if isinstance(code, str) and code in self.codes and \
                (code in configured() or code in withdraw_only()):
            self.selected = code
        return None
