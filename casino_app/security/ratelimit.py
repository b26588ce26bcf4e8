"""Rate limits: moving windows, in this process's memory by default, in Redis (the
``limits`` library) when ``REFLEX_REDIS_URL`` is set, so that every process spends the
same budget.

Limits are keyed so that nobody can spend someone else's budget: login and reset are
limited per IP, and per (account, IP) pair, never per account alone. A player whose
address is being hammered from elsewhere can still sign in from their own network.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from casino_app.core.metrics import RATE_LIMITED
from casino_app.core.settings import get_settings


class RateLimited(Exception):
    """Too many attempts; ``retry_after`` seconds until the next one is allowed."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many attempts, try again in {retry_after} s")
        self.retry_after = retry_after


class MemoryWindows:
    """Moving windows in this process's memory: per key, the times of the hits still
    inside its window (at most the limit's amount of them).

    Not the ``limits`` library's MemoryStorage: that one expires entries from a timer
    that starts a new thread every 10 ms and scans every key, which took about 4% of a
    web worker's GIL time under a load of bets (py-spy, 2026-12-04). Here a key's hits
    are pruned when the key is used, and every ``SWEEP_EVERY`` hits the keys whose
    newest hit left its window are dropped."""

    SWEEP_EVERY = 1024

    def __init__(self) -> None:
        # key: (amount, window seconds, name, *identifiers)
        self._hits: dict[tuple, tuple[float, deque[float]]] = {}
        self._lock = threading.Lock()
        self._count = 0

    def _log(self, key: tuple, window: float, now: float) -> deque[float]:
        found = self._hits.get(key)
        if found is None:
            log: deque[float] = deque()
            self._hits[key] = (window, log)
            return log
        log = found[1]
        while log and log[0] <= now - window:
            log.popleft()
        return log

    def hit(self, items: list[RateLimitItem], *key: str) -> int | None:
        """Count one hit under every item, or none: the seconds to wait when one is
        spent, else None."""
        now = time.time()
        with self._lock:
            logs = []
            for item in items:
                window = float(item.get_expiry())
                log = self._log((item.amount, window, *key), window, now)
                if len(log) >= item.amount:
                    return max(1, int(log[0] + window - now) + 1)
                logs.append(log)
            for log in logs:
                log.append(now)
            self._count += 1
            if self._count % self.SWEEP_EVERY == 0:
                self._hits = {k: (w, log) for k, (w, log) in self._hits.items()
                              if log and log[-1] > now - w}
        return None


@dataclass
class _Limiter:
    limiter: MovingWindowRateLimiter | None  # Redis; None: this process's memory
    memory: MemoryWindows
    cache: dict[str, list[RateLimitItem]]


_lock = threading.Lock()
_state: _Limiter | None = None


def _get() -> _Limiter:
    global _state
    if _state is None:
        with _lock:
            if _state is None:
                url = get_settings().redis_url
                limiter = MovingWindowRateLimiter(storage_from_string(url)) if url else None
                _state = _Limiter(limiter, MemoryWindows(), {})
    return _state


def reset_limiter() -> None:
    global _state
    with _lock:
        if _state is not None and _state.limiter is not None:
            try:
                _state.limiter.storage.reset()
            except Exception:  # noqa: BLE001, S110 - best effort for tests
                pass
        _state = None


def _items(spec: str) -> list[RateLimitItem]:
    st = _get()
    if spec not in st.cache:
        st.cache[spec] = parse_many(spec)
    return st.cache[spec]


def hit(name: str, spec: str, *key: str) -> None:
    """Count one attempt against ``spec`` for ``(name, *key)``; raise RateLimited if over."""
    st = _get()
    items = _items(spec)
    if st.limiter is None:
        wait = st.memory.hit(items, name, *key)
        if wait is not None:
            RATE_LIMITED.labels(name).inc()
            raise RateLimited(wait)
        return
    for item in items:
        if not st.limiter.test(item, name, *key):
            reset = st.limiter.get_window_stats(item, name, *key).reset_time
            RATE_LIMITED.labels(name).inc()
            raise RateLimited(max(1, int(reset - time.time()) + 1))
    for item in items:
        st.limiter.hit(item, name, *key)


def allow(name: str, spec: str, *key: str) -> bool:
    """Like ``hit``, for work that is skipped quietly rather than refused: counts the
    attempt and answers True while under ``spec``; False (nothing counted) past it."""
    try:
        hit(name, spec, *key)
    except RateLimited:
        return False
    return True


def mail_allowed(flow: str, address: str) -> bool:
    """Whether one more mail of account flow ``flow`` (sign-up, reset) may go to
    ``address``: CASINO_RATE_MAIL_ADDRESS per address, whoever asks from wherever, so a
    form cannot be used to flood someone's inbox. The form's answer does not change."""
    return allow(f"mail-{flow}", get_settings().rate_mail_address, address.lower())


def check_login(ip: str, email: str) -> None:
    s = get_settings()
    hit("login-ip", s.rate_login_ip, ip)
    hit("login-account-ip", s.rate_login_account, email.lower(), ip)


def check_register(ip: str) -> None:
    hit("register-ip", get_settings().rate_register_ip, ip)


def check_reset(ip: str, email: str) -> None:
    s = get_settings()
    hit("reset-ip", s.rate_reset_ip, ip)
    hit("reset-account-ip", s.rate_reset_account, email.lower(), ip)


def check_mfa(challenge_or_session: str) -> None:
    hit("mfa", get_settings().rate_mfa_session, challenge_or_session)


def check_reauth(user_id: int) -> None:
    """Password and code checks of a signed-in player (2FA changes, password change):
    keyed by the account, which only that account's own sessions can spend."""
    hit("reauth", get_settings().rate_reauth_account, str(user_id))
