"""Reading provider rounds back: a player's rounds (My bets), one round with its
transactions, the calls that carried them, and its fairness check (the player's recall
page and staff's /admin/providers), and what staff see of the providers themselves.

Plain reads of the ledger database (pseudonymous ids only). Amounts come as integers in
base units and as text formatted by the currency (``payments.currencies``).

**Which calls belong to a round.** A transaction row names the receipt of the call that
applied it (``provider_txs.receipt_id``): those receipts are the round's. A call that was
refused, or a repeat answered with the stored answer, applied no new row, so nothing
links it; it is found by the round's id inside the raw body (the dialect's round field:
``round`` for Hub88-style, ``game_id`` for BGaming-style), among the provider's receipts
whose ids lie from ``SCAN_BEFORE`` before the round's first linked receipt to
``SCAN_AFTER`` after its last (an index range, so the look-up stays cheap; a refused call
further away, e.g. a win for a round closed long ago on a busy provider, is not found
here: its alert names the round). The bodies are narrowed in SQL by the quoted round id
and each is then parsed and its round field compared exactly.

**The provider's recall page.** Hub88-style providers show a round at a URL they give on
request (``client.round_url``: one signed call, 5 s timeout); BGaming-style ones have
none. A provider that does not answer is reported as down, never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.games.providers import client, registry
from casino_app.games.providers.models import (
    Provider,
    ProviderGame,
    ProviderReceipt,
    ProviderRound,
    ProviderTx,
)
from casino_app.payments.currencies import currency

SCAN_BEFORE = 200
SCAN_AFTER = 5_000
MAX_FOUND = 50        # receipts found by body per round
BODY_CHARS = 16_000   # a body or answer shown longer than this is cut (bodies are < 64 KB)
PAGE_MAX = 100
ID_MAX = 2**62
_ROUND_FIELD = {"hub88": "round", "bgaming": "game_id"}
_USER_FIELD = {"hub88": "user", "bgaming": "user_id"}
_ACTIONS = {"/transaction/bet": "bet", "/transaction/win": "win",
            "/transaction/rollback": "rollback", "/play": "play", "/rollback": "rollback",
            "/user/balance": "balance", "/user/info": "player info"}


class RoundNotFound(LookupError):
    """No such round (or, for a player, not theirs: the same answer)."""

    def __init__(self) -> None:
        super().__init__("No such round.")


@dataclass(frozen=True)
class ProviderView:
    """A provider as staff see it: no secret, no key."""

    name: str
    dialect: str
    enabled: bool
    currencies: tuple[str, ...]
    base_url: str        # where we call the provider (game list, launch, recall)
    wallet_url: str      # where the provider calls us (POST <wallet_url>/<path>)
    disabled_at: datetime | None


@dataclass(frozen=True)
class RoundSummary:
    id: int
    provider: str
    dialect: str
    round_ref: str
    player_id: str
    game_code: str
    game_name: str
    currency: str
    staked: int
    paid: int
    staked_text: str     # "1.00 FUN"
    paid_text: str
    net_text: str        # paid - staked, signed: "+0.50 FUN"
    state: str           # open, closed
    fair_state: str      # none, pending, ok, mismatch
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class TxView:
    id: int
    kind: str            # bet, win, rollback, tombstone
    tx_ref: str
    reference_ref: str   # the transaction a rollback undid (a win: the bet it answered)
    amount: int
    amount_text: str
    rolled_back: bool
    receipt_id: int | None
    at: datetime


@dataclass(frozen=True)
class ReceiptView:
    """One call as it arrived (staff only: raw body and signatures)."""

    id: int
    path: str
    body: str            # the raw body as text (cut at BODY_CHARS)
    signature: str
    status: str          # our answer's status: OK, NOT_ENOUGH_MONEY, ...
    answer: str
    answer_signature: str
    at: datetime
    linked: bool         # a transaction of the round names it (else found by its body)
    same_player: bool    # the body names the round's player


@dataclass(frozen=True)
class CallView:
    """One call in readable form: what it asked, what it moved, how we answered."""

    at: datetime
    action: str          # bet, win, rollback, play, ...
    moved: str           # "bet 1.00 FUN, win 0.50 FUN"; "nothing (refused)"
    status: str
    ok: bool


@dataclass(frozen=True)
class FairCheck:
    scheme: str          # "" when the provider published no commit-reveal data
    seed_hash: str
    seed: str            # "" until the round closed with its seed
    state: str           # none, pending, ok, mismatch
    detail: str          # what did not match
    summary: str         # one sentence for the page


@dataclass(frozen=True)
class RoundDetail:
    round: RoundSummary
    txs: list[TxView]
    calls: list[CallView]
    fair: FairCheck
    receipts: list[ReceiptView] = field(default_factory=list)  # with raw=True only
    receipts_note: str = ""
    recall_url: str = ""
    recall_note: str = ""


def _money(code: str, amount: int, signed: bool = False) -> str:
    try:
        cur = currency(code)
    except ValueError:
        text = str(abs(amount))
    else:
        text = cur.format(abs(amount))
    sign = ("-" if amount < 0 else "+") if signed else ("-" if amount < 0 else "")
    return f"{sign}{text} {code}"


def round_id(value: object) -> int:
    """A round id from a URL or a form (ASCII digits, optionally ``#``) or an int; raises
    ``RoundNotFound`` for anything else."""
    if isinstance(value, str):
        raw = value.strip().removeprefix("#")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            raise RoundNotFound()
        value = int(raw)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < ID_MAX:
        raise RoundNotFound()
    return value


def _summary(r: ProviderRound, p: Provider, game_name: str | None) -> RoundSummary:
    return RoundSummary(
        r.id, p.name, p.dialect, r.round_ref, r.player_id, r.game_code,
        game_name or r.game_code, r.currency, r.staked, r.paid,
        _money(r.currency, r.staked), _money(r.currency, r.paid),
        _money(r.currency, r.paid - r.staked, signed=True), r.state, r.fair_state,
        r.opened_at, r.closed_at)


def _rounds_query():  # noqa: ANN202
    return (select(ProviderRound, Provider, ProviderGame.name)
            .join(Provider, Provider.id == ProviderRound.provider_id)
            .outerjoin(ProviderGame, and_(ProviderGame.provider_id == ProviderRound.provider_id,
                                          ProviderGame.game_code == ProviderRound.game_code)))


def player_rounds(player_id: str, limit: int = 20, before_id: int | None = None
                  ) -> list[RoundSummary]:
    """The player's provider rounds, newest first (``before_id``: the oldest shown)."""
    limit = min(max(int(limit), 1), PAGE_MAX + 1)
    q = _rounds_query().where(ProviderRound.player_id == player_id)
    if before_id is not None:
        q = q.where(ProviderRound.id < round_id(before_id))
    with ledger_tx(readonly=True) as s:
        return [_summary(r, p, g) for r, p, g in
                s.execute(q.order_by(ProviderRound.id.desc()).limit(limit))]


def find_rounds(query: str, limit: int = 20) -> list[RoundSummary]:
    """Rounds by our id (``42`` or ``#42``) or by the provider's round id (any provider),
    newest first."""
    q = query.strip() if isinstance(query, str) else ""
    if not q or len(q) > 128:
        return []
    conds = [ProviderRound.round_ref == q]
    try:
        conds.append(ProviderRound.id == round_id(q))
    except RoundNotFound:
        pass
    with ledger_tx(readonly=True) as s:
        return [_summary(r, p, g) for r, p, g in s.execute(
            _rounds_query().where(or_(*conds)).order_by(ProviderRound.id.desc())
            .limit(limit))]


def _fair(r: ProviderRound) -> FairCheck:
    seed = r.seed if r.state == "closed" else ""  # never while a bet of it is open
    if not r.fair_scheme and r.fair_state == "none":
        summary = "This provider published no commit-reveal data for the round."
    elif r.fair_state == "pending" or (r.fair_state == "none" and r.state == "open"):
        summary = ("Checked once the round has closed and its seed is revealed."
                   if r.state == "open" else "Closed: the check runs within a minute.")
    elif r.fair_state == "ok":
        summary = "The revealed seed matches the commitment and the amounts paid."
    elif r.fair_state == "mismatch":
        summary = f"Mismatch: {r.fair_detail or 'the check failed'}."
    else:
        summary = "Not checked."
    return FairCheck(r.fair_scheme, r.seed_hash, seed, r.fair_state, r.fair_detail, summary)


# a launch token in a body is shown by its last 4 characters only: it was valid for bets
# for hours, and staff who read a receipt have no use for it
_TOKEN_FIELD = re.compile(rb'("(?:token|session_id)"\s*:\s*")([^"\\]{5,})(")')


def _masked(data: bytes) -> bytes:
    return _TOKEN_FIELD.sub(lambda m: m.group(1) + b"\xe2\x80\xa6" + m.group(2)[-4:]
                            + m.group(3), data)


def _text(data: bytes | None) -> str:
    if not data:
        return ""
    text = _masked(data).decode("utf-8", errors="replace")
    return text if len(text) <= BODY_CHARS else text[:BODY_CHARS] + " …(cut)"


def _body_field(body: bytes, name: str) -> object:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return obj.get(name) if isinstance(obj, dict) else None


def _contains(s: Session, needle: bytes) -> ColumnElement[bool]:
    """The receipt's raw body holds ``needle`` (bytes): ``instr`` on SQLite (whose LIKE
    does not look into blobs), LIKE with the pattern's own characters escaped on
    PostgreSQL (bytea)."""
    if s.get_bind().dialect.name == "sqlite":
        return func.instr(ProviderReceipt.body, needle) > 0
    escaped = needle.replace(b"\\", b"\\\\").replace(b"%", b"\\%").replace(b"_", b"\\_")
    return ProviderReceipt.body.op("LIKE")(b"%" + escaped + b"%")


def _receipts(s: Session, r: ProviderRound, dialect: str, linked_ids: set[int]
              ) -> tuple[list[ProviderReceipt], set[int]]:
    """The round's receipts, oldest first: those its transactions name, and those whose
    body names the round within the scanned id range (the set of their ids)."""
    rows: dict[int, ProviderReceipt] = {}
    if linked_ids:
        rows = {x.id: x for x in s.execute(select(ProviderReceipt).where(
            ProviderReceipt.id.in_(sorted(linked_ids)))).scalars()}
    found: set[int] = set()
    fld = _ROUND_FIELD.get(dialect)
    if linked_ids and fld:
        needle = json.dumps(r.round_ref).encode()
        lo, hi = min(linked_ids) - SCAN_BEFORE, max(linked_ids) + SCAN_AFTER
        candidates = s.execute(select(ProviderReceipt).where(
            ProviderReceipt.provider_id == r.provider_id, ProviderReceipt.id >= lo,
            ProviderReceipt.id <= hi, ProviderReceipt.id.notin_(sorted(linked_ids)),
            _contains(s, needle)).order_by(ProviderReceipt.id).limit(MAX_FOUND * 4)
        ).scalars()
        for x in candidates:
            if _body_field(x.body, fld) == r.round_ref and len(found) < MAX_FOUND:
                rows[x.id] = x
                found.add(x.id)
    return [rows[i] for i in sorted(rows)], found


def _calls(receipts: list[ProviderReceipt], txs: list[TxView], player_id: str,
           dialect: str) -> list[CallView]:
    by_receipt: dict[int, list[TxView]] = {}
    for t in txs:
        if t.receipt_id is not None:
            by_receipt.setdefault(t.receipt_id, []).append(t)
    out: list[CallView] = []
    user_field = _USER_FIELD.get(dialect, "")
    for x in receipts:
        mine = by_receipt.get(x.id, [])
        if not mine and _body_field(x.body, user_field) != player_id:
            continue  # a call naming this round for someone else: not the player's
        moved = ", ".join(f"{t.kind} {t.amount_text}" for t in mine) if mine else (
            "nothing (a repeat of an earlier call)" if x.status == "OK"
            else "nothing (refused)")
        action = (" + ".join(dict.fromkeys(t.kind for t in mine)) if mine
                  else _ACTIONS.get(x.path, x.path.strip("/") or "call"))
        out.append(CallView(x.received_at, action, moved, x.status or "?",
                            x.status == "OK"))
    return out


def round_detail(round_ref_id: object, player_id: str | None = None, *, raw: bool = True,
                 provider_link: bool = True) -> RoundDetail:
    """One round with its transactions, its calls in readable form, its fairness check
    and (``provider_link``) the provider's recall URL. With ``player_id``, another
    player's round raises ``RoundNotFound`` as an unknown one does. ``raw``: also the
    receipts (raw bodies, signatures, our answers) for staff; never for a player."""
    rid = round_id(round_ref_id)
    with ledger_tx(readonly=True) as s:
        found = s.execute(_rounds_query().where(ProviderRound.id == rid)).first()
        if found is None:
            raise RoundNotFound()
        r, p, game_name = found
        if player_id is not None and r.player_id != player_id:
            raise RoundNotFound()
        summary = _summary(r, p, game_name)
        txs = [TxView(t.id, t.kind, t.tx_ref, t.reference_ref, t.amount,
                      _money(t.currency, t.amount), t.rolled_back, t.receipt_id, t.created_at)
               for t in s.execute(select(ProviderTx).where(ProviderTx.round_id == rid)
                                  .order_by(ProviderTx.id)).scalars()]
        linked = {t.receipt_id for t in txs if t.receipt_id is not None}
        receipts, by_body = _receipts(s, r, p.dialect, linked)
        calls = _calls(receipts, txs, r.player_id, p.dialect)
        fair = _fair(r)
        shown: list[ReceiptView] = []
        if raw:
            user_field = _USER_FIELD.get(p.dialect, "")
            shown = [ReceiptView(x.id, x.path, _text(x.body), x.signature, x.status,
                                 _text(x.response), x.response_signature, x.received_at,
                                 x.id not in by_body,
                                 _body_field(x.body, user_field) == r.player_id)
                     for x in receipts]
    note = (f"{len(linked)} linked by the round's transactions, {len(by_body)} more found "
            f"by the round id in the body (refused calls and repeats; receipts {SCAN_BEFORE} "
            f"before to {SCAN_AFTER} after the linked ones are searched)")
    detail = RoundDetail(summary, txs, calls, fair, shown, note)
    return provider_recall(detail) if provider_link else detail


def provider_recall(detail: RoundDetail) -> RoundDetail:
    """The detail with the provider's recall URL, or a note on why there is none (a
    dialect without recall, a provider that is down or gave none)."""
    rnd = detail.round
    if rnd.dialect != "hub88":
        return replace(detail, recall_note="This provider's dialect has no round recall.")
    config = registry.by_name(rnd.provider)
    first = next((t.tx_ref for t in detail.txs if t.kind == "bet"), "")
    if config is None or not first:
        return replace(detail, recall_note="No transaction to ask the provider about.")
    try:
        url = client.round_url(config, rnd.player_id, rnd.round_ref, first)
    except client.ProviderDown as exc:
        return replace(detail, recall_note=f"The provider is down: {exc}.")
    if not url:
        return replace(detail, recall_note="The provider gave no recall URL.")
    return replace(detail, recall_url=url)


def providers() -> list[ProviderView]:
    """Every provider as staff see it (no secret is opened)."""
    public = get_settings().public_url.rstrip("/")
    with ledger_tx(readonly=True) as s:
        return [ProviderView(p.name, p.dialect, p.enabled,
                             tuple(c for c in p.currencies.split(",") if c), p.base_url,
                             f"{public}/api/providers/{p.name}", p.disabled_at)
                for p in s.execute(select(Provider).order_by(Provider.name)).scalars()]
