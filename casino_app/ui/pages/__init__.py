"""Importing this package registers every page (each module decorates its pages)."""

from casino_app.ui.pages import account, auth, home, staff, terms  # noqa: F401
