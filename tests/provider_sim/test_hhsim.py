"""The published fairness scheme "hhsim-1" (casino_app/games/providers/hhsim.py)."""

from __future__ import annotations

import ast
import hashlib
import hmac
from fractions import Fraction
from pathlib import Path

import pytest

import casino_app
from casino_app.games.providers import hhsim
from casino_app.provider_sim import catalog

SEED = "0123456789abcdef" * 4
PACKAGE = Path(casino_app.__file__).resolve().parent


def test_each_declared_paytable_has_exactly_its_declared_rtp() -> None:
    hhsim.SLOT.check()
    assert hhsim.SLOT.rtp() == hhsim.DECLARED_RTP["hh-slot"] == Fraction(96, 100)
    assert hhsim.LADDER.rtp() == hhsim.DECLARED_RTP["hh-ladder"] == Fraction(97, 100)
    for step in range(len(hhsim.LADDER.steps)):
        assert hhsim.LADDER.step_rtp(step) == Fraction(97, 100)
    assert hhsim.rtp_text("hh-slot") == "96.00"
    assert hhsim.rtp_text("hh-ladder") == "97.00"
    assert set(hhsim.GAMES) == set(hhsim.DECLARED_RTP) == set(catalog.GAMES)


def test_the_skewed_paytables_pay_about_half_as_much_again() -> None:
    slot, ladder = catalog.SKEWED["hh-slot"], catalog.SKEWED["hh-ladder"]
    assert isinstance(slot, hhsim.SlotTable) and isinstance(ladder, hhsim.LadderTable)
    slot.check()
    assert Fraction(145, 100) < slot.rtp() < Fraction(155, 100)
    assert ladder.rtp() == Fraction(150, 100)


def test_commitment_is_sha256_of_the_seed_bytes_and_verify_checks_it() -> None:
    assert hhsim.commitment(SEED) == hashlib.sha256(bytes.fromhex(SEED)).hexdigest()
    assert hhsim.verify(SEED, hhsim.commitment(SEED))
    assert hhsim.verify(SEED, hhsim.commitment(SEED).upper())
    other = "ff" * 32
    assert not hhsim.verify(other, hhsim.commitment(SEED))
    assert not hhsim.verify("not hex", hhsim.commitment(SEED))
    assert not hhsim.verify(SEED.upper(), hhsim.commitment(SEED))  # seeds are lowercase
    with pytest.raises(hhsim.SchemeError):
        hhsim.commitment("ab" * 31)


def test_a_draw_is_the_published_hmac_formula() -> None:
    for k in range(3):
        digest = hmac.new(bytes.fromhex(SEED), f"round-7:{k}".encode(), hashlib.sha256)
        expected = int(digest.hexdigest()[:13], 16)
        assert hhsim.draw_bits(SEED, "round-7", k) == expected
        assert hhsim.draw(SEED, "round-7", k) == expected / 2**52
        assert 0 <= hhsim.draw(SEED, "round-7", k) < 1


def test_payouts_are_the_stake_times_the_multiplier_in_hundredths() -> None:
    for n in range(50):
        round_id = f"r{n}"
        [win] = hhsim.payouts("hh-slot", SEED, round_id, [300])
        mult = hhsim.slot_multiplier(SEED, round_id)
        assert win == 300 * mult // 100 and mult in {r.mult for r in hhsim.SLOT.rows}
        wins = hhsim.payouts("hh-ladder", SEED, round_id, [500] * 5)
        for step, w in enumerate(wins):
            row = hhsim.LADDER.steps[step]
            won = hhsim.draw_bits(SEED, round_id, step) >> 36 < row.weight
            assert w == (500 * row.mult // 100 if won else 0)


def test_the_scheme_refuses_what_it_cannot_play() -> None:
    with pytest.raises(hhsim.SchemeError):
        hhsim.payouts("hh-slot", SEED, "r", [100, 100])
    with pytest.raises(hhsim.SchemeError):
        hhsim.payouts("hh-ladder", SEED, "r", [100] * 6)
    with pytest.raises(hhsim.SchemeError):
        hhsim.payouts("hh-poker", SEED, "r", [100])
    with pytest.raises(hhsim.SchemeError):
        hhsim.payouts("hh-slot", SEED, "r", [-100])
    with pytest.raises(hhsim.SchemeError):
        hhsim.payouts("hh-slot", SEED, "", [100])


def test_measured_outcome_frequencies_follow_the_paytables() -> None:
    """A quick sanity check on 20,000 draws (the exact RTP is proved above)."""
    n = 20_000
    losses = sum(hhsim.slot_multiplier(SEED, f"s{i}") == 0 for i in range(n))
    assert abs(losses / n - 42512 / 65536) < 0.02
    first_step = sum(hhsim.ladder_multiplier(SEED, f"l{i}", 0) > 0 for i in range(n))
    assert abs(first_step / n - 0.5) < 0.02


def _casino_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("casino_app")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("casino_app"):
            out.add(node.module or "")
        elif isinstance(node, ast.ImportFrom) and node.level:
            out.add("relative import")
    return out


def test_the_scheme_imports_nothing_from_the_casino() -> None:
    assert _casino_imports(PACKAGE / "games" / "providers" / "hhsim.py") == set()


def test_the_sim_imports_only_the_published_scheme_from_the_casino() -> None:
    allowed = {"casino_app.games.providers.hhsim", "casino_app.games.providers",
               "casino_app.core.logging"}
    for path in (PACKAGE / "provider_sim").rglob("*.py"):
        for name in _casino_imports(path):
            assert name in allowed or name.startswith("casino_app.provider_sim"), \
                f"{path.name} imports {name}"
