"""The aiohttp instrumentation middleware on real in-process aiohttp servers."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from devstack.metrics import parse_openmetrics
from devstack.prometheus import Prometheus
from devstack.servers import PostgresServer
from devstack.wait import wait_until
from saasmon.instrumentation.aiohttp import (
    ERROR_CLASSES,
    LATENCY_BUCKETS,
    UNMATCHED_ROUTE,
    Instrumentation,
    http_metrics,
    instrument,
)
from saasmon.instrumentation.asyncpg import (
    STATEMENT_ERROR_CLASSES,
    StatementMetrics,
    error_class,
)


class FakeClock:
    """Monotonic seconds that only move when a handler says how long it took."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def bucket(registry: CollectorRegistry, le: str, **labels: str) -> float:
    return sample(registry, "http_request_duration_seconds_bucket", le=le, **labels)


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def test_bucket_edges_are_the_guides_latency_thresholds() -> None:
    # nova-crm 500 ms/1 s, dirt-free-crm 300 ms/500 ms/1 s/2 s/5 s and 30 s timeouts,
    # tpt-erp 200 ms/500 ms/2 s/5 s/10 s, estimate-library 100 ms/200 ms, 50 ms lookups.
    assert LATENCY_BUCKETS == (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


async def test_each_latency_lands_in_the_first_bucket_at_or_above_it() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    app = web.Application()

    async def took(request: web.Request) -> web.Response:
        clock.now += float(request.query["s"])  # the handler "takes" this long
        return web.Response(text="ok")

    app.router.add_get("/took", took)
    instrumentation = Instrumentation(registry, clock=clock)
    app.middlewares.append(instrumentation.middleware)
    durations = [0.049, 0.05, 0.35, 0.7, 1.5, 4.9, 31.0]
    async with serve(app) as client:
        for seconds in durations:
            assert (await client.get("/took", params={"s": str(seconds)})).status == 200
    labels = {"method": "GET", "route": "/took"}
    for edge in LATENCY_BUCKETS:
        expected = sum(1 for d in durations if d <= edge)
        assert bucket(registry, str(edge), **labels) == expected, edge
    # 0.35 s: inside <= 0.5 s, not <= 0.3 s; an edge value itself counts as "under" it.
    assert bucket(registry, "0.3", **labels) == 2 and bucket(registry, "0.5", **labels) == 3
    assert bucket(registry, "+Inf", **labels) == len(durations)
    assert sample(registry, "http_request_duration_seconds_sum", **labels) == pytest.approx(
        sum(durations))


async def test_a_handler_really_sleeping_350ms_is_not_under_300ms() -> None:
    registry = CollectorRegistry()
    app = web.Application()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.35)
        return web.Response(text="ok")

    app.router.add_get("/slow", slow)
    instrument(app, registry)
    async with serve(app) as client:
        assert (await client.get("/slow")).status == 200
    labels = {"method": "GET", "route": "/slow"}
    # A sleep lasts at least its time: the lower edge is exact; no upper bound on a busy box.
    assert bucket(registry, "0.3", **labels) == 0
    assert bucket(registry, "+Inf", **labels) == 1


async def test_route_label_is_the_pattern_and_unmatched_paths_share_one_value() -> None:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/customers/{id}", ok)
    sub = web.Application()
    sub.router.add_get("/items/{name}", ok)
    app.add_subapp("/shop", sub)
    instrument(app, registry)
    async with serve(app) as client:
        for path in ("/customers/1", "/customers/2", "/customers/abc", "/shop/items/x"):
            assert (await client.get(path)).status == 200
        for path in ("/nope", "/also/not/here", "/customers"):
            assert (await client.get(path)).status == 404
        assert (await client.post("/customers/1")).status == 405
    requests = "http_requests_total"
    assert sample(registry, requests, method="GET", route="/customers/{id}", status="200") == 3
    assert sample(registry, requests, method="GET", route="/shop/items/{name}",
                  status="200") == 1
    assert sample(registry, requests, method="GET", route=UNMATCHED_ROUTE, status="404") == 3
    assert sample(registry, requests, method="POST", route=UNMATCHED_ROUTE, status="405") == 1
    text = generate_latest(registry).decode()
    assert "/customers/1" not in text and "/nope" not in text


