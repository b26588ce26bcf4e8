"""Outgoing mail: SMTP when ``CASINO_SMTP_HOST`` is set, else files in the outbox folder.

Mail is sent from a small thread pool so that a slow mail server never shows in a
response time (which would also tell an attacker whether an address is registered).
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from casino_app.core.clock import utcnow
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings

log = get_logger("casino.mail")
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


def _message(mail: Mail) -> EmailMessage:
    s = get_settings()
    msg = EmailMessage()
    msg["From"] = s.mail_from
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="hashhouse.local")
    msg.set_content(mail.text)
    return msg


def deliver(mail: Mail) -> None:
    """Send now, in the calling thread."""
    s = get_settings()
    msg = _message(mail)
    if not s.smtp_host:
        out = s.outbox_dir
        out.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
        # Write under another name, then rename: a reader never sees half a message.
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(bytes(msg))
        tmp.replace(out / name)
        log.info("mail written to outbox", file=name, subject=mail.subject)
        return
    with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=20) as smtp:
        if s.smtp_starttls:
            # has_extn() knows nothing before EHLO; without this check STARTTLS was never
            # used, and a server that does not offer it must not get the mail in clear.
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    "the mail server does not offer STARTTLS "
                    "(set CASINO_SMTP_STARTTLS=false to send without TLS)")
            smtp.starttls(context=ssl.create_default_context())
        if s.smtp_user:
            smtp.login(s.smtp_user, s.smtp_password)
        smtp.send_message(msg)
    log.info("mail sent", subject=mail.subject)


def _deliver_logged(mail: Mail) -> None:
    try:
        deliver(mail)
    except Exception as exc:  # noqa: BLE001 - a failed mail must not crash the caller
        log.error("mail delivery failed", subject=mail.subject, error=type(exc).__name__)
        raise


def send(mail: Mail) -> Future[None]:
    """Queue the mail; returns a future the tests may wait on."""
    return _pool.submit(_deliver_logged, mail)
