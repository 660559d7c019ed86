"""The reference CRM API the bundle watches: PostgreSQL for data, Redis as a cache.

Demo-sized on purpose: every endpoint writes or reads the rows the exporters and alert
rules look at (users, sessions, events, customers, properties, smart matches, assistant
interactions, payments, message deliveries), instrumented with
`saasmon.instrumentation.aiohttp`, with health endpoints, a realtime websocket and
fault knobs. `create_app()` builds it; `python -m refapp` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from refapp import frontend
from refapp.faults import Faults, FaultsCollector, add_faults_routes, faults_middleware
from refapp.health import Health
from refapp.realtime import Realtime
from refapp.schema import schema_sql
from saasmon import __version__
from saasmon.instrumentation.aiohttp import instrument
from saasmon.instrumentation.asyncpg import StatementMetrics

log = logging.getLogger("refapp")

# Payment failure reasons written to payments.failure_reason (schema comment's examples).
FAILURE_REASONS = ("card_declined", "insufficient_funds", "expired_card")
# Provider error codes of failed deliveries: Twilio's "unreachable", a bounced email.
MESSAGE_ERRORS = {"sms": ("twilio", "30003"), "email": ("resend", "bounced")}
EVENT_KINDS = ("page_view", "action", "library_use", "task_started", "task_completed")
DEMO_USER = "demo@refapp.test"
# Buckets of the simulated assistant: nova-crm § 1.1 ai.assistant responseTime target
# 2000 ms and alert 5000 ms; the others are resolution around them.
ASSISTANT_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
MIGRATE_TIMEOUT_SECONDS = 30.0
MIGRATION_LOCK = 4_242_001  # advisory lock id: two apps starting at once migrate in turn


@dataclass
class AppConfig:
    dsn: str
    redis_url: str | None = None
    migrate: bool = False
    seed: int = 1
    ws_interval_seconds: float = 1.0
    assistant_latency_seconds: float = 0.2  # mean of the simulated assistant's latency
    health_interval_seconds: float = 15.0  # background health checks (0: only on request)
    cache_ttl_seconds: int = 30
    faults_token: str | None = None
    created_series: bool = False  # serve the *_created series of counters and histograms
    webvitals_url: str | None = None  # a Web Vitals receiver's /beacon: the page reports there
    interaction_ms: int = 0  # main-thread work of the page's button (what INP measures)
    version: str = __version__
    faults: Faults = field(default_factory=Faults)


class Cache:
    """Redis as a best-effort cache: any Redis error is a miss, never a failed request."""

    def __init__(self, client: aioredis.Redis | None, registry: CollectorRegistry) -> None:
        self.client = client
        self.requests = Counter("refapp_cache_requests", "Cache lookups by result: hit, "
                                "miss or error (Redis unreachable: served from the database).",
                                ["result"], registry=registry)
        for result in ("hit", "miss", "error"):
            self.requests.labels(result)

    async def get(self, key: str) -> bytes | None:
        if self.client is None:
            return None
        try:
            value: Any = await self.client.get(key)
        except (aioredis.RedisError, OSError):
            self.requests.labels("error").inc()
            return None
        self.requests.labels("hit" if value is not None else "miss").inc()
        return value if isinstance(value, bytes) else None

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Any other command; None when Redis is missing or failing."""
        if self.client is None:
            return None
        try:
            return await getattr(self.client, method)(*args, **kwargs)
        except (aioredis.RedisError, OSError):
            return None


@dataclass
class State:
    config: AppConfig
    rng: random.Random
    cache: Cache
    payments: Counter
    deliveries: Counter
    assistant: Histogram
    pool: asyncpg.Pool | None = None

    @property
    def db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise web.HTTPServiceUnavailable(text='{"error": "database not initialised"}',
                                             content_type="application/json")
        return self.pool


STATE = web.AppKey("refapp_state", State)


