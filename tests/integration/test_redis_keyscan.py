"""Key-pattern counts by a SCAN carried across rounds (issue 16, target 3).

A pass over the keyspace may span many collection rounds; only a finished pass is ever
published. The end-to-end case scrapes a real exporter process between its rounds; the
restart, flush and reload cases build the exporter in process and run its key_patterns
collector one round at a time through the runtime's Scheduler, against real redis-servers
filled with DEBUG POPULATE.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from devstack.exporter import Exporter
from devstack.metrics import Samples, value
from devstack.servers import RedisServer
from saasmon.cli import load_kind
from saasmon.redis.exporter import RedisInstance
from saasmon.redis.keyscan import (
    MIN_STEP_KEYS,
    START_STEP_KEYS,
    PatternScan,
    TargetScan,
    next_step_keys,
)
from saasmon.runtime.collector import CollectorState, Scheduler
from saasmon.runtime.config import load_config
from saasmon.runtime.exporter import ExporterKind

Run = Callable[..., Exporter]
PATTERN = "session:*"


@pytest.fixture
def redis_debug(workdir: Path) -> Iterator[RedisServer]:
    """A redis-server that accepts DEBUG POPULATE from loopback (off by default in 7.0)."""
    server = RedisServer(workdir / "redis-debug", extra_args=["--enable-debug-command", "local"])
    server.start()
    yield server
    server.kill()


def populate(server: RedisServer, keys: int, prefix: str = "session:") -> None:
    with redis.Redis(host="127.0.0.1", port=server.port) as r:
        r.execute_command("DEBUG", "POPULATE", keys, prefix)


def scan_config(server: RedisServer, db: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "targets": [{"name": "main", "url": f"redis://127.0.0.1:{server.port}/{db}"}],
        "interval_seconds": 60,
        "timeout_seconds": 5,
        "key_patterns": [{"pattern": PATTERN}],
        "key_patterns_interval_seconds": 0.5,
        **extra,
    }


def pattern_keys(samples: Samples) -> list[float]:
    return [v for (n, _), v in samples.items() if n == "redis_key_pattern_keys"]


# -- end to end ----------------------------------------------------------------------


def test_count_of_200k_keys_is_exact_across_rounds_and_never_partial(
        redis_debug: RedisServer, run_exporter: Run) -> None:
    populate(redis_debug, 200_000)
    populate(redis_debug, 50_000, "other:")  # scanned past, never counted
    # At most 40,000 matching keys and 0.3 s per round: the pass needs five rounds or more.
    started = time.time()
    exporter = run_exporter("redis", scan_config(redis_debug, scan_max_keys=40_000,
                                                 scan_budget_seconds=0.3))
    rounds_without_count: set[float] = set()
    deadline = time.monotonic() + 90
    while True:
        samples = exporter.scrape()
        keys = pattern_keys(samples)
        complete = [v for (n, _), v in samples.items() if n == "redis_key_pattern_scan_complete"]
        assert keys in ([], [200_000]), f"a partial count was published: {keys}"
        assert complete == ([1] if keys else [0]) or not complete
        if keys:
            break
        if complete == [0]:
            rounds_without_count.add(value(
                samples, "redis_exporter_collector_last_success_timestamp_seconds",
                collector="key_patterns"))
        assert time.monotonic() < deadline, "no complete pass within 90 s"
        time.sleep(0.1)
    assert len(rounds_without_count) >= 2, "the pass should have spanned several rounds"
    assert value(samples, "redis_key_pattern_scan_passes_total", pattern=PATTERN) == 1
    finished = value(samples, "redis_key_pattern_last_complete_pass_timestamp_seconds",
                     pattern=PATTERN)
    assert started < finished <= time.time()
    duration = value(samples, "redis_key_pattern_last_complete_pass_duration_seconds",
                     pattern=PATTERN)
    assert 0 < duration < finished - started
    step = value(samples, "redis_key_pattern_scan_step_keys", pattern=PATTERN)
    assert MIN_STEP_KEYS <= step <= 1000
    # The next pass runs from the start again; until it ends, the last count stays.
    later = exporter.wait_until(
        "a second pass", lambda s: value(s, "redis_key_pattern_scan_passes_total",
                                         pattern=PATTERN) == 2, timeout=90)
    assert pattern_keys(later) == [200_000]


# -- in process: one round at a time -------------------------------------------------


class Rounds:
    """The key_patterns collector of an instance built in process, run one round at a time."""

    def __init__(self, kind: ExporterKind[Any], config: dict[str, Any], tmp_path: Path) -> None:
        path = tmp_path / "redis.yml"
        path.write_text(yaml.safe_dump(config))
        instance = kind.build(load_config(kind.config_model, str(path), kind.name))
        assert isinstance(instance, RedisInstance)
        self.instance = instance
        self.scheduler = Scheduler("redis", instance.collectors)
        [self.state] = [s for s in self.scheduler.states if s.collector.name == "key_patterns"]

    async def run(self) -> Samples:
        state: CollectorState = self.state
        await self.scheduler.run_once(state, state.collector.timeout)
        if not state.success:
            return {}
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in state.families for s in family.samples}

    async def until_passes(self, passes: float, expected: float, limit: int = 200) -> Samples:
        """Rounds until `passes` passes ended; every round publishes `expected` or nothing."""
        for _ in range(limit):
            samples = await self.run()
            if not samples:
                continue  # a round that failed (the server was restarted) publishes nothing
            assert pattern_keys(samples) in ([], [expected])
            if value(samples, "redis_key_pattern_scan_passes_total", pattern=PATTERN) == passes:
                return samples
        raise AssertionError(f"no pass number {passes} within {limit} rounds")

    async def close(self) -> None:
        await self.instance.close()


async def test_a_redis_restart_mid_pass_starts_the_pass_again(
        redis_debug: RedisServer, tmp_path: Path) -> None:
    populate(redis_debug, 200_000)
    rounds = Rounds(load_kind("redis"), scan_config(redis_debug, scan_max_keys=20_000), tmp_path)
    try:
        first = await rounds.run()
        assert pattern_keys(first) == []
        assert value(first, "redis_key_pattern_scan_complete", pattern=PATTERN) == 0
        redis_debug.kill()
        redis_debug.start()  # same port, empty: the carried cursor means nothing here
        populate(redis_debug, 30_000)
        done = await rounds.until_passes(1, 30_000)
        assert pattern_keys(done) == [30_000]
        assert value(done, "redis_key_pattern_scan_pass_restarts_total",
                     pattern=PATTERN, reason="server_restarted") == 1
    finally:
        await rounds.close()


async def test_a_flushall_mid_pass_starts_the_pass_again(
        redis_debug: RedisServer, tmp_path: Path) -> None:
    populate(redis_debug, 200_000)
    rounds = Rounds(load_kind("redis"), scan_config(redis_debug, scan_max_keys=20_000), tmp_path)
    try:
        assert pattern_keys(await rounds.run()) == []
        with redis.Redis(host="127.0.0.1", port=redis_debug.port) as r:
            r.flushall()
        populate(redis_debug, 30_000)  # refilled before the next round: more keys than counted
        done = await rounds.until_passes(1, 30_000)
        assert pattern_keys(done) == [30_000]
        assert value(done, "redis_key_pattern_scan_pass_restarts_total",
                     pattern=PATTERN, reason="flushed") == 1
    finally:
        await rounds.close()


async def test_a_reload_keeps_the_count_and_the_pass_a_new_target_does_not(
        redis_debug: RedisServer, tmp_path: Path) -> None:
    populate(redis_debug, 200_000)
    populate(redis_debug, 7, "session:in-db-0:")
    kind = load_kind("redis")
    config = scan_config(redis_debug, scan_max_keys=50_000)
    before = Rounds(kind, config, tmp_path)
    try:
        await before.until_passes(1, 200_007)
        mid = await before.run()  # the second pass is under way
        assert pattern_keys(mid) == [200_007]
    finally:
        await before.close()
    # The reloaded config builds a new instance: it publishes the finished count from its
    # first round and finishes the pass in progress rather than starting it again.
    after = Rounds(kind, config, tmp_path)
    try:
        first = await after.run()
        assert pattern_keys(first) == [200_007]
        assert value(first, "redis_key_pattern_scan_passes_total", pattern=PATTERN) == 1
        done = await after.until_passes(2, 200_007, limit=5)
        assert value(done, "redis_key_pattern_scan_pass_restarts_total",
                     pattern=PATTERN, reason="server_restarted") == 0
    finally:
        await after.close()
    # Same target name, another database: nothing of db 0's count or counters is kept.
    moved = Rounds(kind, scan_config(redis_debug, db=1), tmp_path)
    try:
        samples = await moved.run()
        assert pattern_keys(samples) == [0]  # db 1 is empty: one step ends the pass
        assert value(samples, "redis_key_pattern_scan_passes_total", pattern=PATTERN) == 1
    finally:
        await moved.close()


async def test_step_count_follows_each_steps_redis_time_and_the_count_stays_exact(
        redis_debug: RedisServer, tmp_path: Path) -> None:
    """Keys of 1 KB and a pattern that must look through each whole key: about ten times a
    short key's cost per key. Every step's COUNT stays within its bounds, grows at most
    twice from one step to the next, and the slowest step the exporter reports is the one
    Redis' SLOWLOG (same clock, same duration as INFO commandstats) recorded."""
    pad = "x" * 1000
    with redis.Redis(host="127.0.0.1", port=redis_debug.port) as r:
        # Not DEBUG POPULATE: it cuts its keys at 127 bytes.
        for name, size in (("other", 20_000), ("item", 3_000)):
            for first in range(0, size, 1000):
                r.mset({f"{pad}:{name}:{i}": 1 for i in range(first, first + 1000)})
        r.config_set("slowlog-log-slower-than", 0)
        r.config_set("slowlog-max-len", 100_000)
    pattern, ceiling = "*:item:*", 600
    config = {**scan_config(redis_debug, scan_count=ceiling, scan_max_keys=1_000),
              "key_patterns": [{"pattern": pattern}]}
    rounds = Rounds(load_kind("redis"), config, tmp_path)
    counts: list[int] = []
    try:
        with redis.Redis(host="127.0.0.1", port=redis_debug.port) as r:
            for _ in range(200):
                r.slowlog_reset()
                samples = await rounds.run()
                assert samples, "a round failed"
                steps = [(int(e["duration"]), bytes(e["command"]).split())
                         for e in r.slowlog_get(100_000)]
                scans = [(d, int(args[args.index(b"COUNT") + 1]))
                         for d, args in reversed(steps) if args[0].upper() == b"SCAN"]
                counts += [c for _, c in scans]
                slowest = value(samples, "redis_key_pattern_scan_step_max_seconds", target="main")
                assert round(slowest * 1e6) == max(d for d, _ in scans)
                keys = [v for (n, _), v in samples.items() if n == "redis_key_pattern_keys"]
                assert keys in ([], [3_000]), f"a partial count was published: {keys}"
                if keys:
                    break
        assert keys == [3_000]
        assert counts[0] == START_STEP_KEYS
        assert all(MIN_STEP_KEYS <= c <= ceiling for c in counts)
        assert all(b <= 2 * a for a, b in itertools.pairwise(counts))
        assert MIN_STEP_KEYS <= value(samples, "redis_key_pattern_scan_step_keys",
                                      pattern=pattern) <= ceiling
    finally:
        await rounds.close()


