"""The shape of the code (docs/ARCHITECTURE.md), checked on its import statements so it
cannot drift back:

* ``core`` imports no other layer (settings, databases, logging know no service);
* the shared payments modules know no chain: only the adapter registry
  (``payments/adapters.py``) imports a chain package (``payments/eth``, ``payments/btc``),
  and the settings check Bitcoin's package until Bitcoin has an adapter;
* no module of ``casino_app`` is part of an import cycle through module-level imports;
  in the service layers (core, users, games, payments, security, jobs) not even through an
  import inside a function, which only hides a cycle until the function runs.

Imports under ``if TYPE_CHECKING:`` are not dependencies at run time and are skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import casino_app

PACKAGE = Path(casino_app.__file__).resolve().parent
SERVICES = ("core", "users", "games", "payments", "security", "jobs")
CHAIN_PACKAGES = ("casino_app.payments.eth", "casino_app.payments.btc",
                  "casino_app.payments.signer")


@cache
def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of casino_app: dotted name -> (file, is a package's __init__)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        out[".".join(parts)] = (path, is_package)
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _import_nodes(body: Iterable[ast.stmt], *, inside_functions: bool
                  ) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``body``: module level (also inside if/try/with blocks and
    class bodies), and with ``inside_functions`` those in function bodies too."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node.test):
            yield from _import_nodes(node.orelse, inside_functions=inside_functions)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if inside_functions:
                yield from _import_nodes(node.body, inside_functions=True)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    yield from _import_nodes([n for n in sub if isinstance(n, ast.AST)],
                                             inside_functions=inside_functions)


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The casino_app modules an import statement loads (a submodule loads its packages:
    ``a.b.c`` runs ``a/b/__init__`` too)."""
    known = modules()
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            names.add(sub if sub in known else base)
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(2, len(parts) + 1):
            target = ".".join(parts[:i])
            # A module's own packages are already being imported when it runs.
            if target in known and target != module and not _under(module, target):
                out.add(target)
    return out


@cache
def graph(inside_functions: bool) -> dict[str, frozenset[str]]:
    """module -> the casino_app modules it imports."""
    out = {}
    for module, (path, is_package) in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets: set[str] = set()
        for node in _import_nodes(tree.body, inside_functions=inside_functions):
            targets |= _resolve(module, is_package, node)
        out[module] = frozenset(targets)
    return out


def cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in edges:
                    continue
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _described(found: list[list[str]], edges: dict[str, frozenset[str]]) -> str:
    return "\n".join(" <-> ".join(c) + ": " + "; ".join(
        f"{m} imports {', '.join(sorted(edges[m] & set(c)))}" for m in c) for c in found)


def test_the_checker_sees_imports_and_cycles() -> None:
    edges = graph(True)
    assert "casino_app.core.clock" in edges["casino_app.payments.ledger"]
    # a submodule loads its package, except the importer's own packages
    assert {"casino_app.payments.eth", "casino_app.payments.eth.adapter"} <= \
        edges["casino_app.payments.adapters"]
    assert "casino_app.payments.eth" not in edges["casino_app.payments.eth.watcher"]
    # an import inside a function counts only when asked for
    assert "casino_app.payments.signer.seed" in edges["casino_app.jobs.worker"]
    assert "casino_app.payments.signer.seed" not in graph(False)["casino_app.jobs.worker"]
    assert cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}),
                   "d": frozenset({"a"})}) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_core_imports_no_other_layer() -> None:
    """core is below every layer: not even an import inside a function reaches up."""
    up = {m: sorted(t for t in targets if not _under(t, "casino_app.core"))
          for m, targets in graph(True).items() if _under(m, "casino_app.core")}
    assert {m: t for m, t in up.items() if t} == {}


# The one shared payments module that may import a chain package: the adapter registry.
MAY_KNOW_CHAINS = {"casino_app.payments.adapters": CHAIN_PACKAGES}


