"""Redis exporter against real, private redis-servers that the tests fill, load and kill."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from devstack.exporter import Exporter, run_cli
from devstack.metrics import Samples, parse, total, value
from devstack.servers import RedisServer

Run = Callable[..., Exporter]
SENTINEL = "S3ntinel-Secret-42"
WRONG_SENTINEL = "Wr0ng-S3ntinel-77"


def config(*urls: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "targets": [{"name": name, "url": url} for name, url in urls],
        "interval_seconds": 1,
        "timeout_seconds": 2,
        "key_patterns": [{"pattern": "session:*"}],
        "key_patterns_interval_seconds": 1,
        **extra,
    }


def main_config(server: RedisServer, **extra: Any) -> dict[str, Any]:
    return config(("main", server.url), **extra)


def client(server: RedisServer, db: int = 0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db)


def stamps(samples: Samples, collector: str) -> list[float]:
    return [v for (n, ls), v in samples.items()
            if n == "redis_exporter_collector_last_success_timestamp_seconds"
            and dict(ls)["collector"] == collector]


def wait_collected(exporter: Exporter, collector: str = "info") -> Samples:
    """A fresh successful run of `collector` on every target started after now."""
    first = exporter.scrape()
    stamp = max(stamps(first, collector))
    return exporter.wait_until(
        f"a newer {collector} collection",
        lambda s: min(stamps(s, collector)) > stamp + 0.5,
    )


@pytest.fixture
def redis_limited(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis-lru",
                         extra_args=["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"])
    server.start()
    yield server
    server.kill()


def test_filling_beyond_maxmemory_evicts_and_reports_the_used_ratio(
        redis_limited: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", main_config(redis_limited))
    assert value(wait_collected(exporter), "redis_evicted_keys_total", target="main") == 0
    r = client(redis_limited)
    blob = b"x" * 10_000
    for i in range(600):  # ~6 MB into a 2 MB instance
        r.set(f"fill:{i}", blob)
    info = r.info("memory")
    evicted = int(r.info("stats")["evicted_keys"])
    assert evicted > 0

    samples = wait_collected(exporter)
    assert value(samples, "redis_memory_max_set", target="main") == 1
    assert value(samples, "redis_memory_max_bytes", target="main") == 2 * 1024 * 1024
    used = value(samples, "redis_memory_used_bytes", target="main")
    ratio = value(samples, "redis_memory_used_ratio", target="main")
    assert ratio == pytest.approx(used / (2 * 1024 * 1024))
    assert ratio == pytest.approx(info["used_memory"] / info["maxmemory"], abs=0.1)
    assert 0.5 < ratio < 1.1
    # Eviction goes on a little as clients allocate buffers: bracket the exported count.
    assert evicted <= value(samples, "redis_evicted_keys_total", target="main") <= int(
        r.info("stats")["evicted_keys"])
    r.close()


def test_unlimited_memory_reports_max_unset_and_a_ratio_of_the_host_memory(
        redis_server: RedisServer, run_exporter: Run) -> None:
    """Redis' default maxmemory 0: RedisMemoryHigh must not go dead (issue 13 k)."""
    exporter = run_exporter("redis", main_config(redis_server))
    samples = wait_collected(exporter)
    assert value(samples, "redis_memory_max_set", target="main") == 0
    assert value(samples, "redis_memory_max_bytes", target="main") == 0
    r = redis.Redis.from_url(redis_server.url)
    memory = r.info("memory")
    r.close()
    ratio = value(samples, "redis_memory_used_ratio", target="main")
    assert 0 < ratio < 1
    assert ratio == pytest.approx(memory["used_memory"] / memory["total_system_memory"], rel=0.5)


def test_extra_client_connections_raise_connected_clients_by_their_number(
        redis_server: RedisServer, run_exporter: Run) -> None:
    # Without key patterns one collector uses one pooled connection: the count is stable.
    exporter = run_exporter("redis", main_config(redis_server, key_patterns=[]))
    before = value(wait_collected(exporter), "redis_connected_clients", target="main")
    extra = [client(redis_server) for _ in range(7)]
    for c in extra:
        c.ping()  # connections are lazy: make each one real
    try:
        samples = wait_collected(exporter)
        assert value(samples, "redis_connected_clients", target="main") == before + 7
    finally:
        for c in extra:
            c.close()
    samples = exporter.wait_until(
        "clients back to the baseline",
        lambda s: value(s, "redis_connected_clients", target="main") == before)


