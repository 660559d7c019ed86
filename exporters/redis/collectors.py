"""Redis collectors: INFO fields mapped by a table, plus latency, slowlog and key counts."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from prometheus_client.core import Metric

from saasmon.redis.config import RedisConfig, RedisTarget
from saasmon.redis.keyscan import (
    PatternScan,
    StepTimes,
    TargetScan,
    flush_calls,
    next_step_keys,
    scan_usage,
    step_seconds,
)
from saasmon.runtime.collector import Collector
from saasmon.runtime.families import counter, gauge, top_n
from saasmon.runtime.overrides import Schedule

# INFO field -> (metric name, help, is_counter). One row per field, no code per field.
INFO_FIELDS: list[tuple[str, str, str, bool]] = [
    ("used_memory", "redis_memory_used_bytes", "Memory allocated by Redis.", False),
    ("used_memory_rss", "redis_memory_rss_bytes", "Resident memory of the process.", False),
    ("used_memory_peak", "redis_memory_peak_bytes", "Peak memory allocated by Redis.", False),
    ("maxmemory", "redis_memory_max_bytes", "The maxmemory setting (0 = no limit).", False),
    ("mem_fragmentation_ratio", "redis_memory_fragmentation_ratio",
     "RSS / used memory.", False),
    ("keyspace_hits", "redis_keyspace_hits", "Successful key lookups.", True),
    ("keyspace_misses", "redis_keyspace_misses", "Failed key lookups.", True),
    ("evicted_keys", "redis_evicted_keys", "Keys evicted by the maxmemory policy.", True),
    ("expired_keys", "redis_expired_keys", "Keys removed because their TTL ran out.", True),
    ("connected_clients", "redis_connected_clients", "Client connections.", False),
    ("blocked_clients", "redis_blocked_clients", "Clients in a blocking call.", False),
    ("rejected_connections", "redis_rejected_connections",
     "Connections rejected by the maxclients limit.", True),
    ("total_connections_received", "redis_connections_received",
     "Connections accepted.", True),
    ("total_commands_processed", "redis_commands_processed", "Commands processed.", True),
    ("connected_slaves", "redis_connected_replicas", "Connected replicas.", False),
    ("rdb_changes_since_last_save", "redis_rdb_changes_since_last_save",
     "Writes since the last RDB save.", False),
    ("rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds",
     "Unix time of the last RDB save.", False),
    ("aof_enabled", "redis_aof_enabled", "Whether AOF persistence is on.", False),
    ("uptime_in_seconds", "redis_uptime_seconds", "Seconds since the server started.", False),
]


def client_for(target: RedisTarget, timeout: float) -> aioredis.Redis:
    """The target's client; `timeout` is the longest of its collectors', so the client's
    own limits never cut a collector's run short (the scheduler bounds each run)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url.get_secret_value(),
        password=target.password.get_secret_value() if target.password else None,
        max_connections=2,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        client_name="saasmon_exporter",
    )
    return aioredis.Redis(connection_pool=pool)


class RedisCollector(Collector):
    def __init__(self, target: RedisTarget, client: aioredis.Redis, config: RedisConfig,
                 schedule: Schedule) -> None:
        super().__init__(target.name, schedule.interval, schedule.timeout)
        self.client = client
        self.config = config

    def classify(self, exc: BaseException) -> str:
        if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError):
            return "auth"
        if isinstance(exc, rexc.TimeoutError):
            return "timeout"
        if isinstance(exc, rexc.ConnectionError):
            return "connection"
        if isinstance(exc, rexc.ResponseError):
            return "query"
        return super().classify(exc)


