"""The Hub88-style dialect (PROVIDERS.md, section A): RSA-signed JSON, RS_* statuses,
amounts x 100000 whatever the currency.

Requests are verified with the provider's public key (``X-Hub88-Signature``: Base64 of
RSA-SHA256, PKCS#1 v1.5, over the exact raw body); every answer is signed with our key for
that provider (the public material does not say providers check it; it does no harm).
Every answer is HTTP 200 with ``{user, status, request_uuid, currency, balance}``.

Units: 1 unit = 10^-5 of a coin. Our base units are finer for BTC, ETH, USDT and USDC
(an amount from the provider always converts exactly; a balance we send is rounded down
to whole units) and coarser for FUN (cents: an amount that is not a whole number of cents,
i.e. not a multiple of 1000 units, is refused with RS_ERROR_WRONG_TYPES).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from casino_app.games.providers.contract import (
    Call,
    Refused,
    Status,
    WalletAnswer,
    WalletRequest,
)
from casino_app.games.providers.dialects.common import (
    currency_code,
    dumps,
    flag,
    from_base,
    integer,
    load_object,
    optional_object,
    text,
    to_base,
)
from casino_app.games.providers.registry import ProviderConfig
from casino_app.games.providers.wallet import Reply

DECIMALS = 5
SIGNATURE_HEADER = "X-Hub88-Signature"
STATUS = {s: f"RS_{'OK' if s is Status.ok else 'ERROR_' + s.value}" for s in Status}


@lru_cache(maxsize=64)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Loaded once per key: loading checks the key's consistency, ~50 ms of CPU."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA key")
    return key


@lru_cache(maxsize=64)
def _public_key(pem: str) -> rsa.RSAPublicKey | None:
    key = serialization.load_pem_public_key(pem.encode())
    return key if isinstance(key, rsa.RSAPublicKey) else None


def sign(private_pem: bytes, body: bytes) -> str:
    return base64.b64encode(_private_key(private_pem).sign(
        body, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_signature(public_pem: str, body: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        key = _public_key(public_pem)
        if key is None:
            return False
        key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False
    return True


def _user(obj: dict) -> str:
    return text(obj, "user", min_len=4, max_len=64)


def _fair(obj: dict) -> dict | None:
    meta = optional_object(obj, "meta")
    fair = meta.get("fair") if meta else None
    return fair if isinstance(fair, dict) else None


class Hub88:
    name = "hub88"
    paths = frozenset({"/user/info", "/user/balance", "/transaction/bet",
                       "/transaction/win", "/transaction/rollback"})
    signature_header = SIGNATURE_HEADER

    def verify(self, provider: ProviderConfig, headers: Mapping[str, str],
               body: bytes) -> bool:
        signature = headers.get(SIGNATURE_HEADER.lower()) or ""
        return bool(signature and provider.peer_public_key
                    and verify_signature(provider.peer_public_key, body, signature))

    def parse(self, path: str, body: bytes) -> WalletRequest:
        obj = load_object(body)
        text(obj, "request_uuid", max_len=64)
        user = _user(obj)
        if path == "/user/info":
            return WalletRequest(player_id=user, info=True)
        if path == "/user/balance":
            text(obj, "token", required=False, max_len=128)
            return WalletRequest(player_id=user, currency=None,
                                 game_code=text(obj, "game_code", required=False,
                                                max_len=100),
                                 token=obj.get("token") if isinstance(obj.get("token"), str)
                                 else None)
        tx = text(obj, "transaction_uuid")
        round_ref = text(obj, "round")
        closes = flag(obj, "round_closed", required=False)
        game = text(obj, "game_code", required=False, max_len=100)
        token = text(obj, "token", required=False) or None
        for name in ("supplier_transaction_id", "supplier_user", "reward_uuid"):
            if obj.get(name) is not None and not isinstance(obj.get(name), str):
                raise Refused(Status.wrong_types, f"{name} must be a string")
        for name in ("is_free", "is_aggregated", "is_supplier_promo"):
            flag(obj, name, required=False)
        if path == "/transaction/rollback":
            ref = text(obj, "reference_transaction_uuid")
            return WalletRequest(player_id=user, currency=None, game_code=game,
                                 round_ref=round_ref, token=token, closes_round=closes,
                                 calls=(Call("rollback", tx, 0, ref),), fair=_fair(obj))
        code = currency_code(obj)
        amount = to_base(integer(obj, "amount"), code, DECIMALS)
        if not game:
            raise Refused(Status.wrong_syntax, "game_code is missing")
        if path == "/transaction/bet":
            call = Call("bet", tx, amount)
        else:
            ref = text(obj, "reference_transaction_uuid", required=False)
            promo = flag(obj, "is_supplier_promo", required=False)
            if not ref and not promo:
                raise Refused(Status.wrong_syntax, "reference_transaction_uuid is missing")
            call = Call("win", tx, amount, ref)
        return WalletRequest(player_id=user, currency=code, game_code=game,
                             round_ref=round_ref, token=token, closes_round=closes,
                             calls=(call,), fair=_fair(obj))

    def reply(self, provider: ProviderConfig, path: str, body: bytes) -> Reply:
        echo: dict[str, Any] = {}
        try:
            obj = load_object(body)
            for name in ("request_uuid", "user"):
                if isinstance(obj.get(name), str):
                    echo[name] = obj[name][:128]
        except Refused:
            pass
        info = path == "/user/info"

        def render(result: WalletAnswer | Refused) -> bytes:
            out: dict[str, Any] = {"user": echo.get("user", ""),
                                   "status": STATUS[Status.ok],
                                   "request_uuid": echo.get("request_uuid", "")}
            if isinstance(result, Refused):
                out["status"] = STATUS[result.status]
            if not info and result.currency:
                out["currency"] = result.currency
                out["balance"] = from_base(result.balance or 0, result.currency, DECIMALS)
            return dumps(out)

        def signer(data: bytes) -> str:
            return sign(provider.secret, data) if provider.secret else ""

        return Reply(render, signer)

    def http_status(self, refusal: Refused | None) -> int:
        return 200


DIALECT = Hub88()
