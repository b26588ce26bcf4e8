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

    def __init__(self, fsync: bool = False):
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
                     "shared_buffers = 64MB\n")

    def start(self) -> PgCluster:
        if not self.datadir.exists():
            self.init()
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log.txt"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

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
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


# --- the real app -----------------------------------------------------------------------

class AppFailed(RuntimeError):
    """``casino run`` exited or did not answer in time; the message ends with its log."""


def start_casino(env: dict[str, str], port: int, log: Path, cwd: Path,
                 timeout: float = 900) -> subprocess.Popen:
    """Start ``casino run`` on 127.0.0.1:``port`` (own process group, output to ``log``) and
    wait until its pages and /api/livez answer."""
    import sys

    import httpx

    casino = str(Path(sys.executable).parent / "casino")
    with log.open("w") as fh:
        proc = subprocess.Popen([casino, "run", "--port", str(port), "--host", "127.0.0.1"],  # noqa: S603
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