def test_gets_of_present_and_missing_keys_count_exact_hits_and_misses(
        redis_server: RedisServer, run_exporter: Run) -> None:
    r = client(redis_server)
    r.set("present", "1")
    exporter = run_exporter("redis", main_config(redis_server))
    before = wait_collected(exporter)
    for _ in range(17):
        assert r.get("present") == b"1"
    for _ in range(5):
        assert r.get("absent") is None
    after = wait_collected(exporter)
    hits = value(after, "redis_keyspace_hits_total", target="main") - value(
        before, "redis_keyspace_hits_total", target="main")
    misses = value(after, "redis_keyspace_misses_total", target="main") - value(
        before, "redis_keyspace_misses_total", target="main")
    assert (hits, misses) == (17, 5)
    r.close()


def test_keys_are_counted_per_database_and_per_pattern(
        redis_server: RedisServer, run_exporter: Run) -> None:
    r0, r3 = client(redis_server), client(redis_server, db=3)
    with r0.pipeline(transaction=False) as pipe:
        for i in range(250):
            pipe.set(f"session:{i}", "s")
        for i in range(120):
            pipe.set(f"cache:{i}", "c", ex=600)
        pipe.set("sessions-total", "250")  # near miss for the pattern
        pipe.execute()
    for i in range(9):
        r3.set(f"session:{i}", "elsewhere")  # another db: not scanned by the db-0 target
    exporter = run_exporter("redis", main_config(redis_server))
    samples = wait_collected(exporter, "key_patterns")
    samples = wait_collected(exporter)
    assert value(samples, "redis_db_keys", target="main", db="db0") == 371
    assert value(samples, "redis_db_keys_expiring", target="main", db="db0") == 120
    assert value(samples, "redis_db_keys", target="main", db="db3") == 9
    assert value(samples, "redis_key_pattern_keys", target="main", pattern="session:*") == 250
    assert value(samples, "redis_key_pattern_scan_complete",
                 target="main", pattern="session:*") == 1
    r0.close()
    r3.close()


def test_per_command_series_are_capped_at_top_n_and_the_rest_counted(
        redis_server: RedisServer, run_exporter: Run) -> None:
    r = client(redis_server)
    for i in range(60):
        r.set(f"k{i}", i)
    for i in range(40):
        r.get(f"k{i}")
    for i in range(20):
        r.incr(f"k{i}")
    exporter = run_exporter("redis", main_config(redis_server, top_n_commands=2))
    wait_collected(exporter)
    commands = {k for k in r.info("commandstats") if k.startswith("cmdstat_")}
    assert {"cmdstat_set", "cmdstat_get", "cmdstat_incrby"} <= commands  # redis-py: INCRBY
    samples = wait_collected(exporter)
    calls = {dict(ls)["cmd"]: v for (n, ls), v in samples.items()
             if n == "redis_command_calls_total"}
    # The two busiest commands, with their exact counts; everything else only counted.
    assert calls == {"set": 60, "get": 40}
    durations = [dict(ls)["cmd"] for (n, ls), _ in samples.items()
                 if n == "redis_command_duration_seconds_total"]
    assert sorted(durations) == ["get", "set"]
    assert value(samples, "redis_commands_untracked", target="main") == len(commands) - 2
    r.close()


def test_one_exporter_watches_two_targets_and_survives_one_dying(
        workdir: Path, redis_server: RedisServer, run_exporter: Run) -> None:
    other = RedisServer(workdir / "redis-b")
    other.start()
    try:
        client(redis_server).set("only-in-a", 1)
        rb = client(other)
        for i in range(4):
            rb.set(f"b{i}", i)
        rb.close()
        exporter = run_exporter("redis", config(("a", redis_server.url), ("b", other.url)))
        samples = wait_collected(exporter)
        assert value(samples, "redis_up", target="a") == 1
        assert value(samples, "redis_up", target="b") == 1
        assert value(samples, "redis_db_keys", target="a", db="db0") == 1
        assert value(samples, "redis_db_keys", target="b", db="db0") == 4

        other.kill()
        status, body, took = exporter.get()
        assert status == 200 and took < 5
        # redis_up follows the latest finished run of any of b's collectors: wait for the
        # info collector's own failed run too, which is what drops b's stale values.
        down = exporter.wait_until(
            "b down", lambda s: value(s, "redis_up", target="b") == 0 and value(
                s, "redis_exporter_collector_success", collector="info", target="b") == 0)
        assert value(down, "redis_up", target="a") == 1
        assert value(down, "redis_exporter_collector_success", collector="info", target="b") == 0
        assert total(down, "redis_exporter_collector_errors_total",
                     collector="info", target="b", reason="connection") > 0
        # A dead target exports no stale values, the live one all of its own.
        assert not [ls for (n, ls), _ in down.items()
                    if n == "redis_memory_used_bytes" and ("target", "b") in ls]
        assert value(down, "redis_db_keys", target="a", db="db0") == 1
        for _ in range(3):
            status, body, took = exporter.get()
            assert status == 200 and took < 5
            assert value(parse(body), "redis_up", target="b") == 0

        other.start()  # same port, same exporter process
        back = exporter.wait_until(
            "b back up", lambda s: value(s, "redis_up", target="b") == 1)
        assert value(back, "redis_up", target="a") == 1
        assert value(back, "redis_db_keys", target="a", db="db0") == 1
        assert exporter.proc is not None and exporter.proc.poll() is None
    finally:
        other.kill()


