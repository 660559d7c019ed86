"""/probe?target=: the PostgreSQL exporter for many servers, one collection per interval.

Each (target, auth module) gets its own pool and collectors on first probe. A probe runs
only the collectors whose last run started longer ago than FRESH_SHARE of their interval,
and joins a round already under way: two scrapers (an HA Prometheus pair) probing the same
target within the interval cost one collection. Live targets are capped; the least
recently probed idle one makes room, and a target not probed for idle_close_seconds has
its pool closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client.core import Metric

from saasmon.postgres.assembly import ServerCollectors, assemble
from saasmon.postgres.config import PostgresConfig
from saasmon.postgres.targets import Refused, Resolved, resolve
from saasmon.runtime.collector import CollectorState, Scheduler
from saasmon.runtime.exposition import metrics_response
from saasmon.runtime.families import counter, gauge
from saasmon.runtime.logs import SecretRegistry, log_fields
from saasmon.runtime.server import scrape_deadline

log = logging.getLogger("saasmon.postgres")

# A collector's result is served again while younger than this share of its interval
# (from the start of its run): a Prometheus scraping every interval seconds, with some
# jitter, still gets a fresh collection on each of its own scrapes.
FRESH_SHARE = 0.9
RESULTS = ("collected", "shared", "refused", "busy")
CLOSE_REASONS = ("idle", "evicted")


@dataclass
class ProbedTarget:
    resolved: Resolved
    parts: ServerCollectors
    scheduler: Scheduler
    started: dict[int, float] = field(default_factory=dict)  # state index -> run start
    last_probe: float = field(default_factory=time.monotonic)
    round: asyncio.Task[Any] | None = None
    active: int = 0  # probes being answered

    @property
    def busy(self) -> bool:
        return self.active > 0 or (self.round is not None and not self.round.done())


async def _run(scheduler: Scheduler, states: list[CollectorState]) -> None:
    """One round; every run bounds itself by its collector's timeout and records itself."""
    await asyncio.gather(*(scheduler.run_once(s, s.collector.timeout) for s in states))


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


class Prober:
    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self.live: OrderedDict[tuple[str, str], ProbedTarget] = OrderedDict()
        self.results = dict.fromkeys(RESULTS, 0)
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self._closing: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # -- the request -----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        config = self.config
        try:
            resolved = resolve(config.probe, config.auth_modules, config.default_auth_module,
                               request.query.get("target", ""),
                               request.query.get("auth_module", ""))
        except Refused as exc:
            self.results["refused"] += 1
            return web.Response(status=exc.status,
                                text=SecretRegistry.mask(str(exc))[:400] + "\n")
        target = self._target(resolved)
        if target is None:
            self.results["busy"] += 1
            return web.Response(status=503, text=f"too many targets: {config.probe.max_targets} "
                                "(probe.max_targets) are being probed\n")
        self._start_sweeper()
        target.active += 1
        try:
            round_task, collected = self._round(target)
            if round_task is not None:
                # Waiting never cancels the round: it records its result for the next probe.
                await asyncio.wait({round_task}, timeout=scrape_deadline(request))
        finally:
            target.active -= 1
            target.last_probe = time.monotonic()
        self.results["collected" if collected else "shared"] += 1
        scheduler = target.scheduler
        families = [
            *scheduler.data_families(), *scheduler.self_families(),
            gauge("pg_probe_shared", "1 when this answer reuses data collected for an earlier "
                  "or concurrent probe of the target.", 0 if collected else 1),
            gauge("pg_probe_duration_seconds", "Time taken to answer this probe.",
                  time.monotonic() - started),
        ]
        return await metrics_response(request, families)

    def _target(self, resolved: Resolved) -> ProbedTarget | None:
        """The live state of a target, created on first probe (never connects); None when
        the cap is reached and every live target is busy."""
        target = self.live.get(resolved.key)
        if target is not None:
            self.live.move_to_end(resolved.key)
            return target
        if len(self.live) >= self.config.probe.max_targets:
            victim = next((k for k, t in self.live.items() if not t.busy), None)
            if victim is None:
                return None
            self._drop(victim, "evicted")
        config = self.config.model_copy(update={
            "target": resolved.label, "allocated_storage_bytes": resolved.allocated_storage_bytes})
        parts = assemble(config, resolved.dsn, pool_max_size=self.config.probe.pool_max_size)
        target = ProbedTarget(resolved, parts, Scheduler("pg", parts.collectors))
        self.live[resolved.key] = target
        return target

    def _round(self, target: ProbedTarget) -> tuple[asyncio.Task[Any] | None, bool]:
        """The round to wait for, and whether this probe started it."""
        if target.round is not None and not target.round.done():
            return target.round, False
        now = time.monotonic()
        due = [(index, state) for index, state in enumerate(target.scheduler.states)
               if now - target.started.get(index, float("-inf"))
               >= FRESH_SHARE * state.collector.interval]
        if not due:
            return None, False
        for index, _ in due:
            target.started[index] = now
        scheduler = target.scheduler
        # Created here, synchronously: a probe arriving next finds it and joins.
        target.round = task = asyncio.create_task(_run(scheduler, [s for _, s in due]))
        task.add_done_callback(_retrieve)
        return task, True

    # -- bounds ----------------------------------------------------------------------
    def _drop(self, key: tuple[str, str], reason: str) -> None:
        target = self.live.pop(key)
        self.closed[reason] += 1
        log.info("probe target closed", extra=log_fields(
            target=target.resolved.label, auth_module=target.resolved.module, reason=reason))
        task = asyncio.create_task(self._close(target))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(target: ProbedTarget) -> None:
        await target.scheduler.stop()
        await target.parts.close()

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        idle = self.config.probe_idle_seconds()
        while True:
            await asyncio.sleep(min(30.0, idle / 4))
            now = time.monotonic()
            for key in [k for k, t in self.live.items()
                        if not t.busy and now - t.last_probe > idle]:
                self._drop(key, "idle")

    async def close(self) -> None:
        """Stop everything (reload, shutdown): not counted as closed targets."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        targets, self.live = list(self.live.values()), OrderedDict()
        await asyncio.gather(*(self._close(t) for t in targets), *self._closing)

    # -- the exporter's own metrics ---------------------------------------------------
    def families(self) -> Iterable[Metric]:
        yield counter("pg_exporter_probes", "/probe requests by result: collected (started a "
                      "collection), shared (served a collection made for another probe), "
                      "refused (4xx: target not allowed, bad request), busy (503: "
                      "probe.max_targets reached).", labels=("result",),
                      rows=[((r,), n) for r, n in self.results.items()])
        yield gauge("pg_exporter_probe_targets", "Probed targets holding a pool "
                    "(at most probe.max_targets).", len(self.live))
        yield counter("pg_exporter_probe_targets_closed", "Probed targets whose pool was "
                      "closed, by reason: idle (not probed for idle_close_seconds), evicted "
                      "(room for another target).", labels=("reason",),
                      rows=[((r,), n) for r, n in self.closed.items()])
