"""Bech32 (BIP173) and bech32m (BIP350) strings and segwit addresses.

Written from the BIPs' reference description: ``encode``/``decode`` handle any bech32 string,
``encode_segwit``/``decode_segwit`` a segwit address (witness version + program) under a
human-readable part (HRP) that the caller takes from the network's configuration
(``payments/btc/network.py``: bc, tb, bcrt, rb, ...), never a constant. Version 0 uses
bech32, versions 1 to 16 bech32m (BIP350); the other combination is invalid.

Errors are :class:`Bech32Error`, whose text says what is wrong in words a player can act on.
"""

from __future__ import annotations

from enum import Enum

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_MAP = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
MAX_LENGTH = 90  # BIP173: a segwit address is at most 90 characters


class Encoding(Enum):
    BECH32 = 1           # BIP173 checksum constant
    BECH32M = 0x2BC830A3  # BIP350 checksum constant


class Bech32Error(ValueError):
    """The text is not a valid bech32/bech32m string or segwit address (says why)."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def valid_hrp(hrp: object) -> bool:
    """1 to 83 printable US-ASCII characters (33-126), lowercase (BIP173)."""
    return (isinstance(hrp, str) and 1 <= len(hrp) <= 83
            and all(33 <= ord(c) <= 126 for c in hrp) and hrp == hrp.lower())


def encode(hrp: str, data: list[int], encoding: Encoding) -> str:
    """The bech32 string of ``hrp`` and 5-bit ``data`` with the checksum of ``encoding``."""
    if not valid_hrp(hrp):
        raise Bech32Error(f"'{hrp}' is not a valid bech32 prefix")
    values = _hrp_expand(hrp) + list(data)
    polymod = _polymod(values + [0] * 6) ^ encoding.value
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in list(data) + checksum)


def decode(text: str, max_length: int = MAX_LENGTH) -> tuple[str, list[int], Encoding]:
    """(hrp, 5-bit data without the checksum, encoding) of a bech32/bech32m string.

    Upper case is accepted (QR codes use it), mixed case is not.
    """
    if not isinstance(text, str) or not text:
        raise Bech32Error("the address is empty")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise Bech32Error("the address contains a space or a character that is not allowed")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("the address mixes upper and lower case letters")
    if len(text) > max_length:
        raise Bech32Error(f"the address is too long ({len(text)} characters)")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise Bech32Error("the address has no prefix (such as 'bc1')")
    if sep + 7 > len(text):
        raise Bech32Error("the address is too short")
    hrp, rest = text[:sep], text[sep + 1:]
    bad = [c for c in rest if c not in _CHARSET_MAP]
    if bad:
        raise Bech32Error(f"the character '{bad[0]}' cannot appear in this address "
                          "(a mistyped character?)")
    data = [_CHARSET_MAP[c] for c in rest]
    const = _polymod(_hrp_expand(hrp) + data)
    for encoding in Encoding:
        if const == encoding.value:
            return hrp, data[:-6], encoding
    raise Bech32Error("the address has a typo (its checksum does not match): copy it again")


def convertbits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    """Regroup ``data`` from ``frombits``-bit to ``tobits``-bit values (BIP173)."""
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise Bech32Error("invalid data value")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise Bech32Error("the address has invalid padding")
    return out


def encode_segwit(hrp: str, version: int, program: bytes) -> str:
    """The segwit address of witness ``version`` (0-16) and ``program`` under ``hrp``."""
    _check_program(version, bytes(program))
    encoding = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    return encode(hrp, [version] + convertbits(program, 8, 5, True), encoding)


def decode_segwit(text: str) -> tuple[str, int, bytes, Encoding]:
    """(hrp, witness version, program, encoding) of a segwit address; Bech32Error if it is
    not one (a bech32 string with a bad version, program length or checksum kind)."""
    hrp, data, encoding = decode(text)
    if not data:
        raise Bech32Error("the address holds no witness program")
    version = data[0]
    if version > 16:
        raise Bech32Error(f"the address has an invalid witness version ({version})")
    program = bytes(convertbits(data[1:], 5, 8, False))
    _check_program(version, program)
    if version == 0 and encoding is not Encoding.BECH32:
        raise Bech32Error("this version 0 address uses the bech32m checksum, which only "
                          "version 1 and later use (BIP350): it is not valid")
    if version > 0 and encoding is not Encoding.BECH32M:
        raise Bech32Error(f"this version {version} address uses the old bech32 checksum; "
                          "version 1 and later use bech32m (BIP350): it is not valid")
    return hrp, version, program, encoding


def _check_program(version: int, program: bytes) -> None:
    if not 0 <= version <= 16:
        raise Bech32Error(f"the address has an invalid witness version ({version})")
    if not 2 <= len(program) <= 40:
        raise Bech32Error(f"the address's witness program has an invalid length "
                          f"({len(program)} bytes)")
    if version == 0 and len(program) not in (20, 32):
        raise Bech32Error(f"a version 0 witness program is 20 or 32 bytes, not {len(program)}")
