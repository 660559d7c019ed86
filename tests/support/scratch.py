"""One scratch directory per test session, where every temporary directory goes.

`start` makes `saasmon-session-*` in the system temp directory and points `tempfile` (and,
through TMPDIR, every child process: servers, promtool, the demo) at it. What a test or a
server leaves there is left behind by this session alone: other sessions or CI runs on the
same machine write elsewhere, so the end-of-session check cannot blame them. pytest's own
`tmp_path` directories stay where pytest keeps them (PYTEST_DEBUG_TEMPROOT, the real temp
directory) under its retention policy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ENV = "SAASMON_TEST_SCRATCH"
# Set, the drills keep their run directory for a look afterwards: so does the session.
KEEP = "DRILL_KEEP"
_SET = (ENV, "TMPDIR", "PYTEST_DEBUG_TEMPROOT")
_before: dict[str, str | None] = {}


def start(root: str | None = None) -> Path:
    """The session's scratch directory, made and put in force (in `root`, by default the
    temp directory in force)."""
    root = root or tempfile.gettempdir()
    _before.update({name: os.environ.get(name) for name in _SET})
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", root)
    path = Path(tempfile.mkdtemp(prefix="saasmon-session-", dir=root))
    path.chmod(0o755)  # initdb runs as the postgres user under root and must pass through
    os.environ[ENV] = os.environ["TMPDIR"] = tempfile.tempdir = str(path)
    return path


def current() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def keeping() -> bool:
    return bool(os.environ.get(KEEP))


def leftovers(path: Path) -> list[str]:
    """What is in the scratch directory: each entry is a temporary directory (or file) that
    its creator did not remove."""
    return sorted(entry.name for entry in path.iterdir()) if path.is_dir() else []


def clear(path: Path) -> None:
    """Remove everything in it (files of the postgres user included)."""
    for entry in path.iterdir() if path.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            # rm, not shutil.rmtree: a server still shutting down may remove files under it.
            subprocess.run(["rm", "-rf", str(entry)], check=False)
        else:
            entry.unlink(missing_ok=True)


def finish(path: Path) -> None:
    """Remove the scratch directory and put the environment back as `start` found it."""
    clear(path)
    shutil.rmtree(path, ignore_errors=True)
    tempfile.tempdir = None
    for name, value in _before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
