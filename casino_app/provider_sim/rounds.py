"""The studio's game engine: launch sessions, rounds, and how a round's actions reach the
casino's wallet, misbehaviour included.

A session is one launch (Hub88 ``game/url`` or BGaming ``/sessions`` / ``/demo``). It
always holds the *next* round's id and seed, so the page can show the seed hash before
the round. A round takes them when it starts and reveals the seed in its closing call.

Rules the engine keeps (shared/reference/PROVIDERS.md, SEAMLESS_WALLET.md):

- a bet refused for money or a limit is not undone; any other failure (a timeout, a
  network error, another status) is followed by a rollback of what the request may have
  applied, sent until it is accepted;
- a win that fails is sent again, byte for byte, until it is accepted;
- a losing round is closed by a win of 0; a round all of whose bets were rolled back is
  closed by the rollback and its seed is never revealed;
- demo sessions play with a local balance and make no wallet call.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from casino_app.games.providers import hhsim
from casino_app.provider_sim import catalog
from casino_app.provider_sim.misbehave import Misbehaviour
from casino_app.provider_sim.state import SimState
from casino_app.provider_sim.wallet import (
    BAD_SIGNATURE,
    DROP,
    OK,
    REFUSED,
    Action,
    BGamingWallet,
    Call,
    Hub88Wallet,
    Player,
    Result,
    WalletClient,
)

log = logging.getLogger("provider_sim")
OPEN, CLOSED, REFUSED_ROUND, CANCELLED = "open", "closed", "refused", "cancelled"
RETRY_PAUSES = (0.2, 0.5)  # a failed win or rollback is sent again at once, then by the retrier


class PlayError(ValueError):
    """A request the game cannot play (a bad stake, no open round): its text is shown."""


def new_round_id() -> str:
    return f"hhsim-{secrets.token_hex(8)}"


def new_seed() -> str:
    return secrets.token_hex(32)


@dataclass
class Step:
    bet: int
    mult: int
    win: int


@dataclass
class Round:
    id: str
    game: str
    sid: str
    dialect: str
    demo: bool
    seed: str
    stake: int
    misbehave: list[str]
    tricks: set[str]  # the misbehaviours this round plays ("out-of-order" resolved)
    bad_seed: str = field(default_factory=new_seed)
    steps: list[Step] = field(default_factory=list)
    status: str = OPEN
    message: str = ""
    revealed: str | None = None  # the seed the closing call carried
    unsettled: int = 0  # wins or rollbacks waiting for the retrier
    calls: list[Call] = field(default_factory=list)
    bet_ids: list[str] = field(default_factory=list)  # bets the wallet accepted
    action_ids: set[str] = field(default_factory=set)  # every transaction/action id sent
    balance: int | None = None
    recall_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    started: float = field(default_factory=time.time)

    @property
    def seed_hash(self) -> str:
        return hhsim.commitment(self.seed)

    def opening_fair(self) -> dict[str, Any]:
        return {"scheme": hhsim.SCHEME, "seed_hash": self.seed_hash}

    def closing_fair(self) -> dict[str, Any]:
        seed = self.bad_seed if Misbehaviour.BAD_REVEAL in self.tricks else self.seed
        return {"scheme": hhsim.SCHEME, "seed_hash": self.seed_hash, "seed": seed}

    def public(self, digits: int) -> dict[str, Any]:
        """What the player's page may see: no calls, and the seed only once revealed."""
        done = self.status != OPEN
        revealed = self.revealed if done else None
        return {
            "round": self.id, "game": self.game, "status": self.status,
            "message": self.message, "stake": self.stake,
            "steps": [{"bet": s.bet, "mult": s.mult, "win": s.win} for s in self.steps],
            "total_bet": sum(s.bet for s in self.steps),
            "total_win": sum(s.win for s in self.steps),
            "total_win_text": catalog.display_units(sum(s.win for s in self.steps), digits),
            "seed_hash": self.seed_hash, "seed": revealed,
            "reveal_matches": None if revealed is None else hhsim.verify(revealed,
                                                                          self.seed_hash),
            "unsettled": self.unsettled > 0, "balance": self.balance,
            "balance_text": None if self.balance is None else catalog.display_units(
                self.balance, digits),
            "misbehave": self.misbehave,
        }

    def to_json(self, digits: int) -> dict[str, Any]:
        """The whole record, for the tests' ``POST /api/round`` and staff: every call."""
        return {**self.public(digits), "dialect": self.dialect, "demo": self.demo,
                "tricks": sorted(self.tricks), "bets": [s.bet for s in self.steps],
                "wins": [s.win for s in self.steps],
                "calls": [c.to_json() for c in self.calls]}


