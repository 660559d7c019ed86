"""Fixtures: private PostgreSQL/Redis servers and exporters run as real processes."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from prometheus_client.core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from exporters.devservers import PostgresServer, RedisServer, free_port
from tests.processes import read_log, stop_process

SAASMON = [sys.executable, "-m", "exporters"]


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


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def parse_openmetrics(text: str) -> list[Metric]:
    """Families of an OpenMetrics document, by prometheus_client's strict parser (it refuses
    a missing or misplaced `# EOF`, counters without `_total`, ...)."""
    parsed: list[Metric] = list(
        openmetrics_parser.text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    return parsed


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample with this name whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items()
             if n == name and all(dict(ls).get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


@dataclass
class Exporter:
    """A `saasmon <kind>` process on a free port, its log captured to a file."""

    kind: str
    config: dict[str, object]
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    scheme: str = "http"
    proc: subprocess.Popen[bytes] | None = None
    # Optional: trust for an https exporter, and basic-auth credentials sent by default.
    ssl_context: ssl.SSLContext | None = None
    auth: tuple[str, str] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.kind}-{self.port}.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def write_config(self, config: dict[str, object] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        self.config_path.write_text(text)

    def start(self, wait_ready: bool = True) -> Exporter:
        self.write_config(self.config)
        argv = [*SAASMON, self.kind, "--config.file", str(self.config_path),
                "--web.listen-address", f"127.0.0.1:{self.port}", *self.extra_args]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=self.log_path.open("wb"),
            env={**os.environ, **self.env})
        self.wait_for("/-/healthy" if not wait_ready else "/-/ready")
        return self

    def auth_headers(self) -> dict[str, str]:
        if self.auth is None:
            return {}
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def wait_for(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            request = urllib.request.Request(self.url + path, headers=self.auth_headers())
            try:
                with urllib.request.urlopen(request, timeout=2,
                                            context=self.ssl_context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} not 200 within {timeout}s: {self.log()}")

    def get(self, path: str = "/metrics", headers: dict[str, str] | None = None,
            timeout: float = 15) -> tuple[int, str, float]:
        """(status, body, seconds taken)."""
        request = urllib.request.Request(self.url + path,
                                         headers={**self.auth_headers(), **(headers or {})})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout,
                                        context=self.ssl_context) as response:
                return response.status, response.read().decode(), time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), time.monotonic() - started

    def scrape(self, headers: dict[str, str] | None = None) -> Samples:
        status, body, _ = self.get(headers=headers)
        assert status == 200, body
        return parse(body)

    def scrape_text(self) -> str:
        status, body, _ = self.get()
        assert status == 200, body
        return body

    def wait_until(self, check: str, predicate: object, timeout: float = 30) -> Samples:
        """Scrape until predicate(samples) is true; `check` names it in the failure."""
        deadline = time.monotonic() + timeout
        samples: Samples = {}
        while time.monotonic() < deadline:
            samples = self.scrape()
            try:
                if predicate(samples):  # type: ignore[operator]
                    return samples
            except AssertionError:
                pass
            time.sleep(0.2)
        shown = {k: v for k, v in samples.items() if not k[0].startswith(("process_", "pg_stat_s"))}
        raise AssertionError(f"{check} not reached within {timeout}s; last scrape: {shown}")

    def log(self) -> str:
        return read_log(self.log_path)

    def stop(self) -> None:
        stop_process(self.proc)


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


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SAASMON, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
