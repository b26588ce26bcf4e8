"""The seamless wallet, implemented once for every dialect.

``handle`` runs a provider's request on the settlement writer's thread (the same writer
as house bets, between its batches) in one ledger transaction: every call of the request
is applied in order, or none is. The rules (SEAMLESS_WALLET.md):

- idempotent on (provider, transaction id): a repeat answers with the stored answer, byte
  for byte, and moves nothing; the same id with other fields is a duplicate;
- a rollback of an unknown transaction succeeds and leaves a tombstone under that id, so
  the late call is refused;
- rounds open on their first bet and close with the closing call; a win for an unknown
  or closed round is refused and raises an alert;
- the launch token is checked on bets only; holds, the player's state, the currency's
  bet limit and the balance are checked on bets;
- every request we accepted is kept as a receipt (raw body, signature, our answer).

Money moves between the player's account and the house's ``provider`` account of that
provider (shard = the provider's id): stakes in, wins out, so its balance is what the
provider's games have won from players (GGR), settled with the provider outside.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger, security_logger
from casino_app.games.providers import alerts
from casino_app.games.providers.contract import (
    Applied,
    Call,
    Refused,
    Status,
    WalletAnswer,
    WalletRequest,
)
from casino_app.games.providers.models import (
    ProviderReceipt,
    ProviderRound,
    ProviderSession,
    ProviderTx,
)
from casino_app.games.providers.registry import ProviderConfig
from casino_app.payments import holds, ledger, settlement
from casino_app.payments.currencies import currency
from casino_app.payments.models import Player
from casino_app.security.crypto import token_hash

log = get_logger("casino.providers")

ACCOUNT_KIND = "provider"


@dataclass(frozen=True)
class Receipt:
    """The callback as it arrived."""

    path: str
    body: bytes
    signature: str


@dataclass(frozen=True)
class Reply:
    """How a dialect answers: ``render`` an answer or a refusal to the body it sends,
    ``sign`` a body (the signature header's value; "" where the dialect signs nothing)."""

    render: Callable[[WalletAnswer | Refused], bytes]
    sign: Callable[[bytes], str]

# is the player allowed to play (not locked, not closed)? Asked on bets only.
PlayerCheck = Callable[[str], bool]


class _Retry(Exception):
    """Another process inserted one of our ids meanwhile: run the request again."""


def provider_account(s: Session, provider: ProviderConfig, code: str) -> int:
    return ledger.account(s, ledger.HOUSE, code, ACCOUNT_KIND, shard=provider.id)


def entry_key(provider: ProviderConfig, tx_ref: str) -> str:
    return f"prov:{provider.id}:{tx_ref}"


def _fingerprint(req: WalletRequest, call: Call) -> str:
    fields = [req.player_id, req.currency or "", req.game_code, req.round_ref,
              *call.fingerprint_fields()]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def _balance(s: Session, player_id: str, code: str) -> int:
    """The player's available balance in ``code`` (base units; 0 with no account)."""
    acct = ledger.existing_account(s, player_id, code, "player")
    if acct is None:
        return 0
    return ledger.balance_of(s, acct).available


def handle(provider: ProviderConfig, req: WalletRequest, receipt: Receipt, reply: Reply,
           player_ok: PlayerCheck, timeout: float = 30) -> tuple[bytes, str, Status]:
    """Apply ``req`` on the settlement writer: (answer body, its signature, status). A
    refusal is answered too; its receipt is kept, nothing else changes."""
    future = settlement.writer().run_in_transaction(
        lambda s: _handle(s, provider, req, receipt, reply, player_ok))
    return future.result(timeout)


async def handle_async(provider: ProviderConfig, req: WalletRequest, receipt: Receipt,
                       reply: Reply, player_ok: PlayerCheck) -> tuple[bytes, str, Status]:
    future = settlement.writer().run_in_transaction(
        lambda s: _handle(s, provider, req, receipt, reply, player_ok))
    return await asyncio.wrap_future(future)


def _handle(s: Session, provider: ProviderConfig, req: WalletRequest, receipt: Receipt,
            reply: Reply, player_ok: PlayerCheck) -> tuple[bytes, str, Status]:
    """One request, in the writer's shared transaction: its own SAVEPOINT, so a refusal
    (or an unexpected error) undoes exactly what it began; a refusal keeps its receipt."""
    for _attempt in range(3):
        try:
            with ledger.savepoint(s):
                answer = _apply(s, provider, req, player_ok)
                body = answer.stored if answer.stored is not None else reply.render(answer)
                signature = reply.sign(body)
                _keep(s, provider, receipt, Status.ok.value, body, signature, answer)
                return body, signature, Status.ok
        except _Retry:
            continue
        except Refused as refusal:
            with ledger.savepoint(s):
                return _refused(s, provider, req, receipt, reply, refusal)
    with ledger.savepoint(s):
        return _refused(s, provider, req, receipt, reply,
                        Refused(Status.unknown_error, "busy: try again"))


def refuse(provider: ProviderConfig, receipt: Receipt, reply: Reply,
           refusal: Refused) -> tuple[bytes, str]:
    """Answer a request refused before it was understood (disabled provider, schema);
    its receipt is kept."""
    with ledger_tx() as s:
        body, signature, _status = _refused(s, provider, None, receipt, reply, refusal)
    return body, signature


def _refused(s: Session, provider: ProviderConfig, req: WalletRequest | None,
             receipt: Receipt, reply: Reply, refusal: Refused) -> tuple[bytes, str, Status]:
    if refusal.balance is None and req is not None and req.player_id and req.currency:
        refusal.balance = _balance(s, req.player_id, req.currency)
        refusal.currency = req.currency
    body = reply.render(refusal)
    signature = reply.sign(body)
    _keep(s, provider, receipt, refusal.status.value, body, signature, None)
    if refusal.alert is not None:
        alerts.record(s, provider.id, *refusal.alert)
    return body, signature, refusal.status


def _keep(s: Session, provider: ProviderConfig, receipt: Receipt, status: str,
          body: bytes, signature: str, answer: WalletAnswer | None) -> None:
    row = ProviderReceipt(provider_id=provider.id, path=receipt.path[:64], body=receipt.body,
                          signature=receipt.signature[:1024], status=status[:40],
                          response=body, response_signature=signature[:1024],
                          received_at=utcnow())
    s.add(row)
    s.flush()
    if answer is not None and answer.stored is None:
        fresh = [a.our_id for a in answer.applied if not a.repeat]
        if fresh:
            s.execute(update(ProviderTx).where(ProviderTx.id.in_([int(i) for i in fresh]))
                      .values(response=body, receipt_id=row.id))


# --- applying a request ------------------------------------------------------------------

def _apply(s: Session, provider: ProviderConfig, req: WalletRequest,
           player_ok: PlayerCheck) -> WalletAnswer:
    if not provider.enabled:
        raise Refused(Status.invalid_partner, "this provider is disabled")
    if not req.calls and s.get(Player, req.player_id) is None:
        # (a bet's player is its session's, a win's or rollback's its round's)
        raise Refused(Status.invalid_token, "unknown player")
    if req.info:
        return WalletAnswer(req.player_id, "", 0)
    fp_req = req
    if req.currency is None:
        req = replace(req, currency=_implied_currency(s, provider, req))
    code = req.currency
    if code is None or code not in provider.currencies:
        raise Refused(Status.wrong_currency, f"currency {code} is not enabled for "
                      "this provider")
    cur = currency(code)
    if not req.calls:
        return WalletAnswer(req.player_id, code, _balance(s, req.player_id, code))
    refs = [c.tx_ref for c in req.calls] + [c.reference for c in req.calls if c.reference]
    known = {t.tx_ref: t for t in s.execute(
        select(ProviderTx).where(ProviderTx.provider_id == provider.id,
                                 ProviderTx.tx_ref.in_(refs))).scalars()}
    applied: list[Applied] = []
    stored: set[bytes] = set()
    rnd: ProviderRound | None = None
    token_checked = False
    seen: set[str] = set()
    for call in req.calls:
        if call.tx_ref in seen:
            raise Refused(Status.duplicate_transaction, "a transaction id twice in one "
                          "request")
        seen.add(call.tx_ref)
        fingerprint = _fingerprint(fp_req, call)
        old = known.get(call.tx_ref)
        if old is not None:
            applied.append(_repeat(old, call, fingerprint))
            if old.response is not None:
                stored.add(old.response)
            continue
        if call.kind == "bet":
            if not token_checked:
                _check_token(s, provider, req)
                token_checked = True
            if not player_ok(req.player_id) or holds.on_hold(s, req.player_id):
                raise Refused(Status.user_disabled, "this player may not play now")
            if call.amount > cur.max_bet:
                raise Refused(Status.limit_reached, "over the largest bet for "
                              f"{cur.code}")
            rnd = rnd or _round(s, provider, req, create=True)
        elif call.kind == "win":
            rnd = rnd or _round(s, provider, req, create=False)
            if rnd is None or rnd.state != "open":
                raise _no_round(provider, req, call, rnd)
        else:
            rnd = rnd or _round(s, provider, req, create=False)
        applied.append(_new(s, provider, req, call, fingerprint, rnd, known))
    if applied and all(a.repeat for a in applied) and len(stored) == 1:
        answer = WalletAnswer(req.player_id, code, _balance(s, req.player_id, code),
                              applied, stored=stored.pop())
        return answer
    if rnd is not None:
        _fair_data(rnd, req)
        if req.closes_round and rnd.state == "open":
            rnd.state = "closed"
            rnd.closed_at = utcnow()
            if rnd.fair_scheme:
                rnd.fair_state = "pending"   # honesty.verify_rounds checks it
    s.flush()
    return WalletAnswer(req.player_id, code, _balance(s, req.player_id, code), applied)


def _implied_currency(s: Session, provider: ProviderConfig, req: WalletRequest) -> str:
    """A rollback names no currency (Hub88): the undone transaction's, else its round's,
    else the session's, else the provider's first."""
    refs = [c.reference for c in req.calls if c.reference]
    if refs:
        found = s.execute(select(ProviderTx.currency).where(
            ProviderTx.provider_id == provider.id, ProviderTx.tx_ref.in_(refs))).first()
        if found is not None:
            return found[0]
    if req.round_ref:
        found = s.execute(select(ProviderRound.currency).where(
            ProviderRound.provider_id == provider.id,
            ProviderRound.round_ref == req.round_ref)).first()
        if found is not None:
            return found[0]
    if req.token:
        found = s.execute(select(ProviderSession.currency).where(
            ProviderSession.token_hash == token_hash(req.token))).first()
        if found is not None:
            return found[0]
    return provider.currencies[0]


def _repeat(old: ProviderTx, call: Call, fingerprint: str) -> Applied:
    if old.kind == "tombstone" and call.kind != "rollback":
        raise Refused(Status.duplicate_transaction,
                      f"transaction {call.tx_ref} was rolled back before it arrived")
    if old.fingerprint != fingerprint:
        raise Refused(Status.duplicate_transaction,
                      f"transaction {call.tx_ref} was used with other fields")
    return Applied(call.tx_ref, str(old.id), old.created_at, repeat=True)


def _check_token(s: Session, provider: ProviderConfig, req: WalletRequest) -> None:
    if not req.token:
        raise Refused(Status.invalid_token, "no session token")
    row = s.execute(select(ProviderSession).where(
        ProviderSession.token_hash == token_hash(req.token))).scalar_one_or_none()
    if row is None or row.provider_id != provider.id or row.player_id != req.player_id:
        raise Refused(Status.invalid_token, "unknown session token")
    if row.currency != req.currency:
        raise Refused(Status.wrong_currency, "not the session's currency")
    if row.expires_at <= utcnow():
        raise Refused(Status.token_expired, "the session has expired")


def _round(s: Session, provider: ProviderConfig, req: WalletRequest,
           create: bool) -> ProviderRound | None:
    if not req.round_ref:
        raise Refused(Status.wrong_syntax, "no round id")
    if create:
        stmt = ledger.dialect_insert(s, ProviderRound).values(
            provider_id=provider.id, round_ref=req.round_ref, player_id=req.player_id,
            game_code=req.game_code, currency=req.currency, state="open", staked=0, paid=0,
            fair_scheme="", seed_hash="", seed="", fair_state="none", fair_detail="",
            opened_at=utcnow()).on_conflict_do_nothing(
            index_elements=["provider_id", "round_ref"])
        s.execute(stmt)
    rnd = s.execute(select(ProviderRound).where(
        ProviderRound.provider_id == provider.id, ProviderRound.round_ref == req.round_ref)
        .with_for_update()).scalar_one_or_none()
    if rnd is None:
        return None
    if rnd.player_id != req.player_id or rnd.currency != req.currency:
        raise Refused(Status.duplicate_transaction, "this round belongs to another player "
                      "or currency")
    if req.game_code and rnd.game_code != req.game_code:
        raise Refused(Status.invalid_game, "this round is of another game")
    if create and rnd.state != "open":
        raise Refused(Status.unknown_error, f"round {req.round_ref} is closed")
    return rnd


def _new(s: Session, provider: ProviderConfig, req: WalletRequest, call: Call,
         fingerprint: str, rnd: ProviderRound | None,
         known: dict[str, ProviderTx]) -> Applied:
    code = req.currency or ""
    now = utcnow()
    amount = call.amount
    house = provider_account(s, provider, code) if call.kind != "rollback" else 0
    key = entry_key(provider, call.tx_ref)
    if call.kind == "bet" and amount > 0:
        player = ledger.player_account(s, req.player_id, code)
        try:
            ledger.transfer(s, key, "provider_bet", player, house, amount,
                            memo=f"{provider.name} bet {call.tx_ref}"[:200])
        except ledger.InsufficientFunds:
            raise Refused(Status.not_enough_money, "not enough money") from None
    elif call.kind == "win":
        if call.reference:
            bet = known.get(call.reference) or s.execute(select(ProviderTx).where(
                ProviderTx.provider_id == provider.id,
                ProviderTx.tx_ref == call.reference)).scalar_one_or_none()
            if bet is None or bet.kind != "bet" or bet.rolled_back \
                    or (rnd is not None and bet.round_id != rnd.id):
                raise Refused(Status.transaction_does_not_exist,
                              f"no bet {call.reference} to pay")
        if amount > 0:
            player = ledger.player_account(s, req.player_id, code)
            ledger.transfer(s, key, "provider_win", house, player, amount,
                            memo=f"{provider.name} win {call.tx_ref}"[:200])
    marker = False
    if call.kind == "rollback":
        amount, marker = _rollback(s, provider, req, call, rnd, known, key)
    row_round = rnd.id if rnd is not None else None
    stmt = ledger.dialect_insert(s, ProviderTx).values(
        provider_id=provider.id, tx_ref=call.tx_ref, kind=call.kind, round_id=row_round,
        player_id=req.player_id, currency=code, amount=amount, reference_ref=call.reference,
        fingerprint=fingerprint, rolled_back=False, created_at=now,
    ).on_conflict_do_nothing(index_elements=["provider_id", "tx_ref"])
    table = ProviderTx.__table__
    row = s.execute(stmt.returning(table.c.id)).first()
    if row is None:
        raise _Retry()
    if rnd is not None:
        if call.kind == "bet":
            rnd.staked += amount
        elif call.kind == "win":
            rnd.paid += amount
    return Applied(call.tx_ref, str(row.id), now, marker=marker)


def _rollback(s: Session, provider: ProviderConfig, req: WalletRequest, call: Call,
              rnd: ProviderRound | None, known: dict[str, ProviderTx],
              key: str) -> tuple[int, bool]:
    """Undo ``call.reference``: (the amount moved back, whether it was unknown). An
    unknown reference leaves a tombstone under its id."""
    if not call.reference:
        raise Refused(Status.wrong_syntax, "a rollback names the transaction it undoes")
    original = known.get(call.reference) or s.execute(select(ProviderTx).where(
        ProviderTx.provider_id == provider.id, ProviderTx.tx_ref == call.reference)
        .with_for_update()).scalar_one_or_none()
    code = req.currency or ""
    if original is None:
        stmt = ledger.dialect_insert(s, ProviderTx).values(
            provider_id=provider.id, tx_ref=call.reference, kind="tombstone",
            round_id=rnd.id if rnd is not None else None, player_id=req.player_id,
            currency=code, amount=0, reference_ref=call.tx_ref, fingerprint="",
            rolled_back=True, created_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["provider_id", "tx_ref"])
        if s.execute(stmt.returning(ProviderTx.__table__.c.id)).first() is None:
            raise _Retry()
        return 0, True
    if original.kind == "tombstone":  # rolled back before, unknown then as now
        return 0, True
    if original.player_id != req.player_id or original.currency != code:
        raise Refused(Status.duplicate_transaction, "that transaction is another "
                      "player's or currency's")
    if original.kind not in ("bet", "win"):
        raise Refused(Status.transaction_does_not_exist,
                      f"{call.reference} is not a bet or a win")
    if original.rolled_back or original.amount == 0:
        original.rolled_back = True
        return 0, False
    house = provider_account(s, provider, code)
    player = ledger.player_account(s, req.player_id, code)
    amount = original.amount
    if original.kind == "bet":
        ledger.transfer(s, key, "provider_refund", house, player, amount,
                        memo=f"{provider.name} rollback {call.reference}"[:200])
    else:
        try:
            ledger.transfer(s, key, "provider_unwin", player, house, amount,
                            memo=f"{provider.name} rollback {call.reference}"[:200])
        except ledger.InsufficientFunds:
            raise Refused(Status.not_enough_money, "the player no longer has the win "
                          "to take back") from None
    original.rolled_back = True
    target = s.get(ProviderRound, original.round_id) if original.round_id else None
    if target is not None:
        if original.kind == "bet":
            target.staked -= amount
        else:
            target.paid -= amount
    return amount, False


def _fair_data(rnd: ProviderRound, req: WalletRequest) -> None:
    """Keep the commitment from the round's first call and the seed from its close."""
    fair = req.fair
    if not isinstance(fair, dict):
        return
    scheme, seed_hash, seed = fair.get("scheme"), fair.get("seed_hash"), fair.get("seed")
    if isinstance(scheme, str) and not rnd.fair_scheme:
        rnd.fair_scheme = scheme[:32]
    if isinstance(seed_hash, str) and not rnd.seed_hash:
        rnd.seed_hash = seed_hash[:128]
    if isinstance(seed, str) and req.closes_round and not rnd.seed:
        rnd.seed = seed[:256]


def _no_round(provider: ProviderConfig, req: WalletRequest, call: Call,
              rnd: ProviderRound | None) -> Refused:
    what = "closed" if rnd is not None else "unknown"
    security_logger().warning("provider win for a round not open", provider=provider.name,
                              round=req.round_ref, tx=call.tx_ref, state=what)
    refusal = Refused(Status.transaction_does_not_exist, f"no open round {req.round_ref}")
    refusal.alert = ("win_without_round", "high", req.round_ref[:160],
                     f"win {call.tx_ref} of {call.amount} for a {what} round")
    return refusal
