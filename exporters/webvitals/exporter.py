"""The Web Vitals receiver as the runtime sees it: a public beacon endpoint, no collectors.

Ratings are recomputed here from the configured thresholds, never taken from the client:
a client's rating can be forged, and it comes from the library's thresholds, which differ
from the guides' (TTFB: library 800/1800 ms, nova-crm 600/1500 ms). A disagreement is
counted in webvitals_client_rating_mismatches_total instead.

State that must outlive a config reload (histograms, counters, dedupe memory) lives in a
WebVitalsState owned by the exporter kind; each reload's new instance takes it over.
Rate-limit buckets belong to the instance: a reload gives every client a fresh burst.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client.core import Metric

from saasmon.runtime.collector import Collector
from saasmon.runtime.connections import BodyTimeout
from saasmon.runtime.exporter import ExporterKind, Instance, Route
from saasmon.runtime.families import counter, gauge
from saasmon.webvitals import beacon as reasons
from saasmon.webvitals.beacon import REASONS, SPECS, Validator, content_type_ok, decode
from saasmon.webvitals.config import WebVitalsConfig
from saasmon.webvitals.cors import PREFLIGHT, CorsPolicy
from saasmon.webvitals.histograms import HistogramStore
from saasmon.webvitals.limits import ClientResolver, DedupeCache, RateLimiter
from saasmon.webvitals.routes import OTHER, RouteNormalizer

READ_CHUNK = 65_536
STATUS = {
    reasons.ORIGIN: 403,
    reasons.CONTENT_TYPE: 415,
    reasons.TOO_LARGE: 413,
    reasons.RATE_LIMITED_CLIENT: 429,
    reasons.RATE_LIMITED_GLOBAL: 429,
    reasons.INVALID_JSON: 400,
    reasons.BATCH_TOO_LARGE: 413,
    reasons.INVALID: 400,
}


class WebVitalsState:
    """Accumulated data, carried from instance to instance across reloads."""

    def __init__(self, config: WebVitalsConfig) -> None:
        self.histograms = HistogramStore()
        self.dedupe = DedupeCache(config.dedupe.max_entries, config.dedupe.ttl_seconds)
        self.accepted = 0
        self.rejected = dict.fromkeys(REASONS, 0)
        self.mismatched = {spec.key: 0 for spec in SPECS.values()}

    def reconfigure(self, config: WebVitalsConfig, routes: frozenset[str]) -> None:
        self.dedupe.resize(config.dedupe.max_entries, config.dedupe.ttl_seconds)
        self.histograms.keep_routes(routes)


async def read_capped(request: web.Request, length: int | None, cap: int) -> bytes | None:
    """The body, or None once it is longer than `cap` (chunked bodies state no length)."""
    if length is not None:
        return await request.read() if length <= cap else None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(READ_CHUNK):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class WebVitalsInstance(Instance):
    def __init__(self, config: WebVitalsConfig, state: WebVitalsState, namespace: str) -> None:
        self.collectors: list[Collector] = []
        self.config = config
        self.state = state
        self.namespace = namespace
        self.cors = CorsPolicy(config.allowed_origins, config.allow_missing_origin)
        self.routes = RouteNormalizer(config.routes)
        self.resolver = ClientResolver(config.trusted_proxies)
        self.limiter = RateLimiter(config.rate_limit)
        self.validator = Validator(config.max_duration_seconds, config.max_cls)
        self.thresholds = {key: (t.good, t.poor) for key, t in config.thresholds}
        self.max_body_bytes, self.max_batch = config.max_body_bytes, config.max_batch

    def _reject(self, reason: str, headers: dict[str, str] | None) -> web.Response:
        self.state.rejected[reason] += 1
        return web.Response(status=STATUS[reason], headers=headers)

    async def beacon(self, request: web.Request) -> web.Response:
        headers = request.headers
        cors = self.cors.headers(headers.get("Origin"))
        if cors is None:
            return self._reject(reasons.ORIGIN, None)
        if not content_type_ok(headers.get("Content-Type", "")):
            return self._reject(reasons.CONTENT_TYPE, cors)
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            return self._reject(reasons.TOO_LARGE, cors)  # refused before reading a byte
        client = self.resolver.client(request.remote, headers.get("X-Forwarded-For"))
        limited = self.limiter.check(client)
        if limited is not None:
            return self._reject(limited, cors)
        stream = request.content
        if length is not None and stream.is_eof():
            # Hot path: a beacon arrives with its headers, so the whole body is buffered
            # already; taking it directly skips a coroutine, two awaits and a copy.
            body: bytes | None = stream.read_nowait()
        else:
            try:
                body = await read_capped(request, length, self.max_body_bytes)
            except BodyTimeout:
                raise  # the server answers it (408) and counts it
            except Exception:  # a body cut short or badly chunked: the client's problem
                return self._reject(reasons.INVALID_JSON, cors)
        if body is None:
            return self._reject(reasons.TOO_LARGE, cors)
        entries = decode(body, self.max_batch)
        if isinstance(entries, str):
            return self._reject(entries, cors)
        accepted = self._accept(entries)
        status = 204 if accepted == len(entries) else 202 if accepted else 400
        if headers.get("Sec-Fetch-Mode") == "no-cors":
            # sendBeacon with a text body: the page never sees the response, so CORS
            # headers would only cost time on the busiest path.
            return web.Response(status=status)
        return web.Response(status=status, headers=cors)

    def _accept(self, entries: list[object]) -> int:
        """Record each valid, new report; count the rest by reason. Returns how many passed."""
        state, accepted = self.state, 0
        for entry in entries:
            found = self.validator.check(entry)
            if isinstance(found, str):
                state.rejected[found] += 1
                continue
            key = found.spec.key
            if state.dedupe.seen(hash((key, found.id))):
                state.rejected[reasons.DUPLICATE] += 1
                continue
            good, poor = self.thresholds[key]
            value = found.value
            rating = "good" if value <= good else "needs-improvement" if value <= poor else "poor"
            if found.rating is not None and found.rating != rating:
                state.mismatched[key] += 1
            route = OTHER if found.route is None else self.routes.name(found.route)
            state.histograms.observe(key, route, rating, found.navigation_type,
                                    value / found.spec.divisor)
            accepted += 1
        state.accepted += accepted
        return accepted

    async def preflight(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        cors = self.cors.headers(origin) if origin is not None else None
        if cors is None:
            return web.Response(status=403)
        return web.Response(status=204, headers={**cors, **PREFLIGHT})

    def families(self) -> Iterator[Metric]:
        ns, state = self.namespace, self.state
        yield from state.histograms.families(ns)
        yield counter(f"{ns}_beacons_accepted", "Metric reports recorded into the histograms.",
                      state.accepted)
        yield counter(f"{ns}_beacons_rejected",
                      "Rejected beacons by reason: per request for origin, content_type, "
                      "too_large, rate_limited_*, invalid_json, batch_too_large and an "
                      "empty or non-object body (invalid); per metric report otherwise.",
                      labels=["reason"], rows=[([r], n) for r, n in state.rejected.items()])
        yield counter(f"{ns}_client_rating_mismatches",
                      "Accepted reports whose client-sent rating differs from the rating "
                      "recomputed from the configured thresholds.",
                      labels=["metric"], rows=[([m], n) for m, n in state.mismatched.items()])
        yield gauge(f"{ns}_dedupe_entries", "Beacon ids remembered for deduplication.",
                    len(state.dedupe))
        yield gauge(f"{ns}_rate_limit_clients", "Clients with a rate-limit bucket in memory.",
                    len(self.limiter.clients))


class WebVitalsExporter(ExporterKind[WebVitalsConfig]):
    name = "webvitals"
    namespace = "webvitals"
    default_address = ":9635"
    config_model = WebVitalsConfig
    # Public: browsers send beacons without credentials the exporter could check.
    routes = (Route("POST", "/beacon", "beacon", public=True),
              Route("OPTIONS", "/beacon", "preflight", public=True))
    max_connections = 1024  # every open browser tab may hold a keep-alive connection

    def __init__(self) -> None:
        self.state: WebVitalsState | None = None

    def secrets(self, config: WebVitalsConfig) -> list[str]:
        return []

    def build(self, config: WebVitalsConfig) -> WebVitalsInstance:
        if self.state is None:
            self.state = WebVitalsState(config)
        instance = WebVitalsInstance(config, self.state, self.namespace)
        self.state.reconfigure(config, instance.routes.names)
        return instance

    def summary(self, config: WebVitalsConfig) -> str:
        return (f"webvitals: config ok: {len(config.allowed_origins)} origin(s), "
                f"{len(config.routes)} route(s), body cap {config.max_body_bytes} B, "
                f"batch <= {config.max_batch}")
