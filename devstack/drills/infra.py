"""Infrastructure drills: PostgreSQL, its standby, Redis, an exporter, the Watchdog and a
healthy stack. Every fault is real: connections held open, a statement that really runs
long, a real deadlock, WAL replay paused on the real standby, real keys filling Redis, real
cache misses, a stopped exporter process, a stopped PostgreSQL.

Expected alerts, severities and texts come from the catalog (harness.expected), receivers
from the shipped routing tree (amtool).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
import redis.asyncio as aioredis

from devstack.drills.harness import Drill, DrillRun, Expected, Stack, alert_rules, expected

Loop = Callable[[asyncio.Event], Awaitable[None]]


class Work:
    """A drill's background loops (writers, connection holders). They stop when `stop` is
    set, between two commands: cancelling a redis-py command can leave its task hanging."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.connections: list[asyncpg.Connection] = []


_work: dict[str, Work] = {}


def _work_of(drill: str) -> Work:
    return _work.setdefault(drill, Work())


def _spawn(drill: str, loop: Loop) -> None:
    work = _work_of(drill)
    work.tasks.append(asyncio.ensure_future(loop(work.stop)))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _stop(drill: str) -> None:
    """Stop the drill's loops and close its connections; re-raise what broke a loop (it
    would otherwise only show as an alert that never came)."""
    work = _work.pop(drill, None)
    if work is None:
        return
    work.stop.set()
    done, pending = await asyncio.wait(work.tasks, timeout=30) if work.tasks else (set(), set())
    for task in pending:
        task.cancel()
    for conn in work.connections:
        with contextlib.suppress(Exception):
            await conn.close(timeout=5)
    assert not pending, f"{drill}: {len(pending)} background loops did not stop"
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _nothing(stack: Stack) -> None:
    return None


def _stopper(drill: str) -> Callable[[Stack], Awaitable[None]]:
    async def remove(stack: Stack) -> None:
        await _stop(drill)

    return remove


# -- a healthy stack pages nobody -------------------------------------------------------------
def healthy_window(stack: Stack) -> float:
    """As long as any critical alert of the catalog needs to page, plus the critical
    route's group interval: a page that a healthy stack would send shows up in it."""
    critical = {r["alert"] for r in alert_rules() if r["labels"].get("severity") == "critical"}
    limit = max(stack.page_limit(expected(name, "critical", summary=False)) for name in critical)
    interval = max(r.group_interval for r in stack.routes({"severity": "critical"}))
    return limit + interval


async def _no_page(stack: Stack, run: DrillRun) -> None:
    assert stack.receiver_map is not None
    pages = stack.receiver_map.pagers
    await asyncio.sleep(healthy_window(stack))
    seen = [d for d in stack.deliveries(run.started) if d.alertname != "Watchdog"]
    # Not pages, but noise a healthy stack makes: reported (bench/TIME_TO_PAGE.md).
    run.notes += sorted({f"{d.alertname} ({d.severity}) -> {d.receiver}" for d in seen})
    paged = [d for d in seen if d.receiver in pages]
    assert not paged, "a healthy stack paged: " + "; ".join(
        f"{d.receiver} {d.severity} {d.alertname} {d.status}" for d in paged)


HEALTHY = Drill("healthy-stack-no-page", _nothing, _nothing, (), exclusive=True, check=_no_page)


# -- PostgreSQL ---------------------------------------------------------------------------------
async def _slow_query(stack: Stack) -> None:
    # One statement whose mean execution time is 1.5 s: above the 1 s slow-query level.
    conn = await stack.connect()
    try:
        await conn.execute("SELECT pg_sleep(1.5), 'saasmon drill: slow query'")
    finally:
        await conn.close()


async def _reset_statements(stack: Stack) -> None:
    # pg_stat_statements keeps a statement's mean until reset: what an operator does once
    # the query is fixed.
    conn = await stack.connect()
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


# 1.5 s crosses the 1 s level of dirt-free-crm and tpt-erp (one alert) and the 0.1 s level
# of nova-crm and dirt-free-crm (another): a level shared with nova-crm, whose ladder has
# nothing higher, is not muted by the 1 s one.
SLOW_QUERY = Drill("postgres-slow-query", _slow_query, _reset_statements,
                   (expected("PostgresSlowQueries", "medium"),
                    expected("PostgresSlowQueries", "low", guide="nova-crm")),
                   resources=frozenset({"pg-stats"}))


