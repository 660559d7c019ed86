"""Collectors and the scheduler that runs them in the background into snapshots.

A scrape never waits on the watched system for a collector with an interval: it is
served the last rendered snapshot, so database load is set by the interval, not by
how many Prometheus servers scrape. Collectors with interval 0 run inside the scrape,
bounded by the scrape's deadline; a stuck run is reported, never awaited.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.core import Metric

from saasmon.runtime.families import counter, gauge
from saasmon.runtime.logs import SecretRegistry, log_fields

log = logging.getLogger("saasmon.collector")

# Bounded set of reasons: error text never becomes a label.
REASONS = ("timeout", "connection", "query", "auth", "other")


STOP_TIMEOUT = 5.0
# The scrape's deadline: Prometheus' scrape timeout header (its default when absent) less
# a margin to receive and parse the answer.
DEFAULT_SCRAPE_TIMEOUT = 10.0
SCRAPE_DEADLINE_MARGIN = 0.5
# The longest a collector run inside the scrape (interval 0) is waited for under
# Prometheus' default scrape timeout: a run that needs longer is reported as a timeout on
# every scrape, its late result never served.
ON_SCRAPE_BUDGET = DEFAULT_SCRAPE_TIMEOUT - SCRAPE_DEADLINE_MARGIN


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a finished run's exception as seen: a run nobody waits for any more must not
    end in asyncio's 'Task exception was never retrieved' noise."""
    if not task.cancelled():
        task.exception()


async def _all(runs: list[Any]) -> None:
    """Await the coroutines: one in the caller's task, several side by side."""
    if len(runs) == 1:
        await runs[0]
    else:
        await asyncio.gather(*runs)


class CollectorError(Exception):
    """Raised by collectors with a bounded `reason` for the error counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason if reason in REASONS else "other"


class Lane(Protocol):
    """Something collectors share (a connection pool) that an on-scrape round can hold
    across runs: `width` sessions at once, each used by one run after another."""

    @property
    def width(self) -> int: ...

    def session(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Open a session; the caller bounds the time it takes."""
        ...


class Collector(abc.ABC):
    """One query group against one target. Subclasses only know how to read metrics."""

    name: str = "collector"

    def __init__(self, target: str, interval: float, timeout: float) -> None:
        self.target = target
        self.interval = interval
        self.timeout = timeout

    @property
    def key(self) -> str:
        return f"{self.name}/{self.target}"

    @abc.abstractmethod
    async def collect(self) -> list[Metric]:
        """Read the target and return complete metric families."""

    def lane(self) -> Lane | None:
        """What this collector's on-scrape runs may share with others (None: nothing; the
        run is `collect()` in a task of its own)."""
        return None

    async def collect_in(self, session: Any) -> list[Metric]:
        """`collect()` on a session of `lane()`, already open."""
        return await self.collect()

    def classify(self, exc: BaseException) -> str:
        """Map an exception to a reason; exporters refine this for their drivers."""
        if isinstance(exc, CollectorError):
            return exc.reason
        if isinstance(exc, TimeoutError):
            return "timeout"
        if isinstance(exc, ConnectionError | OSError):
            return "connection"
        return "other"


@dataclass
class CollectorState:
    collector: Collector
    families: list[Metric] = field(default_factory=list)
    duration: float = 0.0
    success: bool = False
    finished_at: float = 0.0
    last_success: float = 0.0
    last_reason: str | None = None
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    # The running background run, or the on-scrape round this collector is part of.
    task: asyncio.Task[Any] | None = None


