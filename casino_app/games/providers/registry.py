"""Providers as staff and operators configure them: add, list, disable, and the cached
configuration every callback reads (with its secret opened).

A Hub88-style provider gets its own RSA key pair from us (our private key sealed at rest,
our public key printed for the provider); a BGaming-style provider shares a secret with
us (sealed at rest). A provider's base URL is https, or plain http on a loopback address
only (development and tests).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.games.providers.models import Provider, provider_secret_context
from casino_app.payments.currencies import currency
from casino_app.security.crypto import keyring

DIALECTS = ("hub88", "bgaming")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
CACHE_SECONDS = 2.0   # a disabled provider is refused by every process within this


class ProviderError(ValueError):
    """A provider setting refused, with a message for the operator."""


@dataclass(frozen=True)
class ProviderConfig:
    id: int
    name: str
    dialect: str
    base_url: str
    currencies: tuple[str, ...]
    operator_ref: str
    enabled: bool
    peer_public_key: str | None
    own_public_key: str | None
    secret: bytes | None   # bgaming: the shared secret; hub88: our private key (PEM)


def check_base_url(url: str) -> str:
    """https, or http on a loopback address; no credentials, query or fragment."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ProviderError("The base URL must be an https:// address.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ProviderError("The base URL takes no credentials, query or fragment.")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ProviderError("The base URL must be https (plain http is allowed for "
                            "loopback addresses only).")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _currencies(codes: str | list[str]) -> tuple[str, ...]:
    items = codes.split(",") if isinstance(codes, str) else codes
    out: list[str] = []
    for raw in items:
        code = raw.strip().upper()
        if not code:
            continue
        try:
            out.append(currency(code).code)
        except ValueError:
            raise ProviderError(f"Unknown currency {code}.") from None
    if not out:
        raise ProviderError("Name at least one currency.")
    return tuple(dict.fromkeys(out))


def _public_key(pem: str) -> str:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ProviderError("The public key is not a PEM public key.") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ProviderError("The public key must be an RSA key of at least 2048 bits.")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def new_key_pair() -> tuple[bytes, str]:
    """Our RSA key for one Hub88-style provider: (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def add(name: str, dialect: str, base_url: str, currencies: str | list[str], *,
        public_key: str | None = None, secret: bytes | None = None,
        operator_ref: str = "") -> ProviderConfig:
    """Register a provider; refuses a bad setting with ``ProviderError``, nothing saved."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProviderError("A provider name is 2-32 lowercase letters, digits or '-', "
                            "starting with a letter.")
    if dialect not in DIALECTS:
        raise ProviderError(f"The dialect is one of {', '.join(DIALECTS)}.")
    url = check_base_url(base_url)
    codes = _currencies(currencies)
    operator_ref = (operator_ref or name).strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", operator_ref):
        raise ProviderError("The operator id is 1-64 letters, digits, '.', '_' or '-'.")
    peer, own, sealed_plain = None, None, b""
    if dialect == "hub88":
        if not public_key or secret:
            raise ProviderError("A hub88 provider needs its public key (--public-key), "
                                "and no secret.")
        peer = _public_key(public_key)
        sealed_plain, own = new_key_pair()
    else:
        if not secret or public_key:
            raise ProviderError("A bgaming provider needs the shared secret "
                                "(--secret-file), and no public key.")
        sealed_plain = secret.strip()
        if len(sealed_plain) < 16:
            raise ProviderError("The shared secret must be at least 16 bytes.")
    row = Provider(name=name, dialect=dialect, base_url=url, currencies=",".join(codes),
                   operator_ref=operator_ref, enabled=True, peer_public_key=peer,
                   own_public_key=own, created_at=utcnow())
    row.secret_sealed = keyring().seal(sealed_plain, provider_secret_context({"name": name}))
    try:
        with ledger_tx() as s:
            if s.execute(select(Provider.id).where(Provider.name == name)).first():
                raise ProviderError(f"A provider named {name} exists already.")
            s.add(row)
            s.flush()
            config = _config(row)
    except IntegrityError:
        raise ProviderError(f"A provider named {name} exists already.") from None
    forget()
    return config


def _config(row: Provider) -> ProviderConfig:
    secret = None
    if row.secret_sealed is not None:
        secret = keyring().open(row.secret_sealed, provider_secret_context({"name": row.name}))
    return ProviderConfig(row.id, row.name, row.dialect, row.base_url,
                          tuple(c for c in row.currencies.split(",") if c),
                          row.operator_ref, row.enabled, row.peer_public_key,
                          row.own_public_key, secret)


def listed() -> list[ProviderConfig]:
    with ledger_tx(readonly=True) as s:
        return [_config(r) for r in s.execute(select(Provider).order_by(Provider.name))
                .scalars()]


def set_enabled(name: str, enabled: bool) -> ProviderConfig:
    with ledger_tx() as s:
        row = s.execute(select(Provider).where(Provider.name == name)
                        .with_for_update()).scalar_one_or_none()
        if row is None:
            raise ProviderError(f"No provider named {name}.")
        row.enabled = enabled
        row.disabled_at = None if enabled else utcnow()
        config = _config(row)
    forget()
    return config


def repoint(name: str, base_url: str, *, public_key: str | None = None,
            secret: bytes | None = None, operator_ref: str | None = None) -> ProviderConfig:
    """Give an existing provider a new base URL and key or secret (the development
    provider, which starts on a new port and may have made new keys)."""
    url = check_base_url(base_url)
    with ledger_tx() as s:
        row = s.execute(select(Provider).where(Provider.name == name)
                        .with_for_update()).scalar_one_or_none()
        if row is None:
            raise ProviderError(f"No provider named {name}.")
        row.base_url = url
        if operator_ref:
            row.operator_ref = operator_ref[:64]
        if public_key is not None and row.dialect == "hub88":
            row.peer_public_key = _public_key(public_key)
        if secret is not None and row.dialect == "bgaming":
            row.secret_sealed = keyring().seal(secret.strip(),
                                               provider_secret_context({"name": name}))
        config = _config(row)
    forget()
    return config


_cache: dict[str, tuple[float, ProviderConfig | None]] = {}
_cache_lock = threading.Lock()


def by_name(name: str) -> ProviderConfig | None:
    """The configuration of provider ``name`` (cached for ``CACHE_SECONDS``)."""
    now = time.monotonic()
    hit = _cache.get(name)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    if not _NAME.match(name):
        return None
    with ledger_tx(readonly=True) as s:
        row = s.execute(select(Provider).where(Provider.name == name)).scalar_one_or_none()
        config = _config(row) if row is not None else None
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[name] = (now, config)
    return config


def forget() -> None:
    """Drop the cache (after a change in this process; tests)."""
    with _cache_lock:
        _cache.clear()
