"""Where the real ``casino run`` listens: started with its defaults (no ``--host``, no
CASINO_BIND_HOST), its one port is open on 127.0.0.1 only, never on every interface
(Reflex's own default, 0.0.0.0), and /api/metrics, open in development without a token,
answers there."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.services import listening_addresses

pytestmark = pytest.mark.e2e


def test_casino_run_listens_on_127_0_0_1_only_by_default(live_app) -> None:  # noqa: ANN001
    port = urlsplit(live_app.url).port
    assert port is not None
    assert listening_addresses(port) == {"127.0.0.1"}  # what `ss -ltn` shows
    r = httpx.get(f"http://127.0.0.1:{port}/api/metrics", timeout=10)
    assert r.status_code == 200 and "casino_logins_total" in r.text
