"""The app's state classes, as the browser can reach them (for tests that call every
handler of every state)."""

from __future__ import annotations


def app_states() -> list[type]:
    """Every state class of the app (defined by casino_app.ui.pages and its imports)."""
    from reflex.state import State

    import casino_app.ui.pages  # noqa: F401  (defines every state)

    found: list[type] = []

    def walk(cls: type) -> None:
        for sub in cls.get_substates():
            if sub.__module__.startswith("casino_app"):
                found.append(sub)
            walk(sub)

    walk(State)
    return found
