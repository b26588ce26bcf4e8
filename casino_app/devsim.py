"""Development only: `casino run` starts the reference game provider beside the app.

The provider (`casino provider-sim`, casino_app/provider_sim) runs as its own process on
a free loopback port, keeps its keys in ``<data>/provider-sim/``, and dies with the app
(its parent: the process `casino run` becomes). It is registered twice, once per
dialect (``sim-hub88``, ``sim-bgaming``), pointed at its new port on every start, and its
game lists are read into the lobby. Off in production, and with
``CASINO_DEV_PROVIDERS=false``.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from casino_app.core.settings import Settings

HUB88 = "sim-hub88"
BGAMING = "sim-bgaming"
CURRENCIES = "FUN,BTC,ETH,USDT,USDC"
READY_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """The child gets SIGTERM when its parent (the app) dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def wallet_url(settings: Settings, name: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/providers/{name}"


def start(settings: Settings) -> str | None:
    """Start the development provider and register it; a line for the operator, or None
    when it is off. A failure is reported, never fatal: the app runs without it."""
    if settings.is_production or not settings.dev_providers:
        return None
    state = (settings.data_dir / "provider-sim").resolve()
    state.mkdir(parents=True, exist_ok=True)
    log = state / "provider-sim.log"
    cmd = [sys.executable, "-m", "casino_app.cli", "provider-sim", "--port", "0",
           "--state-dir", str(state),
           "--hub88-wallet", wallet_url(settings, HUB88),
           "--bgaming-wallet", wallet_url(settings, BGAMING)]
    with log.open("w") as out:
        # our own interpreter and package with fixed arguments; preexec only calls prctl
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603 - see above
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)  # noqa: PLW1509 - see above
    ready = _ready(proc, log)
    if ready is None:
        proc.terminate()
        return f"the development game provider did not start (see {log})"
    try:
        port = int(ready["port"])
        _register(settings, state, f"http://127.0.0.1:{port}")
    except Exception as exc:  # noqa: BLE001 - the app runs without it; the operator is told
        proc.terminate()
        return f"the development game provider could not be registered: {exc}"
    return (f"development game provider on http://127.0.0.1:{port} "
            f"({HUB88}, {BGAMING}; CASINO_DEV_PROVIDERS=false turns it off)")


def _ready(proc: subprocess.Popen, log: Path) -> dict | None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found = json.loads(line)
                except ValueError:
                    continue
                if isinstance(found, dict) and found.get("ready"):
                    return found
        time.sleep(0.1)
    return None


def _register(settings: Settings, state: Path, base_url: str) -> None:
    from casino_app.games.providers import client, registry

    public = (state / "hub88_public.pem").read_text()
    secret = (state / "bgaming_secret").read_bytes().strip()
    casino_id = (state / "casino_id").read_text().strip() \
        if (state / "casino_id").exists() else BGAMING
    for name, dialect in ((HUB88, "hub88"), (BGAMING, "bgaming")):
        if registry.by_name(name) is None:
            if dialect == "hub88":
                registry.add(name, dialect, base_url, CURRENCIES, public_key=public,
                             operator_ref=casino_id)
            else:
                registry.add(name, dialect, base_url, CURRENCIES, secret=secret,
                             operator_ref=casino_id)
        else:
            registry.repoint(name, base_url, public_key=public if dialect == "hub88" else None,
                             secret=secret if dialect == "bgaming" else None,
                             operator_ref=casino_id)
    hub = registry.by_name(HUB88)
    if hub is not None and hub.own_public_key:
        (state / "casino_public.pem").write_text(hub.own_public_key)
    for name in (HUB88, BGAMING):
        config = registry.by_name(name)
        if config is not None and config.enabled:
            client.sync_games(config)
