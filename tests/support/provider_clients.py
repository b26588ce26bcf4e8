"""Test clients that speak to our wallet as a provider would, from the public wire facts
(PROVIDERS.md): a Hub88-style aggregator (RSA-signed) and a BGaming-style studio
(HMAC-signed). They check the signature of every answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass
class Answer:
    status_code: int
    body: bytes
    signature: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


def new_rsa() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, public


class Hub88Client:
    """An aggregator calling ``{wallet}/user/...`` and ``/transaction/...``."""

    def __init__(self, wallet_url: str, key: rsa.RSAPrivateKey, our_public_pem: str,
                 http: httpx.Client | None = None) -> None:
        self.wallet_url = wallet_url.rstrip("/")
        self.key = key
        self.casino_key = serialization.load_pem_public_key(our_public_pem.encode())
        self.http = http or httpx.Client(timeout=30)
        self.last_body = b""

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.key.sign(body, padding.PKCS1v15(),
                                              hashes.SHA256())).decode()

    def raw(self, path: str, body: bytes, signature: str | None = None) -> Answer:
        sig = self.sign(body) if signature is None else signature
        self.last_body = body
        r = self.http.post(self.wallet_url + path, content=body,
                           headers={"X-Hub88-Signature": sig,
                                    "Content-Type": "application/json"})
        answer = Answer(r.status_code, r.content, r.headers.get("X-Hub88-Signature", ""))
        if r.status_code == 200:
            self.casino_key.verify(base64.b64decode(answer.signature), r.content,  # type: ignore[union-attr]
                                   padding.PKCS1v15(), hashes.SHA256())
        return answer

    def call(self, path: str, **fields: Any) -> Answer:
        fields.setdefault("request_uuid", str(uuid.uuid4()))
        return self.raw(path, json.dumps(fields).encode())

    def bet(self, user: str, token: str, tx: str, round_ref: str, amount: int,
            currency: str = "FUN", game: str = "hh-slot", closed: bool = False,
            **extra: Any) -> Answer:
        return self.call("/transaction/bet", user=user, token=token, transaction_uuid=tx,
                         supplier_transaction_id="s-" + tx, supplier_user=user,
                         round=round_ref, round_closed=closed, game_code=game,
                         currency=currency, amount=amount, bet="spin", is_free=False,
                         is_aggregated=False, reward_uuid=None, meta=None, **extra)

    def win(self, user: str, token: str, tx: str, round_ref: str, amount: int,
            reference: str, currency: str = "FUN", game: str = "hh-slot",
            closed: bool = True, **extra: Any) -> Answer:
        return self.call("/transaction/win", user=user, token=token, transaction_uuid=tx,
                         supplier_transaction_id="s-" + tx, supplier_user=user,
                         round=round_ref, round_closed=closed, game_code=game,
                         currency=currency, amount=amount, bet="spin", is_free=False,
                         is_aggregated=False, reward_uuid=None, meta=None,
                         reference_transaction_uuid=reference, **extra)

    def rollback(self, user: str, token: str, tx: str, round_ref: str, reference: str,
                 game: str = "hh-slot", closed: bool = False) -> Answer:
        return self.call("/transaction/rollback", user=user, token=token,
                         transaction_uuid=tx, supplier_transaction_id="s-" + tx,
                         reference_transaction_uuid=reference, round=round_ref,
                         round_closed=closed, game_code=game, meta=None)

    def balance(self, user: str, token: str, game: str = "hh-slot") -> Answer:
        return self.call("/user/balance", user=user, token=token, game_code=game)

    def info(self, user: str) -> Answer:
        return self.call("/user/info", user=user)


class BGamingClient:
    """A studio calling ``{wallet}/play`` and ``/rollback``."""

    def __init__(self, wallet_url: str, secret: bytes, http: httpx.Client | None = None):
        self.wallet_url = wallet_url.rstrip("/")
        self.secret = secret
        self.http = http or httpx.Client(timeout=30)

    def sign(self, body: bytes) -> str:
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def raw(self, path: str, body: bytes, signature: str | None = None) -> Answer:
        sig = self.sign(body) if signature is None else signature
        r = self.http.post(self.wallet_url + path, content=body,
                           headers={"X-REQUEST-SIGN": sig, "Content-Type": "application/json"})
        answer = Answer(r.status_code, r.content, r.headers.get("X-REQUEST-SIGN", ""))
        if r.status_code in (200, 412):
            if not hmac.compare_digest(answer.signature, self.sign(r.content)):
                raise AssertionError("the casino's answer is not signed with the secret")
        return answer

    def play(self, user: str, session: str | None, round_ref: str | None,
             actions: list[dict], currency: str = "FUN", game: str = "hh-slot",
             finished: bool = False, **extra: Any) -> Answer:
        body: dict[str, Any] = {"user_id": user, "currency": currency, "game": game,
                                "finished": finished, "actions": actions, **extra}
        if round_ref is not None:
            body["game_id"] = round_ref
        if session is not None:
            body["session_id"] = session
        return self.raw("/play", json.dumps(body).encode())

    def rollback(self, user: str, round_ref: str, actions: list[dict],
                 currency: str = "FUN", game: str = "hh-slot",
                 finished: bool = False) -> Answer:
        body = {"user_id": user, "currency": currency, "game": game, "game_id": round_ref,
                "finished": finished, "actions": actions}
        return self.raw("/rollback", json.dumps(body).encode())

    def balance(self, user: str, currency: str = "FUN", game: str = "hh-slot") -> Answer:
        return self.raw("/play", json.dumps({"user_id": user, "currency": currency,
                                             "game": game}).encode())