async def _deadlock(stack: Stack) -> None:
    """Two transactions lock two rows in opposite order; PostgreSQL kills one of them."""
    a, b = await stack.connect(), await stack.connect()
    try:
        ids = await a.fetch("INSERT INTO drill_rows (note) VALUES ('deadlock-1'), ('deadlock-2') "
                            "RETURNING id")
        first, second = ids[0]["id"], ids[1]["id"]
        update = "UPDATE drill_rows SET note = note || '.' WHERE id = $1"
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        await a.execute(update, first)
        await b.execute(update, second)
        outcome = await asyncio.gather(a.execute(update, second), b.execute(update, first),
                                       return_exceptions=True)
        deadlocks = [x for x in outcome if isinstance(x, asyncpg.DeadlockDetectedError)]
        assert len(deadlocks) == 1, f"expected one deadlock victim, got {outcome}"
        for tx in (ta, tb):
            with contextlib.suppress(Exception):
                await tx.rollback()
    finally:
        await a.close()
        await b.close()


DEADLOCK = Drill("postgres-deadlock", _deadlock, _nothing,
                 (expected("PostgresDeadlocks", "high"),))


async def _replica_lsn_caught_up(stack: Stack, standby: asyncpg.Connection) -> None:
    primary = await stack.connect()
    try:
        await primary.execute("INSERT INTO drill_rows (note) VALUES ('before pause')")
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
    finally:
        await primary.close()
    deadline = time.monotonic() + 30
    while not await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
        assert time.monotonic() < deadline, "standby did not catch up before the drill"
        await asyncio.sleep(0.1)


def _writes(stack: Stack, every: float) -> Loop:
    """A commit on the primary every `every` seconds: WAL the paused standby receives."""

    async def loop(stop: asyncio.Event) -> None:
        conn = await stack.connect()
        try:
            while not stop.is_set():
                await conn.execute("INSERT INTO drill_rows (note) VALUES ('replicated')")
                await _pause(stop, every)
        finally:
            await conn.close()

    return loop


async def _pause_replay(stack: Stack) -> None:
    standby = await stack.connect(stack.standby.dsn)
    _work_of("replication-lag").connections.append(standby)
    # Lag counts from the last replayed commit: make that one fresh, so the lag grows
    # from 0 through the 5 s level and not straight past the 30 s one.
    await _replica_lsn_caught_up(stack, standby)
    await standby.execute("SELECT pg_wal_replay_pause()")
    _spawn("replication-lag", _writes(stack, 0.5))


async def _resume_replay(stack: Stack) -> None:
    work = _work_of("replication-lag")
    if work.connections:
        await work.connections[0].execute("SELECT pg_wal_replay_resume()")
    await _stop("replication-lag")


REPLICATION_LAG = Drill(
    "postgres-replication-lag", _pause_replay, _resume_replay,
    (expected("PostgresReplicationLagHigh", "high", exporter="postgres-standby"),),
    note="the level is a lag of 5 s (a value, not scaled): replay paused, the lag needs 5 s "
         "to grow past it before `for` starts")


