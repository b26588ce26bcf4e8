"""Proof of reserves: a signed Merkle-sum tree of what the house owes players, per
currency, beside what its addresses hold on chain.

Each real-money currency gets a tree whose leaves are the players' balances (player
accounts, base units, those above zero), each under a leaf id ``sha256(salt ":"
player_id)`` with a random salt per player that only that player is shown, so nobody
else can tell which leaf is whose. Leaves are sorted by id. Hashes (scheme
``hh-merkle-sum-sha256-v1``):

- leaf: ``sha256(0x00 || leaf_id (32 bytes) || balance (16 bytes, big-endian))``
- node: ``sha256(0x01 || left hash || left sum (16 B) || right hash || right sum)``, its
  sum the two sums added; a level of odd length is completed with the empty node (32 zero
  bytes, sum 0).

The root's sum is the total of the players' balances, and must equal the books' player
liabilities. Beside it: what every controlled address held at the newest reconciliation
of its chain (payments/eth/reconcile.py and payments/btc/reconcile.py store it), in base
units. Holdings below liabilities are flagged (a security log line, a metric, an audit
row). The document is signed with the operator's Ed25519 reserves key
(``CASINO_RESERVES_KEY_FILE``); anyone can check a published file with ``casino reserves
verify FILE``, and a player checks their own leaf and path in the browser.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger, security_logger
from casino_app.core.metrics import INVARIANT_VIOLATIONS
from casino_app.core.settings import get_settings
from casino_app.payments.currencies import all_currencies
from casino_app.payments.models import LedgerAccount
from casino_app.payments.reconcile_models import ReconcileRun
from casino_app.payments.reserve_models import ReserveLeaf, ReserveProof, ReserveSalt, salt_context
from casino_app.security.audit import SYSTEM, AuditAction, record
from casino_app.security.crypto import keyring

log = get_logger("casino.reserves")

SCHEME = "hh-merkle-sum-sha256-v1"
EMPTY = (bytes(32), 0)
SUM_BYTES = 16
CHAINS = ("ethereum", "bitcoin")


# --- the tree -------------------------------------------------------------------------------

def leaf_id(salt: str, player_id: str) -> str:
    return hashlib.sha256(f"{salt}:{player_id}".encode()).hexdigest()


def _n(value: int) -> bytes:
    if not 0 <= value < 2 ** (8 * SUM_BYTES):
        raise ValueError("a sum out of range")
    return value.to_bytes(SUM_BYTES, "big")


def leaf_hash(leaf: str, balance: int) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(leaf) + _n(balance)).digest()


def node(left: tuple[bytes, int], right: tuple[bytes, int]) -> tuple[bytes, int]:
    return (hashlib.sha256(b"\x01" + left[0] + _n(left[1]) + right[0] + _n(right[1]))
            .digest(), left[1] + right[1])


def levels(leaves: list[tuple[str, int]]) -> list[list[tuple[bytes, int]]]:
    """Every level of the tree, leaves first, root last."""
    level = [(leaf_hash(i, b), b) for i, b in leaves] or [EMPTY]
    out = [level]
    while len(level) > 1:
        padded = level + [EMPTY] if len(level) % 2 else level
        level = [node(padded[k], padded[k + 1]) for k in range(0, len(padded), 2)]
        out.append(level)
    return out


def root_of(leaves: list[tuple[str, int]]) -> tuple[str, int]:
    h, total = levels(leaves)[-1][0]
    return h.hex(), total


def path_of(tree: list[list[tuple[bytes, int]]], index: int) -> list[dict[str, str]]:
    """The siblings from leaf ``index`` up to the root."""
    out = []
    for level in tree[:-1]:
        sibling = index ^ 1
        h, total = level[sibling] if sibling < len(level) else EMPTY
        out.append({"side": "left" if sibling < index else "right", "hash": h.hex(),
                    "sum": str(total)})
        index //= 2
    return out


def verify_path(leaf: str, balance: int, path: list[dict[str, str]], root: str,
                total: int) -> bool:
    """Does the leaf, with ``path``, lead to ``root`` and ``total``?"""
    try:
        cur = (leaf_hash(leaf, balance), balance)
        for step in path:
            other = (bytes.fromhex(step["hash"]), int(step["sum"]))
            if other[1] < 0:
                return False
            cur = node(other, cur) if step["side"] == "left" else node(cur, other)
    except (KeyError, ValueError, TypeError):
        return False
    return cur[0].hex() == root and cur[1] == total


# --- the signing key ---------------------------------------------------------------------

def _key_file() -> Path:
    st = get_settings()
    return Path(st.reserves_key_file) if st.reserves_key_file \
        else st.data_dir / "reserves-signing-key.pem"


def signing_key() -> Ed25519PrivateKey:
    """The operator's reserves key (created in the file on first use, mode 0600)."""
    path = _key_file()
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    log.warning("reserves_signer_created", file=str(path),
                signer=public_hex(key.public_key()))
    return key


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw,
                            serialization.PublicFormat.Raw).hex()


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