def test_the_shared_payments_modules_know_no_chain() -> None:
    """Only the adapter registry imports a chain's package; everything else in payments/
    outside eth/, btc/ and signer/ is shared by every chain."""
    shared = {m: targets for m, targets in graph(True).items()
              if _under(m, "casino_app.payments")
              and not any(_under(m, p) for p in CHAIN_PACKAGES)}
    assert "casino_app.payments.withdrawals" in shared
    knows = {m: sorted(t for t in targets if any(_under(t, p) for p in CHAIN_PACKAGES)
                       and not any(_under(t, p) for p in MAY_KNOW_CHAINS.get(m, ())))
             for m, targets in shared.items()}
    assert {m: t for m, t in knows.items() if t} == {}


def test_one_chain_adapter_does_not_import_another() -> None:
    """Bitcoin and Ethereum share what they share through payments/, never through each
    other's package (the signer serves both)."""
    chains = ("casino_app.payments.eth", "casino_app.payments.btc")
    crossing = {m: sorted(t for t in targets for other in chains
                          if _under(t, other) and not _under(m, other))
                for m, targets in graph(True).items() if any(_under(m, c) for c in chains)}
    assert {m: t for m, t in crossing.items() if t} == {}


def test_no_import_cycles_between_modules() -> None:
    edges = graph(False)
    found = cycles(edges)
    assert not found, "import cycles (module level):\n" + _described(found, edges)


def test_no_import_cycles_in_the_services_even_inside_functions() -> None:
    """A cycle hidden by an import inside a function is still a cycle: the two modules
    cannot be understood (or moved) one without the other."""
    edges = {m: frozenset(t for t in targets
                          if any(_under(t, f"casino_app.{layer}") for layer in SERVICES))
             for m, targets in graph(True).items()
             if any(_under(m, f"casino_app.{layer}") for layer in SERVICES)}
    found = cycles(edges)
    assert not found, "import cycles (imports inside functions included):\n" + \
        _described(found, edges)


def test_no_import_cycles_in_the_web_layer_even_inside_functions() -> None:
    """The same for the pages, their states and the push: the wallet, game, bets,
    deposits and withdraw states form a chain (wallet <- games, bets, deposits <-
    withdraw <- wallet_page), and the push loop is handed its refresh by casino_app.py."""
    edges = {m: frozenset(t for t in targets if _under(t, "casino_app.ui"))
             for m, targets in graph(True).items() if _under(m, "casino_app.ui")}
    found = cycles(edges)
    assert not found, "import cycles (imports inside functions included):\n" + \
        _described(found, edges)


# The states (issue 11 asked it of the bet path and the wallet; it holds for all): they
# talk through each other's events and their modules' public functions, never through
# another state's private helpers (a method or var whose name starts with "_").
STATE_MODULES = tuple(sorted(f.stem for f in (PACKAGE / "ui" / "state").glob("*.py")
                             if f.stem != "__init__"))


def _private_members(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                name = (item.name if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                        else item.target.id if isinstance(item, ast.AnnAssign)
                        and isinstance(item.target, ast.Name) else "")
                if name.startswith("_") and not name.startswith("__"):
                    out.add(name)
    return out


def test_no_state_uses_a_private_helper_of_another_state() -> None:
    trees = {name: ast.parse((PACKAGE / "ui" / "state" / f"{name}.py").read_text())
             for name in STATE_MODULES}
    trees["push"] = ast.parse((PACKAGE / "ui" / "push.py").read_text())
    own = {name: _private_members(tree) for name, tree in trees.items()}
    found = []
    for name, tree in trees.items():
        others = set().union(*(p for n, p in own.items() if n != name)) - own[name]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in others
                    and not (isinstance(node.value, ast.Name)
                             and node.value.id in ("self", "cls"))):
                found.append(f"{name}.py:{node.lineno}: .{node.attr}")
    assert not found, "private helpers of another state used:\n" + "\n".join(found)