class InfoCollector(RedisCollector):
    name = "info"

    async def collect(self) -> list[Metric]:
        started = time.perf_counter()
        await self.client.ping()
        latency = time.perf_counter() - started
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.info("all")
            pipe.slowlog_len()
            info, slowlog = await pipe.execute()
        return self.families(info, slowlog, latency)

    def families(self, info: dict[str, Any], slowlog: int, latency: float) -> list[Metric]:
        t = self.target
        out: list[Metric] = []
        for field, name, doc, is_counter in INFO_FIELDS:
            if field in info:
                build = counter if is_counter else gauge
                out.append(build(name, doc, labels=("target",), rows=[((t,), float(info[field]))]))
        maxmemory = float(info.get("maxmemory", 0))
        used = float(info.get("used_memory", 0))
        # Redis' default maxmemory 0 means "up to the host's memory": the ratio is then taken
        # against total_system_memory, so RedisMemoryHigh still sees a Redis about to be
        # OOM-killed instead of going dead on the default setting.
        limit = maxmemory if maxmemory > 0 else float(info.get("total_system_memory", 0))
        out.append(gauge("redis_memory_max_set", "Whether maxmemory is set (1) or 0 = unlimited.",
                         labels=("target",), rows=[((t,), 1 if maxmemory > 0 else 0)]))
        if limit > 0:
            out.append(gauge("redis_memory_used_ratio",
                             "used_memory / maxmemory, or / total_system_memory when maxmemory "
                             "is 0 (unlimited).", labels=("target",), rows=[((t,), used / limit)]))
        out.append(gauge("redis_ping_latency_seconds", "Round trip of a PING.",
                         labels=("target",), rows=[((t,), latency)]))
        out.append(gauge("redis_slowlog_length", "Entries in the slow log.",
                         labels=("target",), rows=[((t,), slowlog)]))
        out += self._persistence(info) + self._replication(info)
        out += self._keyspace(info) + self._commands(info)
        return out

    def _persistence(self, info: dict[str, Any]) -> list[Metric]:
        t = self.target
        rdb_ok = 1 if info.get("rdb_last_bgsave_status", "ok") == "ok" else 0
        aof_ok = 1 if info.get("aof_last_write_status", "ok") == "ok" else 0
        return [
            gauge("redis_rdb_last_bgsave_ok", "Whether the last RDB save succeeded.",
                  labels=("target",), rows=[((t,), rdb_ok)]),
            gauge("redis_aof_last_write_ok", "Whether the last AOF write succeeded.",
                  labels=("target",), rows=[((t,), aof_ok)]),
            gauge("redis_rdb_bgsave_in_progress", "Whether an RDB save is running.",
                  labels=("target",), rows=[((t,), float(info.get("rdb_bgsave_in_progress", 0)))]),
        ]

    def _replication(self, info: dict[str, Any]) -> list[Metric]:
        t = self.target
        role = str(info.get("role", "master"))
        out: list[Metric] = [
            gauge("redis_instance_is_replica", "1 on a replica, 0 on a master.",
                  labels=("target",), rows=[((t,), 1 if role == "slave" else 0)]),
            gauge("redis_replication_offset_bytes", "This instance's replication offset.",
                  labels=("target",), rows=[((t,), float(info.get("master_repl_offset", 0)))]),
        ]
        if role == "slave":
            link = 1 if info.get("master_link_status") == "up" else 0
            out.append(gauge("redis_replication_master_link_up", "Whether the link is up.",
                             labels=("target",), rows=[((t,), link)]))
            if "master_last_io_seconds_ago" in info:
                out.append(gauge("redis_replication_master_last_io_seconds",
                                 "Seconds since the last interaction with the master.",
                                 labels=("target",),
                                 rows=[((t,), float(info["master_last_io_seconds_ago"]))]))
        else:
            master_offset = float(info.get("master_repl_offset", 0))
            replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            kept, _ = top_n(replicas, self.config.top_n_replicas)
            out.append(gauge(
                "redis_replication_replica_lag_bytes", "Master offset minus the replica's.",
                labels=("target", "replica"),
                rows=[((t, f"{r.get('ip')}:{r.get('port')}"),
                       master_offset - float(r.get("offset", 0))) for r in kept]))
        return out

    def _keyspace(self, info: dict[str, Any]) -> list[Metric]:
        t = self.target
        dbs = sorted((k, v) for k, v in info.items()
                     if k.startswith("db") and k[2:].isdigit() and isinstance(v, dict))
        return [
            gauge("redis_db_keys", "Keys per database.", labels=("target", "db"),
                  rows=[((t, k), float(v.get("keys", 0))) for k, v in dbs]),
            gauge("redis_db_keys_expiring", "Keys with a TTL per database.",
                  labels=("target", "db"),
                  rows=[((t, k), float(v.get("expires", 0))) for k, v in dbs]),
        ]

    def _commands(self, info: dict[str, Any]) -> list[Metric]:
        t = self.target
        stats = sorted(
            ((k.removeprefix("cmdstat_"), v) for k, v in info.items()
             if k.startswith("cmdstat_") and isinstance(v, dict)),
            key=lambda kv: -float(kv[1].get("calls", 0)))
        kept, cut = top_n(stats, self.config.top_n_commands)
        return [
            counter("redis_command_calls", "Calls per command (top by calls).",
                    labels=("target", "cmd"),
                    rows=[((t, c), float(v.get("calls", 0))) for c, v in kept]),
            counter("redis_command_duration_seconds", "Time spent per command.",
                    labels=("target", "cmd"),
                    rows=[((t, c), float(v.get("usec", 0)) / 1e6) for c, v in kept]),
            gauge("redis_commands_untracked", "Commands beyond top_n_commands, not labelled.",
                  labels=("target",), rows=[((t,), cut)]),
        ]