# -- helpers -------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(record: asyncpg.Record | None) -> dict[str, Any]:
    if record is None:
        raise web.HTTPNotFound(text='{"error": "not found"}', content_type="application/json")
    return {k: _jsonable(v) for k, v in record.items()}


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _bad("body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    return body


def _int(body: dict[str, Any], key: str, required: bool = True) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{key}: must be an integer")
    return value


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise _bad(f"{key}: must be a non-empty string of at most 500 characters")
    return value.strip()


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise _bad("limit: must be an integer") from None
    return max(1, min(limit, 100))


def state(request: web.Request) -> State:
    return request.app[STATE]


# -- users, sessions, events -------------------------------------------------------------
async def login(request: web.Request) -> web.Response:
    body = await _body(request)
    email = _text(body, "email").lower()
    st = state(request)
    async with st.db.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            "INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) "
            "DO UPDATE SET email = EXCLUDED.email RETURNING id", email)
        session_id = await conn.fetchval(
            "INSERT INTO sessions (user_id) VALUES ($1) RETURNING id", user_id)
        await conn.execute("INSERT INTO events (user_id, session_id, kind) "
                           "VALUES ($1, $2, 'login')", user_id, session_id)
    await st.cache.call("set", f"session:{session_id}", str(user_id), ex=3600)
    return web.json_response({"user_id": user_id, "session_id": session_id}, status=201)


async def logout(request: web.Request) -> web.Response:
    session_id = _int(await _body(request), "session_id")
    st = state(request)
    ended = await st.db.fetchval(
        "UPDATE sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL RETURNING id",
        session_id)
    if ended is None:
        raise web.HTTPNotFound(text='{"error": "no open session"}',
                               content_type="application/json")
    await st.cache.call("delete", f"session:{session_id}")
    return web.json_response({"session_id": session_id, "ended": True})


async def _count_action(conn: asyncpg.Connection, session_id: int | None, kind: str) -> None:
    """Record an event of the session's user; only `action` events count as actions."""
    if session_id is None:
        return
    user_id = await conn.fetchval(
        "UPDATE sessions SET actions = actions + CASE WHEN $2 = 'action' THEN 1 ELSE 0 END "
        "WHERE id = $1 RETURNING user_id", session_id, kind)
    if user_id is None:
        raise web.HTTPNotFound(text='{"error": "unknown session"}',
                               content_type="application/json")
    await conn.execute("INSERT INTO events (user_id, session_id, kind) VALUES ($1, $2, $3)",
                       user_id, session_id, kind)


async def record_event(request: web.Request) -> web.Response:
    body = await _body(request)
    session_id = _int(body, "session_id")
    kind = _text(body, "kind")
    if kind not in EVENT_KINDS:
        raise _bad(f"kind: must be one of {', '.join(EVENT_KINDS)}")
    async with state(request).db.acquire() as conn, conn.transaction():
        await _count_action(conn, session_id, kind)
    return web.json_response({"recorded": kind}, status=201)


# -- customers and properties ------------------------------------------------------------
async def list_customers(request: web.Request) -> web.Response:
    limit = _limit(request)
    st = state(request)
    # A version key changes on every write, so a cached list is never stale after one.
    version = (await st.cache.call("get", "cache:customers:version")) or b"0"
    key = f"cache:customers:{version.decode()}:{limit}"
    cached = await st.cache.get(key)
    if cached is not None:
        return web.Response(body=cached, content_type="application/json")
    rows = await st.db.fetch(
        "SELECT id, name, created_at FROM customers ORDER BY id DESC LIMIT $1", limit)
    body = json.dumps([_row(r) for r in rows]).encode()
    await st.cache.call("set", key, body, ex=st.config.cache_ttl_seconds)
    return web.Response(body=body, content_type="application/json")


async def create_customer(request: web.Request) -> web.Response:
    body = await _body(request)
    name = _text(body, "name")
    session_id = _int(body, "session_id", required=False)
    st = state(request)
    async with st.db.acquire() as conn, conn.transaction():
        created_by = None
        if session_id is not None:
            created_by = await conn.fetchval("SELECT user_id FROM sessions WHERE id = $1",
                                             session_id)
        row = await conn.fetchrow(
            "INSERT INTO customers (name, created_by) VALUES ($1, $2) "
            "RETURNING id, name, created_at", name, created_by)
        await _count_action(conn, session_id, "action")
    await st.cache.call("incr", "cache:customers:version")
    return web.json_response(_row(row), status=201)


