"""Proof of reserves: the trees, the signature, coverage, and a player's own path."""

from __future__ import annotations

import copy
import json

import pytest

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.payments import reserves
from casino_app.payments.reconcile_models import ReconcileRun
from casino_app.security.models import AuditEvent
from tests.support import provider_setup as ps


def _run(chain: str, holdings: dict[str, dict[str, str]], per_unit: dict[str, int]) -> None:
    with ledger_tx() as s:
        s.add(ReconcileRun(chain=chain, block_number=7, block_hash="0x" + "ab" * 32, clean=True,
                           issues=0, summary=json.dumps({"holdings": holdings,
                                                         "per_unit": per_unit}),
                           started_at=utcnow(), finished_at=utcnow()))


def test_a_proof_verifies_and_its_totals_are_the_books(any_env: str) -> None:
    players = [ps.new_player(fun=500, ETH=10**9 * (i + 1), BTC=1000 * (i + 1))
               for i in range(5)]
    _run("ethereum", {"ETH": {"0xaa": str(10**18 * 20)}}, {"ETH": 10**9})
    _run("bitcoin", {"BTC": {"bc1q1": "10000", "bc1q2": "5000"}}, {"BTC": 1})
    published = reserves.publish()
    assert reserves.verify(published) == []
    eth, btc = published["proof"]["currencies"]["ETH"], published["proof"]["currencies"]["BTC"]
    # the root's sum is the books' player liabilities; FUN is play money and not in it
    assert eth["total"] == eth["books_liabilities"] == str(10**9 * 15)
    assert btc["total"] == btc["books_liabilities"] == str(15_000)
    assert "FUN" not in published["proof"]["currencies"]
    assert eth["covered"] and btc["covered"] and btc["holdings"]["total"] == "15000"
    # each player finds their leaf and its path leads to the published root
    for i, p in enumerate(players):
        view = reserves.player_view(p.player_id)
        assert view is not None
        mine = {leaf["currency"]: leaf for leaf in view["leaves"]}
        assert mine["ETH"]["balance"] == str(10**9 * (i + 1))
        assert mine["ETH"]["leaf_id"] == reserves.leaf_id(view["salt"], p.player_id)
        for leaf in mine.values():
            assert reserves.verify_path(leaf["leaf_id"], int(leaf["balance"]), leaf["path"],
                                        leaf["root"], int(leaf["total"]))
            assert not reserves.verify_path(leaf["leaf_id"], int(leaf["balance"]) + 1,
                                            leaf["path"], leaf["root"], int(leaf["total"]))
    # no leaf names a player: only salted ids
    text = json.dumps(published)
    assert not any(p.player_id in text for p in players)


@pytest.mark.parametrize("tamper", ["leaf", "sum", "root", "signature", "covered"])
def test_a_tampered_proof_fails(any_env: str, tamper: str) -> None:
    for i in range(3):
        ps.new_player(ETH=10**9 * (i + 1))
    _run("ethereum", {"ETH": {"0xaa": str(10**18)}}, {"ETH": 10**9})
    good = reserves.publish()
    bad = copy.deepcopy(good)
    eth = bad["proof"]["currencies"]["ETH"]
    if tamper == "leaf":      # a player's balance lowered
        eth["leaves"][0][1] = str(int(eth["leaves"][0][1]) - 1)
    elif tamper == "sum":
        eth["total"] = str(int(eth["total"]) - 1)
    elif tamper == "root":
        eth["root"] = "00" * 32
    elif tamper == "signature":
        bad["signature"] = good["signature"][:-2] + ("00" if good["signature"][-2:] != "00"
                                                     else "11")
    else:
        eth["covered"] = not eth["covered"]
    problems = reserves.verify(bad)
    assert problems, tamper
    if tamper != "signature":
        assert "the signature does not verify" in problems  # any edit breaks it
    assert reserves.verify(good) == []


def test_holdings_below_liabilities_are_flagged(any_env: str) -> None:
    ps.new_player(ETH=10**9 * 3)
    _run("ethereum", {"ETH": {"0xaa": str(10**18 * 2)}}, {"ETH": 10**9})  # 2 ETH held, 3 owed
    published = reserves.publish()
    eth = published["proof"]["currencies"]["ETH"]
    assert not eth["covered"] and reserves.verify(published) == []
    with identity_tx(readonly=True) as s:
        actions = [e.action for e in s.query(AuditEvent).all()]
    assert actions.count("reserves.below_liabilities") == 1


def test_the_cli_publishes_and_verifies_a_file(app_env, tmp_path, capsys) -> None:  # noqa: ANN001
    from casino_app.cli import main

    ps.new_player(BTC=2500)
    out = tmp_path / "proof.json"
    # no chain reconciled: what is held is unknown, so BTC is not covered (exit 1)
    assert main(["reserves", "publish", "--out", str(out)]) == 1
    assert "NOT COVERED" in capsys.readouterr().out
    assert main(["reserves", "verify", str(out)]) == 0
    data = json.loads(out.read_text())
    data["proof"]["currencies"]["BTC"]["total"] = "1"
    out.write_text(json.dumps(data))
    assert main(["reserves", "verify", str(out)]) == 1
    assert "does not verify" in capsys.readouterr().out


def test_the_browser_check_agrees_with_the_server(app_env, tmp_path) -> None:  # noqa: ANN001
    """assets/reserves.js (what the reserves page runs) under Node: every player's path
    verifies, and a changed balance does not."""
    import subprocess

    from tests.games.test_verifier_js import ROOT, find_node

    node = find_node()
    if node is None:
        pytest.skip("no Node.js >= 18")
    players = [ps.new_player(ETH=10**9 * (i + 3)) for i in range(7)]
    reserves.publish()
    cases = []
    for p in players:
        view = reserves.player_view(p.player_id)
        for leaf in view["leaves"]:
            case = {**leaf, "player_id": p.player_id, "salt": view["salt"]}
            cases.append(case)
            cases.append({**case, "balance": str(int(case["balance"]) + 1)})
    driver = tmp_path / "driver.js"
    driver.write_text(
        "const r = require(process.argv[2]);\n"
        "let input = ''; process.stdin.on('data', d => input += d);\n"
        "process.stdin.on('end', async () => { const out = [];\n"
        "  for (const c of JSON.parse(input)) out.push((await r.verifyLeaf(c)).ok);\n"
        "  console.log(JSON.stringify(out)); });\n")
    done = subprocess.run([node, str(driver), str(ROOT / "assets" / "reserves.js")],  # noqa: S603
                          input=json.dumps(cases), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, False] * len(players)
