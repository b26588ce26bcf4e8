"""The two dialects' clients of the casino's wallet: how the sim's actions travel.

The round engine (``rounds.py``) thinks in actions (bet, win, rollback) grouped in
requests; a client turns them into its dialect's calls, signs them, sends them and sorts
each answer into ok, refused (not enough money, a limit: nothing to undo) or failed (a
network error, a timeout, any other status: the engine rolls the bet back or retries the
win, as the dialects' rules say). Every exchange is kept as a ``Call`` for the round's
record, the tests and the recall page.

A request is built once per action list, so sending it again is byte for byte the same
request (a retry), with the same ids.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

import httpx

from casino_app.provider_sim import signing
from casino_app.provider_sim.state import SimState

OK, REFUSED, FAILED = "ok", "refused", "failed"
HUB88_REFUSALS = {"RS_ERROR_NOT_ENOUGH_MONEY", "RS_ERROR_LIMIT_REACHED"}
BGAMING_REFUSALS = {100, 105, 106}  # not enough funds, bet limit, max bet
MESSAGES = {
    "RS_ERROR_NOT_ENOUGH_MONEY": "Not enough money for this stake.",
    "RS_ERROR_LIMIT_REACHED": "A limit you set (or your casino's) stops this stake.",
    100: "Not enough money for this stake.",
    105: "A limit you set (or your casino's) stops this stake.",
    106: "This stake is above the maximum bet.",
}
BAD_SIGNATURE = "bad-signature"
DROP = "drop"


def new_id() -> str:
    return str(uuid.uuid4())


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Action:
    kind: str  # "bet", "win" or "rollback"
    amount: int = 0
    ref: str | None = None  # win: its bet; rollback: the action it undoes
    label: str = ""  # Hub88's "bet" field: what was bet on ("spin", "step 2")
    flags: set[str] = field(default_factory=set)  # misbehaviour for this action's call
    id: str = field(default_factory=new_id)
    request_uuid: str = field(default_factory=new_id)


@dataclass
class Player:
    """Who plays, as the wallet knows them."""

    dialect: str
    user: str
    token: str
    currency: str
    game: str
    session_id: str = ""  # BGaming: the casino's session id from /sessions


@dataclass
class Call:
    dialect: str
    path: str
    request: dict[str, Any]
    spoiled_signature: bool
    http_status: int | None = None
    response: Any = None
    response_signature: str = "absent"  # valid, invalid, absent, no-key
    outcome: str = FAILED
    status: str = ""  # the dialect's status or code, or timeout / network / dropped
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "path": self.path, "request": self.request,
                "spoiled_signature": self.spoiled_signature,
                "http_status": self.http_status, "response": self.response,
                "response_signature": self.response_signature, "outcome": self.outcome,
                "status": self.status, "note": self.note}


@dataclass
class Result:
    outcome: str
    calls: list[Call]
    balance: int | None = None
    failed_at: int | None = None  # the action whose call failed
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == OK


class WalletClient:
    dialect = ""
    header = ""

    def __init__(self, base_url: str, state: SimState, http: httpx.Client) -> None:
        self.base = base_url.rstrip("/")
        self.state = state
        self.http = http

    # --- what a dialect defines ---------------------------------------------------------
    def sign(self, body: bytes) -> str:
        raise NotImplementedError

    def response_signature(self, body: bytes, signature: str | None) -> str:
        raise NotImplementedError

    def classify(self, call: Call) -> None:
        raise NotImplementedError

    def balance(self, player: Player) -> Result:
        raise NotImplementedError

    def send(self, player: Player, round_id: str, actions: list[Action], *, finished: bool,
             opening_fair: dict[str, Any] | None, closing_fair: dict[str, Any] | None,
             twice: bool = False) -> Result:
        raise NotImplementedError

    # --- one exchange -------------------------------------------------------------------
    def post(self, path: str, body: dict[str, Any], *, flags: Set[str] = frozenset(),
             twice: bool = False, note: str = "") -> list[Call]:
        """Send one signed request (twice, byte for byte, with ``twice``)."""
        raw = dumps(body)
        signature = self.sign(raw)
        spoil = BAD_SIGNATURE in flags
        if spoil:
            signature = signing.spoiled(signature)
        calls = []
        for attempt in range(2 if twice else 1):
            call = Call(self.dialect, path, body, spoil,
                        note=note if attempt == 0 else "sent again (misbehaviour: retry)")
            try:
                answer = self.http.post(self.base + path, content=raw, headers={
                    "Content-Type": "application/json", self.header: signature})
            except httpx.TimeoutException:
                call.status = "timeout"
            except httpx.HTTPError as exc:
                call.status = f"network: {type(exc).__name__}"
            else:
                call.http_status = answer.status_code
                try:
                    call.response = answer.json()
                except ValueError:
                    call.response = answer.text[:500]
                call.response_signature = self.response_signature(
                    answer.content, answer.headers.get(self.header))
                self.classify(call)
            if DROP in flags:
                call.outcome, call.note = FAILED, "answer dropped as if timed out " \
                                                  "(misbehaviour: timeout-rollback)"
                call.status = "dropped"
            calls.append(call)
        return calls

    @staticmethod
    def _result(calls: list[Call], failing: Call | None, balance: int | None,
                failed_at: int | None = None) -> Result:
        if failing is None:
            return Result(OK, calls, balance)
        return Result(failing.outcome, calls, balance, failed_at or 0,
                      MESSAGES.get(failing.status, f"The casino's wallet answered "
                                                   f"{failing.status or 'nothing'}."))

    def _one(self, calls: list[Call], balance: int | None) -> Result:
        """The result of a request sent as one call (perhaps twice: the first counts)."""
        return self._result(calls, None if calls[0].outcome == OK else calls[0], balance)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Hub88Wallet(WalletClient):
    """Hub88 style: one call per action, RSA-signed, ``{user, status, ..., balance}``."""

    dialect = "hub88"
    header = signing.HUB88_HEADER

    def sign(self, body: bytes) -> str:
        return signing.rsa_sign(self.state.hub88_key, body)

    def response_signature(self, body: bytes, signature: str | None) -> str:
        if not signature:
            return "absent"
        key = self.state.casino_public_key()
        if key is None:
            return "no-key"
        return "valid" if signing.rsa_verify(key, body, signature) else "invalid"

    def classify(self, call: Call) -> None:
        status = call.response.get("status") if isinstance(call.response, dict) else None
        call.status = str(status) if status else f"HTTP {call.http_status}"
        if call.http_status == 200 and status == "RS_OK":
            call.outcome = OK
        elif call.http_status == 200 and status in HUB88_REFUSALS:
            call.outcome = REFUSED

    def _balance_of(self, calls: list[Call]) -> int | None:
        for call in reversed(calls):
            if isinstance(call.response, dict) and call.http_status == 200:
                found = _int_or_none(call.response.get("balance"))
                if found is not None:
                    return found
        return None

    def info(self, player: Player) -> Result:
        calls = self.post("/user/info", {"user": player.user, "request_uuid": new_id()})
        return self._one(calls, None)

    def balance(self, player: Player) -> Result:
        calls = self.post("/user/balance", {"user": player.user, "token": player.token,
                                            "request_uuid": new_id(),
                                            "game_code": player.game})
        return self._one(calls, self._balance_of(calls))

    def body(self, player: Player, round_id: str, action: Action, *, closed: bool,
             meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        supplier_tx = f"{round_id}:{action.id[:8]}"
        if action.kind == "rollback":
            return "/transaction/rollback", {
                "user": player.user, "token": player.token,
                "request_uuid": action.request_uuid, "transaction_uuid": action.id,
                "supplier_transaction_id": supplier_tx,
                "reference_transaction_uuid": action.ref, "round": round_id,
                "round_closed": closed, "game_code": player.game, "meta": meta}
        body: dict[str, Any] = {
            "user": player.user, "token": player.token, "request_uuid": action.request_uuid,
            "transaction_uuid": action.id, "supplier_transaction_id": supplier_tx,
            "supplier_user": player.user, "round": round_id, "round_closed": closed,
            "game_code": player.game, "currency": player.currency, "amount": action.amount,
            "bet": action.label, "is_free": False, "is_aggregated": False,
            "reward_uuid": None, "meta": meta}
        if action.kind == "win":
            body["reference_transaction_uuid"] = action.ref
        return f"/transaction/{action.kind}", body

    def send(self, player: Player, round_id: str, actions: list[Action], *, finished: bool,
             opening_fair: dict[str, Any] | None, closing_fair: dict[str, Any] | None,
             twice: bool = False) -> Result:
        calls: list[Call] = []
        last = len(actions) - 1
        for i, action in enumerate(actions):
            meta: dict[str, Any] = {}
            if opening_fair and action.kind == "bet" and i == 0:
                meta = {"fair": opening_fair}
            closed = finished and i == last
            if closing_fair and closed and action.kind == "win":
                meta = {"fair": closing_fair}
            path, body = self.body(player, round_id, action, closed=closed, meta=meta)
            sent = self.post(path, body, flags=action.flags, twice=twice)
            calls += sent
            if sent[0].outcome != OK:
                return self._result(calls, sent[0], self._balance_of(calls), i)
        return self._result(calls, None, self._balance_of(calls))


class BGamingWallet(WalletClient):
    """BGaming style: one request per group of actions, HMAC-signed, HTTP 412 on errors."""

    dialect = "bgaming"
    header = signing.BGAMING_HEADER

    def sign(self, body: bytes) -> str:
        return signing.hmac_sign(self.state.bgaming_secret, body)

    def response_signature(self, body: bytes, signature: str | None) -> str:
        if not signature:
            return "absent"
        return "valid" if signing.hmac_verify(self.state.bgaming_secret, body, signature) \
            else "invalid"

    def classify(self, call: Call) -> None:
        code = call.response.get("code") if isinstance(call.response, dict) else None
        if call.http_status == 200:
            call.outcome, call.status = OK, "OK"
            return
        call.status = code if isinstance(code, int) else f"HTTP {call.http_status}"
        if call.http_status == 412 and code in BGAMING_REFUSALS:
            call.outcome = REFUSED

    @staticmethod
    def _balance_of(calls: list[Call]) -> int | None:
        for call in reversed(calls):
            if isinstance(call.response, dict) and call.http_status in (200, 412):
                found = _int_or_none(call.response.get("balance"))
                if found is not None:
                    return found
        return None

    def balance(self, player: Player) -> Result:
        calls = self.post("/play", {"user_id": player.user, "currency": player.currency,
                                    "game": player.game, "session_id": player.session_id})
        return self._one(calls, self._balance_of(calls))

    @staticmethod
    def action_json(action: Action) -> dict[str, Any]:
        if action.kind == "rollback":
            return {"action": "rollback", "action_id": action.id,
                    "original_action_id": action.ref}
        return {"action": action.kind, "amount": action.amount, "action_id": action.id}

    def send(self, player: Player, round_id: str, actions: list[Action], *, finished: bool,
             opening_fair: dict[str, Any] | None, closing_fair: dict[str, Any] | None,
             twice: bool = False) -> Result:
        rollback = all(a.kind == "rollback" for a in actions)
        body: dict[str, Any] = {
            "user_id": player.user, "currency": player.currency, "game": player.game,
            "game_id": round_id, "session_id": player.session_id, "finished": finished,
            "actions": [self.action_json(a) for a in actions]}
        fair = closing_fair if (finished and closing_fair) else opening_fair
        if fair and not rollback:
            body["fair"] = fair
        flags: set[str] = set().union(*(a.flags for a in actions))
        calls = self.post("/rollback" if rollback else "/play", body, flags=flags,
                          twice=twice)
        return self._one(calls, self._balance_of(calls))