# saas-ops-module § Support System: the ticket form. 201 created, 400 invalid, 401 when the
# session is missing or ended - the three outcomes the support board's request panel shows.
TICKET_PRIORITIES = ("low", "medium", "high", "urgent")


async def create_support_ticket(request: web.Request) -> web.Response:
    body = await _body(request)
    session_id = _int(body, "session_id", required=False)
    category = _text(body, "category", "question")
    priority = _text(body, "priority", "medium")
    if priority not in TICKET_PRIORITIES:
        raise _bad(f"priority: must be one of {', '.join(TICKET_PRIORITIES)}")
    st = state(request)
    # One statement, no transaction: a refused ticket costs one round trip.
    row = None if session_id is None else await st.db.fetchrow(
        "INSERT INTO support_tickets (user_id, category, priority) "
        "SELECT user_id, $2, $3 FROM sessions WHERE id = $1 AND ended_at IS NULL "
        "RETURNING id, priority, status, created_at", session_id, category, priority)
    if row is None:
        raise web.HTTPUnauthorized(text=json.dumps({"error": "sign in to open a ticket"}),
                                   content_type="application/json")
    return web.json_response(_row(row), status=201)


async def get_customer(request: web.Request) -> web.Response:
    customer_id = _path_id(request)
    row = await state(request).db.fetchrow(
        "SELECT id, name, created_at FROM customers WHERE id = $1", customer_id)
    return web.json_response(_row(row))


def _path_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise _bad("id: must be an integer") from None


async def customer_properties(request: web.Request) -> web.Response:
    rows = await state(request).db.fetch(
        "SELECT id, customer_id, address, created_at FROM properties WHERE customer_id = $1 "
        "ORDER BY id DESC LIMIT 100", _path_id(request))
    return web.json_response([_row(r) for r in rows])


async def create_property(request: web.Request) -> web.Response:
    body = await _body(request)
    customer_id = _int(body, "customer_id")
    address = _text(body, "address")
    try:
        row = await state(request).db.fetchrow(
            "INSERT INTO properties (customer_id, address) VALUES ($1, $2) "
            "RETURNING id, customer_id, address, created_at", customer_id, address)
    except asyncpg.ForeignKeyViolationError:
        raise web.HTTPNotFound(text='{"error": "unknown customer"}',
                               content_type="application/json") from None
    return web.json_response(_row(row), status=201)


# -- AI: smart matches and the assistant -------------------------------------------------
async def create_smart_match(request: web.Request) -> web.Response:
    customer_id = _int(await _body(request), "customer_id")
    st = state(request)
    score = round(st.rng.uniform(45, 100), 2)
    accepted = st.rng.random() < 0.3
    outcome = None if st.rng.random() < 0.5 else (
        "correct" if st.rng.random() < 0.9 else "incorrect")
    try:
        row = await st.db.fetchrow(
            "INSERT INTO smart_matches (customer_id, score, accepted, outcome) "
            "VALUES ($1, $2, $3, $4) RETURNING id, customer_id, score, accepted, outcome",
            customer_id, score, accepted, outcome)
    except asyncpg.ForeignKeyViolationError:
        raise web.HTTPNotFound(text='{"error": "unknown customer"}',
                               content_type="application/json") from None
    return web.json_response(_row(row), status=201)


async def list_smart_matches(request: web.Request) -> web.Response:
    rows = await state(request).db.fetch(
        "SELECT id, customer_id, score, accepted, outcome, created_at FROM smart_matches "
        "ORDER BY id DESC LIMIT $1", _limit(request))
    return web.json_response([_row(r) for r in rows])


