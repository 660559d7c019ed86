"""Redis replication metrics on a real master/replica pair."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.exporter import Exporter
from devstack.metrics import total, value
from devstack.servers import RedisServer

Run = Callable[..., Exporter]


@pytest.fixture
def replica(redis_server: RedisServer, workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "replica",
                         extra_args=["--replicaof", "127.0.0.1", str(redis_server.port)])
    server.start()
    yield server
    server.kill()


def test_replica_link_and_lag_are_reported_on_both_sides(
    redis_server: RedisServer, replica: RedisServer, run_exporter: Run
) -> None:
    exporter = run_exporter("redis", {
        "targets": [{"name": "master", "url": redis_server.url},
                    {"name": "replica", "url": replica.url}],
        "interval_seconds": 1, "timeout_seconds": 2})
    samples = exporter.wait_until(
        "replica linked",
        lambda s: value(s, "redis_replication_master_link_up", target="replica") == 1
        and value(s, "redis_connected_replicas", target="master") == 1)
    assert value(samples, "redis_instance_is_replica", target="replica") == 1
    assert value(samples, "redis_instance_is_replica", target="master") == 0
    assert total(samples, "redis_replication_replica_lag_bytes", target="master") >= 0
    assert value(samples, "redis_replication_master_last_io_seconds", target="replica") >= 0
    # The master's view names the replica by address: one series, bounded by top_n_replicas.
    lag_series = [k for k in samples
                  if k[0] == "redis_replication_replica_lag_bytes"]
    assert len(lag_series) == 1
    assert dict(lag_series[0][1])["replica"] == f"127.0.0.1:{replica.port}"

    replica.kill()
    exporter.wait_until(
        "master sees the replica gone",
        lambda s: value(s, "redis_connected_replicas", target="master") == 0
        and value(s, "redis_up", target="replica") == 0, timeout=30)
