"""The shared runtime: scheduling, deadlines and self-metrics, with in-process collectors.

These collectors are test doubles of *our own* abstraction (not of PostgreSQL or Redis):
they let a test pin down behaviour such as "a collector that ignores cancellation"
that no real server produces on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from devstack.metrics import Samples, parse, value
from saasmon.runtime.collector import Collector, CollectorError, Scheduler
from saasmon.runtime.server import render


class Stubborn(Collector):
    """Never finishes and swallows cancellation once, like a driver stuck in C code."""

    name = "stubborn"

    async def collect(self) -> list[Metric]:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)
        return []


class Counting(Collector):
    name = "counting"

    def __init__(self, target: str, interval: float, timeout: float) -> None:
        super().__init__(target, interval, timeout)
        self.runs = 0

    async def collect(self) -> list[Metric]:
        self.runs += 1
        family = GaugeMetricFamily("demo_runs", "Runs so far.")
        family.add_metric([], self.runs)
        return [family]


class Failing(Collector):
    name = "failing"

    async def collect(self) -> list[Metric]:
        raise CollectorError("query", "relation does not exist")


async def test_stuck_collector_is_reported_not_awaited() -> None:
    scheduler = Scheduler("demo", [Stubborn("t", 0, 30)])
    await scheduler.collect_on_scrape(deadline=0.2)
    samples = parse(render(scheduler.self_families()).decode())
    assert value(samples, "demo_exporter_collector_success", collector="stubborn") == 0
    assert value(samples, "demo_exporter_collector_errors_total", reason="timeout") == 1
    assert value(samples, "demo_up", target="t") == 0
    # A second scrape does not start a second stuck run on top of the first.
    task = scheduler.states[0].task
    await scheduler.collect_on_scrape(deadline=0.1)
    assert scheduler.states[0].task is task
    # Reported, not awaited: the scrapes returned while the stuck run (timeout 30 s) goes on.
    assert task is not None and not task.done()
    await scheduler.stop()


async def test_background_collection_is_independent_of_scrapes() -> None:
    collector = Counting("t", interval=3600, timeout=1)
    scheduler = Scheduler("demo", [collector])
    scheduler.start()
    await asyncio.wait_for(scheduler.first_round.wait(), 5)
    for _ in range(20):
        await scheduler.collect_on_scrape(deadline=1)
        render(scheduler.data_families())
    assert collector.runs == 1
    await scheduler.stop()


async def test_failed_collector_drops_its_values_and_counts_reason() -> None:
    scheduler = Scheduler("demo", [Failing("t", 0, 1), Counting("t", 0, 1)])
    await scheduler.collect_on_scrape(deadline=1)
    await scheduler.collect_on_scrape(deadline=1)
    samples = parse(render([*scheduler.data_families(), *scheduler.self_families()]).decode())
    assert value(samples, "demo_runs") == 2
    assert value(samples, "demo_exporter_collector_errors_total", collector="failing",
                 reason="query") == 2
    assert value(samples, "demo_exporter_collector_success", collector="counting") == 1
    # A query error means the target answered: up stays 1.
    assert value(samples, "demo_up", target="t") == 1


async def test_families_of_several_targets_merge_into_one_family() -> None:
    scheduler = Scheduler("demo", [Counting("a", 0, 1), Counting("b", 0, 1)])
    await scheduler.collect_on_scrape(deadline=1)
    text = render(scheduler.data_families()).decode()
    assert text.count("# TYPE demo_runs gauge") == 1


class Slow(Collector):
    name = "slow"

    async def collect(self) -> list[Metric]:
        await asyncio.sleep(0.5)
        family = GaugeMetricFamily("demo_slow", "Finished slow runs.")
        family.add_metric([], 1)
        return [family]


async def test_overlapping_scrapes_with_different_deadlines_both_answer() -> None:
    """A short-deadline scrape gives up waiting; it must not cancel the longer one's run."""
    scheduler = Scheduler("demo", [Slow("t", 0, 5)])
    short, long = await asyncio.gather(
        scheduler.collect_on_scrape(deadline=0.05),
        scheduler.collect_on_scrape(deadline=3),
        return_exceptions=True)
    assert short is None and long is None
    samples = parse(render([*scheduler.data_families(), *scheduler.self_families()]).decode())
    assert value(samples, "demo_slow") == 1
    assert value(samples, "demo_exporter_collector_errors_total", reason="timeout") == 1


def test_log_lines_mask_secrets_that_json_would_escape() -> None:
    import logging

    from saasmon.runtime.logs import JsonFormatter, SecretRegistry

    secret = 'pä"ss\\wörd-42'
    SecretRegistry.add(secret)
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, f"failed with {secret}",
                               None, None)
    record.fields = {"error": f"dsn postgresql://u:{secret}@h/db"}
    line = JsonFormatter("test").format(record)
    assert secret not in line
    assert "ss\\\\w" not in line and "p\\u00e4" not in line and "wörd" not in line


def test_secret_looking_values_are_masked_even_when_never_registered() -> None:
    """A rotated password is new to the registry: its shape must be enough to mask it."""
    from saasmon.runtime.logs import SecretRegistry

    texts = [
        "dsn: postgresql://app:N3w-r0tated@db.internal:5432/app",
        "url: redis://:N3w-r0tated@cache:6379/0",
        "password: N3w-r0tated",
        'auth_token="N3w-r0tated"',
        "SET my.api_key = N3w-r0tated",
        "Authorization: Bearer N3w-r0tated",
    ]
    for text in texts:
        masked = SecretRegistry.mask(text)
        assert "N3w-r0tated" not in masked, masked
    # Paths to secret files and plain prose stay readable.
    kept = "auth_token_file: /run/secrets/twilio; password authentication failed for user"
    assert SecretRegistry.mask(kept) == kept


