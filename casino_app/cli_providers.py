"""``casino provider ...``: operators set up and test a game-provider integration.

    casino provider add --name N --dialect hub88|bgaming --base-url URL
                        (--public-key FILE | --secret-file FILE) --currencies C,...
    casino provider list
    casino provider disable N   /   casino provider enable N
    casino provider sync N      (refresh its game list)
    casino provider launch --name N --player EMAIL --game CODE [--currency C] [--demo]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

_MAX_KEY_FILE = 64 * 1024


def _fail(msg: str) -> int:
    print(f"casino: {msg}", file=sys.stderr)
    return 2


def _read(path: str, what: str) -> bytes:
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_KEY_FILE:
            raise ValueError(f"the {what} file is larger than {_MAX_KEY_FILE} bytes")
        return p.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def wallet_url(name: str) -> str:
    from casino_app.core.settings import get_settings

    return f"{get_settings().public_url.rstrip('/')}/api/providers/{name}"


def cmd_add(args: argparse.Namespace, ready: Callable[[], object]) -> int:
    ready()
    from casino_app.games.providers import registry

    try:
        public = _read(args.public_key, "public key").decode("ascii", "replace") \
            if args.public_key else None
        secret = _read(args.secret_file, "secret") if args.secret_file else None
        config = registry.add(args.name, args.dialect, args.base_url, args.currencies,
                              public_key=public, secret=secret,
                              operator_ref=args.operator_id or "")
    except ValueError as exc:
        return _fail(str(exc))
    print(f"provider {config.name} added ({config.dialect}, "
          f"{', '.join(config.currencies)})")
    print(f"wallet base URL for the provider to call: {wallet_url(config.name)}")
    if config.own_public_key:
        print("our public key (the provider verifies our calls and answers with it):")
        print(config.own_public_key.strip())
    return 0


def cmd_list(_args: argparse.Namespace, ready: Callable[[], object]) -> int:
    ready()
    from casino_app.games.providers import registry

    rows = registry.listed()
    if not rows:
        print("no providers (add one with `casino provider add`)")
    for c in rows:
        state = "enabled" if c.enabled else "DISABLED"
        print(f"{c.name}\t{c.dialect}\t{state}\t{','.join(c.currencies)}\t{c.base_url}\t"
              f"{wallet_url(c.name)}")
    return 0


def cmd_enable(args: argparse.Namespace, ready: Callable[[], object],
               enabled: bool) -> int:
    ready()
    from casino_app.games.providers import registry

    try:
        c = registry.set_enabled(args.name, enabled)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"provider {c.name} {'enabled' if enabled else 'disabled: every call is refused'}")
    return 0


def cmd_sync(args: argparse.Namespace, ready: Callable[[], object]) -> int:
    ready()
    from casino_app.games.providers import client, registry

    c = registry.by_name(args.name)
    if c is None:
        return _fail(f"no provider named {args.name}")
    try:
        n = client.sync_games(c)
    except client.ProviderDown as exc:
        return _fail(str(exc))
    print(f"{n} games listed by {c.name}")
    return 0


def cmd_launch(args: argparse.Namespace, ready: Callable[[], object]) -> int:
    ready()
    from casino_app.games.providers import client, registry
    from casino_app.users.staff import player_id_by_email

    c = registry.by_name(args.name)
    if c is None:
        return _fail(f"no provider named {args.name}")
    if not c.enabled:
        return _fail(f"provider {c.name} is disabled")
    player_id = None
    code = None
    if not args.demo:
        player_id = player_id_by_email(args.player or "")
        if player_id is None:
            return _fail("no player with that email address")
        code = (args.currency or c.currencies[0]).upper()
        if code not in c.currencies:
            return _fail(f"{c.name} does not take {code} (it takes "
                         f"{', '.join(c.currencies)})")
    try:
        url = client.launch_url(c, player_id, args.game, code, demo=args.demo)
    except client.ProviderDown as exc:
        return _fail(str(exc))
    print(url)
    return 0


def add_parser(sub: argparse._SubParsersAction, ready: Callable[[], object]) -> None:
    """``casino provider``; ``ready`` sets up settings and databases."""
    pv = sub.add_parser("provider", help="game providers (seamless wallet)") \
        .add_subparsers(dest="provider", required=True)
    pa = pv.add_parser("add", help="register a provider; prints the wallet URL it calls")
    pa.add_argument("--name", required=True)
    pa.add_argument("--dialect", required=True, choices=["hub88", "bgaming"])
    pa.add_argument("--base-url", required=True,
                    help="the provider's API (https; http only on loopback)")
    keys = pa.add_mutually_exclusive_group(required=True)
    keys.add_argument("--public-key", help="hub88: the provider's RSA public key (PEM file)")
    keys.add_argument("--secret-file", help="bgaming: a file holding the shared secret")
    pa.add_argument("--currencies", required=True, help="e.g. FUN,BTC,ETH")
    pa.add_argument("--operator-id", default=None,
                    help="our id at the provider (operator_id / casino_id; default: NAME)")
    pa.set_defaults(func=lambda a: cmd_add(a, ready))
    pv.add_parser("list", help="the providers, their state and wallet URLs") \
        .set_defaults(func=lambda a: cmd_list(a, ready))
    for verb, enabled in (("disable", False), ("enable", True)):
        pe = pv.add_parser(verb, help=f"{verb} a provider")
        pe.add_argument("name")
        pe.set_defaults(func=lambda a, e=enabled: cmd_enable(a, ready, e))
    ps = pv.add_parser("sync", help="refresh a provider's game list")
    ps.add_argument("name")
    ps.set_defaults(func=lambda a: cmd_sync(a, ready))
    pl = pv.add_parser("launch", help="ask the provider for a launch URL, as the lobby does")
    pl.add_argument("--name", required=True)
    pl.add_argument("--player", help="the player's email address (not for --demo)")
    pl.add_argument("--game", required=True)
    pl.add_argument("--currency", default=None, help="default: the provider's first")
    pl.add_argument("--demo", action="store_true", help="play money at the provider")
    pl.set_defaults(func=lambda a: cmd_launch(a, ready))
