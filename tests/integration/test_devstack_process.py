"""devstack/process.py, the one process wrapper: ordered stop, readiness errors that name
the process and show its log, and nothing left running afterwards (forked helpers included)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from devstack.process import Process, ProcessError, stop_all
from devstack.servers import free_port


def python(name: str, code: str, workdir: Path) -> Process:
    return Process(name, [sys.executable, "-u", "-c", code], workdir / f"{name}.log")


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaps (no init reaping orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def wait_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} not written within {timeout}s"
        time.sleep(0.05)
    return path.read_text()


# On SIGTERM: take a while (a real shutdown does), note the name in `order` as the last
# thing before exiting.
ON_TERM = """
import signal, sys, time
def term(*_):
    time.sleep({linger})
    with open({order!r}, "a") as f:
        f.write({name!r} + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
open({ready!r}, "w").write("up")
while True:
    time.sleep(1)
"""


def test_stop_all_stops_newest_first_each_gone_before_the_next(tmp_path: Path) -> None:
    order = tmp_path / "order"
    processes = []
    # The newest takes longest: signalled all at once they would finish oldest first.
    for name, linger in (("servers", 0.0), ("exporters", 0.5), ("prometheus", 1.0)):
        ready = tmp_path / f"{name}.ready"
        processes.append(python(name, ON_TERM.format(
            order=str(order), name=name, linger=linger, ready=str(ready)), tmp_path).start())
        wait_file(ready)
    stop_all(processes, timeout=60)
    assert order.read_text().split() == ["prometheus", "exporters", "servers"]
    assert all(p.returncode == 0 for p in processes)


def test_a_readiness_timeout_names_the_process_and_shows_its_log_tail(tmp_path: Path) -> None:
    process = python("quiet-server", "import time\nprint('listening nowhere, marker 41')\n"
                     "time.sleep(600)", tmp_path).start()
    try:
        port = free_port()
        with pytest.raises(ProcessError) as caught:
            process.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=2)
        message = str(caught.value)
        assert message.startswith("quiet-server not ready within 2s"), message
        assert f"127.0.0.1:{port}/-/ready" in message
        assert str(process.log_path) in message
        assert "listening nowhere, marker 41" in message
    finally:
        process.stop()
    assert gone(process.pid)


def test_a_process_that_dies_while_awaited_fails_at_once_with_its_status(
        tmp_path: Path) -> None:
    process = python("crasher", "import sys\nprint('bad config: key x')\nsys.exit(3)",
                     tmp_path).start()
    # Not the 600 s timeout's error: the death is noticed on the next poll, with its status.
    with pytest.raises(ProcessError, match=r"crasher exited with status 3") as caught:
        process.wait_port(free_port(), timeout=600)
    assert "bad config: key x" in str(caught.value)


FORKS = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open({pidfile!r}, "w").write(str(helper.pid))
time.sleep(600)
"""


def test_stop_leaves_no_forked_helper_behind(tmp_path: Path) -> None:
    pidfile = tmp_path / "helper.pid"
    process = python("forker", FORKS.format(pidfile=str(pidfile)), tmp_path).start()
    helper = int(wait_file(pidfile))
    assert not gone(helper)
    process.stop(timeout=30)
    deadline = time.monotonic() + 30
    while not gone(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(helper), f"helper {helper} of {process.name} outlived it"
    assert gone(process.pid)


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = python("stubborn", "import signal, time\n"
                     "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                     f"open({str(ready)!r}, 'w').write('up')\ntime.sleep(600)",
                     tmp_path).start()
    wait_file(ready)
    process.stop(timeout=1)
    assert process.returncode == -9
    assert gone(process.pid)


def test_starting_twice_is_refused_and_a_restart_after_stop_works(tmp_path: Path) -> None:
    process = python("twice", "import time\ntime.sleep(600)", tmp_path).start()
    try:
        with pytest.raises(ProcessError, match="twice is already running"):
            process.start()
        process.stop()
        first = process.pid
        process.start()
        assert process.running and process.pid != first
    finally:
        process.stop()
