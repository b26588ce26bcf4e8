"""A STAND-IN for CoinGecko's ``/simple/price`` API, for tests only.

There is no internet here, so this is the one service in the suite that is not the real
program: a real local HTTP server (``http.server`` in a thread, on a free port) answering
the same URL with the same JSON shape as ``https://api.coingecko.com/api/v3``. Knobs make
it misbehave the ways a real API can: an HTTP error, a body that is not JSON, a zero or
negative price, a price as a string, an unknown or missing coin, a slow answer.

    with CoinGeckoStandIn() as cg:
        source = CoinGeckoSource(cg.url)
        cg.mode = "zero"
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# What the stand-in quotes by default: CoinGecko id -> vs currency -> price (text).
PRICES: dict[str, dict[str, str]] = {
    "bitcoin": {"usd": "90000", "eur": "83000", "btc": "1", "eth": "30"},
    "ethereum": {"usd": "3000", "eur": "2750", "btc": "0.0333333", "eth": "1"},
    "tether": {"usd": "1.001", "eur": "0.92", "btc": "0.0000111", "eth": "0.000333"},
    "usd-coin": {"usd": "0.9998", "eur": "0.919", "btc": "0.0000111", "eth": "0.000333"},
}
MODES = ("ok", "error", "not_json", "zero", "negative", "string", "unknown_coin",
         "missing_coin", "missing_quote", "nan", "list", "huge")


class CoinGeckoStandIn:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.status = 500  # for mode "error"
        self.prices = {cg: dict(q) for cg, q in PRICES.items()}
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- what the handler answers --------------------------------------------------------
    def _answer(self, path: str) -> tuple[int, bytes]:
        parts = urlsplit(path)
        if parts.path.rstrip("/").split("/")[-2:] != ["simple", "price"]:
            return 404, b'{"error":"Not found"}'
        query = parse_qs(parts.query)
        ids = [i for v in query.get("ids", []) for i in v.split(",") if i]
        vs = [c for v in query.get("vs_currencies", []) for c in v.split(",") if c]
        if self.mode == "error":
            return self.status, b'{"status":{"error_code":429,"error_message":"throttled"}}'
        if self.mode == "not_json":
            return 200, b"<html>Service unavailable</html>"
        if self.mode == "list":
            return 200, b"[]"
        data: dict[str, dict[str, str]] = {
            cg: {c: self.prices[cg][c] for c in vs if c in self.prices[cg]}
            for cg in ids if cg in self.prices}
        first = next(iter(data), None)
        quoted: set[tuple[str, str]] = set()
        if self.mode == "zero" and first:
            data[first]["usd"] = "0"
        elif self.mode == "negative" and first:
            data[first]["usd"] = "-5"
        elif self.mode == "unknown_coin":
            data["dogecoin"] = {c: "0.1" for c in vs}
        elif self.mode == "missing_coin" and first:
            del data[first]
        elif self.mode == "missing_quote" and first:
            data[first].pop("eur", None)
        elif self.mode == "huge" and first:
            data[first]["usd"] = "1e30"
        elif self.mode == "nan" and first:
            data[first]["usd"] = "NaN"
        elif self.mode == "string" and first:
            quoted.add((first, "usd"))
        return 200, _json(data, quoted).encode()

    # --- server --------------------------------------------------------------------------
    def start(self) -> CoinGeckoStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                standin.requests.append(self.path)
                if standin.delay:
                    time.sleep(standin.delay)
                status, body = standin._answer(self.path)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v3"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CoinGeckoStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json(data: dict[str, dict[str, str]], quoted: set[tuple[str, str]]) -> str:
    """Prices as bare JSON numbers, as CoinGecko sends them (``quoted``: as strings)."""
    def value(cg: str, c: str, v: str) -> str:
        return json.dumps(v) if (cg, c) in quoted else v

    return "{" + ", ".join(
        json.dumps(cg) + ": {" + ", ".join(f"{json.dumps(c)}: {value(cg, c, v)}"
                                          for c, v in q.items()) + "}"
        for cg, q in data.items()) + "}"


def decimal_prices(standin: CoinGeckoStandIn) -> dict[tuple[str, str], Decimal]:
    """The stand-in's prices as the rates a source should return, keyed by our codes."""
    from casino_app.payments.rates import COINS

    ids = {cg: code for code, cg in COINS.items()}
    return {(ids[cg], vs.upper()): Decimal(v) for cg, q in standin.prices.items()
            for vs, v in q.items()}
