"""The misbehaviours the sim plays on command (``POST /sim/control``, ``--misbehave``).

Each is a way real providers go wrong that the casino must survive; they apply to every
round that starts while they are on (demo rounds play only the game's own two:
``bad-reveal`` and ``rtp-skew``).
"""

from __future__ import annotations


class Misbehaviour:
    RETRY = "retry"  # every wallet call is sent twice, byte for byte
    DUPLICATE = "duplicate"  # after the first bet, a bet with its id and twice the amount
    TIMEOUT_ROLLBACK = "timeout-rollback"  # the first bet's answer is dropped: rollback
    OUT_OF_ORDER = "out-of-order"  # rounds alternate the two below, rollback first
    OUT_OF_ORDER_ROLLBACK = "out-of-order-rollback"  # a bet's rollback before the bet
    OUT_OF_ORDER_WIN = "out-of-order-win"  # a win before its bet (then the bet, the win)
    BAD_SIGNATURE = "bad-signature"  # the round's first call, and the sim's answers
    BAD_REVEAL = "bad-reveal"  # the closing call reveals a seed not matching the hash
    RTP_SKEW = "rtp-skew"  # pay from a paytable much richer than declared (~150%)

    ALL = (RETRY, DUPLICATE, TIMEOUT_ROLLBACK, OUT_OF_ORDER, OUT_OF_ORDER_ROLLBACK,
           OUT_OF_ORDER_WIN, BAD_SIGNATURE, BAD_REVEAL, RTP_SKEW)

    @classmethod
    def parse(cls, names: object) -> list[str]:
        """The names, checked and without repeats; ValueError names an unknown one."""
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("misbehave is a list of names")
        unknown = [n for n in names if n not in cls.ALL]
        if unknown:
            raise ValueError(f"unknown misbehaviour {unknown[0]!r}; known: "
                             + ", ".join(cls.ALL))
        return list(dict.fromkeys(names))
