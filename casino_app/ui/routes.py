"""Route strings and URL builders in one place."""

HOME = "/"
REGISTER = "/register"
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


def staff_player(user_id: int | str) -> str:
    return f"{STAFF_PLAYER}?id={user_id}"


def login_then(next_path: str) -> str:
    from urllib.parse import quote

    if not next_path.startswith("/") or next_path.startswith("//"):
        return LOGIN
    return f"{LOGIN}?next={quote(next_path, safe='/')}"


def safe_next(value: str | None) -> str:
    """Only same-site paths: never redirect to another origin after sign-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return ACCOUNT
    return value
