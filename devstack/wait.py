"""Polling a condition until it holds, for checks that no one process owns (a cluster that
settles, a target that comes up). A wait on one process is `Process.wait_until`, which also
fails at once when that process dies.

Both raise AssertionError naming what was waited for: the drills report it as the drill's
failure, and a test that waits fails with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60,
             interval: float = 0.1) -> T:
    """Poll until check() returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.25) -> Any:
    """Like wait_for, for checks that may raise while the system settles."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except (AssertionError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g}s" + (f" (last: {last})" if last else ""))