async def _client_count(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
    return count


def _hold_connections(stack: Stack, drill: str, target: int) -> Loop:
    """Keep exactly `target` client connections open on the primary: ours fill the gap
    the app and the exporters leave, and give way when they open more."""

    async def loop(stop: asyncio.Event) -> None:
        held = _work_of(drill).connections
        while not stop.is_set():
            if not held:
                held.append(await stack.connect())
            now = await _client_count(held[0])
            if now < target:
                held.extend(await asyncio.gather(*(stack.connect() for _ in range(target - now))))
            elif now > target and len(held) > 1:
                for conn in [held.pop() for _ in range(min(now - target, len(held) - 1))]:
                    await conn.close()
            await _pause(stop, 0.5)

    return loop


def _connections_drill(name: str, share: float, severity: str) -> Drill:
    # The connection count the share asks for, rounded up, plus one: strictly above it.
    target = min(int(share * 40) + 1, 40) if share < 0.95 else 39

    async def inject(stack: Stack) -> None:
        assert stack.primary.max_connections == 40
        _spawn(name, _hold_connections(stack, name, target))
        conn = await stack.connect()
        try:
            deadline = time.monotonic() + 30
            while await _client_count(conn) < target:
                assert time.monotonic() < deadline, f"could not open {target} connections"
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    return Drill(name, inject, _stopper(name),
                 (expected("PostgresConnectionsUsageHigh", severity),), exclusive=True)


CONNECTIONS_80 = _connections_drill("postgres-connections-80pct", 0.85, "medium")
CONNECTIONS_95 = _connections_drill("postgres-connections-95pct", 0.975, "critical")


async def _postgres_down(stack: Stack) -> None:
    await asyncio.to_thread(stack.primary.stop, "immediate")


async def _postgres_up(stack: Stack) -> None:
    await asyncio.to_thread(stack.primary.start)


POSTGRES_DOWN = Drill("postgres-down", _postgres_down, _postgres_up, (expected(
    "PostgresDown", "critical", exporter="postgres"),), exclusive=True)


# -- Redis ------------------------------------------------------------------------------------------
VALUE = 256 * 1024
# Drill keys expire soonest of all volatile keys (volatile-ttl evicts those first), so the
# evictions hit the drill's own keys, not the app's cache: a memory drill, not a hit-rate one.
DRILL_KEY_TTL = 10


def _fill_redis(stack: Stack, drill: str, per_second: float) -> Loop:
    """Write big expiring keys until stopped: memory reaches maxmemory and Redis evicts."""

    async def loop(stop: asyncio.Event) -> None:
        client = aioredis.Redis.from_url(stack.redis.url)
        i = 0
        try:
            while not stop.is_set():
                await client.set(f"drill:{drill}:{i}", os.urandom(VALUE), ex=DRILL_KEY_TTL)
                i += 1
                await _pause(stop, 1 / per_second)
        finally:
            await client.aclose()

    return loop


async def _drop_keys(stack: Stack, pattern: str) -> None:
    client = aioredis.Redis.from_url(stack.redis.url)
    try:
        batch = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(batch), 500):
            await client.unlink(*batch[start:start + 500])
    finally:
        await client.aclose()


async def _redis_memory_used(stack: Stack) -> float:
    client = aioredis.Redis.from_url(stack.redis.url)
    try:
        info = await client.info("memory")
        return float(info["used_memory"]) / float(info["maxmemory"])
    finally:
        await client.aclose()


async def _memory_inject(stack: Stack) -> None:
    _spawn("redis-memory", _fill_redis(stack, "redis-memory", 40))
    deadline = time.monotonic() + 30
    while await _redis_memory_used(stack) < 0.9:
        assert time.monotonic() < deadline, "Redis memory did not reach 90 % of maxmemory"
        await asyncio.sleep(0.2)


async def _memory_remove(stack: Stack) -> None:
    await _stop("redis-memory")
    await _drop_keys(stack, "drill:redis-memory:*")


REDIS_MEMORY = Drill("redis-memory-evictions", _memory_inject, _memory_remove, (
    expected("RedisMemoryHigh", "high"), expected("RedisEvictions", "high")),
    resources=frozenset({"redis"}))


