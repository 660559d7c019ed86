"""Private PostgreSQL and Redis servers on free loopback ports.

Shared by the tests, `make demo`, the drills and the benches so that all of them start the
watched servers the same way. Each server lives in its own directory and can be
stopped, killed and restarted, which is what the fault tests need.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.process import Process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bindir() -> Path:
    """Directory with initdb/pg_ctl: PATH first, then Debian's versioned layout."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return candidates[0].parent


def _run_as(
    argv: list[str], user: str | None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    # initdb refuses to run as root: drop to the owner of the data directory.
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@dataclass
class PostgresServer:
    """A throw-away cluster: initdb in `base`, trust auth on 127.0.0.1, pg_stat_statements."""

    base: Path
    port: int = field(default_factory=free_port)
    max_connections: int = 40
    user: str | None = None
    # Extra environment of the server processes (a test runs one under libfaketime).
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bindir = postgres_bindir()
        self.datadir = self.base / "data"
        self.sockdir = self.base / "sock"
        if os.geteuid() == 0 and self.user is None:
            self.user = "postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _prepare_dirs(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(self.base, self.user)
            shutil.chown(self.sockdir, self.user)

    def init(self) -> None:
        self._prepare_dirs()
        _run_as(
            [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
            self.user,
        )
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(
                "\n# saasmon dev server\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sockdir}'\n"
                f"max_connections = {self.max_connections}\n"
                "shared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.track = all\n"
                "track_io_timing = on\n"
                # No fsync (speed), but commits reach the OS before they return: tests kill
                # the server with SIGKILL, and a committed row lost in WAL buffers would
                # hand out its id again after the restart.
                "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n"
                "deadlock_timeout = '100ms'\n"
            )

    def init_replica_of(self, primary: PostgresServer) -> None:
        """Base backup of `primary` set up as a streaming standby (pg_basebackup -R)."""
        self._prepare_dirs()
        _run_as(
            [str(self.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
             "-U", "postgres", "-D", str(self.datadir), "-R", "-X", "stream",
             # A fast checkpoint: a spread one makes the clone wait up to minutes.
             "-c", "fast", "--no-sync"],
            self.user,
        )
        with (self.datadir / "postgresql.conf").open("a") as handle:
            handle.write(f"\n# standby\nport = {self.port}\n"
                         f"unix_socket_directories = '{self.sockdir}'\n")

    def start(self) -> None:
        if not self.datadir.exists():
            self.init()
        _run_as(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60",
             "-l", str(self.base / "postgres.log"), "start"],
            self.user, env={**os.environ, **self.env},
        )

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", mode,
                     "stop"], self.user)

    def kill(self) -> None:
        """SIGKILL the postmaster: the abrupt death a crash or OOM kill looks like."""
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        # Postmaster first so it cannot respawn workers, then the orphaned backends
        # that would keep the shared memory and the port.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-P", str(pid)], check=False)
        time.sleep(0.5)
        # Without an init that reaps orphans, the dead postmaster stays a zombie and its pid
        # still "exists": drop the stale lock file as an operator would after a crash.
        pidfile.unlink(missing_ok=True)
        for lock in self.sockdir.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def psql(self, sql: str, db: str = "postgres") -> str:
        out = subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", db, "-Atqc", sql],
            check=True, text=True, capture_output=True,
        )
        return out.stdout.strip()


@dataclass
class RedisServer:
    """A redis-server with no persistence on a free port."""

    base: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    _process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.base / "redis.log"

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        command = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.base),
            "--daemonize", "no", *self.extra_args,
        ]
        # A restart after kill() keeps the earlier run's log.
        self._process = Process(f"redis-server :{self.port}", command, self.log_path,
                                append_log=True).start()
        self._process.wait_port(self.port, timeout=30)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
