"""Our HTTP API alone (the routes of ``casino_app.api``, under the security middleware),
served by granian on a free port in its own process: the real endpoints that provider
callbacks reach, without building the front end. The environment (CASINO_*) is the
test's, so this process and the server share the databases.

``python -m granian --interface asgi tests.support.wallet_server:app``
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def _app():  # noqa: ANN202 - an ASGI app
    from casino_app.api.app import api_transformers

    api, wrap = api_transformers()
    return wrap(api)


app = _app() if os.environ.get("HH_WALLET_SERVER") == "1" else None


@contextmanager
def wallet_server(log: Path) -> Iterator[str]:
    """Serve the API on a free port; yields its base URL (http://127.0.0.1:PORT)."""
    port = free_port()
    env = {**os.environ, "HH_WALLET_SERVER": "1", "PYTHONPATH": str(ROOT)}
    granian = str(Path(sys.executable).parent / "granian")
    with log.open("w") as fh:
        proc = subprocess.Popen(  # noqa: S603 - our own venv's granian, fixed arguments
            [granian, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--no-ws", "tests.support.wallet_server:app"],
            env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the wallet server exited:\n" + log.read_text()[-3000:])
            try:
                if httpx.get(url + "/api/livez", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("the wallet server did not answer:\n"
                                   + log.read_text()[-3000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
