"""`make demo` end to end: real servers, the app, every exporter, a real Prometheus.

The demo runs as a subprocess for a fixed --duration; while it runs, the test reads the
URLs it prints and asks Prometheus (not the exporters) whether both jobs are up, so the
whole path exporter -> scrape -> TSDB -> query is exercised. Afterwards nothing it started
may survive: no process mentions its run directory and no port it printed still listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DURATION = 60  # seconds of steady state: covers Prometheus' first 15 s scrape of each job
JOBS = {"saasmon-postgres", "saasmon-redis", "saasmon-cron", "saasmon-integrations",
        "saasmon-business", "saasmon-webvitals", "saasmon-app", "saasmon-app-probe",
        "saasmon-integration-probe", "prometheus"}
STARTUP_TIMEOUT = 60.0
URL_LINE = re.compile(r"^\s+(?P<label>[a-z_ ]+?)\s{2,}(?P<url>\S+://\S+)$")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: that lives under a 0700 directory the `postgres` user (which
    # devservers drops to when run as root) cannot traverse.
    path = Path(tempfile.mkdtemp(prefix="saasmon-demo-"))
    path.chmod(0o755)
    yield path / "run"
    shutil.rmtree(path, ignore_errors=True)


def read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def wait_for_urls(lines: queue.Queue[str | None], output: list[str]) -> dict[str, str]:
    """Collect `label  url` lines up to the "Press Ctrl-C" line that ends the block."""
    urls: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        output.append(line)
        match = URL_LINE.match(line)
        if match:
            urls[match["label"]] = match["url"]
        if line.startswith("Press Ctrl-C"):
            return urls
    raise AssertionError("demo printed no URL block:\n" + "\n".join(output))


def drain(lines: queue.Queue[str | None], output: list[str]) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            output.append(line)


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for_query(prom: str, expr: str, check: Any, timeout: float) -> list[dict[str, Any]]:
    # Bounded poll: the first scrape of a job happens at a random offset within its 15 s
    # interval, so the sample can legitimately take that long to appear.
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # URLError included: retried until the deadline
            result = query(prom, expr)
            if check(result):
                return result
        time.sleep(1)
    raise AssertionError(f"{expr}: condition not met within {timeout:.0f}s, last result {result}")


def ports_of(urls: dict[str, str]) -> list[int]:
    ports = []
    for url in urls.values():
        parsed = urllib.parse.urlsplit(url)
        if parsed.port is not None:
            ports.append(parsed.port)
    return sorted(set(ports))


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name `text` (the run dir is in all of ours)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # Zombies hold no port or data and are reaped by whoever adopted them.
        if text in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C's path (SIGTERM), and SIGKILL if that does not end it: never hang the test."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_demo_runs_and_cleans_up(run_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--duration", str(DURATION),
         "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    reader = threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    urls: dict[str, str] = {}
    try:
        urls = wait_for_urls(lines, output)
        for label in ("postgres exporter", "redis exporter", "cron exporter", "integrations exporter",
                      "business exporter", "webvitals exporter", "reference app", "prometheus",
                      "postgres", "redis"):
            assert label in urls, f"{label!r} missing from the printed URLs: {urls}"
        prom = urls["prometheus"].rstrip("/")
        # Every check below must finish while the demo still runs.
        ends = time.monotonic() + DURATION - 3

        def left() -> float:
            return max(1.0, ends - time.monotonic())

        # Every job scraped successfully, seen through Prometheus itself.
        up = wait_for_query(
            prom, "up",
            lambda result: {r["metric"].get("job") for r in result if r["value"][1] == "1"}
            >= JOBS,
            timeout=left(),
        )
        assert all(r["value"][1] == "1" for r in up), up
        for metric in ("pg_up", "redis_up", "cron_up", "business_up"):
            result = wait_for_query(prom, metric, lambda r: bool(r), timeout=5)
            assert all(r["value"][1] == "1" for r in result), (metric, result)
        # Live data from the app-side pieces: generated KPIs, app traffic, the app's health.
        for expr in ("business_daily_active_users > 0", "http_requests_total > 0",
                     'probe_success{job="saasmon-app-probe"} == 1',
                     'cron_jobs_registered == 5', "webvitals_beacons_accepted_total > 0"):
            wait_for_query(prom, expr, lambda r: bool(r), timeout=left())
        # The generated rules are loaded: Watchdog fires.
        wait_for_query(prom, 'ALERTS{alertname="Watchdog",alertstate="firing"}',
                       lambda r: bool(r), timeout=left())

        # The rest of the duration, then shutdown: every child gets SIGTERM at once and
        # 10 s, then the servers stop.
        status = proc.wait(timeout=left() + 60)
    except Exception as exc:
        # Whatever failed, the demo's own output (complete once it stopped) explains it.
        stop(proc)
        reader.join(timeout=5)
        drain(lines, output)
        raise AssertionError(f"{exc}\n--- demo output ---\n" + "\n".join(output)) from exc
    finally:
        stop(proc)
        reader.join(timeout=5)
        drain(lines, output)
    log = "\n".join(output)
    assert status == 0, log
    assert "demo stopped" in log, log

    leftovers = processes_mentioning(str(run_dir))
    assert not leftovers, f"processes left behind:\n{leftovers}"
    still_open = [port for port in ports_of(urls) if listening(port)]
    assert not still_open, f"ports still listening after the demo: {still_open}\n{log}"
