"""Fixtures: private PostgreSQL/Redis servers and exporters run as real processes; and the
hooks that give every test its room (tests/support/rooms.py) and every session its scratch
directory (tests/support/scratch.py).

Helpers live in tests/support and are imported from there, never from this file.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.exporter import Exporter
from devstack.servers import PostgresServer, RedisServer
from tests.support import rooms, scratch


def distributed(config: pytest.Config) -> bool:
    """The run is split over pytest-xdist workers (`make test` does so)."""
    return str(config.getoption("dist", "no")) != "no" or hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # An xdist worker inherits the controller's scratch directory: it makes its own beside
    # it (in the system temp directory), so its end-of-session check sees only what its own
    # tests left. Not inside: unix socket paths (Chromium's, PostgreSQL's) hold 107 bytes.
    if hasattr(config, "workerinput"):
        scratch.start(os.environ.get("PYTEST_DEBUG_TEMPROOT"))
    elif scratch.current() is None:
        scratch.start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rooms.assign(items)
    rooms.order(items, distributed=distributed(config))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units by room (tests/support/rooms.py's `work_unit`). A scheduler of our own,
    not xdist_group marks: `--dist loadgroup` renames node ids, which pytest 9.2 no longer
    lets a plugin do."""
    from xdist.scheduler import LoadScopeScheduling

    class RoomScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            return rooms.work_unit(nodeid)

    return RoomScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = scratch.current()
    if path is not None and not scratch.keeping():
        scratch.finish(path)


@pytest.fixture(scope="session", autouse=True)
def no_temporary_directory_left_behind() -> Iterator[None]:
    """Every test removes the temporary directories it made: whatever is still in the
    session's scratch directory after the last test fails the run (and is removed)."""
    yield
    path = scratch.current()
    if path is None or scratch.keeping():
        return
    left = scratch.leftovers(path)
    scratch.clear(path)
    if left:
        pytest.fail(f"temporary directories left behind in {path}: {', '.join(left)}",
                    pytrace=False)


@pytest.fixture
def workdir() -> Iterator[Path]:
    # World-readable so the postgres user (initdb runs as it under root) can enter it.
    path = Path(tempfile.mkdtemp(prefix="saasmon-test-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def postgres(workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "pg", max_connections=20)
    server.start()
    server.psql("CREATE EXTENSION pg_stat_statements")
    yield server
    server.stop("immediate")


@pytest.fixture
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def exporters(workdir: Path) -> Iterator[list[Exporter]]:
    """Append started exporters here; all are stopped after the test."""
    started: list[Exporter] = []
    yield started
    for exporter in started:
        exporter.stop()


@pytest.fixture
def run_exporter(workdir: Path, exporters: list[Exporter]):  # type: ignore[no-untyped-def]
    def run(kind: str, config: dict[str, object], *, wait_ready: bool = True,
            extra_args: list[str] | None = None, env: dict[str, str] | None = None,
            scheme: str = "http", ssl_context: ssl.SSLContext | None = None,
            auth: tuple[str, str] | None = None) -> Exporter:
        exporter = Exporter(kind, config, workdir, extra_args or [], env or {}, scheme=scheme,
                            ssl_context=ssl_context, auth=auth)
        exporters.append(exporter)
        return exporter.start(wait_ready=wait_ready)

    return run
