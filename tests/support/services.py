"""Private PostgreSQL clusters and Redis servers for tests, started from the installed
binaries on free ports in temporary folders, so a test can crash them safely.

PostgreSQL refuses to run as root; when the tests run as root (CI), the cluster's
folder is given to the ``postgres`` user and its commands run through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from casino_app.core.process import stop_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path:
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "pg_ctl").exists():
            return cand
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL binaries not found: install postgresql")


class PgCluster:
    """A throwaway PostgreSQL cluster: ``start``, ``stop(mode)``, ``url(db)``."""

    def __init__(self, fsync: bool = False, conf: dict[str, str] | None = None):
        self.conf = conf or {}
        self.bindir = _pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="hh-pg-"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.port = free_port()
        self.fsync = fsync
        self._as_root = os.geteuid() == 0
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.sockdir.mkdir()
        if self._as_root:
            os.chown(self.sockdir, pwd.getpwnam("postgres").pw_uid, -1)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                     f"unix_socket_directories = '{self.sockdir}'\n"
                     f"fsync = {'on' if self.fsync else 'off'}\n"
                     f"synchronous_commit = {'on' if self.fsync else 'off'}\n"
                     "full_page_writes = off\nmax_connections = 200\n"
                     "shared_buffers = 64MB\n"
                     + "".join(f"{k} = {v}\n" for k, v in self.conf.items()))

    def start(self) -> PgCluster:
        if not self.datadir.exists():
            self.init()
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log.txt"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def recycle_wal(self, segments: int = 32) -> None:
        """Bring the WAL to the state of a server in service (for benchmarks): a new
        cluster makes and zero-fills a 16 MB segment each time it needs one (~50 ms, a
        stall every few seconds under load), a server in service renames old ones after
        each checkpoint. Fills ``segments`` segments, then checkpoints, so that they are
        kept for reuse (with ``min_wal_size`` at least their size)."""
        import psycopg

        with psycopg.connect(self.url("postgres", driver=False), autocommit=True) as c:
            c.execute("CREATE TABLE IF NOT EXISTS wal_warm (x int)")
            for _ in range(segments):
                c.execute("INSERT INTO wal_warm VALUES (1)")
                c.execute("SELECT pg_switch_wal()")
            c.execute("DROP TABLE wal_warm")
            c.execute("CHECKPOINT")
            c.execute("CHECKPOINT")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres", driver=False), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, db: str, driver: bool = True) -> str:
        scheme = "postgresql+psycopg" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hh-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(  # noqa: S603
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


# --- the real app -----------------------------------------------------------------------

def app_base_env() -> dict[str, str]:
    """This process's environment without the app's settings (CASINO_*), Reflex's Redis
    and granian's worker settings, and without the development game provider: what a
    private ``casino run`` starts from."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CASINO_", "GRANIAN_")) and k != "REFLEX_REDIS_URL"}
    # no development game provider beside every app of the tests (the provider tests
    # turn it on)
    env["CASINO_DEV_PROVIDERS"] = "false"
    return env


def web_workers_env(redis_url: str | None, workers: int = 1) -> dict[str, str]:
    """What makes ``casino run`` serve its one port from ``workers`` processes that share
    per-tab state through Redis: ``REFLEX_REDIS_URL`` (Reflex's state manager and socket
    registry) and ``GRANIAN_WORKERS`` (Reflex hands it to granian; with Redis and no
    GRANIAN_WORKERS Reflex would start 2 x cores + 1). Several workers need Redis."""
    if workers > 1 and not redis_url:
        raise ValueError("several web workers share their state through Redis: give its URL")
    env = {"GRANIAN_WORKERS": str(workers)}
    if redis_url:
        env["REFLEX_REDIS_URL"] = redis_url
    return env


class AppFailed(RuntimeError):
    """``casino run`` exited or did not answer in time; the message ends with its log."""


def start_casino(env: dict[str, str], port: int, log: Path, cwd: Path,
                 timeout: float = 900) -> subprocess.Popen:
    """Start ``casino run`` on ``port`` (own process group, output to ``log``) and wait
    until its pages and /api/livez answer. No ``--host``: it listens where it does by
    default (CASINO_BIND_HOST, 127.0.0.1; ``listening_addresses`` checks that). It serves
    ``cwd``'s one front-end build, whatever its port (``casino build``; the first app of
    a session builds it if the tree changed since), so apps started from one folder do
    not disturb each other."""
    import sys

    import httpx

    casino = str(Path(sys.executable).parent / "casino")
    with log.open("w") as fh:
        proc = subprocess.Popen([casino, "run", "--port", str(port)],  # noqa: S603
                                env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise AppFailed("the app exited:\n" + log.read_text()[-4000:])
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200 and \
                    httpx.get(url + "/api/livez", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            stop_casino(proc)
            raise AppFailed("the app did not start:\n" + log.read_text()[-4000:])
        time.sleep(1)


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and
    tcp6, what ``ss -ltn`` reads): {"127.0.0.1"}, {"0.0.0.0"}, {"::"}..."""
    import ipaddress

    found = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
            found.add(str(ipaddress.ip_address(raw)))
    return found


def stop_casino(proc: subprocess.Popen) -> None:
    """SIGTERM the app's process group; SIGKILL it if it has not gone in 30 s."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


# --- Ethereum dev node ------------------------------------------------------------------

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
# The ten accounts anvil funds from ANVIL_MNEMONIC (m/44'/60'/0'/0/i), 10,000 ETH each.
ANVIL_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]

_CHILDREN: set[subprocess.Popen] = set()


def _kill_children() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _CHILDREN.discard(proc)


