"""Start the reference game provider (``casino provider-sim``) as a real process, and talk
to it the way a casino does: signed calls to its Hub88 and BGaming sides, launches, whole
rounds without a browser (``POST /api/round``) and its misbehaviour switch.

    sim = start_provider_sim(tmp_path / "sim", hub88_wallet=URL, bgaming_wallet=URL)
    try:
        sid = sim.launch_hub88("hh-slot", user="player-1", token="t0k3n", currency="FUN")
        record = sim.play(sid, stake=100)          # the round and every wallet call
        sim.control("retry", "bad-reveal")         # the next rounds misbehave
    finally:
        sim.stop()

By default the launcher writes a fresh casino RSA key's public half to the sim's state
folder (``casino_public.pem``) and keeps the private key in ``sim.casino_key``, which
``sim.hub88`` signs with; pass ``casino_key=`` to use a key of your own, or
``write_casino_key_file=False`` when the casino itself writes ``casino_public.pem`` (then
``sim.hub88`` needs a ``signature=``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from casino_app.core.process import stop_process

HUB88_HEADER = "X-Hub88-Signature"
BGAMING_HEADER = "X-REQUEST-SIGN"


def write_casino_key(state_dir: Path, key: rsa.RSAPrivateKey | None = None
                     ) -> rsa.RSAPrivateKey:
    """Put the casino's public key where the sim reads it (``casino_public.pem``)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "casino_public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def rsa_sign(key: rsa.RSAPrivateKey, raw: bytes) -> str:
    return base64.b64encode(key.sign(raw, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_valid(key: rsa.RSAPublicKey, raw: bytes, signature: str | None) -> bool:
    try:
        key.verify(base64.b64decode(signature or ""), raw, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def hmac_sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def session_of(url: str) -> str:
    """The sim's session id in a launch URL (``<origin>/play/<session>``)."""
    path = urlsplit(url).path
    if not path.startswith("/play/"):
        raise ValueError(f"not a provider-sim launch URL: {url}")
    return path.removeprefix("/play/")


@dataclass
class ProviderSim:
    proc: subprocess.Popen[str]
    url: str
    port: int
    state_dir: Path
    casino_id: str
    hub88_public_key_file: Path
    bgaming_secret_file: Path
    log_file: Path
    casino_key: rsa.RSAPrivateKey | None

    @property
    def bgaming_secret(self) -> str:
        return self.bgaming_secret_file.read_text().strip()

    @property
    def hub88_public_key(self) -> rsa.RSAPublicKey:
        key = serialization.load_pem_public_key(self.hub88_public_key_file.read_bytes())
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("hub88_public.pem is not an RSA key")
        return key

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    # --- the casino's calls ---------------------------------------------------------------
    def hub88(self, action: str, body: dict[str, Any], *, raw: bytes | None = None,
              signature: str | None = None) -> httpx.Response:
        """POST /operator/generic/v2/game/<action>, signed with ``casino_key`` (or with the
        ``signature`` given)."""
        raw = raw if raw is not None else json.dumps(body).encode()
        if signature is None and self.casino_key is None:
            raise ValueError("no casino key to sign with: pass signature=")
        sig = signature if signature is not None else rsa_sign(self.casino_key, raw)
        return httpx.post(f"{self.url}/operator/generic/v2/game/{action}", content=raw,
                          headers={"Content-Type": "application/json", HUB88_HEADER: sig},
                          timeout=10)

    def bgaming(self, path: str, body: dict[str, Any], *, raw: bytes | None = None,
                signature: str | None = None) -> httpx.Response:
        """POST /sessions, /demo or /games, signed with the shared secret."""
        raw = raw if raw is not None else json.dumps(body).encode()
        sig = signature if signature is not None else hmac_sign(self.bgaming_secret, raw)
        return httpx.post(f"{self.url}{path}", content=raw,
                          headers={"Content-Type": "application/json", BGAMING_HEADER: sig},
                          timeout=10)

    def hub88_answer_valid(self, answer: httpx.Response) -> bool:
        return rsa_valid(self.hub88_public_key, answer.content, answer.headers.get(HUB88_HEADER))

    def bgaming_answer_valid(self, answer: httpx.Response) -> bool:
        return hmac.compare_digest(hmac_sign(self.bgaming_secret, answer.content),
                                   answer.headers.get(BGAMING_HEADER, ""))

    def launch_hub88(self, game: str, *, user: str = "", token: str = "",
                     currency: str = "FUN", **extra: Any) -> str:
        """game/url for a player (or demo with currency "XXX"): the session id."""
        body = {"user": user or None, "token": token or None, "platform": "GPL_DESKTOP",
                "operator_id": int(self.casino_id), "lobby_url": "http://127.0.0.1:3000/",
                "deposit_url": "http://127.0.0.1:3000/wallet", "lang": "en",
                "ip": "127.0.0.1", "game_code": game, "currency": currency,
                "country": "XX", "meta": {}, **extra}
        answer = self.hub88("url", body)
        answer.raise_for_status()
        return session_of(answer.json()["url"])

    def launch_bgaming(self, game: str, *, user_id: str = "", currency: str = "FUN",
                       session_id: str = "casino-session-1", demo: bool = False,
                       **extra: Any) -> str:
        """/sessions (or /demo): the session id."""
        body: dict[str, Any] = {
            "casino_id": self.casino_id, "game": game, "locale": "en", "ip": "127.0.0.1",
            "client_type": "desktop", "jurisdiction": "XX",
            "urls": {"return_url": "http://127.0.0.1:3000/",
                     "deposit_url": "http://127.0.0.1:3000/wallet"}}
        if not demo:
            body |= {"currency": currency, "balance": 0, "session_id": session_id,
                     "user": {"id": user_id, "nickname": "player"}}
        answer = self.bgaming("/demo" if demo else "/sessions", body | extra)
        answer.raise_for_status()
        return session_of(answer.json()["launch_options"]["game_url"])

    # --- rounds and misbehaviour ----------------------------------------------------------
    def play(self, session: str, stake: int, steps: int | None = None) -> dict[str, Any]:
        """A whole round (the ladder: ``steps`` steps, then stop): its full record, with
        every wallet call the sim made."""
        body: dict[str, Any] = {"session": session, "stake": stake}
        if steps is not None:
            body["steps"] = steps
        answer = httpx.post(f"{self.url}/api/round", json=body, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"/api/round: {answer.status_code} {answer.text}")
        return answer.json()

    def control(self, *names: str) -> dict[str, Any]:
        """Switch misbehaviours on (none: all off)."""
        answer = httpx.post(f"{self.url}/sim/control", json={"misbehave": list(names)},
                            timeout=10)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_provider_sim(state_dir: Path, *, hub88_wallet: str, bgaming_wallet: str,
                       misbehave: Iterable[str] = (), public_url: str | None = None,
                       casino_key: rsa.RSAPrivateKey | None = None,
                       write_casino_key_file: bool = True,
                       wallet_timeout: float = 5.0, retry_every: float = 2.0,
                       port: int = 0, ready_timeout: float = 30.0) -> ProviderSim:
    """Start ``casino provider-sim`` (a free port unless ``port``) and wait for its ready
    line. Its log goes to ``<state_dir>/sim.log``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    key = write_casino_key(state_dir, casino_key) if write_casino_key_file else casino_key
    log_file = state_dir / "sim.log"
    cmd = [sys.executable, "-m", "casino_app.cli", "provider-sim", "--port", str(port),
           "--state-dir", str(state_dir), "--hub88-wallet", hub88_wallet,
           "--bgaming-wallet", bgaming_wallet, "--wallet-timeout", str(wallet_timeout),
           "--retry-every", str(retry_every)]
    if misbehave:
        cmd += ["--misbehave", ",".join(misbehave)]
    if public_url:
        cmd += ["--public-url", public_url]
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(ready_timeout)
    if not line or not line[0].strip():
        stop_process(proc)
        raise RuntimeError("provider-sim did not start:\n" + log_file.read_text())
    ready = json.loads(line[0])
    if not ready.get("ready"):
        stop_process(proc)
        raise RuntimeError(f"provider-sim: unexpected first line {line[0]!r}")
    return ProviderSim(proc, ready["url"], ready["port"], state_dir, ready["casino_id"],
                       Path(ready["hub88_public_key_file"]), Path(ready["bgaming_secret_file"]),
                       log_file, key)
