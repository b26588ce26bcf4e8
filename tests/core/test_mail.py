"""Outgoing mail: files in the outbox by default, SMTP (optionally STARTTLS) when set."""

from __future__ import annotations

import email
import email.policy
import threading

import pytest

from casino_app.core import mail
from casino_app.core.settings import get_settings


def test_without_smtp_mail_is_written_to_the_outbox_folder(app_env: object) -> None:
    mail.send(mail.Mail("player@example.com", "Hello", "Line one\nLine two\n")).result(10)
    (path,) = get_settings().outbox_dir.glob("*.eml")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert (msg["To"], msg["Subject"]) == ("player@example.com", "Hello")
    assert msg.get_body(("plain",)).get_content() == "Line one\nLine two\n"  # type: ignore[union-attr]
    assert msg["Message-ID"] and msg["Date"]


def test_the_outbox_never_shows_a_half_written_mail(app_env: object) -> None:
    outbox = get_settings().outbox_dir
    outbox.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    partial: list[str] = []

    def reader() -> None:
        while not done.is_set():
            for p in outbox.glob("*.eml"):
                try:
                    data = p.read_bytes()
                except FileNotFoundError:
                    continue
                if not data.rstrip().endswith(b"-- end --"):
                    partial.append(p.name)

    t = threading.Thread(target=reader)
    t.start()
    try:
        text = "x" * 5000 + "\n-- end --\n"
        for i in range(60):
            mail.deliver(mail.Mail(f"p{i}@example.com", "Hi", text))
    finally:
        done.set()
        t.join()
    assert not partial
    assert len(list(outbox.glob("*.eml"))) == 60


# SMTP with STARTTLS --------------------------------------------------------------------------
def _self_signed(tmp_path):  # noqa: ANN001, ANN202
    """A certificate for 127.0.0.1 that the client will trust (through SSL_CERT_FILE)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _server_tls(tmp_path, monkeypatch):  # noqa: ANN001, ANN202
    import ssl

    cert_file, key_file = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def test_with_starttls_mail_and_credentials_go_over_tls(app_env, tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.users.helpers import smtp_server

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        assert isinstance(auth_data, LoginPassword)
        assert session.ssl is not None  # only ever over TLS
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"smtp-secret")

    monkeypatch.setenv("CASINO_SMTP_STARTTLS", "true")
    monkeypatch.setenv("CASINO_SMTP_USER", "mailer")
    monkeypatch.setenv("CASINO_SMTP_PASSWORD", "smtp-secret")
    with smtp_server(monkeypatch, tls_context=_server_tls(tmp_path, monkeypatch),
                     require_starttls=True, authenticator=authenticator,
                     auth_required=True) as inbox:
        mail.send(mail.Mail("player@example.com", "Over TLS", "hello\n")).result(10)
        (msg,) = inbox.wait(1)
    assert msg["Subject"] == "Over TLS"
    assert logins == [(b"mailer", b"smtp-secret")]


def test_with_starttls_on_nothing_is_sent_in_clear_to_a_server_without_it(
        app_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.users.helpers import smtp_server

    monkeypatch.setenv("CASINO_SMTP_STARTTLS", "true")
    with smtp_server(monkeypatch) as inbox:
        future = mail.send(mail.Mail("player@example.com", "Secret link", "token\n"))
        with pytest.raises(Exception, match="STARTTLS"):  # noqa: B017, PT011
            future.result(10)
        assert inbox.messages == []
