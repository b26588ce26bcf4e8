"""Set-up for provider tests, through the services: players (an identity row that never
signs in: its password hash is not a hash), money, providers and launch tokens."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.games.providers import registry, sessions
from casino_app.games.providers.registry import ProviderConfig
from casino_app.payments import ledger
from casino_app.payments.players import ensure_player
from casino_app.security.sealed import email_index


@dataclass(frozen=True)
class TestPlayer:
    player_id: str
    user_id: int


def new_player(fun: int = 0, **balances: int) -> TestPlayer:
    """A player account (locked out of sign-in: no real password hash) with ``fun``
    cents and other ``balances`` (base units) credited."""
    from casino_app.users.models import User

    player_id = str(uuid.uuid4())
    email = f"p-{secrets.token_hex(6)}@example.com"
    with identity_tx() as s:
        user = User(player_id=player_id, email_index=email_index(email),
                    password_hash="!no-sign-in", role="player")
        user.email = email
        user.display_name = "Provider Tester"
        s.add(user)
        s.flush()
        user_id = user.id
    ensure_player(player_id)
    if fun:
        credit(player_id, "FUN", fun)
    for code, amount in balances.items():
        credit(player_id, code, amount)
    return TestPlayer(player_id, user_id)


def credit(player_id: str, code: str, amount: int) -> None:
    with ledger_tx() as s:
        p = ledger.player_account(s, player_id, code)
        src = ledger.house_account(s, code, "faucet" if code == "FUN" else "custody")
        ledger.transfer(s, f"test-credit:{uuid.uuid4().hex}", "deposit", src, p, amount)


def balance(player_id: str, code: str = "FUN") -> int:
    with ledger_tx(readonly=True) as s:
        acct = ledger.existing_account(s, player_id, code, "player")
        return 0 if acct is None else ledger.balance_of(s, acct).balance


def token(provider: ProviderConfig, player: TestPlayer, game: str = "hh-slot",
          code: str = "FUN", hours: float = 12) -> str:
    return sessions.open_session(provider, player.player_id, game, code, hours=hours)


def add_hub88(name: str, public_pem: str, base_url: str = "http://127.0.0.1:9") \
        -> ProviderConfig:
    return registry.add(name, "hub88", base_url, "FUN,ETH,BTC,USDT", public_key=public_pem)


def add_bgaming(name: str, secret: bytes, base_url: str = "http://127.0.0.1:9") \
        -> ProviderConfig:
    return registry.add(name, "bgaming", base_url, "FUN,ETH,BTC,USDT", secret=secret)


def invariants_hold() -> list[str]:
    with ledger_tx(readonly=True) as s:
        return [f"{f.check}: {f.examples}" for f in ledger.check_invariants(s)
                if f.violations]


def lock(player: TestPlayer) -> None:
    """Lock the player's account (as staff would)."""
    from casino_app.core.clock import utcnow
    from casino_app.users.models import User

    with identity_tx() as s:
        user = s.get(User, player.user_id)
        user.locked_at = utcnow()  # type: ignore[union-attr]
        user.lock_reason = "provider test"  # type: ignore[union-attr]


def play_round(provider: ProviderConfig, player: TestPlayer, token_: str, stake: int,
               win: int, *, game: str = "hh-slot", code: str = "FUN") -> int:
    """A closed round (one bet, one win) through the wallet, each call kept as a receipt
    with a body naming the round as the dialect does; returns our round id."""
    import json

    from casino_app.games.providers import wallet
    from casino_app.games.providers.contract import Call, WalletRequest
    from casino_app.games.providers.dialects import dialect
    from casino_app.games.providers.models import ProviderRound

    ref = str(uuid.uuid4())
    names = {"hub88": ("round", "user"), "bgaming": ("game_id", "user_id")}
    round_field, user_field = names[provider.dialect]
    for call, close in ((Call("bet", "b" + ref, stake), False),
                        (Call("win", "w" + ref, win), True)):
        body = json.dumps({round_field: ref, user_field: player.player_id,
                           "tx": call.tx_ref}).encode()
        reply = dialect(provider.dialect).reply(provider, "/play", body)
        req = WalletRequest(player.player_id, code, game, ref,
                            token_ if call.kind == "bet" else None, close, (call,))
        status = wallet.handle(provider, req, wallet.Receipt("/play", body, "sig"), reply,
                               lambda _p: True)[2]
        if status.value != "OK":
            raise AssertionError(f"{call.kind} of round {ref}: {status.value}")
    with ledger_tx(readonly=True) as s:
        from sqlalchemy import select

        return s.execute(select(ProviderRound.id).where(
            ProviderRound.provider_id == provider.id, ProviderRound.round_ref == ref)
        ).scalar_one()