# -- the pieces ----------------------------------------------------------------------


def test_keys_removed_below_the_count_so_far_start_the_pass_again() -> None:
    scan = PatternScan(PATTERN)
    target = TargetScan({PATTERN: scan})
    target.check(run_id="a", flushes=0, dbsize=500)
    assert not scan.step(started=1.0, cursor=77, found=400, now=1.1)
    target.check(run_id="a", flushes=0, dbsize=450)  # 400 counted, 450 left: fine
    assert (scan.cursor, scan.counted) == (77, 400)
    target.check(run_id="a", flushes=0, dbsize=300)  # fewer keys than already counted
    assert (scan.cursor, scan.counted, scan.restarts["keys_removed"]) == (0, 0, 1)
    assert scan.step(started=2.0, cursor=0, found=300, now=2.5)
    assert scan.last is not None
    assert (scan.last.keys, scan.last.finished_at, scan.last.duration) == (300, 2.5, 0.5)
    # Nothing in progress: a restart of the server has no pass to start again.
    target.check(run_id="b", flushes=0, dbsize=0)
    assert scan.restarts["server_restarted"] == 0
    assert scan.last.keys == 300


def test_step_size_follows_the_measured_redis_time_per_step() -> None:
    target = 0.002
    # Steps of 20 ms (a COUNT far too large) shrink in proportion in one step.
    assert next_step_keys(100_000, 0.020, target, ceiling=100_000) == 10_000
    # Well under the target: grow, at most twice per step and never past scan_count.
    assert next_step_keys(1000, 0.0002, target, ceiling=100_000) == 2000
    assert next_step_keys(1000, 0.0002, target, ceiling=1500) == 1500
    # Near the target: keep.
    assert next_step_keys(1000, 0.0015, target, ceiling=100_000) == 1000
    # Never below the floor, however slow.
    assert next_step_keys(50, 1.0, target, ceiling=1000) == MIN_STEP_KEYS
