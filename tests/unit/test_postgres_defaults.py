"""The PostgreSQL collectors' default intervals are the ones documented, ordered by the
documented measured cost (issue 16 target 4). No timing here: the costs are bench/pg_scale.py's
measurements, written down in docs/exporters/postgres.md."""

from __future__ import annotations

import re
from pathlib import Path

from saasmon.postgres.collectors import ALL
from saasmon.postgres.config import COLLECTORS, PostgresConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "exporters" / "postgres.md"
DSN = "postgresql://monitor@db.internal:5432/app"


def documented() -> list[tuple[str, float]]:
    """(collector, default interval s) from the doc's cost table, in the doc's order."""
    text = DOC.read_text().split("## Collector intervals and cost", 1)[1]
    rows = []
    for line in text.splitlines()[1:]:
        if line.startswith("## "):
            break
        found = re.match(r"\| `(\w+)` \| (\d+(?:\.\d+)?) s \|", line)
        if found:
            rows.append((found.group(1), float(found.group(2))))
    return rows


def test_every_collector_is_documented_with_its_default() -> None:
    defaults = PostgresConfig(dsn=DSN).collector_defaults()
    rows = documented()
    assert sorted(name for name, _ in rows) == sorted(COLLECTORS)
    assert {cls.name for cls in ALL} == set(COLLECTORS)
    for name, interval in rows:
        assert defaults[name].interval == interval, name


def test_costlier_collectors_never_run_more_often() -> None:
    """The table lists collectors cheapest first (measured cost at the largest size): the
    default interval never shrinks down the table."""
    intervals = [interval for _, interval in documented()]
    assert intervals == sorted(intervals)
    # Connection counts (activity) run on every interval; the index scan least often.
    assert intervals[0] == PostgresConfig(dsn=DSN).interval_seconds
    assert documented()[-1][0] == "indexes"


def test_steps_follow_interval_seconds_and_zero_stays_zero() -> None:
    base = PostgresConfig(dsn=DSN).collector_defaults()
    doubled = PostgresConfig(dsn=DSN, interval_seconds=30).collector_defaults()
    for name in COLLECTORS:
        assert doubled[name].interval == 2 * base[name].interval
    on_scrape = PostgresConfig(dsn=DSN, interval_seconds=0).collector_defaults()
    assert {s.interval for s in on_scrape.values()} == {0.0}
