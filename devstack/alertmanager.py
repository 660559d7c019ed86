"""A real Alertmanager process on a free loopback port (Debian's prometheus-alertmanager)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from devstack.process import Process
from devstack.servers import free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
# One instance: no gossip port, no settle wait.
SINGLE = ("--cluster.listen-address=",)


def alertmanager_argv(config: Path, storage: Path, port: int,
                      cluster_flags: Sequence[str] = SINGLE, *extra: str) -> list[str]:
    return [ALERTMANAGER, f"--config.file={config}", f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url=http://127.0.0.1:{port}", *cluster_flags, *extra]


@dataclass
class Alertmanager:
    """Alertmanager with `config`, its storage and log under `workdir`."""

    config: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"alertmanager-{self.port}.log"

    @property
    def proc(self) -> Popen[bytes] | None:
        return None if self.process is None else self.process.proc

    def cluster_flags(self) -> list[str]:
        return list(SINGLE)

    def start(self, timeout: float = 30) -> Alertmanager:
        storage = self.workdir / f"am-data-{self.port}"
        storage.mkdir(parents=True, exist_ok=True)
        argv = alertmanager_argv(self.config, storage, self.port, self.cluster_flags(),
                                 "--log.level=debug")
        self.process = Process(f"alertmanager :{self.port}", argv, self.log_path,
                               self.env).start()
        self.process.wait_http(self.url + "/-/ready", timeout)
        return self

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Alerts (active, silenced and inhibited) whose labels include `labels`."""
        query = [("filter", f'{k}="{v}"') for k, v in labels.items()]
        query += [("active", "true"), ("silenced", "true"), ("inhibited", "true")]
        url = self.url + "/api/v2/alerts?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=10) as response:
            found: list[dict[str, Any]] = json.loads(response.read())
        return found

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """kill -9: no goodbye to a cluster, nothing flushed."""
        if self.process is not None:
            self.process.kill()