async def assistant_query(request: web.Request) -> web.Response:
    body = await _body(request)
    question = _text(body, "question")
    user_id = _int(body, "user_id", required=False)
    st = state(request)
    latency = st.config.assistant_latency_seconds * st.rng.uniform(0.5, 1.5)
    rated_accurate = st.rng.random() < 0.9
    satisfaction = st.rng.choice((3, 4, 4, 5, 5))
    await asyncio.sleep(latency)  # the simulated model thinking
    await st.db.execute(
        "INSERT INTO assistant_interactions (user_id, latency_seconds, rated_accurate, "
        "satisfaction) VALUES ($1, $2, $3, $4)", user_id, latency, rated_accurate, satisfaction)
    st.assistant.observe(latency)
    return web.json_response({"answer": f"Simulated answer to: {question[:80]}",
                              "latency_seconds": round(latency, 3)})


# -- payments and messages ---------------------------------------------------------------
async def create_payment(request: web.Request) -> web.Response:
    body = await _body(request)
    amount = body.get("amount_sar", 199)
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < 1e9:
        raise _bad("amount_sar: must be a positive number")
    user_id = _int(body, "user_id", required=False)
    st = state(request)
    failed = st.config.faults.payment_gate.hit()
    forced = st.config.faults.payment_failure_reason
    reason = (forced or st.rng.choice(FAILURE_REASONS)) if failed else None
    async with st.db.acquire() as conn, conn.transaction():
        if user_id is None:
            user_id = await conn.fetchval(
                "INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) "
                "DO UPDATE SET email = EXCLUDED.email RETURNING id", DEMO_USER)
        subscription_id = await conn.fetchval(
            "SELECT id FROM subscriptions WHERE user_id = $1 AND cancelled_at IS NULL "
            "ORDER BY id LIMIT 1", user_id)
        if subscription_id is None:
            try:
                subscription_id = await conn.fetchval(
                    "INSERT INTO subscriptions (user_id, plan, mrr_sar) "
                    "VALUES ($1, 'pro', $2) RETURNING id", user_id, Decimal(str(amount)))
            except asyncpg.ForeignKeyViolationError:
                raise web.HTTPNotFound(text='{"error": "unknown user"}',
                                       content_type="application/json") from None
        payment_id = await conn.fetchval(
            "INSERT INTO payments (subscription_id, amount_sar, status, failure_reason) "
            "VALUES ($1, $2, $3, $4) RETURNING id", subscription_id,
            Decimal(str(round(float(amount), 2))), "failed" if failed else "succeeded", reason)
    st.payments.labels("failed" if failed else "succeeded").inc()
    if failed:
        # 402 as a card processor answers a declined charge: a client error, not ours.
        return web.json_response({"id": payment_id, "status": "failed",
                                  "failure_reason": reason}, status=402)
    return web.json_response({"id": payment_id, "status": "succeeded"}, status=201)


async def send_message(request: web.Request) -> web.Response:
    body = await _body(request)
    channel = _text(body, "channel", "email")
    if channel not in MESSAGE_ERRORS:
        raise _bad("channel: must be sms or email")
    _text(body, "to")
    st = state(request)
    provider, error_code = MESSAGE_ERRORS[channel]
    failed = st.config.faults.message_gate.hit()
    status = "failed" if failed else "sent"
    message_id = await st.db.fetchval(
        "INSERT INTO message_deliveries (channel, provider, status, error_code) "
        "VALUES ($1, $2, $3, $4) RETURNING id", channel, provider, status,
        error_code if failed else None)
    st.deliveries.labels(channel, status).inc()
    # Accepted either way: delivery is asynchronous, its outcome is in the row.
    return web.json_response({"id": message_id, "channel": channel, "status": status},
                             status=202)


# -- app ---------------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Throttle:
    """At most one log line per `seconds`: under load, an outage must not flood the log."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.last = seconds, float("-inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


_outage_log = _Throttle(10.0)


@web.middleware
async def dependency_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The database unreachable is a 503 with a short body, not a traceback."""
    try:
        return await handler(request)
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError, asyncpg.CannotConnectNowError) as exc:
        if _outage_log.ready():
            log.warning("database unavailable: %s", type(exc).__name__)
        raise web.HTTPServiceUnavailable(text='{"error": "database unavailable"}',
                                         content_type="application/json") from None


