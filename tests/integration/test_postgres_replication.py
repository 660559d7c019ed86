"""Replication metrics on a real streaming standby made with pg_basebackup."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.exporter import Exporter
from devstack.metrics import Samples, value
from devstack.servers import PostgresServer
from tests.integration.test_postgres_statements_count import (
    ROUNDS,
    STATEMENTS_PER_ROUND,
    on_scrape_config,
    rounds_delta,
)

Run = Callable[..., Exporter]


@pytest.fixture
def standby(postgres: PostgresServer, workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "standby", max_connections=20)
    server.init_replica_of(postgres)
    server.start()
    yield server
    server.stop("immediate")


def cfg(server: PostgresServer) -> dict[str, object]:
    return {"dsn": server.dsn, "interval_seconds": 1, "timeout_seconds": 2}


def replication_families(samples: Samples) -> set[str]:
    return {n for (n, _) in samples if n.startswith("pg_replication_")}


# The families of each role: one statement answers both, the collector picks.
BOTH = {"pg_replication_is_replica", "pg_replication_slot_retained_bytes",
        "pg_replication_slot_active"}
PRIMARY_ONLY = {"pg_replication_standbys", "pg_replication_standby_lag_bytes",
                "pg_replication_standby_lag_seconds"}
STANDBY_ONLY = {"pg_replication_lag_seconds", "pg_replication_lag_bytes"}


def test_standby_lag_and_slot_retention_are_measured(
    postgres: PostgresServer, standby: PostgresServer, run_exporter: Run
) -> None:
    postgres.psql("SELECT pg_create_physical_replication_slot('unused_slot', true)")
    primary_exp = run_exporter("postgres", cfg(postgres))
    standby_exp = run_exporter("postgres", cfg(standby))

    samples = primary_exp.wait_until(
        "one standby streaming", lambda s: value(s, "pg_replication_standbys") == 1)
    assert value(samples, "pg_replication_is_replica") == 0
    assert value(samples, "pg_replication_slot_active", slot="unused_slot") == 0
    assert replication_families(samples) == BOTH | PRIMARY_ONLY

    # One replayed transaction, so the standby knows the time of its last replay.
    postgres.psql("CREATE TABLE first_write(id int)")
    for _ in range(100):
        if standby.psql("SELECT count(*) FROM pg_class WHERE relname = 'first_write'") == "1":
            break
        time.sleep(0.1)
    replica = standby_exp.wait_until(
        "standby caught up", lambda s: value(s, "pg_replication_is_replica") == 1
        and value(s, "pg_replication_lag_bytes") == 0)
    assert value(replica, "pg_replication_lag_seconds") == 0
    # pg_current_wal_lsn() would fail the statement on a standby: it is behind CASE.
    assert value(replica, "pg_exporter_collector_success", collector="replication") == 1
    # No slot on this standby (yet): the slot families have no sample.
    assert replication_families(replica) == {"pg_replication_is_replica"} | STANDBY_ONLY

    # Pause replay on the standby, then write on the primary: WAL arrives but is not applied.
    standby.psql("SELECT pg_wal_replay_pause()")
    postgres.psql("CREATE TABLE lagging AS SELECT g FROM generate_series(1, 20000) g")
    replica = standby_exp.wait_until(
        "replay lag in bytes and seconds",
        lambda s: value(s, "pg_replication_lag_bytes") > 100_000
        and value(s, "pg_replication_lag_seconds") > 0)
    primary = primary_exp.wait_until(
        "standby behind on the primary",
        lambda s: value(s, "pg_replication_standby_lag_bytes", standby="walreceiver@127.0.0.1") > 100_000
        and value(s, "pg_replication_slot_retained_bytes", slot="unused_slot") > 100_000)
    assert value(primary, "pg_replication_standbys") == 1

    standby.psql("SELECT pg_wal_replay_resume()")
    standby_exp.wait_until("lag back to 0", lambda s: value(s, "pg_replication_lag_bytes") == 0)


def test_a_standby_round_is_one_statement_per_collector(
    postgres: PostgresServer, standby: PostgresServer, run_exporter: Run
) -> None:
    """On a standby the round is as short as on a primary, and the slot rows of the one
    replication statement measure a standby's slot against the WAL it received."""
    standby.psql("SELECT pg_create_physical_replication_slot('cascade_slot', true)")
    exporter = run_exporter("postgres", on_scrape_config(standby))
    delta = rounds_delta(standby, exporter)
    assert sum(delta.values()) == STATEMENTS_PER_ROUND * ROUNDS, delta

    # The slot has no consumer: WAL the standby receives from now on is held back for it.
    postgres.psql("CREATE TABLE cascaded AS SELECT g FROM generate_series(1, 20000) g")
    samples = exporter.wait_until(
        "the standby's slot retains the WAL received since",
        lambda s: value(s, "pg_replication_slot_retained_bytes", slot="cascade_slot") > 100_000)
    assert value(samples, "pg_replication_slot_active", slot="cascade_slot") == 0
    assert value(samples, "pg_replication_is_replica") == 1
    assert replication_families(samples) == BOTH | STANDBY_ONLY
