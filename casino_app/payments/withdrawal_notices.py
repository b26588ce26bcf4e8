"""The mails that announce each withdrawal to its player: requested (or "confirm it":
the mailed link), sent to the network, and not paid (failed, rejected, cancelled).

The texts are made here (they know amounts and currencies); who the player is, and their
address, is the identity database's: the request's mail is sent by
users/withdrawal_guard.py right after the request commits, the later ones by the
``withdrawal-notices`` job (jobs/builtin.py), which reads :func:`due` here, asks the
identity layer for the players' addresses and marks each withdrawal announced
(:func:`mark`) once its mail is queued. ``withdrawals.announced`` says the last mail
sent, so each is sent once (a crash between queueing a mail and marking it may send
one twice; never none).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update

from casino_app.core.db import ledger_tx
from casino_app.payments.currencies import currency
from casino_app.payments.withdrawal_addresses import fmt_time
from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.payments.withdrawals import WithdrawalView

SENT_STATES = ("batched", "confirmed")
ENDED_STATES = ("failed", "rejected", "cancelled")


@dataclass(frozen=True)
class Notice:
    withdrawal_id: int
    player_id: str
    kind: str      # sent or ended
    subject: str
    text: str      # without the greeting (the caller adds the name)


def _amount(code: str, amount: int) -> str:
    cur = currency(code)
    text = cur.format(amount, cur.decimals)
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return f"{text} {code}"


def requested(view: WithdrawalView, url: str) -> tuple[str, str]:
    """(subject, text) of the mail right after a request: the confirmation link when it
    waits for one, else the announcement."""
    what = f"{_amount(view.currency, view.amount)} to {view.address}"
    fee = _amount(view.currency, view.fee)
    warn = ("If this was not you, do not open any link: change your password at once "
            f"and contact support ({url}/account/security).\n")
    if view.confirm_token is not None and view.confirm_expires_at is not None:
        link = f"{url}/withdrawal/confirm?token={view.confirm_token}"
        return ("Confirm your HashHouse withdrawal",
                f"You asked to withdraw {what} (fee {fee}). It waits for your "
                f"confirmation: open this link by {fmt_time(view.confirm_expires_at)} "
                f"(it works once):\n{link}\n\nUntil then the amount stays reserved; if "
                "the link expires the withdrawal is cancelled and the amount is back in "
                f"your balance.\n\n{warn}")
    return ("HashHouse withdrawal requested",
            f"A withdrawal of {what} (fee {fee}) was requested from your account "
            f"and is {'waiting for staff approval' if view.state == 'awaiting_approval' else 'queued'}.\n\n"
            f"{warn}")


def _notice(w: Withdrawal, url: str) -> Notice:
    what = f"{_amount(w.currency, w.amount)} to {w.address}"
    if w.state in SENT_STATES:
        return Notice(w.id, w.player_id, "sent", "HashHouse withdrawal sent",
                      f"Your withdrawal of {what} was sent to the network; it arrives "
                      f"after the network's confirmations.\n\nYour wallet: {url}/wallet\n")
    why = {"failed": "it could not be paid", "rejected": "staff refused it",
           "cancelled": "it was not confirmed in time, or your account's withdrawals "
                        "were locked"}.get(w.state, w.state)
    return Notice(w.id, w.player_id, "ended", "HashHouse withdrawal not paid",
                  f"Your withdrawal of {what} was not paid: {why}. The amount and the fee "
                  f"are back in your balance.\n\nYour wallet: {url}/wallet\n")


def due(url: str, limit: int = 200) -> list[Notice]:
    """Withdrawals whose state the player has not been told yet."""
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(Withdrawal).where(or_(
            and_(Withdrawal.announced.is_(None), Withdrawal.state.in_(SENT_STATES + ENDED_STATES)),
            and_(Withdrawal.announced == "requested",
                 Withdrawal.state.in_(SENT_STATES + ENDED_STATES)),
            and_(Withdrawal.announced == "sent", Withdrawal.state.in_(ENDED_STATES))))
            .order_by(Withdrawal.id).limit(limit)).scalars()
        return [_notice(w, url) for w in rows]


def mark(withdrawal_id: int, kind: str) -> None:
    with ledger_tx() as s:
        s.execute(update(Withdrawal).where(Withdrawal.id == withdrawal_id)
                  .values(announced=kind))