class DemoWallet(WalletClient):
    """Play money inside the sim: no call leaves it."""

    dialect = "demo"

    def __init__(self) -> None:
        self.funds = catalog.DEMO_BALANCE

    def balance(self, player: Player) -> Result:
        return Result(OK, [], self.funds)

    def send(self, player: Player, round_id: str, actions: list[Action], *, finished: bool,
             opening_fair: dict[str, Any] | None, closing_fair: dict[str, Any] | None,
             twice: bool = False) -> Result:
        stakes = sum(a.amount for a in actions if a.kind == "bet")
        if stakes > self.funds:
            return Result(REFUSED, [], self.funds, 0, "Not enough play money for this stake.")
        self.funds += sum(a.amount for a in actions if a.kind == "win") - stakes
        return Result(OK, [], self.funds)


@dataclass
class Session:
    sid: str
    dialect: str  # hub88 or bgaming
    demo: bool
    game: str
    currency: str
    player: Player
    frame_origins: list[str]
    lobby_url: str = ""
    deposit_url: str = ""
    demo_wallet: DemoWallet = field(default_factory=DemoWallet)
    balance: int | None = None
    next_id: str = field(default_factory=new_round_id)
    next_seed: str = field(default_factory=new_seed)
    open_round: Round | None = None
    known_user: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def digits(self) -> int:
        return catalog.unit_digits(self.dialect, self.currency, self.demo)

    @property
    def info(self) -> catalog.GameInfo:
        return catalog.GAMES[self.game]


@dataclass
class _Unsettled:
    session: Session
    round: Round
    actions: list[Action]
    finished: bool
    since: float = field(default_factory=time.time)


