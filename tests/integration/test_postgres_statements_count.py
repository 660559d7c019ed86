"""What one collection round sends to PostgreSQL, counted by pg_stat_statements (issue 16).

Counts, not times: a round of the PostgreSQL exporter is its collectors' own statements,
no BEGIN/COMMIT around them, no pool reset batch on release, and pg_stat_statements read
once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from devstack.exporter import Exporter
from devstack.metrics import value
from devstack.servers import PostgresServer

SNAPSHOT = ("SELECT queryid, calls, regexp_replace(query, '\\s+', ' ', 'g') "
            "FROM pg_stat_statements /* saasmon test snapshot */")
# One statement per collector, on a primary as on a standby: activity, database,
# statements, tables, indexes, replication, checkpoints.
STATEMENTS_PER_ROUND = 7
ROUNDS = 5


def calls(postgres: PostgresServer) -> Counter[tuple[str, str]]:
    """Calls per (queryid, text); the snapshot's own statement is left out."""
    out: Counter[tuple[str, str]] = Counter()
    for line in postgres.psql(SNAPSHOT).splitlines():
        queryid, count, text = line.split("|", 2)
        if "saasmon test snapshot" not in text:
            out[(queryid, " ".join(text.split()))] += int(count)
    return out


def on_scrape_config(postgres: PostgresServer, **extra: Any) -> dict[str, Any]:
    # interval 0: every scrape is one collection round, so rounds are counted by scrapes.
    return {"dsn": postgres.dsn, "interval_seconds": 0, "timeout_seconds": 5, **extra}


def rounds_delta(postgres: PostgresServer, exporter: Exporter) -> Counter[tuple[str, str]]:
    for _ in range(2):  # warm: the pool's connections open, pg_extension was checked
        assert value(exporter.scrape(), "pg_stat_statements_available") == 1
    before = calls(postgres)
    for _ in range(ROUNDS):
        exporter.scrape()
    after = calls(postgres)
    after.subtract(before)
    return +after  # only what grew


def test_a_round_is_its_queries_only(postgres: PostgresServer, run_exporter: Any) -> None:
    exporter = run_exporter("postgres", on_scrape_config(postgres))
    delta = rounds_delta(postgres, exporter)
    texts = [text for (_, text) in delta]
    assert sum(delta.values()) == STATEMENTS_PER_ROUND * ROUNDS, delta
    # asyncpg's default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is not sent
    # on release, nor transaction control around a collector's statements.
    for reset in ("PG_ADVISORY_UNLOCK_ALL", "CLOSE ALL", "UNLISTEN", "RESET ALL"):
        assert not [t for t in texts if reset in t.upper()], (reset, texts)
    control = ("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")
    assert not [t for t in texts if t.split()[0].upper() in control], texts


def test_pg_stat_statements_is_read_once_per_round(
        postgres: PostgresServer, run_exporter: Any) -> None:
    exporter = run_exporter("postgres", on_scrape_config(postgres))
    delta = rounds_delta(postgres, exporter)
    reads = {text: n for (_, text), n in delta.items() if "PG_STAT_STATEMENTS" in text.upper()}
    assert sum(reads.values()) == ROUNDS, reads
    # The one read still gives every family it used to give three queries for.
    samples = exporter.scrape()
    assert value(samples, "pg_stat_statements_tracked") > 0
    assert value(samples, "pg_stat_statements_all_calls_total") > 0
    assert sorted(dict(labels)["threshold_seconds"] for (n, labels) in samples
                  if n == "pg_stat_statements_slow") == ["0.1", "1", "30", "5"]


def test_dropped_extension_is_seen_again_when_recreated(
        postgres: PostgresServer, run_exporter: Any) -> None:
    """pg_extension is asked only while the extension was missing: a drop between rounds
    turns the families off, and creating it again turns them back on."""
    exporter = run_exporter("postgres", on_scrape_config(postgres))
    assert value(exporter.scrape(), "pg_stat_statements_available") == 1
    postgres.psql("DROP EXTENSION pg_stat_statements")
    assert value(exporter.scrape(), "pg_stat_statements_available") == 0
    assert value(exporter.scrape(), "pg_stat_statements_available") == 0
    postgres.psql("CREATE EXTENSION pg_stat_statements")
    assert value(exporter.scrape(), "pg_stat_statements_available") == 1
