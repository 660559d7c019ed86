"""Stopping the server processes tests start, the same way everywhere."""

from __future__ import annotations

import subprocess
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
