"""A real Prometheus process on a free loopback port (Debian's prometheus), its config
checked by promtool before it starts, and a small client for its HTTP API."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.process import Process
from devstack.servers import free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def prometheus_argv(config: Path, storage: Path, port: int, *flags: str) -> list[str]:
    return [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}", *flags]


def check_config(path: Path) -> None:
    """`promtool check config` (rule files included); fails with promtool's words."""
    check = subprocess.run([PROMTOOL, "check", "config", str(path)],
                           capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        raise ValueError(f"promtool rejects {path}:\n{check.stdout}{check.stderr}")


@dataclass
class Prometheus:
    """Prometheus with `config` (its prometheus.yml as a dict) and its storage in `workdir`."""

    workdir: Path
    config: dict[str, Any]
    flags: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    def start(self, timeout: float = 60) -> Prometheus:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        check_config(self.config_path)
        self.process = Process(f"prometheus :{self.port}", prometheus_argv(
            self.config_path, self.workdir / "tsdb", self.port, "--log.level=warn",
            *self.flags), self.log_path).start()
        self.process.wait_http(self.url + "/-/ready", timeout)
        return self

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: [{metric: {...}, value: [t, "v"]}, ...]."""
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(15)