def test_slow_commands_show_in_the_slowlog_length(
        redis_server: RedisServer, run_exporter: Run) -> None:
    r = client(redis_server)
    exporter = run_exporter("redis", main_config(redis_server))
    r.slowlog_reset()
    assert value(wait_collected(exporter), "redis_slowlog_length", target="main") == 0
    r.config_set("slowlog-log-slower-than", 0)
    for i in range(30):
        r.set(f"slow:{i}", i)
    samples = wait_collected(exporter)
    assert value(samples, "redis_slowlog_length", target="main") >= 30
    r.close()


def test_output_passes_promtool_check_metrics(
        redis_server: RedisServer, run_exporter: Run) -> None:
    r = client(redis_server)
    r.set("session:1", "s")
    r.get("session:1")
    r.close()
    exporter = run_exporter("redis", main_config(redis_server))
    wait_collected(exporter, "key_patterns")
    text = exporter.scrape_text()
    assert "redis_key_pattern_keys" in text and "redis_command_calls_total" in text
    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture
def redis_with_password(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis-auth", extra_args=["--requirepass", SENTINEL])
    server.start()
    yield server
    server.kill()


def with_password(server: RedisServer, password: str) -> str:
    return f"redis://:{password}@127.0.0.1:{server.port}/0"


def assert_secret_kept(exporter: Exporter, secret: str) -> None:
    checked = run_cli("redis", "--config.file", str(exporter.config_path), "--config.check")
    assert checked.returncode == 0, checked.stderr
    assert "main" in checked.stdout
    for where, text in [("metrics", exporter.scrape_text()), ("log", exporter.log()),
                        ("config.check", checked.stdout + checked.stderr)]:
        assert secret not in text, f"secret leaked into the {where}"


def test_password_in_url_authenticates_and_never_leaks(
        redis_with_password: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter(
        "redis", main_config(redis_with_password,
                             targets=[{"name": "main",
                                       "url": with_password(redis_with_password, SENTINEL)}]),
        extra_args=["--log.level", "debug"])
    samples = wait_collected(exporter)
    assert value(samples, "redis_up", target="main") == 1
    assert value(samples, "redis_exporter_collector_success",
                 collector="info", target="main") == 1
    assert total(samples, "redis_exporter_collector_errors_total", target="main") == 0
    # A reload re-reads the config and logs: still nothing to see.
    request = urllib.request.Request(exporter.url + "/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200
    assert value(wait_collected(exporter), "redis_up", target="main") == 1
    assert_secret_kept(exporter, SENTINEL)


def test_wrong_password_is_down_with_auth_errors_and_never_leaks(
        redis_with_password: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter(
        "redis", main_config(redis_with_password,
                             targets=[{"name": "main",
                                       "url": with_password(redis_with_password, WRONG_SENTINEL)}]),
        extra_args=["--log.level", "debug"])
    samples = exporter.wait_until(
        "auth errors counted",
        lambda s: value(s, "redis_exporter_collector_errors_total",
                        collector="info", target="main", reason="auth") >= 2)
    assert value(samples, "redis_up", target="main") == 0
    assert value(samples, "redis_exporter_collector_success",
                 collector="info", target="main") == 0
    assert not [n for n, _ in samples if n == "redis_memory_used_bytes"]
    assert "auth" in exporter.log()
    assert_secret_kept(exporter, WRONG_SENTINEL)
    assert SENTINEL not in exporter.log()
