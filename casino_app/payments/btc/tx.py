"""Facts of a serialized Bitcoin transaction: its txid, wtxid, weight and virtual size.

Read straight from the bytes (BIP141 serialization, with or without witness data), so the
signer and the chain adapter agree with every node on what a transaction's id and size are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TxFacts:
    txid: str    # display hex: double SHA-256 of the serialization without witness, reversed
    wtxid: str   # the same over the full serialization (= txid without witness data)
    weight: int  # BIP141: 3 x size without witness + full size
    vsize: int   # weight / 4, rounded up


def _dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def stripped(raw: bytes | str) -> bytes:
    """The serialization without witness data (what the txid hashes); ValueError if ``raw``
    is not exactly one transaction."""
    data = bytes.fromhex(raw) if isinstance(raw, str) else bytes(raw)
    segwit = len(data) > 6 and data[4] == 0 and data[5] == 1
    pos = 6 if segwit else 4

    def varint() -> int:
        nonlocal pos
        first = data[pos]
        pos += 1
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        pos += size
        return int.from_bytes(data[pos - size:pos], "little")

    try:
        n_inputs = varint()
        for _ in range(n_inputs):  # outpoint, script, sequence
            pos += 36
            size = varint()  # (read before adding: varint() moves pos)
            pos += size + 4
        for _ in range(varint()):  # value, script
            pos += 8
            size = varint()
            pos += size
        body_end = pos
        if segwit:
            for _ in range(n_inputs):  # one witness stack per input
                for _ in range(varint()):
                    size = varint()
                    pos += size
    except IndexError:
        raise ValueError("not a serialized transaction") from None
    if pos + 4 != len(data) or (segwit and n_inputs == 0):
        raise ValueError("not a serialized transaction")
    return data[:4] + data[6 if segwit else 4:body_end] + data[-4:]


def facts(raw: bytes | str) -> TxFacts:
    data = bytes.fromhex(raw) if isinstance(raw, str) else bytes(raw)
    base = stripped(data)
    weight = 3 * len(base) + len(data)
    return TxFacts(txid=_dsha256(base)[::-1].hex(), wtxid=_dsha256(data)[::-1].hex(),
                   weight=weight, vsize=-(-weight // 4))


def txid_of(raw: bytes | str) -> str:
    """The txid (display hex) of a serialized transaction, with or without witness data."""
    return _dsha256(stripped(raw))[::-1].hex()
