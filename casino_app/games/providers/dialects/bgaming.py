"""The BGaming / SoftSwiss-style dialect (PROVIDERS.md, section B): HMAC-signed JSON with
``actions``.

Both directions carry ``X-REQUEST-SIGN`` = lowercase hex HMAC-SHA256(shared secret, raw
body). ``/play`` applies its actions (bets and wins) in order, all or none; no actions is
a balance request. ``/rollback`` undoes actions by their ids. Amounts are integers in our
base units (cents, satoshi, gwei, 10^-6 USDT/USDC): no conversion, and a non-integer is
refused (code 400). Errors are HTTP 412 ``{code, message, balance}``.

``session_id`` carries the launch token we gave in ``/sessions`` (the public material
names the field but not its origin: unconfirmed), checked on bets only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from casino_app.games.providers.contract import (
    Call,
    Refused,
    Status,
    WalletAnswer,
    WalletRequest,
)
from casino_app.games.providers.dialects.common import (
    MAX_ID,
    currency_code,
    dumps,
    flag,
    integer,
    load_object,
    optional_object,
    text,
)
from casino_app.games.providers.registry import ProviderConfig
from casino_app.games.providers.wallet import Reply

SIGNATURE_HEADER = "X-REQUEST-SIGN"
MAX_ACTIONS = 50
CODES = {
    Status.not_enough_money: 100,
    Status.invalid_token: 101,
    Status.token_expired: 101,
    Status.limit_reached: 105,
    Status.invalid_game: 107,
    Status.user_disabled: 110,
    Status.wrong_currency: 154,
    Status.wrong_syntax: 400,
    Status.wrong_types: 400,
    Status.invalid_signature: 403,
    Status.invalid_partner: 403,
    Status.transaction_does_not_exist: 404,
    Status.duplicate_transaction: 500,
    Status.unknown_error: 500,
}


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _action_id(item: dict, name: str = "action_id") -> str:
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        raise Refused(Status.wrong_syntax, f"{name} is missing")
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise Refused(Status.wrong_types, f"{name} must be a string of 1-{MAX_ID} "
                      "characters")
    return value


def _actions(obj: dict, rollback: bool) -> tuple[Call, ...]:
    items = obj.get("actions")
    if items is None:
        return ()
    if not isinstance(items, list) or len(items) > MAX_ACTIONS:
        raise Refused(Status.wrong_types, f"actions must be a list of at most "
                      f"{MAX_ACTIONS}")
    calls = []
    for item in items:
        if not isinstance(item, dict):
            raise Refused(Status.wrong_types, "each action is an object")
        kind = item.get("action")
        if rollback:
            if kind != "rollback":
                raise Refused(Status.wrong_syntax, "/rollback takes rollback actions")
            calls.append(Call("rollback", _action_id(item), 0,
                              _action_id(item, "original_action_id")))
        else:
            if kind not in ("bet", "win"):
                raise Refused(Status.wrong_syntax, "an action is a bet or a win")
            calls.append(Call(kind, _action_id(item), integer(item, "amount")))
    return tuple(calls)


class BGaming:
    name = "bgaming"
    paths = frozenset({"/play", "/rollback"})
    signature_header = SIGNATURE_HEADER

    def verify(self, provider: ProviderConfig, headers: Mapping[str, str],
               body: bytes) -> bool:
        signature = (headers.get(SIGNATURE_HEADER.lower()) or "").strip().lower()
        if not signature or not provider.secret:
            return False
        return hmac.compare_digest(signature, sign(provider.secret, body))

    def parse(self, path: str, body: bytes) -> WalletRequest:
        obj = load_object(body)
        user = text(obj, "user_id", min_len=4, max_len=64)
        code = currency_code(obj)
        game = text(obj, "game", max_len=100)
        calls = _actions(obj, rollback=path == "/rollback")
        round_ref = text(obj, "game_id", required=bool(calls))
        finished = flag(obj, "finished", required=False)
        session = text(obj, "session_id", required=False) or None
        return WalletRequest(player_id=user, currency=code, game_code=game,
                             round_ref=round_ref, token=session, closes_round=finished,
                             calls=calls, fair=optional_object(obj, "fair"))

    def reply(self, provider: ProviderConfig, path: str, body: bytes) -> Reply:
        game_id: Any = None
        try:
            obj = load_object(body)
            if isinstance(obj.get("game_id"), str):
                game_id = obj["game_id"][:MAX_ID]
        except Refused:
            pass

        def render(result: WalletAnswer | Refused) -> bytes:
            if isinstance(result, Refused):
                out: dict[str, Any] = {"code": CODES.get(result.status, 500),
                                       "message": result.message[:200]}
                if result.balance is not None:
                    out["balance"] = result.balance
                return dumps(out)
            out = {"balance": result.balance}
            if result.applied:
                out["game_id"] = game_id
                out["transactions"] = [
                    {"action_id": a.tx_ref, "tx_id": "" if a.marker else a.our_id,
                     "processed_at": a.processed_at.isoformat(timespec="milliseconds")
                     + "Z"} for a in result.applied]
            return dumps(out)

        def signer(data: bytes) -> str:
            return sign(provider.secret, data) if provider.secret else ""

        return Reply(render, signer)

    def http_status(self, refusal: Refused | None) -> int:
        return 200 if refusal is None else 412


DIALECT = BGaming()
