"""``casino`` commands configure logging onto the current stderr; tests that run them
in-process undo that afterwards (import the fixture into the test module)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def forget_cli_logging() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_casino", False):
            root.removeHandler(h)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()
