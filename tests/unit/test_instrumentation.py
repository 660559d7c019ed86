"""The aiohttp instrumentation middleware on real in-process aiohttp servers."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from exporters.instrumentation.aiohttp import (
    ERROR_CLASSES,
    LATENCY_BUCKETS,
    UNMATCHED_ROUTE,
    Instrumentation,
    http_metrics,
    instrument,
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
