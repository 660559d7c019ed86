"""A `saasmon <kind>` exporter run as a real process, and the CLI run once."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.metrics import Samples, parse
from devstack.process import Process, ProcessError
from devstack.servers import free_port

SAASMON = [sys.executable, "-m", "saasmon"]


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
    process: Process | None = None
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

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return None if self.process is None else self.process.proc

    def write_config(self, config: dict[str, object] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        self.config_path.write_text(text)

    def start(self, wait_ready: bool = True) -> Exporter:
        self.write_config(self.config)
        argv = [*SAASMON, self.kind, "--config.file", str(self.config_path),
                "--web.listen-address", f"127.0.0.1:{self.port}", *self.extra_args]
        self.process = Process(f"saasmon {self.kind}", argv, self.log_path, self.env).start()
        self.wait_for("/-/healthy" if not wait_ready else "/-/ready")
        return self

    def auth_headers(self) -> dict[str, str]:
        if self.auth is None:
            return {}
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def wait_for(self, path: str, timeout: float = 90) -> None:
        """Until `path` answers 200; the exporter's death or the timeout fails the test
        with its log tail."""
        assert self.process is not None, f"saasmon {self.kind} was never started"
        try:
            self.process.wait_http(self.url + path, timeout, self.auth_headers(),
                                   self.ssl_context)
        except ProcessError as exc:
            raise AssertionError(str(exc)) from None

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
        return self.process.log() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SAASMON, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