async def migrate(dsn: str, timeout: float = MIGRATE_TIMEOUT_SECONDS) -> None:
    """Apply the reference schema, waiting up to `timeout` for the database to accept."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            break
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(schema_sql())
    finally:
        await conn.close()


def redis_client(url: str) -> aioredis.Redis:
    # Short timeouts and no retries: a cache that is down must cost a request little.
    client: aioredis.Redis = aioredis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    return client


def create_app(config: AppConfig, registry: CollectorRegistry | None = None) -> web.Application:
    """The app on its own registry (a new one unless given), served at /metrics."""
    registry = CollectorRegistry() if registry is None else registry
    app = web.Application()
    instrument(app, registry, created_series=config.created_series)
    app.middlewares.append(faults_middleware(config.faults))
    app.middlewares.append(dependency_errors)
    registry.register(FaultsCollector(config.faults))
    client = redis_client(config.redis_url) if config.redis_url else None
    st = State(
        config=config,
        rng=random.Random(config.seed),
        cache=Cache(client, registry),
        payments=Counter("refapp_payments", "Payments created, by status (succeeded, failed).",
                         ["status"], registry=registry),
        deliveries=Counter("refapp_message_deliveries", "Messages handed to a provider, by "
                           "channel and status (sent, failed).", ["channel", "status"],
                           registry=registry),
        assistant=Histogram("refapp_assistant_response_seconds", "Simulated assistant "
                            "latency.", buckets=ASSISTANT_BUCKETS, registry=registry),
    )
    for status in ("succeeded", "failed"):
        st.payments.labels(status)
    for channel in MESSAGE_ERRORS:
        for status in ("sent", "failed"):
            st.deliveries.labels(channel, status)
    app[STATE] = st

    async def probe_db() -> object:
        return await st.db.fetchval("SELECT 1")

    probes: dict[str, Callable[[], Awaitable[object]]] = {"database": probe_db}
    if client is not None:
        probes["cache"] = client.ping
    health = Health(probes, config.faults, config.version, registry)
    health.add_routes(app)
    realtime = Realtime(config.faults, registry, config.ws_interval_seconds)
    app.router.add_get("/ws", realtime.handle)
    add_faults_routes(app, config.faults, config.faults_token)

    r = app.router
    frontend.add_routes(app, config.webvitals_url, config.interaction_ms)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_post("/api/events", record_event)
    r.add_get("/api/customers", list_customers)
    r.add_post("/api/customers", create_customer)
    r.add_get("/api/customers/{id}", get_customer)
    r.add_get("/api/customers/{id}/properties", customer_properties)
    r.add_post("/api/properties", create_property)
    r.add_get("/api/smart-matches", list_smart_matches)
    r.add_post("/api/smart-matches", create_smart_match)
    r.add_post("/api/assistant/query", assistant_query)
    r.add_post("/api/payments", create_payment)
    r.add_post("/api/messages", send_message)
    r.add_post("/api/support/tickets", create_support_ticket)

    # Failed statements / all statements: the database error rate (estimate-library),
    # which PostgreSQL itself does not count.
    statements = StatementMetrics(registry)

    async def startup(app: web.Application) -> None:
        if config.migrate:
            await migrate(config.dsn)
        # min_size=0: no connection at start, so the app comes up (unhealthy) without a
        # database and recovers when it appears.
        st.pool = await asyncpg.create_pool(config.dsn, min_size=0, max_size=10, timeout=2,
                                            command_timeout=10, init=statements.init)
        health.start(config.health_interval_seconds)

    async def shutdown(app: web.Application) -> None:
        await realtime.close_all()

    async def cleanup(app: web.Application) -> None:
        await health.stop()
        if st.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(st.pool.close(), 5)
        if client is not None:
            await client.aclose()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app