# --- building a proof -----------------------------------------------------------------------

def _salts(player_ids: list[str]) -> dict[str, str]:
    """Each player's salt, made for those who have none yet."""
    ring = keyring()
    out: dict[str, str] = {}
    with ledger_tx() as s:
        for row in s.execute(select(ReserveSalt).where(ReserveSalt.player_id.in_(player_ids))
                             ).scalars():
            out[row.player_id] = ring.open(row.salt_sealed, salt_context(
                {"player_id": row.player_id})).decode()
        for pid in player_ids:
            if pid not in out:
                out[pid] = secrets.token_hex(16)
                s.add(ReserveSalt(player_id=pid, salt_sealed=ring.seal(
                    out[pid].encode(), salt_context({"player_id": pid})), created_at=utcnow()))
    return out


def _holdings(s) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """Per currency: what each controlled address held at the newest run of its chain,
    in base units (on-chain units / per unit, rounded down)."""
    out: dict[str, dict[str, Any]] = {}
    for chain in CHAINS:
        run = s.execute(select(ReconcileRun).where(ReconcileRun.chain == chain)
                        .order_by(ReconcileRun.id.desc()).limit(1)).scalar_one_or_none()
        if run is None:
            continue
        summary = json.loads(run.summary or "{}")
        per_unit = summary.get("per_unit", {})
        for code, per in (summary.get("holdings") or {}).items():
            unit = int(per_unit.get(code, 1)) or 1
            addresses = [{"chain": chain, "address": a, "amount": str(int(v) // unit)}
                         for a, v in sorted(per.items())]
            out[code] = {"chain": chain, "block": run.block_number,
                         "block_hash": run.block_hash,
                         "checked_at": run.finished_at.isoformat(timespec="seconds") + "Z",
                         "addresses": addresses,
                         "total": str(sum(int(a["amount"]) for a in addresses))}
    return out


@dataclass
class Built:
    document: dict[str, Any]
    leaves: dict[str, list[tuple[str, str, int]]]  # currency -> (player, leaf id, balance)


def build() -> Built:
    """The proof's document (unsigned) from the books as they are now."""
    codes = [c.code for c in all_currencies() if c.real_money]
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(LedgerAccount.owner, LedgerAccount.currency,
                                LedgerAccount.balance).where(
            LedgerAccount.kind == "player", LedgerAccount.currency.in_(codes))).all()
        held = _holdings(s)
    books = {c: 0 for c in codes}
    players: dict[str, list[tuple[str, int]]] = {c: [] for c in codes}
    for owner, code, bal in rows:
        books[code] += int(bal)
        if bal > 0:
            players[code].append((owner, int(bal)))
    salts = _salts(sorted({p for items in players.values() for p, _ in items}))
    doc: dict[str, Any] = {"version": 1, "scheme": SCHEME,
                           "created_at": utcnow().isoformat(timespec="seconds") + "Z",
                           "currencies": {}}
    leaves: dict[str, list[tuple[str, str, int]]] = {}
    for code in codes:
        mine = sorted(((leaf_id(salts[p], p), p, b) for p, b in players[code]))
        leaves[code] = [(p, lid, b) for lid, p, b in mine]
        root, total = root_of([(lid, b) for lid, _p, b in mine])
        holding = held.get(code)
        owed = total
        covered = holding is not None and int(holding["total"]) >= owed if owed else True
        doc["currencies"][code] = {
            "root": root, "total": str(total), "books_liabilities": str(books[code]),
            "leaf_count": len(mine), "leaves": [[lid, str(b)] for lid, _p, b in mine],
            "holdings": holding, "covered": covered}
    return Built(doc, leaves)


def publish() -> dict[str, Any]:
    """Build, sign and store a proof; flag a currency whose holdings are below what is
    owed. Returns the published file."""
    built = build()
    key = signing_key()
    pub = public_hex(key.public_key())
    built.document["public_key"] = pub
    body = canonical(built.document)
    signature = key.sign(body).hex()
    short = [c for c, v in built.document["currencies"].items() if not v["covered"]]
    with ledger_tx() as s:
        proof = ReserveProof(created_at=utcnow(), document=body.decode(), signature=signature,
                             public_key=pub, covered=not short)
        s.add(proof)
        s.flush()
        for code, items in built.leaves.items():
            if items:
                s.execute(ReserveLeaf.__table__.insert(), [
                    {"proof_id": proof.id, "currency": code, "position": n, "player_id": p,
                     "leaf_id": lid, "balance": b} for n, (p, lid, b) in enumerate(items)])
        proof_id = proof.id
    for code in short:
        c = built.document["currencies"][code]
        INVARIANT_VIOLATIONS.labels("reserves.undercovered").inc()
        security_logger().error("reserves below liabilities", currency=code,
                                owed=c["total"], held=(c["holdings"] or {}).get("total"))
    if short:
        with identity_tx() as ids:
            record(ids, AuditAction.reserves_short, SYSTEM, None, proof_id=proof_id,
                   currencies=short)
    log.info("reserves_published", proof_id=proof_id, covered=not short)
    return {"proof": built.document, "signature": signature}


def latest() -> dict[str, Any] | None:
    """The newest published file, as published."""
    with ledger_tx(readonly=True) as s:
        row = s.execute(select(ReserveProof).order_by(ReserveProof.id.desc()).limit(1)
                        ).scalar_one_or_none()
        if row is None:
            return None
        return {"proof": json.loads(row.document), "signature": row.signature}


def verify(published: object, public_key: str | None = None) -> list[str]:
    """What is wrong with a published file (nothing: an empty list). Checks the signature
    (with ``public_key`` when given, else the one the file names), each tree's root and
    sum from its leaves, and the covered flags."""
    problems: list[str] = []
    if not isinstance(published, dict) or not isinstance(published.get("proof"), dict):
        return ["not a proof of reserves file"]
    doc, sig = published["proof"], published.get("signature")
    key_hex = public_key or doc.get("public_key")
    if public_key and doc.get("public_key") != public_key:
        problems.append("the file names another public key than the one given")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(key_hex))).verify(
            bytes.fromhex(str(sig)), canonical(doc))
    except (InvalidSignature, ValueError, TypeError):
        problems.append("the signature does not verify")
    if doc.get("scheme") != SCHEME:
        problems.append(f"unknown scheme {doc.get('scheme')!r}")
    for code, c in (doc.get("currencies") or {}).items():
        try:
            leaves = [(str(i), int(b)) for i, b in c["leaves"]]
            if any(b < 0 for _i, b in leaves):
                problems.append(f"{code}: a negative leaf")
                continue
            root, total = root_of(leaves)
        except (KeyError, ValueError, TypeError):
            problems.append(f"{code}: malformed leaves")
            continue
        if root != c.get("root"):
            problems.append(f"{code}: the leaves do not give the published root")
        if str(total) != c.get("total"):
            problems.append(f"{code}: the leaves sum to {total}, not {c.get('total')}")
        holding = c.get("holdings")
        held = int(holding["total"]) if holding else None
        covered = total == 0 or (held is not None and held >= total)
        if bool(c.get("covered")) != covered:
            problems.append(f"{code}: the covered flag does not match the holdings")
    return problems


def player_view(player_id: str) -> dict[str, Any] | None:
    """The player's leaves in the newest proof, with their salt and inclusion paths."""
    with ledger_tx(readonly=True) as s:
        proof = s.execute(select(ReserveProof).order_by(ReserveProof.id.desc()).limit(1)
                          ).scalar_one_or_none()
        if proof is None:
            return None
        doc = json.loads(proof.document)
        mine = list(s.execute(select(ReserveLeaf).where(
            ReserveLeaf.proof_id == proof.id, ReserveLeaf.player_id == player_id)).scalars())
        salt_row = s.get(ReserveSalt, player_id)
        salt = keyring().open(salt_row.salt_sealed, salt_context(
            {"player_id": player_id})).decode() if salt_row is not None else ""
    out = []
    for leaf in mine:
        c = doc["currencies"][leaf.currency]
        tree = levels([(str(i), int(b)) for i, b in c["leaves"]])
        out.append({"currency": leaf.currency, "leaf_id": leaf.leaf_id,
                    "balance": str(leaf.balance), "path": path_of(tree, leaf.position),
                    "root": c["root"], "total": c["total"]})
    return {"created_at": doc["created_at"], "player_id": player_id, "salt": salt,
            "leaves": out}
