"""Watching and stopping the server processes tests start, the same way everywhere."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, SIGKILL if it has not exited within `timeout`; always reaped (no zombie)."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_log(path: Path) -> str:
    """A process' log file, or "" before it was created."""
    return path.read_text() if path.exists() else ""


def ready(proc: subprocess.Popen[bytes] | None, url: str, log_path: Path) -> bool:
    """Whether a Prometheus-style `/-/ready` answers 200; fails at once (with the log)
    when the process has died, instead of waiting out the caller's timeout."""
    assert proc is not None and proc.poll() is None, read_log(log_path)
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
