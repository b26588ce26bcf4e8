from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import live


@pytest.fixture(scope="package")
def casino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live.Casino]:
    """The attacked app (tests/support/live.py): started once for this folder's attack
    modules, stopped when the folder is done (not left running under the rest of the
    suite)."""
    with live.running(Path(tmp_path_factory.mktemp("attacked"))) as target:
        yield target


@pytest.fixture
def attacked(casino: live.Casino) -> Iterator[live.Casino]:
    """The attacked app, with this process's services on its databases for the test."""
    with live.adopted(casino.env):
        yield casino
