"""``next=`` after sign-in: only paths of this site, whatever a browser's URL parser does."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from casino_app.ui import routes

SITE = "https://casino.example/login"


@pytest.mark.parametrize("value", [
    "//evil.example", "https://evil.example/", "/\\evil.example", "evil.example",
    # Browsers (and urllib) drop tab, CR and LF anywhere in a URL: "/\t/x" is "//x".
    "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\t\\evil.example",
    "/\x00/evil.example", " //evil.example",
])
def test_next_never_leaves_the_site(value: str) -> None:
    target = routes.safe_next(value)
    assert target == routes.ACCOUNT
    assert urljoin(SITE, target).startswith("https://casino.example/")


@pytest.mark.parametrize("value", ["/account/security", "/admin/player?id=4", "/"])
def test_next_keeps_paths_of_this_site(value: str) -> None:
    assert routes.safe_next(value) == value


def test_login_then_refuses_what_safe_next_refuses() -> None:
    assert routes.login_then("/\t/evil.example") == routes.LOGIN
    assert routes.login_then("/account") == "/login?next=/account"


def test_the_staff_player_page_reads_only_plain_account_numbers() -> None:
    from casino_app.ui.state.staff import user_id_from_query

    assert user_id_from_query("42") == 42
    for raw in ("", "²", "٣", "-1", "0", "4.2", "99999999999", "9" * 40, "x"):
        assert user_id_from_query(raw) == 0, raw