class NodeProcess:
    """A private node the tests start (anvil, bcoin): one process in a temporary folder.
    ``stop`` ends it (SIGTERM, then SIGKILL after 10 s) and removes the folder; every
    process still running when the interpreter exits is killed; also a context manager.
    A subclass starts the process, hands it to ``_spawn``, and closes its clients in
    ``_close_clients``."""

    proc: subprocess.Popen | None = None
    root: Path

    def start(self) -> NodeProcess:
        raise NotImplementedError

    def _spawn(self, cmd: list[str], log: Path, **kw) -> subprocess.Popen:  # noqa: ANN003
        """Start ``cmd`` with its output in ``log``; with ``setpriv`` (util-linux) the
        process also dies with the thread that started it, even by SIGKILL."""
        import atexit

        if not getattr(NodeProcess, "_watching", False):
            atexit.register(_kill_children)
            NodeProcess._watching = True  # type: ignore[attr-defined]
        setpriv = shutil.which("setpriv")
        if setpriv:
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        with log.open("wb") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, **kw)  # noqa: S603
        _CHILDREN.add(self.proc)
        return self.proc

    def _close_clients(self) -> None:
        """Drop the subclass's clients of the node (before the process goes)."""

    def _terminate(self) -> None:
        self._close_clients()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            stop_process(proc)
        finally:
            _CHILDREN.discard(proc)

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):  # noqa: ANN204
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def anvil_exe() -> Path:
    """The anvil binary that ./setup.sh installs from npm into .tools/ (HH_TOOLS_DIR)."""
    from casino_app.payments.eth.devnet import anvil_exe as exe

    return exe()


class Anvil(NodeProcess):
    """A private anvil (Foundry's dev node) on a free port: chain id 31337, the ten funded
    accounts of ANVIL_MNEMONIC, auto-mining unless ``no_mining`` (or on a clock with
    ``block_time``). ``start``/``stop``; also a context manager. The process is killed when
    the interpreter exits, and (through ``setpriv --pdeathsig``) when its parent dies, even
    by SIGKILL. The death signal follows the starting *thread*: start it from a thread that
    lives as long as the node should (the main thread, as pytest fixtures do)."""

    chain_id = 31337

    def __init__(self, no_mining: bool = False, block_time: float | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.no_mining = no_mining
        self.block_time = block_time
        self.extra_args = tuple(extra_args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.root = Path(tempfile.mkdtemp(prefix="hh-anvil-"))
        self._w3 = None
        self._ids = 0

    # life cycle
    def start(self, timeout: float = 30) -> Anvil:
        last = ""
        for _ in range(3):  # a free port can be taken before anvil binds it: try another
            self.port = free_port()
            cmd = [str(anvil_exe()), "--port", str(self.port), "--host", "127.0.0.1",
                   "--chain-id", str(self.chain_id), "--silent"]
            if self.no_mining:
                cmd.append("--no-mining")
            if self.block_time is not None:
                cmd += ["--block-time", str(self.block_time)]
            cmd += list(self.extra_args)
            log = self.root / "anvil.log"
            self._spawn(cmd, log)
            deadline = time.time() + timeout
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    self.rpc("eth_blockNumber")
                    return self
                except OSError:
                    time.sleep(0.05)
            last = log.read_text(errors="replace")[-2000:]
            self._terminate()
        raise RuntimeError(f"anvil did not start:\n{last}")

    def _close_clients(self) -> None:
        self._w3 = None

    # access
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def w3(self):  # noqa: ANN201 - web3.Web3, imported lazily
        if self._w3 is None:
            from casino_app.payments.eth.chain import connect

            self._w3 = connect(self.url, timeout=30)
        return self._w3

    @property
    def keys(self) -> list[str]:
        return list(ANVIL_KEYS)

    @property
    def accounts(self) -> list[str]:
        from eth_account import Account

        return [Account.from_key(k).address for k in ANVIL_KEYS]

    def rpc(self, method: str, params: list | None = None):  # noqa: ANN201
        """One JSON-RPC call; the result, or RuntimeError with the node's error.
        Connection failures raise OSError (httpx's transport errors are OSErrors too)."""
        import httpx

        self._ids += 1
        try:
            resp = httpx.post(self.url, json={"jsonrpc": "2.0", "id": self._ids,
                                              "method": method, "params": params or []},
                              timeout=30)
        except httpx.TransportError as exc:
            raise ConnectionError(str(exc)) from exc
        body = resp.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    # chain control
    def mine(self, n: int = 1) -> int:
        """Mine ``n`` blocks now (also with --no-mining); the new block number."""
        self.rpc("anvil_mine", [hex(n)])
        return int(self.rpc("eth_blockNumber"), 16)

    def automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", [enabled])

    def wait_mined(self, timeout: float = 60) -> None:
        """With automine on, return once every transaction in the pool is mined. anvil
        answers ``eth_sendRawTransaction`` before its automine has made the block, so on a
        loaded machine a test that looks for the receipt at once may not find it yet."""
        if not self.rpc("anvil_getAutomine"):
            return
        deadline = time.time() + timeout
        while int(self.rpc("txpool_status")["pending"], 16):
            if time.time() > deadline:
                raise TimeoutError(f"anvil did not mine its pool within {timeout} s")
            time.sleep(0.05)

    def reorg(self, depth: int, txs: list | None = None) -> None:
        """Replace the last ``depth`` blocks with as many new ones (same height, new
        hashes). ``txs``: pairs (transaction, block offset 0..depth-1) to include in the
        new blocks; a transaction is a request dict (from an unlocked account) or a signed
        raw transaction as 0x-hex. Transactions of the dropped blocks are not replayed."""
        self.rpc("anvil_reorg", [depth, [[tx, offset] for tx, offset in (txs or [])]])

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc("evm_revert", [snapshot_id]):
            raise RuntimeError(f"evm_revert({snapshot_id}) refused")
