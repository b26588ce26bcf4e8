"""The fairness page (the player's seeds) and the verifier page's form values.

``FairnessState`` shows the hashes of the active and next server seeds, the client seed and
nonce, rotates the pair (which reveals the active server seed) and lists revealed seeds.
The services never hand out an unrevealed server seed, so neither can this page.

``VerifyState`` only holds the verifier's form values, read from the URL query. The
computation itself runs in the browser (``assets/verifier.js``, see pages/fairness.py):
no handler here computes or receives anything about an outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from casino_app.games import history, seeds
from casino_app.games.house import GAMES
from casino_app.ui import routes
from casino_app.ui.state.bets import fmt_when, verify_link
from casino_app.ui.state.session import caller, describe, form_value


@dataclasses.dataclass
class RevealedRow:
    pair_id: int
    server_seed_hash: str
    server_seed: str
    client_seed: str
    bets: int
    revealed_at: str
    verify: str       # the verifier prefilled with the first bet (nonce 0)
    first_bet: str    # the recall page of that bet, when we found it
    withheld: bool = False  # a bet of the pair is still open: the seed is not shown


class FairnessState(rx.State):
    server_seed_hash: str = ""
    next_server_seed_hash: str = ""
    client_seed: str = ""
    nonce: int = 0
    revealed: list[RevealedRow] = []
    loaded: bool = False
    error: str = ""
    message: str = ""
    notice: str = ""
    form_key: int = 0  # bumped to reset the client seed field after a change
    in_use: bool = False  # a Mines round drawn from the active pair is open

    async def _player(self):  # noqa: ANN202
        _, me = await caller(self)
        if me is None:
            self.loaded, self.revealed = False, []
            return None, rx.redirect(routes.login_then(routes.FAIRNESS))
        return me.player_id, None

    async def _load(self, pid: str) -> None:
        view = await asyncio.to_thread(seeds.current, pid)
        self.server_seed_hash = view.server_seed_hash
        self.next_server_seed_hash = view.next_server_seed_hash
        self.client_seed = view.client_seed
        self.nonce = view.nonce
        self.in_use = view.in_use
        pairs = await asyncio.to_thread(seeds.revealed, pid)
        first = await self._first_bets(pid, {p.server_seed_hash for p in pairs if p.bets})
        self.revealed = [self._row(p, first.get(p.server_seed_hash)) for p in pairs]
        self.form_key += 1
        self.loaded = True

    @staticmethod
    async def _first_bets(pid: str, hashes: set[str]) -> dict:
        """The nonce-0 bet of each revealed pair among the player's recent bets."""
        if not hashes:
            return {}
        bets, _ = await asyncio.to_thread(history.bets_page, pid, history.BetFilter(), None,
                                          200)
        return {b.server_seed_hash: b for b in bets
                if b.nonce == 0 and b.server_seed_hash in hashes}

    @staticmethod
    def _row(p: seeds.RevealedSeed, bet) -> RevealedRow:  # noqa: ANN001
        if p.withheld:  # a bet of this pair is still open: nothing that depends on the seed
            link, first = "", routes.bet(bet.bet_id) if bet is not None else ""
        elif bet is not None:
            link = verify_link(bet.game, p.server_seed, p.client_seed, 0, bet.params,
                               p.server_seed_hash)
            first = routes.bet(bet.bet_id)
        else:
            link = verify_link(next(iter(GAMES)), p.server_seed, p.client_seed, 0, {},
                               p.server_seed_hash) if p.bets else ""
            first = ""
        return RevealedRow(p.pair_id, p.server_seed_hash, p.server_seed, p.client_seed,
                           p.bets, fmt_when(p.revealed_at), link, first, p.withheld)

    @rx.event
    async def on_open(self):
        self.error = self.message = self.notice = ""
        pid, redirect = await self._player()
        if pid is None:
            return redirect
        await self._load(pid)
        return None

    async def _rotate(self, client_seed: object, done: str):  # noqa: ANN202
        self.error = self.message = self.notice = ""
        pid, redirect = await self._player()
        if pid is None:
            return redirect
        try:
            old = await asyncio.to_thread(seeds.rotate, pid, client_seed)
        except seeds.SeedsInUse as exc:  # a Mines round is open: its seed must stay secret
            self.message = str(exc)
            await self._load(pid)
            return None
        except ValueError as exc:  # FairnessError: a bad client seed
            self.error = str(exc)
            return None
        except Exception as exc:  # noqa: BLE001 - shown, never raised at the browser
            self.message = describe(exc)[1]
            return None
        await self._load(pid)
        self.notice = f"{done} The previous server seed is revealed: {old.server_seed}"
        return None

    @rx.event
    async def save_client_seed(self, form: dict):
        """A new client seed starts a new pair (the active server seed is revealed)."""
        seed = form_value(form, "client_seed")
        if not isinstance(seed, str) or not seed.strip():
            pid, redirect = await self._player()
            if pid is None:
                return redirect
            self.error = "Enter a client seed (or use Rotate for a random one)."
            return None
        return await self._rotate(seed, "Client seed changed.")

    @rx.event
    async def rotate(self):
        return await self._rotate(None, "Seeds rotated with a new random client seed.")


# --- the verifier's form ---------------------------------------------------------------------

FIELDS = ("game", "server_seed", "client_seed", "nonce", "hash", "rows", "risk", "mines",
          "picks", "target", "direction")


def query_values(query: dict[str, str]) -> dict[str, str]:
    """The verifier's form values from a URL query: known keys only, bounded lengths."""
    out = {k: "" for k in FIELDS}
    for key in FIELDS:
        value = query.get(key, "")
        if isinstance(value, str):
            out[key] = "".join(c for c in value if c.isprintable())[:200]
    if out["game"] not in GAMES:
        out["game"] = next(iter(GAMES))
    if not out["nonce"]:
        out["nonce"] = "0"
    return out


class VerifyState(rx.State):
    """Form values only (from the URL query). Works signed out."""

    values: dict[str, str] = query_values({})
    loaded: bool = False

    @rx.event
    def on_open(self):
        self.values = query_values(dict(self.router.url.query_parameters))
        self.loaded = True