class Studio:
    """Sessions, rounds, the two wallet clients and the misbehaviour switchboard."""

    def __init__(self, state: SimState, origin: str, hub88_wallet: str, bgaming_wallet: str,
                 *, timeout: float = 5.0, retry_every: float = 2.0,
                 misbehave: list[str] | None = None) -> None:
        self.state = state
        self.origin = origin.rstrip("/")
        self.http = httpx.Client(timeout=timeout)
        self.clients: dict[str, WalletClient] = {
            "hub88": Hub88Wallet(hub88_wallet, state, self.http),
            "bgaming": BGamingWallet(bgaming_wallet, state, self.http)}
        self.sessions: dict[str, Session] = {}
        self.rounds: dict[str, Round] = {}
        self.recall: dict[str, str] = {}
        self.misbehave: list[str] = Misbehaviour.parse(misbehave or [])
        self.lock = threading.Lock()
        self._out_of_order_turn = 0
        self._unsettled: list[_Unsettled] = []
        self._retry_every = retry_every
        self._stopping = threading.Event()
        self._retrier = threading.Thread(target=self._retry_loop, name="sim-retrier",
                                         daemon=True)
        self._retrier.start()

    def close(self) -> None:
        self._stopping.set()
        self.http.close()

    # --- misbehaviour -------------------------------------------------------------------
    def set_misbehave(self, names: list[str]) -> list[str]:
        parsed = Misbehaviour.parse(names)
        with self.lock:
            self.misbehave = parsed
        return parsed

    def _tricks(self) -> tuple[list[str], set[str]]:
        with self.lock:
            names = list(self.misbehave)
            tricks = set(names)
            if Misbehaviour.OUT_OF_ORDER in tricks:
                tricks.discard(Misbehaviour.OUT_OF_ORDER)
                tricks.add(Misbehaviour.OUT_OF_ORDER_ROLLBACK if self._out_of_order_turn % 2
                           == 0 else Misbehaviour.OUT_OF_ORDER_WIN)
                self._out_of_order_turn += 1
        return names, tricks

    # --- sessions -----------------------------------------------------------------------
    def new_session(self, *, dialect: str, demo: bool, game: str, currency: str, user: str,
                    token: str, session_id: str = "", lobby_url: str = "",
                    deposit_url: str = "", frame_origins: list[str] | None = None) -> Session:
        if game not in catalog.GAMES:
            raise PlayError(f"unknown game {game!r}")
        currency = catalog.DEMO_CURRENCY if demo else currency
        sid = secrets.token_urlsafe(24)
        player = Player(dialect, user, token, currency, game, session_id)
        session = Session(sid, dialect, demo, game, currency, player, frame_origins or [],
                          lobby_url, deposit_url)
        with self.lock:
            self.sessions[sid] = session
        return session

    def session(self, sid: str) -> Session | None:
        with self.lock:
            return self.sessions.get(sid)

    @staticmethod
    def next_seed_hash(session: Session) -> str:
        return hhsim.commitment(session.next_seed)

    def launch_url(self, session: Session) -> str:
        return f"{self.origin}/play/{session.sid}"

    def _client(self, session: Session) -> WalletClient:
        return session.demo_wallet if session.demo else self.clients[session.dialect]

    def refresh_balance(self, session: Session) -> str:
        """Ask the wallet for the balance (Hub88: who the user is, the first time); the
        message to show when it fails, else ""."""
        client = self._client(session)
        if isinstance(client, Hub88Wallet) and not session.known_user:
            info = client.info(session.player)
            if not info.ok:
                return f"The casino did not recognise this session ({info.calls[0].status})."
            session.known_user = True
        result = client.balance(session.player)
        if result.balance is not None:
            session.balance = result.balance
        return "" if result.ok else "The casino's wallet did not answer the balance " \
                                    f"({result.calls[0].status if result.calls else ''})."

    def view(self, session: Session) -> dict[str, Any]:
        """The page's state: the game, balance, stakes and the next round's seed hash."""
        with session.lock:
            message = self.refresh_balance(session)
            info = session.info
            digits = session.digits
            current = session.open_round
            return {
                "game": info.code, "name": info.name, "kind": info.kind,
                "demo": session.demo, "currency": session.currency, "digits": digits,
                "balance": session.balance,
                "balance_text": None if session.balance is None else catalog.display_units(
                    session.balance, digits),
                "stakes": [{"units": u, "text": catalog.display_units(u, digits)}
                           for u in catalog.stake_choices(session.dialect, session.currency,
                                                          session.demo)],
                "next_seed_hash": hhsim.commitment(session.next_seed),
                "next_round": session.next_id,
                "open_round": current.public(digits) if current else None,
                "rtp": hhsim.rtp_text(info.code), "fair_scheme": hhsim.SCHEME,
                "paytable": _paytable(info.code), "message": message,
                "lobby_url": session.lobby_url, "deposit_url": session.deposit_url,
            }

    # --- rounds -------------------------------------------------------------------------
    def _check_stake(self, session: Session, stake: Any) -> int:
        if not isinstance(stake, int) or isinstance(stake, bool) or stake <= 0:
            raise PlayError("the stake is a whole number of units above 0")
        if stake % catalog.STAKE_STEP:
            raise PlayError(f"the stake must be a multiple of {catalog.STAKE_STEP} units")
        return stake

    def _begin(self, session: Session, stake: int) -> Round:
        names, tricks = self._tricks()
        if session.demo:  # no wallet: only the game's own dishonesty applies
            tricks &= {Misbehaviour.BAD_REVEAL, Misbehaviour.RTP_SKEW}
        r = Round(session.next_id, session.game, session.sid, session.dialect, session.demo,
                  session.next_seed, stake, names, tricks)
        session.next_id, session.next_seed = new_round_id(), new_seed()
        with self.lock:
            self.rounds[r.id] = r
            self.recall[r.recall_key] = r.id
        session.open_round = r
        return r

    def _mult(self, r: Round, k: int) -> int:
        table = catalog.SKEWED[r.game] if Misbehaviour.RTP_SKEW in r.tricks else None
        return hhsim.multipliers(r.game, r.seed, r.id, k + 1, table=table)[k]

    def spin(self, session: Session, stake: Any) -> Round:
        with session.lock:
            if session.info.kind != "spin":
                raise PlayError("this game is played with step and stop")
            stake = self._check_stake(session, stake)
            r = self._begin(session, stake)
            mult = self._mult(r, 0)
            bet = Action("bet", stake, label="spin")
            win = Action("win", stake * mult // 100, ref=bet.id, label="spin")
            if self._play(session, r, [bet, win], finished=True):
                r.steps.append(Step(stake, mult, win.amount))
            return self._after(session, r)

    def step(self, session: Session, stake: Any) -> Round:
        with session.lock:
            if session.info.kind != "ladder":
                raise PlayError("this game is played with spin")
            r = session.open_round
            if r is None:
                r = self._begin(session, self._check_stake(session, stake))
            k = len(r.steps)
            mult = self._mult(r, k)
            last = k == catalog.LADDER_STEPS - 1
            bet = Action("bet", r.stake, label=f"step {k + 1}")
            actions = [bet]
            if mult or last:
                actions.append(Action("win", r.stake * mult // 100, ref=bet.id,
                                      label=f"step {k + 1}"))
            if self._play(session, r, actions, finished=last):
                r.steps.append(Step(r.stake, mult, actions[-1].amount if len(actions) > 1
                                    else 0))
            return self._after(session, r)

    def stop(self, session: Session) -> Round:
        with session.lock:
            r = session.open_round
            if r is None:
                raise PlayError("no round is open")
            if not r.bet_ids:
                raise PlayError("climb at least one step first")
            self._close(session, r)
            return self._after(session, r)

    def _after(self, session: Session, r: Round) -> Round:
        if r.status != OPEN:
            session.open_round = None
        if r.balance is not None:
            session.balance = r.balance
        return r

    # --- the wallet conversation --------------------------------------------------------
    def _send(self, session: Session, r: Round, actions: list[Action], *, finished: bool,
              opening: bool = False, note: str = "", twice: bool | None = None) -> Result:
        closing = r.closing_fair() if finished else None
        if twice is None:
            twice = Misbehaviour.RETRY in r.tricks
        result = self._client(session).send(
            session.player, r.id, actions, finished=finished,
            opening_fair=r.opening_fair() if opening else None, closing_fair=closing,
            twice=twice)
        if note and result.calls:
            result.calls[0].note = note
        r.calls += result.calls
        for call in result.calls:  # the seed is revealed once a call carrying it is sent
            fair = call.request.get("fair") or (call.request.get("meta") or {}).get("fair")
            if fair and "seed" in fair:
                r.revealed = fair["seed"]
        if closing and result.ok and any(a.kind == "win" for a in actions):
            r.revealed = closing["seed"]  # (demo rounds make no call)
        r.action_ids.update(a.id for a in actions)
        if result.balance is not None:
            r.balance = result.balance
        log.info("round %s: %s -> %s", r.id, [a.kind for a in actions], result.outcome)
        return result

    def _play(self, session: Session, r: Round, actions: list[Action], *,
              finished: bool) -> bool:
        """Send one bet (and its win when there is one). True when the bet went through."""
        bet, wins = actions[0], actions[1:]
        first = not r.action_ids
        if first and wins and Misbehaviour.DUPLICATE in r.tricks:
            # the twin bet goes between the bet and its win, while the round is open
            if not self._play(session, r, [bet], finished=False):
                return False
            r.status = CLOSED if finished else OPEN
            self._settle(session, r, wins, finished=finished)
            return True
        if first and Misbehaviour.BAD_SIGNATURE in r.tricks:
            bet.flags.add(BAD_SIGNATURE)
        if first and Misbehaviour.TIMEOUT_ROLLBACK in r.tricks:
            bet.flags.add(DROP)
        if first and Misbehaviour.OUT_OF_ORDER_ROLLBACK in r.tricks:
            self._send(session, r, [Action("rollback", ref=bet.id)], finished=False,
                       note="misbehaviour out-of-order: the rollback before its bet")
        if first and wins and Misbehaviour.OUT_OF_ORDER_WIN in r.tricks:
            self._send(session, r, wins, finished=finished,
                       note="misbehaviour out-of-order: the win before its bet")
        result = self._send(session, r, actions, finished=finished, opening=first)
        if result.ok:
            r.bet_ids.append(bet.id)
            if first and Misbehaviour.DUPLICATE in r.tricks:
                # twice the amount: as representable in the casino's units as the stake
                twin = Action("bet", bet.amount * 2, label=bet.label)
                twin.id = bet.id
                self._send(session, r, [twin], finished=False, twice=False,
                           note="misbehaviour duplicate: a used transaction id, another "
                                "amount")
            r.status = CLOSED if finished else OPEN
            return True
        whole_request = session.dialect == "bgaming" or result.failed_at == 0
        if not whole_request:  # Hub88: the bet went through, its win did not: resend it
            r.bet_ids.append(bet.id)
            r.status = CLOSED if finished else OPEN
            self._settle(session, r, actions[result.failed_at or 0:], finished=finished)
            return True
        if result.outcome == REFUSED:
            r.message = result.message
            if not r.bet_ids:
                r.status = REFUSED_ROUND
            return False
        # The stake may have been taken (a timeout, an error): undo what could have applied.
        undo = [Action("rollback", ref=a.id) for a in actions
                if a.kind == "bet" or session.dialect == "bgaming"]
        closes = not r.bet_ids
        self._settle(session, r, undo, finished=closes)
        status = result.calls[0].status if result.calls else ""
        r.message = f"The casino's wallet did not take the stake ({status}); it was " \
                    "cancelled."
        if closes:
            r.status = CANCELLED
        else:  # earlier steps stand: close the round on them
            self._close(session, r)
        return False

    def _close(self, session: Session, r: Round) -> None:
        """Close the round with a win of 0 on its last accepted bet, revealing the seed."""
        close = Action("win", 0, ref=r.bet_ids[-1], label="close")
        r.status = CLOSED
        self._settle(session, r, [close], finished=True)

    def _settle(self, session: Session, r: Round, actions: list[Action], *,
                finished: bool) -> None:
        """Send a win or a rollback until the wallet accepts it: at once a few times, then
        by the retrier."""
        result = self._send(session, r, actions, finished=finished)
        for pause in RETRY_PAUSES:
            if result.ok:
                return
            time.sleep(pause)
            result = self._send(session, r, actions, finished=finished,
                                note="sent again: the last attempt failed")
        if not result.ok:
            r.unsettled += 1
            with self.lock:
                self._unsettled.append(_Unsettled(session, r, actions, finished))

    def _retry_loop(self) -> None:
        while not self._stopping.wait(self._retry_every):
            with self.lock:
                waiting = list(self._unsettled)
            for item in waiting:
                with item.session.lock:
                    try:
                        result = self._send(item.session, item.round, item.actions,
                                            finished=item.finished,
                                            note="sent again by the retrier")
                    except Exception:  # the retrier must outlive any one failure
                        log.exception("retrier")
                        continue
                    if result.ok:
                        item.round.unsettled -= 1
                        if result.balance is not None:
                            item.session.balance = result.balance
                        with self.lock:
                            self._unsettled.remove(item)

    def unsettled(self) -> int:
        with self.lock:
            return len(self._unsettled)

    # --- recall -------------------------------------------------------------------------
    def round_by_key(self, key: str) -> Round | None:
        with self.lock:
            round_id = self.recall.get(key)
            return self.rounds.get(round_id) if round_id else None

    def find_round(self, round_id: str) -> Round | None:
        with self.lock:
            return self.rounds.get(round_id)

    def recall_url(self, r: Round) -> str:
        return f"{self.origin}/round/{r.recall_key}"


def _paytable(game: str) -> list[dict[str, Any]]:
    """The declared paytable for the page: chance (out of 65536) and multiplier."""
    table = hhsim.GAMES[game]
    rows = table.rows if isinstance(table, hhsim.SlotTable) else table.steps
    return [{"weight": row.weight, "mult": row.mult,
             "chance": f"{row.weight * 100 / hhsim.WEIGHT_TOTAL:.2f}%"} for row in rows]

