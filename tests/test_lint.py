"""Lint in CI: ruff's bandit rules (``S``) on the application, and the project's whole
rule set (pyproject.toml) on everything that ships or tests it.

A finding fails the suite. Fix it; where a rule is wrong about one line, say why on that
line (``# noqa: S105 - an audit action name, no secret``): no rule is ignored for the
whole of ``casino_app``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")
NOQA = re.compile(r"#\s*noqa:\s*([A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)(.*)$")


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    assert RUFF.exists(), f"ruff is a test dependency (pyproject.toml): {RUFF} is missing"
    return subprocess.run([str(RUFF), "check", "--no-cache", "--output-format", "concise",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_bandit_rules_find_nothing_in_the_application() -> None:
    done = ruff("--select", "S", "casino_app")
    assert done.returncode == 0, "ruff --select S casino_app:\n" + done.stdout + done.stderr


def test_the_projects_rules_find_nothing() -> None:
    done = ruff("casino_app", "tests", "bench", "alembic")
    assert done.returncode == 0, "ruff check:\n" + done.stdout + done.stderr


def test_every_noqa_for_a_bandit_rule_says_why() -> None:
    """A ``# noqa: Sxxx`` without a reason after it hides a finding nobody explained."""
    bare = []
    for path in sorted((ROOT / "casino_app").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = NOQA.search(line)
            if found and any(re.fullmatch(r"S\d+", c.strip()) for c in found[1].split(",")) \
                    and not found[2].strip(" -:"):
                bare.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bare, "noqa for a bandit rule without a reason:\n" + "\n".join(bare)
