"""Every metric our exporters export, read from a live run against private servers.

The dead-alert test compares the rules with this, so a renamed metric fails the rules'
tests instead of silently muting an alert. Exporters are started as real processes and
scraped after their first round.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporters.devservers import PostgresServer, RedisServer
from refapp.schema import schema_sql
from tests.conftest import Exporter


def sample_types(text: str) -> dict[str, str]:
    """Sample name (with _total/_bucket/... suffixes) -> the family's type."""
    out: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = family.type
        if family.type == "counter":
            out[family.name + "_total"] = "counter"
        if family.type in ("histogram", "summary"):
            for suffix in ("_bucket", "_sum", "_count"):
                out[family.name + suffix] = family.type
        for sample in family.samples:
            out.setdefault(sample.name, family.type)
    return out


@pytest.fixture(scope="module")
def live_metrics() -> Iterator[dict[str, str]]:
    base = Path(tempfile.mkdtemp(prefix="saasmon-live-"))
    base.chmod(0o755)
    pg = PostgresServer(base / "pg", max_connections=30)
    pg.start()
    redis = RedisServer(base / "redis")
    redis.start()
    started: list[Exporter] = []
    try:
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pg.psql(schema_sql())
        # One finished run per default job so every per-job series exists.
        pg.psql("INSERT INTO cron_job_logs (job_name, started_at, completed_at, status) "
                "SELECT name, now() - interval '2 minutes', now() - interval '1 minute', 'success' "
                "FROM unnest(ARRAY['process-opportunity-offers', 'process-promotion-deliveries', "
                "'send-review-requests', 'check-system-health', 'generate-scheduled-reports']) AS name")
        configs: list[tuple[str, dict[str, object]]] = [
            ("postgres", {"dsn": pg.dsn, "interval_seconds": 1}),
            ("redis", {"targets": [{"name": "main", "url": redis.url}], "interval_seconds": 1,
                       "key_patterns": [{"pattern": "library:item:*"}]}),
            ("cron", {"dsn": pg.dsn, "interval_seconds": 1}),
        ]
        types: dict[str, str] = {}
        for kind, config in configs:
            exporter = Exporter(kind, config, base)
            started.append(exporter)
            exporter.start()
            types.update(sample_types(exporter.scrape_text()))
        yield types
    finally:
        for exporter in started:
            exporter.stop()
        redis.kill()
        pg.stop("immediate")
