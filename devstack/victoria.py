"""VictoriaMetrics programs as tests run them (Debian's `victoria-metrics` package): the
single-node server, vmagent (scraping, optionally one shard of several) and vmalert, each a
real process on a free loopback port, run by devstack's one process wrapper
(devstack/process.py); and vmalert's own rule-file check.

Every one of them answers Prometheus' `/-/ready` and `/api/v1/...` JSON shape.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from devstack.metrics import prometheus_api
from devstack.process import Process
from devstack.servers import free_port

VICTORIA_METRICS = "/usr/bin/victoria-metrics"
VMAGENT = "/usr/bin/vmagent"
VMALERT = "/usr/bin/vmalert"


@dataclass
class VmProgram:
    """One VictoriaMetrics program; subclasses name the binary and add their flags."""

    workdir: Path
    port: int = field(default_factory=free_port, kw_only=True)
    process: Process | None = field(default=None, init=False)
    binary: ClassVar[str]

    @property
    def name(self) -> str:
        return Path(self.binary).name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}-{self.port}.log"

    def flags(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> VmProgram:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}", "-loggerLevel=WARN",
                *self.flags()]
        self.process = Process(f"{self.name} :{self.port}", argv, self.log_path).start()
        self.process.wait_http(self.url + "/-/ready", timeout=60)
        return self

    def api(self, path: str, **params: str) -> Any:
        return prometheus_api(self.url, path, **params)

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(15)


@dataclass
class VictoriaMetrics(VmProgram):
    """The single-node server: remote-write receiver and Prometheus query API.

    `latency_offset` is how long a fresh sample stays out of query results (30 s by
    default: a query engine's view of the present lags by that much)."""

    latency_offset: str = "30s"
    binary: ClassVar[str] = VICTORIA_METRICS

    def flags(self) -> list[str]:
        return [f"-storageDataPath={self.workdir / f'data-{self.port}'}",
                f"-search.latencyOffset={self.latency_offset}"]

    @property
    def write_url(self) -> str:
        return self.url + "/api/v1/write"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: [{metric: {...}, value: [t, "v"]}, ...]."""
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result


@dataclass
class VmAgent(VmProgram):
    """A scraper reading a Prometheus `scrape_configs` file and remote-writing all it
    scrapes; with `members` > 1 it is shard `member` of that many and scrapes only the
    targets the shared hash gives it."""

    config: Path = field(kw_only=True)
    remote_write: str = field(kw_only=True)
    member: int = 0
    members: int = 1
    binary: ClassVar[str] = VMAGENT

    def flags(self) -> list[str]:
        return [f"-promscrape.config={self.config}", f"-remoteWrite.url={self.remote_write}",
                f"-remoteWrite.tmpDataPath={self.workdir / f'queue-{self.port}'}",
                f"-promscrape.cluster.membersCount={self.members}",
                f"-promscrape.cluster.memberNum={self.member}"]

    def reload(self) -> None:
        """Read the scrape config again (SIGHUP), as after a change of targets."""
        assert self.process is not None and self.process.proc is not None
        self.process.proc.send_signal(signal.SIGHUP)

    def targets(self) -> list[dict[str, Any]]:
        """The targets this scraper scrapes (its /api/v1/targets active list)."""
        found: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return found


@dataclass
class VmAlert(VmProgram):
    """The rule engine: evaluates `rules` against `datasource`, writes recording-rule
    results and alert state (ALERTS) back to `write_to`, sends alerts to every notifier."""

    rules: Sequence[Path] = field(kw_only=True)
    datasource: str = field(kw_only=True)
    write_to: str = field(kw_only=True)
    notifiers: Sequence[str] = field(kw_only=True)
    extra: Sequence[str] = ()
    binary: ClassVar[str] = VMALERT

    def flags(self) -> list[str]:
        return [*(f"-rule={r}" for r in self.rules), f"-datasource.url={self.datasource}",
                f"-remoteWrite.url={self.write_to}", f"-external.url={self.url}",
                *(f"-notifier.url={n}" for n in self.notifiers), *self.extra]

    def alerts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return found


def vmalert_check(rule_files: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    """`vmalert -dryRun`: parses each file, every expression with the MetricsQL parser and
    every annotation and label template, then exits (non-zero, naming the rule, on error)."""
    return subprocess.run(
        [VMALERT, "-dryRun", "-loggerLevel=ERROR", *(f"-rule={p}" for p in rule_files)],
        capture_output=True, text=True, timeout=60, check=False)
