"""A STAND-IN for the casino's seamless wallet, for the provider-sim's own tests only.

The casino's real wallet is being written beside the sim; this is the smallest wallet
that keeps the rules of shared/reference/PROVIDERS.md closely enough to show what the sim
sends: a real HTTP server (``http.server`` in a thread) with both dialects, Hub88 under
``/hub88`` and BGaming under ``/bgaming``. It verifies every signature (the sim's RSA key,
the shared secret), signs its answers (the casino key), keeps balances, is idempotent on
transaction and action ids, leaves tombstones for rollbacks of unknown ids, and records
every call. Knobs make one call fail: ``fail(path, "500" | "timeout")``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.provider_sim import BGAMING_HEADER, HUB88_HEADER, rsa_sign, rsa_valid


@dataclass
class Recorded:
    dialect: str
    path: str
    raw: bytes
    body: Any
    signature_valid: bool
    status: int = 0
    answer: Any = None

    @property
    def outcome(self) -> str:
        if self.dialect == "hub88":
            return self.answer.get("status", "") if isinstance(self.answer, dict) else ""
        return "OK" if self.status == 200 else str((self.answer or {}).get("code"))


@dataclass
class WalletStandIn:
    state_dir: Path  # the sim's: its public key and the shared secret are read from it
    casino_key: rsa.RSAPrivateKey
    currency: str = "FUN"
    start_balance: int = 10_000_000
    balances: dict[str, int] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    calls: list[Recorded] = field(default_factory=list)
    # transaction / action id -> (fingerprint, stored answer, kind)
    done: dict[str, tuple[str, Any, str]] = field(default_factory=dict)
    tombstones: set[str] = field(default_factory=set)
    rolled_back: set[str] = field(default_factory=set)
    bets: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # id -> user, amt, round
    wins: dict[str, tuple[str, int]] = field(default_factory=dict)
    rounds: dict[str, str] = field(default_factory=dict)  # round -> open / closed
    failures: dict[str, list[str]] = field(default_factory=dict)
    delay: float = 3.0  # a "timeout" answer comes this late
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- test helpers ---------------------------------------------------------------------
    def fail(self, path: str, mode: str, times: int = 1, after: int = 0) -> None:
        """After ``after`` good ones, the next ``times`` calls to ``path``
        ("/hub88/transaction/win") fail: "500" answers HTTP 500 and applies nothing;
        "timeout" applies the call, then answers too late for the sim."""
        self.failures.setdefault(path, []).extend([""] * after + [mode] * times)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.failures.clear()

    def balance(self, user: str) -> int:
        return self.balances.setdefault(user, self.start_balance)

    def of(self, dialect: str) -> list[Recorded]:
        return [c for c in self.calls if c.dialect == dialect]

    @property
    def sim_key(self) -> rsa.RSAPublicKey:
        key = serialization.load_pem_public_key((self.state_dir / "hub88_public.pem")
                                                .read_bytes())
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("not an RSA key")
        return key

    @property
    def secret(self) -> str:
        return (self.state_dir / "bgaming_secret").read_text().strip()

    # --- Hub88 --------------------------------------------------------------------------
    def hub88(self, path: str, body: dict[str, Any], valid: bool) -> dict[str, Any]:
        user = str(body.get("user", ""))
        base = {"user": user, "request_uuid": body.get("request_uuid"),
                "currency": self.currency}

        def answer(status: str) -> dict[str, Any]:
            return base | {"status": status, "balance": self.balance(user)}

        if not valid:
            return answer("RS_ERROR_INVALID_SIGNATURE")
        if path == "/user/info":
            return {"user": user, "status": "RS_OK", "request_uuid": body.get("request_uuid"),
                    "country": "XX"}
        if path == "/user/balance":
            return answer("RS_OK" if body.get("token") in self.tokens
                          else "RS_ERROR_INVALID_TOKEN")
        tx = str(body.get("transaction_uuid"))
        kind = path.rsplit("/", 1)[-1]
        fingerprint = json.dumps({k: body.get(k) for k in (
            "user", "round", "game_code", "currency", "amount",
            "reference_transaction_uuid")}, sort_keys=True) + kind
        if tx in self.done:
            known, stored, _ = self.done[tx]
            return stored if known == fingerprint else answer("RS_ERROR_DUPLICATE_TRANSACTION")
        round_id = str(body.get("round"))
        if kind == "bet":
            if tx in self.tombstones:
                return answer("RS_ERROR_TRANSACTION_DOES_NOT_EXIST")
            if body.get("token") not in self.tokens:
                return answer("RS_ERROR_INVALID_TOKEN")
            amount = int(body["amount"])
            if amount > self.balance(user):
                return answer("RS_ERROR_NOT_ENOUGH_MONEY")
            self.balances[user] -= amount
            self.bets[tx] = (user, amount, round_id)
            self.rounds[round_id] = "closed" if body.get("round_closed") else "open"
        elif kind == "win":
            ref = str(body.get("reference_transaction_uuid"))
            if ref not in self.bets or ref in self.rolled_back or \
                    self.rounds.get(round_id) != "open":
                return answer("RS_ERROR_TRANSACTION_DOES_NOT_EXIST")
            self.balances[user] = self.balance(user) + int(body["amount"])
            self.wins[tx] = (user, int(body["amount"]))
            if body.get("round_closed"):
                self.rounds[round_id] = "closed"
        elif kind == "rollback":
            ref = str(body.get("reference_transaction_uuid"))
            if ref in self.bets and ref not in self.rolled_back:
                bet_user, amount, _ = self.bets[ref]
                self.balances[bet_user] += amount
                self.rolled_back.add(ref)
            elif ref not in self.bets:
                self.tombstones.add(ref)
            if body.get("round_closed"):
                self.rounds[round_id] = "closed"
        stored = answer("RS_OK")
        self.done[tx] = (fingerprint, stored, kind)
        return stored

    # --- BGaming ------------------------------------------------------------------------
    def bgaming(self, path: str, body: dict[str, Any], valid: bool) -> tuple[int, Any]:
        user = str(body.get("user_id", ""))
        if not valid:
            return 412, {"code": 403, "message": "bad signature", "balance": 0}
        actions = body.get("actions")
        if actions is None:
            return 200, {"balance": self.balance(user)}
        round_id = str(body.get("game_id"))
        bets = sum(a["amount"] for a in actions if a["action"] == "bet"
                   and a["action_id"] not in self.done)
        if bets > self.balance(user):
            return 412, {"code": 100, "message": "not enough funds",
                         "balance": self.balance(user)}
        if any(a["action"] == "bet" and a["action_id"] in self.tombstones for a in actions):
            return 412, {"code": 400, "message": "this bet was rolled back before it came",
                         "balance": self.balance(user)}
        if path == "/play" and any(a["action"] == "win" for a in actions) and \
                round_id not in self.rounds and not any(a["action"] == "bet" for a in actions):
            return 412, {"code": 404, "message": "unknown round", "balance": self.balance(user)}
        out = []
        for a in actions:
            aid = a["action_id"]
            if aid in self.done:
                out.append(self.done[aid][1])
                continue
            tx = {"action_id": aid, "tx_id": str(uuid.uuid4()),
                  "processed_at": datetime.now(UTC).isoformat()}
            if a["action"] == "bet":
                if aid in self.tombstones:
                    tx["tx_id"] = ""
                else:
                    self.balances[user] -= a["amount"]
                    self.bets[aid] = (user, a["amount"], round_id)
                    self.rounds.setdefault(round_id, "open")
            elif a["action"] == "win":
                if aid in self.tombstones:
                    tx["tx_id"] = ""
                else:
                    self.balances[user] = self.balance(user) + a["amount"]
                    self.wins[aid] = (user, a["amount"])
            elif a["action"] == "rollback":
                ref = a["original_action_id"]
                if ref in self.bets and ref not in self.rolled_back:
                    self.balances[user] += self.bets[ref][1]
                    self.rolled_back.add(ref)
                elif ref in self.wins and ref not in self.rolled_back:
                    self.balances[user] -= self.wins[ref][1]
                    self.rolled_back.add(ref)
                elif ref not in self.bets and ref not in self.wins:
                    self.tombstones.add(ref)
                    tx["tx_id"] = ""
            self.done[aid] = ("", tx, a["action"])
            out.append(tx)
        if body.get("finished"):
            self.rounds[round_id] = "closed"
        return 200, {"balance": self.balance(user), "game_id": round_id, "transactions": out}

    # --- server -------------------------------------------------------------------------
    def start(self) -> WalletStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                dialect, _, path = self.path.lstrip("/").partition("/")
                path = "/" + path
                body = json.loads(raw)
                with standin.lock:
                    queued = standin.failures.get(self.path)
                    mode = queued.pop(0) if queued else ""
                    if dialect == "hub88":
                        valid = rsa_valid(standin.sim_key, raw, self.headers.get(HUB88_HEADER))
                        rec = Recorded(dialect, path, raw, body, valid)
                        status, answer = (500, {"error": "down"}) if mode == "500" else \
                            (200, standin.hub88(path, body, valid))
                    else:
                        valid = hmac.compare_digest(
                            hmac.new(standin.secret.encode(), raw, hashlib.sha256).hexdigest(),
                            self.headers.get(BGAMING_HEADER, ""))
                        rec = Recorded(dialect, path, raw, body, valid)
                        status, answer = (500, {"code": 500, "message": "down"}) \
                            if mode == "500" else standin.bgaming(path, body, valid)
                    rec.status, rec.answer = status, answer
                    standin.calls.append(rec)
                if mode == "timeout":
                    time.sleep(standin.delay)
                out = json.dumps(answer).encode()
                if dialect == "hub88":
                    signature = rsa_sign(standin.casino_key, out)
                else:
                    signature = hmac.new(standin.secret.encode(), out, hashlib.sha256
                                         ).hexdigest()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.send_header(HUB88_HEADER if dialect == "hub88" else BGAMING_HEADER,
                                     signature)
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the sim gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
