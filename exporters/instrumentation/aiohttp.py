"""Prometheus metrics for any aiohttp application: requests, latency, in-flight, errors.

Three lines in your own app (default registry, `GET /metrics` added):

    from saasmon.instrumentation.aiohttp import instrument
    app = web.Application()
    instrument(app)

Labels stay bounded: `route` is the matched resource's pattern (`/customers/{id}`), never
the raw path, and `unmatched` for anything the router did not match (404, 405); `method`
is one of the standard HTTP methods or `other`; errors fall into four fixed classes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from saasmon.runtime.exposition import metrics_response, without_created

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The route label of requests no resource matched: patterns always start with "/", so this
# can never collide with a real route.
UNMATCHED_ROUTE = "unmatched"
ERROR_CLASSES = ("4xx", "5xx", "exception", "timeout")
# A request the server cancelled (client gone, shutdown) never got a status: nginx's code.
CANCELLED_STATUS = 499
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
                      "TRACE"})

# One edge at every HTTP latency threshold the guides state, so each target/alert pair can
# be read off the histogram exactly (histogram_quantile interpolates between edges; a
# threshold that is an edge needs no interpolation for "share of requests under X").
LATENCY_BUCKETS: tuple[float, ...] = (
    # dirt-free-crm § Database Health: customer lookup < 50 ms; nova-crm § 1.1 database
    # queryTime target 50 ms (a request that does one lookup).
    0.05,
    # estimate-library § Key Metrics to Track: factor calculations < 100 ms;
    # dirt-free-crm § Database Health: opportunities query < 100 ms.
    0.1,
    # estimate-library § Key Metrics to Track: library search < 200 ms, § Success Criteria:
    # average response < 200 ms; tpt-erp § Performance Baselines: API average < 200 ms;
    # dirt-free-crm § Database Health: analytics query < 200 ms.
    0.2,
    # dirt-free-crm § Performance Metrics: p50 target < 300 ms.
    0.3,
    # nova-crm § 1.1 api.responseTime target 500 ms; dirt-free-crm § Performance Metrics:
    # p50 critical > 500 ms; tpt-erp § Performance Baselines: API p95 < 500 ms, § Performance
    # KPIs: critical operations < 500 ms.
    0.5,
    # nova-crm § 1.1 api.responseTime alert 1000 ms; dirt-free-crm § Performance Metrics and
    # § System Health Check: p95 < 1 s.
    1.0,
    # dirt-free-crm § Performance Metrics: p95 critical > 2 s, p99 target < 2 s, § Alert
    # Thresholds P1: p95 > 2 s; tpt-erp § Application Monitoring: alert > 2 s average;
    # nova-crm § 3.2: slow API call > 2000 ms, § 1.1 assistant responseTime target 2000 ms.
    2.0,
    # dirt-free-crm § Performance Metrics: p99 critical > 5 s; tpt-erp § Application
    # Performance Monitoring: slow request > 5 s; nova-crm § 1.1 assistant alert 5000 ms.
    5.0,
    # tpt-erp § Application Monitoring: critical > 10 s average.
    10.0,
    # dirt-free-crm § Performance Metrics: no timeouts (30 s+).
    30.0,
)


@dataclass(frozen=True)
class HttpMetrics:
    """The four metric families, registered once per registry."""

    registry: CollectorRegistry
    requests: Counter
    duration: Histogram
    in_flight: Gauge
    errors: Counter
    buckets: tuple[float, ...]


_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, HttpMetrics] = WeakKeyDictionary()


def http_metrics(registry: CollectorRegistry | None = None,
                 buckets: Iterable[float] = LATENCY_BUCKETS) -> HttpMetrics:
    """The HTTP metrics of `registry` (default: prometheus_client's REGISTRY).

    Created on first use and shared after that, so two apps (or two `instrument()` calls)
    in one process do not fail with duplicate time series.
    """
    registry = REGISTRY if registry is None else registry
    edges = tuple(sorted(float(b) for b in buckets))
    existing = _BY_REGISTRY.get(registry)
    if existing is not None:
        if existing.buckets != edges:
            raise ValueError("http metrics already registered with other buckets: "
                             f"{existing.buckets}")
        return existing
    metrics = HttpMetrics(
        registry=registry,
        requests=Counter("http_requests", "HTTP requests answered, by method, route pattern "
                         "and status code.", ["method", "route", "status"], registry=registry),
        duration=Histogram("http_request_duration_seconds", "Time from receiving a request to "
                           "its handler returning, by method and route pattern.",
                           ["method", "route"], buckets=edges, registry=registry),
        in_flight=Gauge("http_requests_in_flight", "HTTP requests being handled now.",
                        registry=registry),
        errors=Counter("http_request_errors", "Failed HTTP requests by route pattern and "
                       "class: 4xx, 5xx, exception (unhandled, answered 500) or timeout.",
                       ["route", "class"], registry=registry),
        buckets=edges,
    )
    _BY_REGISTRY[registry] = metrics
    return metrics


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


def error_class(status: int) -> str | None:
    if status == CANCELLED_STATUS:
        return None
    if 400 <= status < 500:
        return "4xx"
    if status >= 500:
        return "5xx"
    return None


class _HandlerTimeout(web.HTTPGatewayTimeout):
    """Our own deadline expired (not a TimeoutError the handler raised itself)."""


class Instrumentation:
    """The middleware and its settings; `instrument()` is the short way to install it.

    `handler_timeout` (seconds, optional) answers 504 when a handler takes longer and counts
    it as class `timeout`; so does a TimeoutError escaping a handler (aiohttp answers it
    504 too). `exclude` lists route patterns not to instrument at all. `clock` is the
    monotonic time source (seconds).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 buckets: Iterable[float] = LATENCY_BUCKETS,
                 handler_timeout: float | None = None, exclude: Iterable[str] = (),
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if handler_timeout is not None and handler_timeout <= 0:
            raise ValueError("handler_timeout must be positive")
        self.metrics = http_metrics(registry, buckets)
        self.handler_timeout = handler_timeout
        self.exclude = frozenset(exclude)
        self.clock = clock

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_label(request)
        if route in self.exclude:
            return await handler(request)
        metrics = self.metrics
        status = 500
        failure: str | None = None
        websocket = False
        metrics.in_flight.inc()
        started = self.clock()
        try:
            response = await self._call(handler, request)
            status = response.status
            websocket = isinstance(response, web.WebSocketResponse)
            return response
        except _HandlerTimeout as exc:
            status, failure = exc.status, "timeout"
            raise
        except web.HTTPException as exc:
            # Raised statuses (HTTPNotFound, HTTPServiceUnavailable, ...) are answers too.
            status = exc.status
            raise
        except TimeoutError:
            status, failure = 504, "timeout"  # what aiohttp answers for it
            raise
        except asyncio.CancelledError:
            status = CANCELLED_STATUS
            raise
        except Exception:
            failure = "exception"  # aiohttp answers it with 500
            raise
        finally:
            elapsed = self.clock() - started
            metrics.in_flight.dec()
            method = method_label(request.method)
            metrics.requests.labels(method, route, str(status)).inc()
            # A websocket's handler returns when the socket closes: its lifetime is no latency.
            if not websocket:
                metrics.duration.labels(method, route).observe(max(elapsed, 0.0))
            failure = failure or error_class(status)
            if failure is not None:
                metrics.errors.labels(route, failure).inc()

    async def _call(self, handler: Handler, request: web.Request) -> web.StreamResponse:
        if self.handler_timeout is None:
            return await handler(request)
        scope = asyncio.timeout(self.handler_timeout)
        try:
            async with scope:
                return await handler(request)
        except TimeoutError:
            if scope.expired():
                raise _HandlerTimeout(text="request timed out\n") from None
            raise

    def prime(self, app: web.Application) -> None:
        """Create every route's error series at 0, so rate() works from the first error.

        Routes of sub-applications get theirs with their first request (aiohttp has no
        public way to list them from the parent)."""
        routes = {resource.canonical for resource in app.router.resources()
                  if not isinstance(resource, web.PrefixedSubAppResource)}
        for route in sorted((routes | {UNMATCHED_ROUTE}) - self.exclude):
            for cls in ERROR_CLASSES:
                self.metrics.errors.labels(route, cls)


def metrics_handler(registry: CollectorRegistry | None = None, *,
                    created_series: bool = False) -> Handler:
    """An aiohttp handler serving `registry`: OpenMetrics or the text format as the Accept
    header asks (Prometheus asks for OpenMetrics), gzip-compressed when accepted.

    Counters, histograms and summaries come without their `*_created` series unless
    `created_series` is true (prometheus_client's PROMETHEUS_DISABLE_CREATED_SERIES, when
    set, leaves them out either way)."""
    chosen = REGISTRY if registry is None else registry

    async def handle(request: web.Request) -> web.StreamResponse:
        families = chosen.collect()
        return await metrics_response(
            request, families if created_series else without_created(families))

    return handle


def add_metrics_route(app: web.Application, registry: CollectorRegistry | None = None,
                      path: str = "/metrics", *, created_series: bool = False) -> None:
    app.router.add_get(path, metrics_handler(registry, created_series=created_series))


def instrument(app: web.Application, registry: CollectorRegistry | None = None, *,
               metrics_path: str | None = "/metrics", buckets: Iterable[float] = LATENCY_BUCKETS,
               handler_timeout: float | None = None,
               exclude: Iterable[str] = (), created_series: bool = False) -> Instrumentation:
    """Install the middleware first in `app`'s chain and (unless metrics_path is None) add
    `GET metrics_path` serving `registry` (`created_series`: see metrics_handler). Call
    before the app starts."""
    instrumentation = Instrumentation(registry, buckets=buckets,
                                      handler_timeout=handler_timeout, exclude=exclude)
    # Outermost, so errors raised by the app's other middlewares are counted too.
    app.middlewares.insert(0, instrumentation.middleware)
    if metrics_path is not None:
        add_metrics_route(app, instrumentation.registry, metrics_path,
                          created_series=created_series)

    async def prime(app: web.Application) -> None:
        instrumentation.prime(app)

    app.on_startup.append(prime)
    return instrumentation
