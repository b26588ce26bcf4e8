"""Signing a player up in one call, as a person does it (for tests and benchmarks): the
sign-up form (``accounts.start_registration``), the link in the mail it sends, then the
password again on the link's page (``accounts.confirm_registration``).

The mail is read from the outbox folder (the embedded default, no ``CASINO_SMTP_HOST``)
and then removed from it, so tests that count mail see only their own. Nothing here is
a way into the app that a person does not have: it reads the same mail they would.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import EmailMessage

from casino_app.core.settings import get_settings
from casino_app.users import accounts
from casino_app.users.sessions import RequestContext

_LINK = re.compile(r"/register/confirm\?token=([A-Za-z0-9_\-]+)")


def confirmation_token(address: str, *, timeout: float = 10.0, keep: bool = False) -> str:
    """The token in a sign-up mail to ``address`` (waits for the mail thread; with
    several such mails waiting, take each right after its sign-up); the mail is removed
    from the outbox unless ``keep``. Polls by counting sleeps, not by reading the clock
    (tests freeze and move it)."""
    address = address.strip().lower()
    folder = get_settings().outbox_dir
    for _ in range(int(timeout / 0.005)):
        if folder.exists():
            for path in sorted(folder.glob("*.eml"), reverse=True):  # names start with the time
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:  # taken by another thread's sign-up meanwhile
                    continue
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                if msg["To"] == address and msg["Subject"] == accounts.REGISTER_SUBJECT:
                    assert isinstance(msg, EmailMessage)
                    part = msg.get_body(("plain",))
                    assert part is not None
                    found = _LINK.search(part.get_content())
                    assert found, part.get_content()
                    if not keep:
                        path.unlink()
                    return found.group(1)
        time.sleep(0.005)
    raise AssertionError(f"no sign-up mail to {address} in {folder} within {timeout}s")


def sign_up(*, email_addr: str, password: str, display_name: str = "Alice Player",
            date_of_birth: object = "1990-05-17", ctx: RequestContext) -> str:
    """Fill the form, follow the mailed link, give the password again: the new player's
    session token."""
    accounts.start_registration(email=email_addr, password=password,
                                display_name=display_name, date_of_birth=date_of_birth,
                                accept_terms=True, ctx=ctx)
    return accounts.confirm_registration(confirmation_token(email_addr), password, ctx)
