"""Route strings and URL builders in one place."""

HOME = "/"
REGISTER = "/register"
REGISTER_CONFIRM = "/register/confirm"  # the mailed sign-up link: ?token=...
LOGIN = "/login"
FORGOT = "/forgot"
RESET = "/reset"
UNLOCK = "/unlock"
TERMS = "/terms"
ACCOUNT = "/account"
SECURITY = "/account/security"
SESSIONS = "/account/sessions"
STAFF = "/admin"
STAFF_PLAYER = "/admin/player"
STAFF_AUDIT = "/admin/audit"
STAFF_ADJUSTMENTS = "/admin/adjustments"
STAFF_RECONCILE = "/admin/reconcile"    # reconciliation runs and their issues
STAFF_WALLETS = "/admin/wallets"        # hot and cold wallets, the books, the hot band
STAFF_WITHDRAWALS = "/admin/withdrawals"  # the queue, approvals (Safe signatures), refills
STAFF_PROVIDERS = "/admin/providers"    # game providers, RTP, alerts, round recall
STAFF_LOYALTY = "/admin/loyalty"        # loyalty claims held for rakeback farming
GAMES = "/games"            # one page per game: /games/dice, /games/mines, ...
BETS = "/bets"              # my bets: history, recall, stats
BET = "/bets/bet"           # one bet's recall: /bets/bet?id=42
PROVIDER_ROUND = "/bets/round"  # one provider round's recall: /bets/round?id=7
FAIRNESS = "/fairness"      # seeds: current hash, client seed, rotate, revealed seeds
VERIFY = "/verify"          # the in-browser verifier (no server call)
WALLET = "/wallet"          # deposit addresses, deposits, withdrawals
WITHDRAWAL_CONFIRM = "/withdrawal/confirm"  # the mailed confirmation link: ?token=...
RESERVES = "/reserves"      # the proof of reserves (public)
PROVIDER_GAME = "/play"     # a provider's game in an iframe: /play?g=p12
NOT_FOUND = "404"           # Reflex's route for every address that is no page


def game(name: str) -> str:
    return f"{GAMES}/{name}"


def provider_game(key: str) -> str:
    return f"{PROVIDER_GAME}?g={key}"


def bet(bet_id: int | str) -> str:
    return f"{BET}?id={bet_id}"


def provider_round(round_id: int | str) -> str:
    return f"{PROVIDER_ROUND}?id={round_id}"


def staff_player(user_id: int | str) -> str:
    return f"{STAFF_PLAYER}?id={user_id}"


def login_then(next_path: str) -> str:
    from urllib.parse import quote

    if not _same_site_path(next_path):
        return LOGIN
    return f"{LOGIN}?next={quote(next_path, safe='/')}"


def safe_next(value: str | None) -> str:
    """Only same-site paths: never redirect to another origin after sign-in."""
    if not value or not _same_site_path(value):
        return ACCOUNT
    return value


def _same_site_path(value: str) -> bool:
    # Browsers drop tab, CR and LF anywhere in a URL ("/\t/evil.example" is
    # "//evil.example") and read a backslash as a slash, so refuse those and every other
    # control character or space outright.
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return False
    return not any(c <= " " or c in "\x7f\\" for c in value)
