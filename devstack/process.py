"""The one way the dev stack runs a program: start it with its output in a log file, wait
until it is ready, name it and show its log tail when it is not, stop it (and anything it
forked) in order.

Every child gets a session of its own: the terminal's Ctrl-C reaches only us, so we stop the
children in order, and the session's process group lets a stop kill helpers the child
forked, so none outlives the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

STOP_TIMEOUT = 10.0
TAIL_LINES = 15


class ProcessError(RuntimeError):
    """A dev-stack process did not come up: the message names it, says why, where its log
    is and shows the log's last lines."""


def read_log(path: Path) -> str:
    """A log file's text, or "" before it was created."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def http_ok(url: str, headers: Mapping[str, str] | None = None,
            context: ssl.SSLContext | None = None, timeout: float = 2) -> bool:
    """Whether `url` answers 2xx (any error or non-2xx: not yet)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections there (no request sent: no scrape caused)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Process:
    """A long-running child: its argv, its log file (stdout and stderr together) and, once
    started, its Popen."""

    name: str
    argv: Sequence[str]
    log_path: Path
    # Added to our own environment, or with inherit_env=False the whole environment.
    env: Mapping[str, str] = field(default_factory=dict)
    inherit_env: bool = True
    cwd: Path | None = None
    # Keep the log of an earlier run of the same process (a restart) instead of truncating.
    append_log: bool = False
    proc: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None

    def start(self) -> Process:
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log_file = self.log_path.open("ab" if self.append_log else "wb")
        self.proc = subprocess.Popen(
            list(self.argv), stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=self.cwd,
            env={**os.environ, **self.env} if self.inherit_env else dict(self.env))
        return self

    # -- state -----------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ProcessError(f"{self.name} was never started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log(self) -> str:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.flush()
        return read_log(self.log_path)

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        return tail(self.log(), lines)

    def failure(self, why: str) -> ProcessError:
        """An error naming this process, why, its log file and the log's last lines."""
        return ProcessError(f"{self.name} {why} (log {self.log_path}):\n{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise at once when the process has exited (rather than waiting out a timeout)."""
        if self.proc is None:
            raise ProcessError(f"{self.name} was never started")
        if self.proc.poll() is not None:
            raise self.failure(f"exited with status {self.proc.returncode}")

    # -- readiness -------------------------------------------------------------------------
    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = 60,
                   interval: float = 0.1) -> Process:
        """Poll `check` until true; a dead process or the timeout raises ProcessError."""
        deadline = time.monotonic() + timeout
        while not self._ready(what, check, deadline, timeout):
            time.sleep(interval)
        return self

    async def wait_until_async(self, what: str, check: Callable[[], bool],
                               timeout: float = 60, interval: float = 0.1) -> Process:
        """wait_until for an event loop that must keep running meanwhile (`check` must be
        quick: it runs on the loop)."""
        deadline = time.monotonic() + timeout
        while not self._ready(what, check, deadline, timeout):
            await asyncio.sleep(interval)
        return self

    def _ready(self, what: str, check: Callable[[], bool], deadline: float,
               timeout: float) -> bool:
        """One poll of the wait loops: alive and ready, alive and not yet, or raise."""
        self.check_alive()
        if check():
            return True
        if time.monotonic() >= deadline:
            raise self.failure(f"not ready within {timeout:g}s: {what}")
        return False

    def wait_http(self, url: str, timeout: float = 60, headers: Mapping[str, str] | None = None,
                  context: ssl.SSLContext | None = None) -> Process:
        """Until `url` answers 2xx (e.g. Prometheus-style /-/ready)."""
        return self.wait_until(f"{url} answers 2xx",
                               lambda: http_ok(url, headers, context), timeout)

    def wait_port(self, port: int, timeout: float = 60) -> Process:
        return self.wait_until(f"127.0.0.1:{port} accepts connections",
                               lambda: port_open(port), timeout)

    # -- stopping --------------------------------------------------------------------------
    def terminate(self) -> None:
        """SIGTERM, without waiting (stop_all signals every process before waiting)."""
        if self.running:
            assert self.proc is not None
            self.proc.terminate()

    def finish(self, deadline: float) -> None:
        """Wait for the terminated process until `deadline` (time.monotonic()), then SIGKILL
        it; either way kill whatever it forked and left behind, and reap it."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{self.name} did not stop in time after SIGTERM: killed "
                      f"(log {self.log_path})", file=sys.stderr, flush=True)
                self._kill_group()
                self.proc.wait()
            # The group outlives its leader while a forked helper still runs.
            self._kill_group()
        self._close_log()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, SIGKILL after `timeout`; always reaped. Harmless when not running."""
        self.terminate()
        self.finish(time.monotonic() + timeout)

    def kill(self) -> None:
        """SIGKILL the process and its group at once (a crash, an OOM kill); reaped."""
        if self.proc is not None:
            self._kill_group()
            self.proc.wait()
        self._close_log()

    def _kill_group(self) -> None:
        assert self.proc is not None
        # Its own session: the group id is its pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def stop_all(processes: Sequence[Process], timeout: float = STOP_TIMEOUT) -> None:
    """Stop in reverse start order, each gone before the next is signalled (Prometheus
    stops before the exporters it scrapes, the exporters before their servers); one
    timeout is shared by all, so slow ones do not add up: once it has passed, whatever
    still runs is killed at once."""
    deadline = time.monotonic() + timeout
    for process in reversed(processes):
        process.terminate()
        process.finish(deadline)
