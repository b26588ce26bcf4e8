"""The two halves together: the sim (a process) plays rounds against the casino's real
wallet endpoints (our API under granian, tests/support/wallet_server.py) on SQLite. The
casino registers the sim with the keys from its state folder and syncs its game list. The
rounds settle in the ledger, and the casino's honesty check catches the sim's lies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.games.providers import client, honesty, registry
from casino_app.games.providers.models import ProviderRound
from casino_app.games.providers.registry import ProviderConfig
from casino_app.provider_sim.state import load_or_create
from tests.support import provider_setup as ps
from tests.support.provider_sim import ProviderSim, session_of, start_provider_sim
from tests.support.services import free_port
from tests.support.wallet_server import wallet_server

pytestmark = pytest.mark.slow
HUB88_PER_CENT = 1000  # Hub88 amounts are value x 100000; FUN base units are cents


@dataclass
class Pair:
    sim: ProviderSim
    hub88: ProviderConfig
    bgaming: ProviderConfig


@pytest.fixture
def pair(app_env: Path, tmp_path: Path) -> Iterator[Pair]:
    with wallet_server(tmp_path / "wallet.log") as casino:
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        state_dir = tmp_path / "sim"
        state = load_or_create(state_dir)  # the sim's keys, as an operator would read them
        hub88 = registry.add("sim-hub", "hub88", origin, "FUN",
                             public_key=state.hub88_public_file.read_text(),
                             operator_ref=state.casino_id)
        bgaming = registry.add("sim-bg", "bgaming", origin, "FUN",
                               secret=state.bgaming_secret_file.read_bytes(),
                               operator_ref=state.casino_id)
        (state_dir / "casino_public.pem").write_text(hub88.own_public_key or "")
        sim = start_provider_sim(state_dir, hub88_wallet=f"{casino}/api/providers/sim-hub",
                                 bgaming_wallet=f"{casino}/api/providers/sim-bg", port=port,
                                 write_casino_key_file=False, wallet_timeout=3.0)
        try:
            assert client.sync_games(hub88) == 2 and client.sync_games(bgaming) == 2
            yield Pair(sim, hub88, bgaming)
        finally:
            sim.stop()


def _moved(record: dict[str, Any], per_cent: int) -> int:
    """What the round did to the player's balance, in cents, by the sim's own record."""
    if record["status"] in ("refused", "cancelled"):
        return 0
    return (sum(record["wins"]) - sum(record["bets"])) // per_cent


def test_rounds_settle_in_the_ledger_and_pass_the_honesty_check(pair: Pair) -> None:
    player = ps.new_player(fun=100_00)
    expected = 100_00
    sid = session_of(client.launch_url(pair.hub88, player.player_id, "hh-slot", "FUN"))
    for _ in range(3):
        record = pair.sim.play(sid, 100 * HUB88_PER_CENT)  # 1.00 FUN
        assert record["status"] == "closed", record
        assert all(c["status"] == "RS_OK" and c["response_signature"] == "valid"
                   for c in record["calls"])
        expected += _moved(record, HUB88_PER_CENT)
    sid = session_of(client.launch_url(pair.bgaming, player.player_id, "hh-ladder", "FUN"))
    record = pair.sim.play(sid, 100, steps=3)
    assert record["status"] == "closed", record
    assert all(c["status"] == "OK" and c["response_signature"] == "valid"
               for c in record["calls"])
    expected += _moved(record, 1)
    assert ps.balance(player.player_id) == expected
    run = honesty.verify_rounds()
    assert run.verified == 4 and run.mismatches == 0
    assert ps.invariants_hold() == []


def test_the_casino_survives_the_sims_misbehaviour(pair: Pair) -> None:
    player = ps.new_player(fun=100_00)
    expected = 100_00
    hub = session_of(client.launch_url(pair.hub88, player.player_id, "hh-slot", "FUN"))
    bg = session_of(client.launch_url(pair.bgaming, player.player_id, "hh-slot", "FUN"))
    cancelled = set()
    for names in (["retry"], ["duplicate"], ["timeout-rollback"], ["out-of-order-rollback"],
                  ["out-of-order-win"], ["bad-signature"], ["retry", "out-of-order-win"]):
        pair.sim.control(*names)
        for sid, per_cent in ((hub, HUB88_PER_CENT), (bg, 1)):
            record = pair.sim.play(sid, 100 * per_cent)
            expected += _moved(record, per_cent)
            assert ps.balance(player.player_id) == expected, (names, record)
            if record["status"] == "cancelled":
                cancelled.add(record["round"])
    pair.sim.control()
    honesty.verify_rounds()
    # Every honest round passes, and so does a round whose bets were all rolled back
    # (nothing was played: nothing to reveal)
    assert cancelled and _mismatched() == set()
    assert ps.invariants_hold() == []


def _mismatched() -> set[str]:
    with ledger_tx(readonly=True) as s:
        return set(s.execute(select(ProviderRound.round_ref).where(
            ProviderRound.fair_state == "mismatch")).scalars())


def test_the_honesty_check_catches_a_bad_reveal_and_a_skewed_paytable(pair: Pair) -> None:
    player = ps.new_player(fun=1000_00)
    sid = session_of(client.launch_url(pair.hub88, player.player_id, "hh-slot", "FUN"))
    pair.sim.control("bad-reveal")
    pair.sim.play(sid, 100 * HUB88_PER_CENT)
    run = honesty.verify_rounds()
    assert run.verified == 1 and run.mismatches == 1
    pair.sim.control("rtp-skew")
    for _ in range(12):
        pair.sim.play(sid, 100 * HUB88_PER_CENT)
    assert honesty.verify_rounds().mismatches > 0
