"""The generated (healthy) data pages no one at any hour of any weekday.

The data generator anchors its history at "now", and the exporters judge it against the
clock: whether a cron job's latest run failed or a daily KPI sits below its level may
depend on the hour the stack starts. Instead of retrying at different hours, these tests
move the clock: PostgreSQL, the generator and the exporters run under libfaketime at fixed
points of a week (whatever the real time), and the generated rules judge what the
exporters report with the real promtool.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.exporter import Exporter
from devstack.servers import PostgresServer
from refapp.datagen import CRON_JOBS, Generator, Knobs
from saasmon.cron.config import default_jobs
from tests.support.rule_scenarios import Scenario, alert_names, run, series

FAKETIME = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
WEEK = 7 * 86400
# Weekday (0 = Monday), hour and minute: every three hours, a different weekday each
# (Friday and Saturday are the generated users' weekend), minutes across the quarter-hours.
POINTS = [(0, 0, 5), (1, 3, 20), (2, 6, 35), (3, 9, 50), (4, 12, 5), (5, 15, 20),
          (6, 18, 35), (0, 21, 50)]
# The areas whose alerts read only what the generated rows make of the clock (gauges of the
# business and cron exporters); traffic, probes and counters come from live load instead.
AREAS = ("business", "ai", "support", "cron")
JOBS = {"cron": "saasmon-cron", "business": "saasmon-business"}
EVAL_AT = 120  # minutes: past every `for` of these areas (at most 1 h)


def offset_to(weekday: int, hour: int, minute: int, now: float) -> int:
    """Seconds from `now` back to the latest moment at this weekday, hour and minute (UTC)."""
    today = datetime.fromtimestamp(now, UTC)
    target = today.replace(hour=hour, minute=minute, second=0, microsecond=0)
    target -= timedelta(days=(today.weekday() - weekday) % 7)
    if target.timestamp() > now:
        target -= timedelta(days=7)
    return int(target.timestamp() - now)


def test_offset_lands_on_the_asked_weekday_and_time() -> None:
    now = datetime(2026, 12, 6, 23, 3, tzinfo=UTC).timestamp()  # a Sunday
    for weekday, hour, minute in POINTS:
        at = datetime.fromtimestamp(now + offset_to(weekday, hour, minute, now), UTC)
        assert (at.weekday(), at.hour, at.minute) == (weekday, hour, minute)
        assert -WEEK <= at.timestamp() - now <= 0


def test_no_job_ends_its_history_with_a_failure() -> None:
    """Every quarter-hour of a week: each job's latest finished run succeeded (a failed
    latest run fired CronJobFailed at start-up in 5 of 96 quarter-hours)."""
    start = datetime(2026, 11, 30, tzinfo=UTC).timestamp() + 7 * 60  # a Monday
    bad, failures = [], 0
    for quarter in range(7 * 96):
        now = start + quarter * 900
        generator = Generator(seed=1, days=3, now=now, knobs=Knobs(cron_failure_rate=0.05))
        generator.cron()
        latest: dict[str, str] = {}
        for row in generator.data["cron_job_logs"].rows:
            if row[4] != "running":
                latest[row[1]] = row[4]
                failures += row[4] == "failed"
        assert set(latest) == {name for name, _, _ in CRON_JOBS}
        bad += [f"{datetime.fromtimestamp(now, UTC):%a %H:%M} {job}"
                for job, status in latest.items() if status != "success"]
    assert not bad, f"latest run failed at {len(bad)} quarter-hours: {bad[:5]}"
    assert failures, "the knob no longer makes failures in the history"


@pytest.fixture(scope="module")
def faketime() -> Path:
    if not FAKETIME:
        pytest.fail("libfaketime is missing (apt-get install faketime; make deps installs it)")
    return FAKETIME[0]


@pytest.fixture
def clocked(workdir: Path, faketime: Path, request: pytest.FixtureRequest) -> Iterator[
        tuple[dict[str, str], PostgresServer]]:
    weekday, hour, minute = request.param
    offset = offset_to(weekday, hour, minute, time.time())
    env = {"LD_PRELOAD": str(faketime), "FAKETIME": f"{offset:+d}"}
    server = PostgresServer(workdir / "pg", max_connections=20, env=env)
    server.start()
    yield env, server
    server.stop("immediate")


def _gauges(text: str, job: str, now: float) -> list[dict[str, str]]:
    """Each gauge sample as a constant promtool series over the evaluation window; a Unix
    timestamp is moved onto promtool's clock (0 at the first sample) keeping its age at
    `now` (the exporters' clock)."""
    out = []
    for family in text_string_to_metric_families(text):
        if family.type not in ("gauge", "unknown"):
            continue
        for sample in family.samples:
            value = sample.value
            if sample.name.endswith("_timestamp_seconds") and value > 1e9:
                value = EVAL_AT * 60 - (now - value)
            labels = {**sample.labels, "job": job, "instance": "exporter:9"}
            out.append(series(sample.name, labels, f"{value!r}x{EVAL_AT}"))
    return out


@pytest.mark.parametrize("clocked", POINTS, indirect=True,
                         ids=[f"day{d}-{h:02d}:{m:02d}" for d, h, m in POINTS])
def test_healthy_data_pages_no_one(clocked: tuple[dict[str, str], PostgresServer],
                                   workdir: Path) -> None:
    env, server = clocked
    # The generator under the same clock, as `make demo` runs it (its "now" is the fake one).
    subprocess.run([sys.executable, "-m", "refapp.datagen", "--dsn", server.dsn],
                   check=True, capture_output=True, env={**os.environ, **env}, timeout=300)
    configs: dict[str, dict[str, object]] = {
        "cron": {"dsn": server.dsn, "interval_seconds": 5,
                 "jobs": [job.model_dump() for job in default_jobs()]},
        "business": {"dsn": server.dsn},
    }
    started = [Exporter(kind, config, workdir, env=env) for kind, config in configs.items()]
    try:
        for exporter in started:
            exporter.start()
        texts = {exporter.kind: exporter.scrape_text() for exporter in started}
    finally:
        for exporter in started:
            exporter.stop()
    now = time.time() + int(env["FAKETIME"])
    inputs = [s for kind, text in texts.items() for s in _gauges(text, JOBS[kind], now)]
    at = datetime.fromtimestamp(now, UTC)
    scenario = Scenario(f"generated data at {at:%a %H:%M} UTC", inputs)
    run([scenario.quiet(f"{EVAL_AT}m", alert_names(AREAS))])


def test_libfaketime_moves_the_exporters_clock(faketime: Path, workdir: Path) -> None:
    """The harness itself: a process under the library sees the shifted clock."""
    shifted = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={**os.environ, "LD_PRELOAD": str(faketime), "FAKETIME": "-86400"},
        capture_output=True, text=True, check=True)
    assert abs(float(shifted.stdout) - (time.time() - 86400)) < 60