class CountingAuth:
    """BasicAuth whose bcrypt comparisons are counted, with the hash each one used."""

    @staticmethod
    def make(users: dict[str, str]) -> tuple[object, list[bytes]]:
        from saasmon.runtime.webconfig import BasicAuth

        seen: list[bytes] = []

        class Counted(BasicAuth):
            def verify(self, password: bytes, hashed: bytes) -> bool:
                seen.append(hashed)
                return super().verify(password, hashed)

        return Counted(users), seen


def _hash(password: str) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


async def test_basic_auth_checks_off_the_loop_and_caches_good_credentials() -> None:
    from saasmon.runtime.webconfig import BasicAuth

    auth, seen = CountingAuth.make({"prometheus": _hash("right")})
    assert isinstance(auth, BasicAuth)
    ticks = 0
    checking = True

    async def ticker() -> None:
        nonlocal ticks
        while checking:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    assert not await auth.check("prometheus", "wrong")
    # bcrypt ran in a thread: the loop kept turning while it worked.
    assert ticks > before
    checking = False
    await ticking

    assert await auth.check("prometheus", "right")
    assert len(seen) == 2
    for _ in range(5):
        assert await auth.check("prometheus", "right")
    assert len(seen) == 2  # cached: no bcrypt for a pair already verified
    assert not await auth.check("prometheus", "right ")
    assert len(seen) == 3  # a different password is checked again


async def test_unknown_user_costs_a_bcrypt_comparison_like_a_known_one() -> None:
    auth, seen = CountingAuth.make({"prometheus": _hash("right")})
    from saasmon.runtime.webconfig import BasicAuth

    assert isinstance(auth, BasicAuth)
    assert not await auth.check("nobody", "right")
    assert not await auth.check("nobody", "right")
    # Both refusals went through bcrypt, against a dummy hash of the users' cost.
    assert len(seen) == 2 and seen[0] not in {h.encode() for h in auth.users.values()}
    assert seen[0].startswith(b"$2b$04$")


def test_release_free_memory_is_safe_to_call_more_than_once() -> None:
    # glibc: malloc_trim's answer (whether pages were returned); elsewhere a gc only.
    from saasmon.runtime.memory import release_free_memory

    assert release_free_memory() in (True, False)
    assert release_free_memory() in (True, False)


class Pool:
    """A lane of our own abstraction: counts the sessions opened, `width` at once."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.opened = 0

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[int]:
        self.opened += 1
        yield self.opened


class OnLane(Collector):
    """Reads on a lane's session; `fail` raises, `hang` never answers."""

    def __init__(self, name: str, pool: Pool, timeout: float, *, fail: bool = False,
                 hang: bool = False) -> None:
        super().__init__("t", 0, timeout)
        self.name, self.pool, self.fail, self.hang = name, pool, fail, hang
        self.sessions: list[int] = []

    async def collect(self) -> list[Metric]:
        raise AssertionError("a collector with a lane runs on a session")

    def lane(self) -> Pool:
        return self.pool

    async def collect_in(self, session: Any) -> list[Metric]:
        self.sessions.append(session)
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail:
            raise CollectorError("query", "relation does not exist")
        family = GaugeMetricFamily(f"demo_{self.name}", "Read.")
        family.add_metric([], 1)
        return [family]


async def test_a_round_holds_one_session_per_lane_across_its_collectors() -> None:
    pool = Pool(width=1)
    collectors = [OnLane(name, pool, 1) for name in ("a", "b", "c")]
    scheduler = Scheduler("demo", collectors)
    await scheduler.collect_on_scrape(deadline=5)
    await scheduler.collect_on_scrape(deadline=5)
    samples = parse(render(scheduler.data_families()).decode())
    assert [value(samples, f"demo_{n}") for n in "abc"] == [1, 1, 1]
    assert pool.opened == 2  # one session per round, not one per collector
    assert [c.sessions for c in collectors] == [[1, 2]] * 3


async def one_round(collectors: list[OnLane]) -> Samples:
    """The samples (data and self-metrics) after one on-scrape round of `collectors`."""
    scheduler = Scheduler("demo", collectors)
    await scheduler.collect_on_scrape(deadline=5)
    return parse(render([*scheduler.data_families(), *scheduler.self_families()]).decode())


async def test_a_failed_run_gives_its_session_back_and_the_next_run_opens_another() -> None:
    pool = Pool(width=1)
    failing, after = OnLane("a", pool, 1, fail=True), OnLane("b", pool, 1)
    samples = await one_round([failing, after])
    assert value(samples, "demo_exporter_collector_errors_total", collector="a",
                 reason="query") == 1
    assert value(samples, "demo_b") == 1
    assert (failing.sessions, after.sessions) == ([1], [2])


async def test_each_run_on_a_lane_keeps_its_own_timeout() -> None:
    pool = Pool(width=1)
    hung, after = OnLane("a", pool, 0.1, hang=True), OnLane("b", pool, 5)
    samples = await one_round([hung, after])
    assert value(samples, "demo_exporter_collector_errors_total", collector="a",
                 reason="timeout") == 1
    assert value(samples, "demo_exporter_collector_success", collector="b") == 1
    assert value(samples, "demo_b") == 1
    assert after.sessions == [2]  # the cut run's session was not reused