def _misses(stack: Stack, per_second: int) -> Loop:
    """Cache reads of keys nobody wrote, every one a miss, in batches of a tenth of a second."""

    async def loop(stop: asyncio.Event) -> None:
        client = aioredis.Redis.from_url(stack.redis.url)
        batch = max(1, per_second // 10)
        try:
            for i in itertools.count():
                if stop.is_set():
                    break
                async with client.pipeline(transaction=False) as pipe:
                    for j in range(batch):
                        pipe.get(f"drill:absent:{i}:{j}")
                    await pipe.execute()
                await _pause(stop, 0.1)
        finally:
            await client.aclose()

    return loop


async def _misses_inject(stack: Stack) -> None:
    _spawn("redis-hit-rate", _misses(stack, 400))


REDIS_HIT_RATE = Drill("redis-hit-rate-low", _misses_inject, _stopper("redis-hit-rate"),
                       (expected("RedisHitRateLow", "high"),), resources=frozenset({"redis"}))


# -- an exporter down mutes what it measured ------------------------------------------------------
EXPORTER_DOWN = "exporter-down-mutes"


def _exporter_down_drill() -> Drill:
    """Redis memory is high and paged; then the Redis exporter dies. TargetDown pages; the
    memory alert, whose series went stale, must not send a misleading "resolved" while
    TargetDown inhibits it (same job and instance), nor page again when the exporter is
    back and the memory is still high; it resolves once the memory is freed."""
    memory = expected("RedisMemoryHigh", "high")
    target_down = expected("TargetDown", "high", exporter="redis")
    marks: dict[str, float] = {}

    async def inject(stack: Stack) -> None:
        since = time.time()
        await stack.wait_quiet(memory.alertname)
        _spawn(EXPORTER_DOWN, _fill_redis(stack, EXPORTER_DOWN, 40))
        first = await stack.wait_delivery(memory, since)
        marks["memory_paged"] = min(d.at for d in first.values())
        marks["stopped"] = time.time()
        await asyncio.to_thread(stack.exporters["redis"].stop)

    async def muted(stack: Stack, run: DrillRun) -> None:
        # Past the memory group's next tick after TargetDown arrived: the tick at which the
        # stale alert's resolution would go out if nothing muted it.
        interval = max(r.group_interval for r in stack.routes(
            {"alertname": memory.alertname, "severity": memory.severity}))
        await asyncio.sleep(max(0.0, marks["memory_paged"] + interval + 2 - time.time()))
        leaked = [d for d in stack.deliveries(marks["stopped"])
                  if d.alertname == memory.alertname]
        assert not leaked, "muted by TargetDown, yet sent: " + "; ".join(
            f"{d.receiver} {d.status}" for d in leaked)
        down = await stack.alerts(alertname=target_down.alertname, **stack.labels_of(target_down))
        assert down and down[0]["status"]["state"] == "active", down

    async def remove(stack: Stack) -> None:
        back = time.time()
        await asyncio.to_thread(stack.exporters["redis"].start)
        # Memory is still high: the alert fires again; Alertmanager already told everyone.
        await asyncio.sleep(stack.page_limit(memory) + 2)
        await _stop(EXPORTER_DOWN)
        await _drop_keys(stack, f"drill:{EXPORTER_DOWN}:*")
        await stack.wait_resolved(memory, back)
        repeated = [d for d in stack.deliveries(marks["memory_paged"] + 0.5)
                    if d.alertname == memory.alertname and d.status == "firing"]
        assert not repeated, "paged again for the same memory alert: " + "; ".join(
            d.receiver for d in repeated)

    return Drill(EXPORTER_DOWN, inject, remove, (target_down,),
                 resources=frozenset({"redis", memory.alertname}), check=muted)


# -- the Watchdog flows all the time ---------------------------------------------------------------
def _watchdog_drill() -> Drill:
    watchdog = Expected("Watchdog", "none", expected("Watchdog", "none", summary=False).receivers,
                        resolves=False)

    async def always(stack: Stack, run: DrillRun) -> None:
        # Every heartbeat since the stack started, through every drill before this one:
        # never a gap longer than a few of the Watchdog's (scaled) repeat intervals.
        route = stack.routes({"alertname": "Watchdog"})[0]
        allowed = 5 * (route.repeat_interval + route.group_interval) + 2
        pings = sorted(d.at for d in stack.deliveries() if d.receiver == route.receiver)
        assert len(pings) >= 2, pings
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) <= allowed, (
            f"heartbeat gap of {max(gaps):.1f}s (allowed {allowed:.1f}s) over {len(pings)} pings")
        # Every group interval (a minute unscaled), as README and the demo promise: with the
        # repeat equal to the tick it came every second tick.
        typical = statistics.median(gaps)
        assert typical <= 1.5 * route.group_interval, (
            f"heartbeat every {typical:.2f}s, not every group interval "
            f"({route.group_interval:.2f}s)")

    return Drill("watchdog-heartbeat", _nothing, _nothing, (watchdog,), exclusive=True,
                 check=always)


# Run order matters for exclusive drills (runner.schedule): the healthy stack first, the
# drills that disturb everything last, the Watchdog check after all of them.
DRILLS: list[Drill] = [
    HEALTHY,
    SLOW_QUERY,
    DEADLOCK,
    REPLICATION_LAG,
    REDIS_MEMORY,
    REDIS_HIT_RATE,
    _exporter_down_drill(),
    CONNECTIONS_80,
    CONNECTIONS_95,
    POSTGRES_DOWN,
    _watchdog_drill(),
]