@dataclass
class _Round:
    """One run of every on-scrape collector, shared by the scrapes that overlap it.

    Each run's outcome (families or exception, and when it ended) is recorded once, by
    the first scrape that sees it; a run still going when a scrape's deadline passes is
    that scrape's timeout, as a stuck background run is.
    """

    started: float
    outcomes: dict[int, tuple[float, list[Metric] | BaseException]] = field(
        default_factory=dict)
    recorded: set[int] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Scheduler:
    """Runs collectors, keeps their last families and the exporter's self-metrics."""

    def __init__(self, namespace: str, collectors: Sequence[Collector]) -> None:
        self.namespace = namespace
        self.states = [CollectorState(c) for c in collectors]
        self.targets = sorted({c.target for c in collectors})
        self._loops: list[asyncio.Task[None]] = []
        self._on_scrape = [(i, s) for i, s in enumerate(self.states)
                           if s.collector.interval <= 0]
        self._round: _Round | None = None
        self.generation = 0  # bumped on every finished background run: render cache key
        self.first_round = asyncio.Event()

    # -- running -----------------------------------------------------------------
    def start(self) -> None:
        background = [s for s in self.states if s.collector.interval > 0]
        for index, state in enumerate(background):
            # Spread the first runs (at most 1 s apart in all) so collectors that share a
            # small connection pool do not queue for it and time out on a slow server.
            offset = index * min(1.0, state.collector.interval) / len(background)
            self._loops.append(asyncio.create_task(self._loop(state, offset)))
        if not background:
            self.first_round.set()

    async def stop(self) -> None:
        tasks: list[asyncio.Task[Any]] = [*self._loops]
        tasks += [s.task for s in self.states if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a run that ignores cancellation must not hang a reload or shutdown.
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)

    async def _loop(self, state: CollectorState, offset: float = 0.0) -> None:
        await asyncio.sleep(offset)
        while True:
            started = time.monotonic()
            try:
                await self.run_once(state, state.collector.timeout)
            except Exception:  # a bug in one collector must not end its schedule
                log.exception("collector round crashed",
                              extra=log_fields(collector=state.collector.key))
            if all(s.finished_at for s in self.states if s.collector.interval > 0):
                self.first_round.set()
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, state.collector.interval - elapsed))

    async def run_once(self, state: CollectorState, deadline: float) -> None:
        """Wait at most `deadline` seconds for a run; never start a second run beside one.

        The run bounds itself by the collector's own timeout, so callers only stop
        waiting: two overlapping scrapes with different deadlines never cancel each
        other's run, and a run that ignores cancellation is reported, not awaited.
        """
        collector = state.collector
        started = time.monotonic()
        task = state.task
        if task is None or task.done():
            task = state.task = asyncio.create_task(
                asyncio.wait_for(collector.collect(), collector.timeout))
            task.add_done_callback(_retrieve)
        done, _ = await asyncio.wait({task}, timeout=max(deadline, 0.001))
        duration = time.monotonic() - started
        if not done:
            self._record(state, duration, None, deadline)
        elif task.cancelled():
            self._record(state, duration, TimeoutError("run cancelled"), deadline)
        else:
            self._record(state, duration, task.exception() or task.result(), deadline)

    def _record(self, state: CollectorState, duration: float,
                outcome: list[Metric] | BaseException | None, deadline: float) -> None:
        """A finished run's families or exception; None: no result within `deadline`."""
        collector = state.collector
        state.duration = duration
        state.finished_at = time.time()
        if outcome is None:
            self._fail(state, "timeout", f"no result within {deadline:.2f}s")
        elif isinstance(outcome, BaseException):
            self._fail(state, collector.classify(outcome), str(outcome) or type(outcome).__name__)
        else:
            state.families = outcome
            if state.last_reason is not None:
                log.info("collector recovered", extra=log_fields(collector=collector.key))
            state.success = True
            state.last_success = state.finished_at
            state.last_reason = None
        self.generation += 1

    def _fail(self, state: CollectorState, reason: str, message: str) -> None:
        # Stale values would look like live data: a failed collector exports nothing.
        state.families = []
        state.success = False
        state.errors[reason] += 1
        if state.last_reason != reason:
            # One line when the failure starts or changes, not one per interval.
            log.warning(
                "collector failed",
                extra=log_fields(collector=state.collector.key, reason=reason,
                                 error=SecretRegistry.mask(message)[:300]),
            )
        state.last_reason = reason

    async def collect_on_scrape(self, deadline: float) -> None:
        """Run interval-0 collectors within the scrape's deadline, as one round.

        A round runs collectors that share a lane (a connection pool) one after another on
        the lane's sessions (as many at once as the lane is wide), one session held across
        runs; every other collector runs in a task of its own. Each run is bounded by its
        collector's timeout from the round's start (waiting for a session included), as
        concurrent runs were. A scrape that comes while a round is going joins it: never a
        second run beside one, and a short deadline never cancels a longer one's run.
        """
        if not self._on_scrape:
            return
        rnd = self._round
        if rnd is None or rnd.task is None or rnd.task.done():
            rnd = self._round = self._start_round()
        assert rnd.task is not None
        started = time.monotonic()
        if not rnd.task.done():
            await asyncio.wait({rnd.task}, timeout=max(deadline, 0.001))
        waited = time.monotonic() - started
        for index, state in self._on_scrape:
            outcome = rnd.outcomes.get(index)
            if outcome is None:
                self._record(state, waited, None, min(state.collector.timeout, deadline))
            elif index not in rnd.recorded:
                rnd.recorded.add(index)
                self._record(state, outcome[0], outcome[1], deadline)

    def _start_round(self) -> _Round:
        rnd = _Round(time.monotonic())
        lanes: dict[int, tuple[Lane | None, deque[tuple[int, CollectorState]]]] = {}
        for index, state in self._on_scrape:
            lane = state.collector.lane()
            key = id(lane) if lane is not None else -1 - index  # no lane: a queue alone
            lanes.setdefault(key, (lane, deque()))[1].append((index, state))
        workers = [self._lane(rnd, lane, queue)
                   for lane, queue in lanes.values()
                   for _ in range(min(lane.width, len(queue)) if lane is not None else 1)]
        rnd.task = asyncio.create_task(_all(workers))
        rnd.task.add_done_callback(_retrieve)
        for _, state in self._on_scrape:
            state.task = rnd.task
        return rnd

    async def _lane(self, rnd: _Round, lane: Lane | None,
                    queue: deque[tuple[int, CollectorState]]) -> None:
        """Run the queue's collectors one after another; a failed run's session is given
        back (it may be unusable) and the next run opens a fresh one."""
        session: contextlib.AsyncExitStack | None = None
        opened: Any = None

        async def give_back() -> None:
            nonlocal session
            held, session = session, None
            if held is not None:
                with contextlib.suppress(Exception):  # the run's own error is what counts
                    await held.aclose()

        try:
            while queue:
                deadline = rnd.started + queue[0][1].collector.timeout
                running: int | None = None
                try:
                    # Consecutive runs with the same deadline (one timeout_seconds, the
                    # usual case) share one timer: when it fires, the run in flight is cut
                    # and the next ones, past their deadline too, are cut at their start.
                    async with asyncio.timeout_at(deadline):
                        while queue and rnd.started + queue[0][1].collector.timeout == deadline:
                            running, state = queue.popleft()
                            outcome: list[Metric] | BaseException
                            try:
                                if lane is None:
                                    outcome = await state.collector.collect()
                                else:
                                    if session is None:
                                        session = contextlib.AsyncExitStack()
                                        opened = await session.enter_async_context(
                                            lane.session())
                                    outcome = await state.collector.collect_in(opened)
                            except Exception as exc:  # the run's failure, classified later
                                outcome = exc
                            rnd.outcomes[running] = (time.monotonic() - rnd.started, outcome)
                            running = None
                            if isinstance(outcome, BaseException):
                                await give_back()
                except TimeoutError as exc:  # the shared timer fired
                    if running is not None:
                        rnd.outcomes[running] = (time.monotonic() - rnd.started, exc)
                    await give_back()
        finally:
            await give_back()

    # -- output ------------------------------------------------------------------
    def data_families(self) -> list[Metric]:
        """Families from every collector, merged by name (targets share metric names)."""
        merged: dict[str, Metric] = {}
        copied: set[str] = set()
        for state in self.states:
            for family in state.families:
                into = merged.get(family.name)
                if into is None:
                    # Alone under its name (one target): served as it is, no copy.
                    merged[family.name] = family
                    continue
                if family.name not in copied:
                    copied.add(family.name)
                    first, into = into, Metric(family.name, family.documentation, family.type,
                                               family.unit)
                    into.samples.extend(first.samples)
                    merged[family.name] = into
                into.samples.extend(family.samples)
        return list(merged.values())

    def up(self, target: str) -> int:
        """1 when the most recent finished run against the target reached it."""
        runs = [s for s in self.states if s.collector.target == target and s.finished_at]
        if not runs:
            return 0
        latest = max(runs, key=lambda s: s.finished_at)
        return 0 if latest.last_reason in ("timeout", "connection", "auth") else 1

    def self_families(self) -> Iterable[Metric]:
        if not self.states:
            return  # a request-fed exporter (relay, beacons) has no targets to report on
        ns = self.namespace
        yield gauge(f"{ns}_up", "Whether the last collection reached the target.",
                    labels=("target",), rows=[((t,), self.up(t)) for t in self.targets])
        labels = ("collector", "target")
        keys = [((s.collector.name, s.collector.target), s) for s in self.states]
        yield gauge(f"{ns}_exporter_collector_duration_seconds",
                    "Duration of the collector's last run.", labels=labels,
                    rows=[(key, s.duration) for key, s in keys])
        yield gauge(f"{ns}_exporter_collector_success",
                    "Whether the collector's last run succeeded.", labels=labels,
                    rows=[(key, 1 if s.success else 0) for key, s in keys])
        yield gauge(f"{ns}_exporter_collector_last_success_timestamp_seconds",
                    "Unix time of the collector's last successful run.", labels=labels,
                    rows=[(key, s.last_success) for key, s in keys])
        yield counter(f"{ns}_exporter_collector_errors", "Failed collector runs by reason.",
                      labels=(*labels, "reason"),
                      rows=[((*key, reason), count) for key, s in keys
                            for reason, count in s.errors.items()])