async def test_errors_are_counted_once_by_class_and_statuses_include_raised_5xx() -> None:
    registry = CollectorRegistry()
    app = web.Application()

    async def raise_503(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable()

    async def return_500(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def boom(request: web.Request) -> web.Response:
        raise ValueError("bug")

    async def raise_timeout(request: web.Request) -> web.Response:
        raise TimeoutError

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(text="late")

    async def not_found(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    for path, handler in (("/raise503", raise_503), ("/return500", return_500), ("/boom", boom),
                          ("/raise-timeout", raise_timeout), ("/hang", hang),
                          ("/missing", not_found), ("/ok", ok)):
        app.router.add_get(path, handler)
    instrument(app, registry, handler_timeout=0.2)
    async with serve(app) as client:
        statuses = {path: (await client.get(path)).status
                    for path in ("/raise503", "/return500", "/boom", "/raise-timeout", "/hang",
                                 "/missing", "/ok")}
    assert statuses == {"/raise503": 503, "/return500": 500, "/boom": 500,
                        "/raise-timeout": 504, "/hang": 504, "/missing": 404, "/ok": 200}
    for path, status in statuses.items():
        assert sample(registry, "http_requests_total", method="GET", route=path,
                      status=str(status)) == 1, path
    expected = {"/raise503": "5xx", "/return500": "5xx", "/boom": "exception",
                "/raise-timeout": "timeout", "/hang": "timeout", "/missing": "4xx"}
    for path in statuses:
        for cls in ERROR_CLASSES:
            want = 1 if expected.get(path) == cls else 0
            assert sample(registry, "http_request_errors_total", route=path,
                          **{"class": cls}) == want, (path, cls)


async def test_in_flight_counts_waiting_requests_and_returns_to_zero() -> None:
    registry = CollectorRegistry()
    app = web.Application()
    release, entered = asyncio.Event(), asyncio.Queue[None]()

    async def wait(request: web.Request) -> web.Response:
        entered.put_nowait(None)
        await release.wait()
        if request.query.get("fail"):
            raise RuntimeError("after waiting")
        return web.Response(text="done")

    app.router.add_get("/wait", wait)
    instrument(app, registry)
    async with serve(app) as client:
        calls = [asyncio.create_task(client.get("/wait")),
                 asyncio.create_task(client.get("/wait", params={"fail": "1"}))]
        for _ in calls:
            await asyncio.wait_for(entered.get(), 10)
        assert sample(registry, "http_requests_in_flight") == 2
        release.set()
        statuses = sorted([(await c).status for c in calls])
    assert statuses == [200, 500]
    assert sample(registry, "http_requests_in_flight") == 0


async def test_error_series_exist_at_zero_for_every_route_from_the_start() -> None:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/a", ok)
    app.router.add_post("/b/{id}", ok)
    sub = web.Application()
    sub.router.add_get("/c", ok)
    app.add_subapp("/sub", sub)
    instrument(app, registry)
    async with serve(app):
        pass
    for route in ("/a", "/b/{id}", "/metrics", UNMATCHED_ROUTE):
        for cls in ERROR_CLASSES:
            assert registry.get_sample_value("http_request_errors_total",
                                             {"route": route, "class": cls}) == 0
    # The sub-app's prefix is no route of its own: no series that could never move.
    assert registry.get_sample_value("http_request_errors_total",
                                     {"route": "/sub", "class": "4xx"}) is None


async def test_websocket_upgrade_is_counted_but_its_lifetime_is_not_latency() -> None:
    registry = CollectorRegistry()
    app = web.Application()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app.router.add_get("/ws", ws_handler)
    instrument(app, registry)
    async with serve(app) as client:
        ws = await client.ws_connect("/ws")
        await ws.send_str("hi")
        await ws.close()
        for _ in range(100):  # the handler returns once the server side sees the close
            if sample(registry, "http_requests_total", method="GET", route="/ws",
                      status="101"):
                break
            await asyncio.sleep(0.02)
    assert sample(registry, "http_requests_total", method="GET", route="/ws", status="101") == 1
    assert sample(registry, "http_request_duration_seconds_count", method="GET",
                  route="/ws") == 0


async def test_unusual_methods_share_the_label_other_and_excluded_routes_are_skipped() -> None:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/a", ok)
    app.router.add_get("/healthz", ok)
    instrument(app, registry, exclude=["/healthz"])
    async with serve(app) as client:
        assert (await client.request("PURGE", "/a")).status == 405
        assert (await client.get("/healthz")).status == 200
    assert sample(registry, "http_requests_total", method="other", route=UNMATCHED_ROUTE,
                  status="405") == 1
    assert sample(registry, "http_requests_total", method="GET", route="/healthz",
                  status="200") == 0


async def test_default_registry_is_used_and_shared_between_apps() -> None:
    apps = [web.Application(), web.Application()]
    for app in apps:
        app.router.add_get("/default-registry-probe", ok)
        instrument(app)  # no registry: prometheus_client's REGISTRY, the 3-line usage
    before = sample(REGISTRY, "http_requests_total", method="GET",
                    route="/default-registry-probe", status="200")
    for app in apps:
        async with serve(app) as client:
            assert (await client.get("/default-registry-probe")).status == 200
            metrics = await client.get("/metrics")
            assert 'route="/default-registry-probe"' in await metrics.text()
    after = sample(REGISTRY, "http_requests_total", method="GET",
                   route="/default-registry-probe", status="200")
    assert after - before == 2
    with pytest.raises(ValueError, match="other buckets"):
        http_metrics(REGISTRY, buckets=(1.0, 2.0))


async def test_metrics_route_output_passes_promtool_check() -> None:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/x/{id}", ok)
    instrument(app, registry)
    async with serve(app) as client:
        await client.get("/x/1")
        await client.get("/missing")
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert 'http_request_duration_seconds_bucket{le="0.3",method="GET",route="/x/{id}"} 1.0' \
        in text
    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_bad_handler_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="handler_timeout"):
        Instrumentation(CollectorRegistry(), handler_timeout=0)


# -- database statements (saasmon.instrumentation.asyncpg) -----------------------------------
async def _until(check: Callable[[], bool]) -> None:
    """The query logger reports through the event loop (call_soon): let it run."""
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the query logger never reported")


@pytest.mark.integration  # a real PostgreSQL
async def test_failed_statements_are_counted_by_sqlstate_class_and_rollbacks_are_not(
        postgres: PostgresServer) -> None:
    """Statements of a real pool: a routine ROLLBACK is a statement, not an error; a failed
    statement counts once, by its SQLSTATE class."""
    registry = CollectorRegistry()
    metrics = StatementMetrics(registry)
    pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1, init=metrics.init)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
            await conn.execute("INSERT INTO t VALUES ($1)", 1)
            # What an ORM does on every read-only request: BEGIN, SELECT, ROLLBACK.
            tx = conn.transaction()
            await tx.start()
            await conn.fetchval("SELECT count(*) FROM t")
            await tx.rollback()
            await _until(lambda: sample(registry, "db_statements_total") >= 5)
            assert sample(registry, "db_statements_total") == 5
            assert sum(sample(registry, "db_statement_errors_total", **{"class": c})
                       for c in STATEMENT_ERROR_CLASSES) == 0
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("INSERT INTO t VALUES ($1)", 1)
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.fetchval("SELECT 1 / 0")
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM missing_table")
            with pytest.raises(TimeoutError):
                await conn.execute("SELECT pg_sleep(5)", timeout=0.2)
        await _until(lambda: sample(registry, "db_statements_total") >= 9)
    finally:
        await pool.close()
    errors = {c: sample(registry, "db_statement_errors_total", **{"class": c})
              for c in STATEMENT_ERROR_CLASSES}
    assert {c: n for c, n in errors.items() if n} == {"23": 1, "22": 1, "42": 1, "client": 1}
    assert sample(registry, "db_statements_total") >= 9


def test_every_error_class_exists_at_zero_before_the_first_error() -> None:
    registry = CollectorRegistry()
    StatementMetrics(registry)
    StatementMetrics(registry)  # a second pool of the same app shares the families
    text = generate_latest(registry).decode()
    for cls in STATEMENT_ERROR_CLASSES:
        assert f'db_statement_errors_total{{class="{cls}"}} 0.0' in text
    assert "db_statements_total 0.0" in text


def test_sqlstate_outside_the_known_classes_is_other() -> None:
    class Odd(Exception):
        sqlstate = "ZZ001"

    assert error_class(Odd()) == "other"
    assert error_class(asyncpg.DeadlockDetectedError()) == "40"
    assert error_class(OSError()) == "client"
# -- exposition: formats, gzip, *_created ----------------------------------------------

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
# What Prometheus 2.42 (the one in Debian 12) sends on every scrape.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


async def scrape_raw(app: web.Application, **headers: str) -> tuple[dict[str, str], bytes]:
    """GET /metrics as sent: no decompression by the client (which asks for identity
    unless told otherwise)."""
    headers = {"Accept-Encoding": "identity", **headers}
    client = TestClient(TestServer(app), auto_decompress=False)
    await client.start_server()
    try:
        await client.get("/x/1")
        response = await client.get("/metrics", headers=headers)
        assert response.status == 200
        return dict(response.headers), await response.read()
    finally:
        await client.close()


def created_names(text: str) -> list[str]:
    return [line for line in text.splitlines() if "_created" in line.split(" ")[0]]


@pytest.mark.parametrize("accept", ["", OPENMETRICS], ids=["text", "openmetrics"])
async def test_metrics_route_leaves_out_created_series_unless_asked(accept: str) -> None:
    found = {}
    for asked in (False, True):
        registry = CollectorRegistry()
        app = web.Application()
        app.router.add_get("/x/{id}", ok)
        instrument(app, registry, created_series=asked)
        _, body = await scrape_raw(app, Accept=accept)
        found[asked] = created_names(body.decode())
    assert found[False] == []
    # Asked for: every counter and histogram series has its creation time again.
    assert any(n.startswith("http_requests_created") for n in found[True]), found[True]
    assert any(n.startswith("http_request_duration_seconds_created") for n in found[True])


async def test_metrics_route_negotiates_openmetrics_and_gzip_like_prometheus() -> None:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/x/{id}", ok)
    instrument(app, registry)
    headers, body = await scrape_raw(app, Accept=PROMETHEUS_ACCEPT, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    # prometheus_client's OpenMetrics parser is strict: it refuses anything out of place.
    names = {f.name for f in parse_openmetrics(text)}
    assert {"http_requests", "http_request_duration_seconds", "http_request_errors"} <= names

    # Text preferred by q (Prometheus >= 2.49 with scrape_protocols text first): text.
    headers, body = await scrape_raw(
        app, Accept="text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.5",
        **{"Accept-Encoding": "gzip;q=0, identity"})
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in headers
    assert b"# EOF" not in body


def prometheus_config(port: int) -> dict[str, Any]:
    return {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "app",
                                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}


@pytest.mark.integration  # a real Prometheus
async def test_prometheus_scrapes_openmetrics_with_exemplars_and_units(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/x/{id}", ok)
    instrument(app, registry)
    # What an app adds beside the middleware: exemplars (OpenMetrics only) and a unit.
    jobs = Counter("demo_jobs", "Jobs done.", registry=registry)
    jobs.inc(exemplar={"trace_id": "4bf92f3577b34da6"})
    waits = Histogram("demo_wait_seconds", "Waits.", buckets=(0.1, 1.0), registry=registry)
    waits.observe(0.05, exemplar={"trace_id": "00f067aa0ba902b7"})
    Gauge("demo_queue", "Queued bytes.", unit="bytes", registry=registry).set(512)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    prometheus = Prometheus(tmp_path, prometheus_config(server.port or 0),
                            flags=["--enable-feature=exemplar-storage"])
    try:
        await asyncio.to_thread(prometheus.start)

        def scraped() -> list[dict[str, Any]] | None:
            targets = prometheus.api("targets")["activeTargets"]
            return targets if targets and targets[0]["health"] == "up" else None

        targets = await asyncio.to_thread(wait_until, "target up", scraped, 30)
        assert targets[0]["lastError"] == ""
        # The metadata is keyed by the family name: Prometheus parsed OpenMetrics.
        metadata = await asyncio.to_thread(prometheus.api, "targets/metadata",
                                           metric="http_requests")
        assert metadata and metadata[0]["type"] == "counter", metadata
        values = await asyncio.to_thread(prometheus.query, "demo_queue_bytes")
        assert float(values[0]["value"][1]) == 512

        def exemplars() -> list[str]:
            now = time.time()
            found = prometheus.api("query_exemplars", query='{__name__=~"demo_.+"}',
                                   start=str(now - 60), end=str(now + 1))
            return sorted(e["labels"]["trace_id"] for series in found
                          for e in series["exemplars"])

        assert await asyncio.to_thread(wait_until, "exemplars", exemplars, 30) == \
            ["00f067aa0ba902b7", "4bf92f3577b34da6"]
        assert await asyncio.to_thread(prometheus.query, "http_requests_created") == []
    finally:
        await asyncio.to_thread(prometheus.stop)
        await server.close()
