"""The header every bench report starts with: title, when and from which commit, how to
reproduce it, and how busy the (shared) machine was."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def git_rev() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def uptime() -> str:
    """`uptime`'s line (load of the last 1, 5 and 15 minutes): other sessions share the
    machine, and a number measured under load says so."""
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return f"load average: {loadavg()}"
    return " ".join(out.stdout.split())


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def header(title: str, script: str, commands: list[str], *, generated: str | None = None,
           note: str = "") -> list[str]:
    """Title, 'Generated ... by `script` (saasmon git ...<note>)', the commands to reproduce
    it in a sh block."""
    when = generated or now()
    return [
        f"# {title}", "",
        f"Generated {when} by `{script}` (saasmon git {git_rev()}{note}). Reproduce with:", "",
        "```sh", *commands, "```", "",
    ]


def machine_line() -> str:
    return (f"nproc `{os.cpu_count()}`, kernel `{platform.release()}`, python "
            f"`{platform.python_version()}`")