class KeyPatternCollector(RedisCollector):
    """Counts keys per configured pattern with SCAN (never KEYS): each round advances every
    pattern's pass within the round's budget; a count is published once its pass ends
    (exporters/redis/keyscan.py)."""

    name = "key_patterns"

    def __init__(self, target: RedisTarget, client: aioredis.Redis, config: RedisConfig,
                 schedule: Schedule, scan: TargetScan) -> None:
        super().__init__(target, client, config, schedule)
        self.scan = scan

    async def collect(self) -> list[Metric]:
        async with self.scan.lock:
            await self._round()
            return self.families()

    async def _round(self) -> None:
        # At most half the run's timeout: a step begun just before the deadline must still
        # fit in the run.
        deadline = time.monotonic() + min(self.config.scan_budget_seconds, self.timeout / 2)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.info("server")
            pipe.info("commandstats")
            pipe.dbsize()
            server, before, dbsize = await pipe.execute()
        self.scan.check(str(server.get("run_id", "")), flush_calls(before), int(dbsize))
        times, usage = StepTimes(), scan_usage(before)
        scans = list(self.scan.patterns.values())
        for index, scan in enumerate(scans):
            # Each pattern gets an equal share of what is left, so early patterns cannot
            # starve the later ones and time a finished pass leaves goes to the rest.
            share = (deadline - time.monotonic()) / (len(scans) - index)
            usage = await self._advance(scan, time.monotonic() + share, usage, times)
        self.scan.last_round = times

    async def _advance(self, scan: PatternScan, deadline: float, usage: tuple[int, int],
                       times: StepTimes) -> tuple[int, int]:
        """Steps until the pass ends, the round's share of time or of keys is spent; at
        least one step, so every pass moves however small the budget. Each step's Redis
        time (INFO commandstats pipelined behind its SCAN: the server's own execution time,
        not the round trip) sizes the next step's COUNT. Returns SCAN's last (calls, usec)."""
        matched, ceiling = 0, self.config.scan_count
        while True:
            started, step = time.time(), min(scan.step_keys, ceiling)
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.scan(scan.cursor, match=scan.pattern, count=step)
                pipe.info("commandstats")
                (cursor, keys), stats = await pipe.execute()
            # The state changes only here, after the step answered: a run cancelled by its
            # timeout leaves the cursor and the count of the last step that did.
            seconds, usage = step_seconds(usage, scan_usage(stats)), scan_usage(stats)
            if seconds is not None:
                times.add(seconds)
                scan.step_keys = next_step_keys(step, seconds,
                                                 self.config.scan_step_target_seconds, ceiling)
            if scan.step(started, int(cursor), len(keys), time.time()):
                return usage
            matched += len(keys)
            if matched >= self.config.scan_max_keys or time.monotonic() >= deadline:
                return usage

    def families(self) -> list[Metric]:
        t, scans = self.target, list(self.scan.patterns.values())
        done = [(s, s.last) for s in scans if s.last is not None]
        out: list[Metric] = [
            gauge("redis_key_pattern_keys",
                  "Keys matching the pattern in the last complete SCAN pass (absent until "
                  "one completes).", labels=("target", "pattern"),
                  rows=[((t, s.pattern), last.keys) for s, last in done]),
            gauge("redis_key_pattern_scan_complete",
                  "1 when redis_key_pattern_keys holds a complete pass's count, 0 before the "
                  "first pass ends.", labels=("target", "pattern"),
                  rows=[((t, s.pattern), 1 if s.last else 0) for s in scans]),
            gauge("redis_key_pattern_last_complete_pass_timestamp_seconds",
                  "Unix time the last complete pass ended.", labels=("target", "pattern"),
                  rows=[((t, s.pattern), last.finished_at) for s, last in done]),
            gauge("redis_key_pattern_last_complete_pass_duration_seconds",
                  "Time from the first to the last step of the last complete pass.",
                  labels=("target", "pattern"),
                  rows=[((t, s.pattern), last.duration) for s, last in done]),
            counter("redis_key_pattern_scan_passes", "SCAN passes completed.",
                    labels=("target", "pattern"),
                    rows=[((t, s.pattern), s.passes) for s in scans]),
            counter("redis_key_pattern_scan_pass_restarts",
                    "Passes started again because their keyspace may have been replaced.",
                    labels=("target", "pattern", "reason"),
                    rows=[((t, s.pattern, r), n) for s in scans for r, n in s.restarts.items()]),
            gauge("redis_key_pattern_scan_step_keys", "SCAN COUNT of the pattern's next step.",
                  labels=("target", "pattern"),
                  rows=[((t, s.pattern), min(s.step_keys, self.config.scan_count))
                        for s in scans]),
        ]
        times = self.scan.last_round
        if times is not None and times.steps:
            out.append(gauge("redis_key_pattern_scan_step_seconds",
                             "Mean Redis execution time of a SCAN step in the last round "
                             "(INFO commandstats).", labels=("target",),
                             rows=[((t,), times.total / times.steps)]))
            out.append(gauge("redis_key_pattern_scan_step_max_seconds",
                             "Redis execution time of the slowest SCAN step in the last round "
                             "(INFO commandstats; other clients' SCANs between two steps count "
                             "in).", labels=("target",), rows=[((t,), times.slowest)]))
        return out
