"""The reference app, its cron runner and load generator against real PostgreSQL and Redis.

The app runs in-process on aiohttp's test server where the test needs its internals (its
registry, its fault knobs), and as `python -m refapp` where the command line is the point.
Each test gets its own database (and Redis db number) on one module-wide server pair;
the health test stops and restarts servers of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from aiohttp import ClientSession, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from devstack.metrics import Samples, parse, total, value
from devstack.process import Process, ProcessError
from devstack.servers import PostgresServer, RedisServer, free_port
from refapp import __main__ as refapp_main
from refapp import cronrunner
from refapp.app import FAILURE_REASONS, AppConfig, create_app
from refapp.cronrunner import DEFAULT_JOBS
from refapp.faults import Faults
from refapp.load import PAGES, VITALS, plan, rating

Client = TestClient[web.Request, web.Application]
_db_numbers = itertools.count(1)
_redis_dbs = itertools.count(1)


# -- servers shared by the module ----------------------------------------------------------
@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="refapp-test-"))
    path.chmod(0o755)  # the postgres user must enter it
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="module")
def shared_pg(base_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(base_dir / "pg", max_connections=60)
    server.start()
    yield server
    server.stop("immediate")


@pytest.fixture(scope="module")
def shared_redis(base_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(base_dir / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def dsn(shared_pg: PostgresServer) -> str:
    """A fresh, empty database of its own."""
    name = f"refapp_{next(_db_numbers)}"
    shared_pg.psql(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@127.0.0.1:{shared_pg.port}/{name}"


@pytest.fixture
def redis_url(shared_redis: RedisServer) -> str:
    """A Redis db number of its own, so cached lists never cross tests."""
    number = next(_redis_dbs) % 16
    redis.Redis(port=shared_redis.port, db=number).flushdb()
    return f"redis://127.0.0.1:{shared_redis.port}/{number}"


def config(dsn: str, redis_url: str | None, **extra: Any) -> AppConfig:
    return AppConfig(dsn=dsn, redis_url=redis_url, migrate=True, health_interval_seconds=0,
                     ws_interval_seconds=0.05, assistant_latency_seconds=0.01, **extra)


@asynccontextmanager
async def running(cfg: AppConfig) -> AsyncIterator[tuple[Client, CollectorRegistry]]:
    registry = CollectorRegistry()
    client = TestClient(TestServer(create_app(cfg, registry)))
    await client.start_server()
    try:
        yield client, registry
    finally:
        await client.close()


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# -- API writes ------------------------------------------------------------------------------
async def test_login_events_and_logout_write_users_sessions_and_events(
        dsn: str, redis_url: str) -> None:
    async with running(config(dsn, redis_url)) as (client, _):
        login = await (await client.post("/api/login", json={"email": "Ana@Example.test"})).json()
        again = await (await client.post("/api/login", json={"email": "ana@example.test"})).json()
        assert login["user_id"] == again["user_id"] and login["session_id"] != again["session_id"]
        session = login["session_id"]
        cache = redis.Redis.from_url(redis_url)
        assert cache.get(f"session:{session}") == str(login["user_id"]).encode()
        for kind in ("page_view", "action", "action"):
            assert (await client.post("/api/events", json={"session_id": session,
                                                           "kind": kind})).status == 201
        created = await client.post("/api/customers", json={"name": "Acme", "session_id": session})
        assert created.status == 201
        bad = await client.post("/api/events", json={"session_id": session, "kind": "x"})
        assert bad.status == 400 and "kind" in (await bad.json())["error"]
        assert (await client.post("/api/logout", json={"session_id": session})).status == 200
        assert (await client.post("/api/logout", json={"session_id": session})).status == 404
        assert cache.get(f"session:{session}") is None
    users = await fetch(dsn, "SELECT email FROM users")
    assert [r["email"] for r in users] == ["ana@example.test"]
    (row,) = await fetch(dsn, "SELECT actions, ended_at FROM sessions WHERE id = $1", session)
    # Two `action` events and the customer created; the page view is no action.
    assert row["actions"] == 3 and row["ended_at"] is not None
    kinds = Counter(r["kind"] for r in await fetch(
        dsn, "SELECT kind FROM events WHERE session_id = $1", session))
    assert kinds == {"login": 1, "page_view": 1, "action": 3}
    (customer,) = await fetch(dsn, "SELECT name, created_by FROM customers")
    assert customer["name"] == "Acme" and customer["created_by"] == login["user_id"]


async def test_support_ticket_needs_an_active_session_and_a_known_priority(
        dsn: str, redis_url: str) -> None:
    async with running(config(dsn, redis_url)) as (client, registry):
        login = await (await client.post("/api/login", json={"email": "t@example.test"})).json()
        session = login["session_id"]
        created = await client.post("/api/support/tickets", json={
            "session_id": session, "category": "bug", "priority": "urgent"})
        assert created.status == 201 and (await created.json())["priority"] == "urgent"
        bad = await client.post("/api/support/tickets", json={
            "session_id": session, "priority": "asap"})
        assert bad.status == 400 and "priority" in (await bad.json())["error"]
        assert (await client.post("/api/support/tickets", json={})).status == 401
        await client.post("/api/logout", json={"session_id": session})
        ended = await client.post("/api/support/tickets", json={"session_id": session})
        assert ended.status == 401
        route = "/api/support/tickets"
        assert {status: metric(registry, "http_requests_total", method="POST", route=route,
                               status=status) for status in ("201", "400", "401")} == {
            "201": 1.0, "400": 1.0, "401": 2.0}
    rows = await fetch(dsn, "SELECT user_id, category, priority, status FROM support_tickets")
    assert [tuple(r) for r in rows] == [(login["user_id"], "bug", "urgent", "open")]


async def test_the_apps_statements_and_failed_statements_are_counted(
        dsn: str, redis_url: str) -> None:
    """The app counts what PostgreSQL does not: its statements, and the failed ones by
    SQLSTATE class (an unknown customer is a foreign-key violation, class 23)."""
    async with running(config(dsn, redis_url)) as (client, registry):
        assert (await client.post("/api/login", json={"email": "s@example.test"})).status == 201
        # BEGIN, the three INSERTs, COMMIT at least.
        for _ in range(100):
            if metric(registry, "db_statements_total") >= 5:
                break
            await asyncio.sleep(0.01)
        assert metric(registry, "db_statements_total") >= 5
        assert metric(registry, "db_statement_errors_total", **{"class": "23"}) == 0
        missing = await client.post("/api/properties", json={"customer_id": 999999,
                                                             "address": "1 Main St"})
        assert missing.status == 404
        for _ in range(100):
            if metric(registry, "db_statement_errors_total", **{"class": "23"}) == 1:
                break
            await asyncio.sleep(0.01)
        assert metric(registry, "db_statement_errors_total", **{"class": "23"}) == 1


async def test_customer_list_is_cached_in_redis_until_the_next_write(
        dsn: str, redis_url: str) -> None:
    async with running(config(dsn, redis_url)) as (client, registry):
        await client.post("/api/customers", json={"name": "First"})
        first = await (await client.get("/api/customers")).json()
        second = await (await client.get("/api/customers")).json()
        assert first == second and [c["name"] for c in first] == ["First"]
        assert metric(registry, "refapp_cache_requests_total", result="miss") == 1
        assert metric(registry, "refapp_cache_requests_total", result="hit") == 1
        await client.post("/api/customers", json={"name": "Second"})
        names = [c["name"] for c in await (await client.get("/api/customers")).json()]
        assert names == ["Second", "First"]  # the write made the cached list unreachable
        assert metric(registry, "refapp_cache_requests_total", result="miss") == 2
        customer = first[0]["id"]
        prop = await client.post("/api/properties", json={"customer_id": customer,
                                                          "address": "1 Main St"})
        assert prop.status == 201
        listed = await (await client.get(f"/api/customers/{customer}/properties")).json()
        assert [p["address"] for p in listed] == ["1 Main St"]
        assert (await client.post("/api/properties", json={"customer_id": 99999,
                                                           "address": "x"})).status == 404
        match = await client.post("/api/smart-matches", json={"customer_id": customer})
        assert match.status == 201 and 45 <= (await match.json())["score"] <= 100
        answer = await client.post("/api/assistant/query", json={"question": "Best offer?"})
        assert answer.status == 200
        reported = (await answer.json())["latency_seconds"]
    (interaction,) = await fetch(dsn, "SELECT latency_seconds FROM assistant_interactions")
    assert interaction["latency_seconds"] == pytest.approx(reported, abs=0.001)


# -- fault knobs -------------------------------------------------------------------------------
async def test_error_rate_knob_fails_exactly_that_share_and_the_metrics_agree(
        dsn: str, redis_url: str) -> None:
    async with running(config(dsn, redis_url)) as (client, registry):
        changed = await client.post("/-/faults", json={"error_rate": 0.25})
        assert (await changed.json())["error_rate"] == 0.25
        statuses = Counter([(await client.get("/api/customers")).status for _ in range(40)])
        assert statuses == {200: 30, 500: 10}
        # Health and metrics stay true while the API fails.
        for path in ("/health", "/api/health", "/metrics"):
            assert (await client.get(path)).status == 200
        await client.post("/-/faults", json={"error_rate": 0})
        assert Counter([(await client.get("/api/customers")).status
                        for _ in range(10)]) == {200: 10}
        route = "/api/customers"
        assert metric(registry, "http_requests_total", method="GET", route=route,
                      status="500") == 10
        assert metric(registry, "http_requests_total", method="GET", route=route,
                      status="200") == 40
        assert metric(registry, "http_request_errors_total", route=route,
                      **{"class": "5xx"}) == 10
        assert metric(registry, "refapp_fault_error_ratio") == 0
        await client.post("/-/faults", json={"extra_latency_seconds": 0.35})
        assert metric(registry, "refapp_fault_extra_latency_seconds") == 0.35
        labels = {"method": "GET", "route": route}
        fast = metric(registry, "http_request_duration_seconds_bucket", le="0.3", **labels)
        assert (await client.get("/api/customers")).status == 200
        # At least the injected delay: counted, but never in the <= 0.3 s bucket.
        assert metric(registry, "http_request_duration_seconds_bucket", le="0.3",
                      **labels) == fast
        assert metric(registry, "http_request_duration_seconds_count", **labels) == 51


async def test_extra_latency_ratio_delays_only_that_share_of_api_requests(
        dsn: str, redis_url: str) -> None:
    async with running(config(dsn, redis_url)) as (client, registry):
        await client.post("/-/faults", json={"extra_latency_seconds": 0.35,
                                             "extra_latency_ratio": 0.25})
        assert metric(registry, "refapp_fault_extra_latency_ratio") == 0.25
        for _ in range(20):
            assert (await client.get("/api/customers")).status == 200
        labels = {"method": "GET", "route": "/api/customers"}
        fast = metric(registry, "http_request_duration_seconds_bucket", le="0.3", **labels)
        # Exactly one in four delayed (the deterministic gate), the rest untouched.
        assert metric(registry, "http_request_duration_seconds_count", **labels) - fast == 5
        bad = await client.post("/-/faults", json={"extra_latency_ratio": 2})
        assert bad.status == 400 and "extra_latency_ratio" in (await bad.json())["error"]

async def test_payment_and_message_failure_knobs_write_failed_rows(
        dsn: str, redis_url: str) -> None:
    faults = Faults(payment_failure_rate=0.5, message_failure_rate=1.0)
    async with running(config(dsn, redis_url, faults=faults)) as (client, registry):
        answers = [await client.post("/api/payments", json={"amount_sar": 199})
                   for _ in range(6)]
        assert Counter(a.status for a in answers) == {201: 3, 402: 3}
        bodies = [await a.json() for a in answers]
        sms = await client.post("/api/messages", json={"channel": "sms", "to": "+966500000000"})
        assert sms.status == 202 and (await sms.json())["status"] == "failed"
        assert metric(registry, "refapp_payments_total", status="failed") == 3
        assert metric(registry, "refapp_message_deliveries_total", channel="sms",
                      status="failed") == 1
    rows = await fetch(dsn, "SELECT id, status, failure_reason, amount_sar FROM payments "
                            "ORDER BY id")
    assert Counter(r["status"] for r in rows) == {"succeeded": 3, "failed": 3}
    by_id = {r["id"]: r for r in rows}
    for body in bodies:
        row = by_id[body["id"]]
        assert row["status"] == body["status"] and row["amount_sar"] == 199
        if body["status"] == "failed":
            assert row["failure_reason"] == body["failure_reason"] in FAILURE_REASONS
        else:
            assert row["failure_reason"] is None
    (delivery,) = await fetch(dsn, "SELECT channel, provider, status, error_code "
                                   "FROM message_deliveries")
    assert dict(delivery) == {"channel": "sms", "provider": "twilio", "status": "failed",
                              "error_code": "30003"}


async def test_payment_failure_reason_knob_makes_provider_errors(dsn: str, redis_url: str) -> None:
    """Declined cards are the default failure; a drill of the P0 alert needs the provider's."""
    faults = Faults(payment_failure_rate=1.0, payment_failure_reason="api_connection_error")
    async with running(config(dsn, redis_url, faults=faults)) as (client, _):
        answer = await client.post("/api/payments", json={"amount_sar": 99})
        assert (await answer.json())["failure_reason"] == "api_connection_error"
        reset = await client.post("/-/faults", json={"payment_failure_reason": None})
        assert reset.status == 200
        declined = await client.post("/api/payments", json={"amount_sar": 99})
        assert (await declined.json())["failure_reason"] in FAILURE_REASONS


async def test_faults_endpoint_needs_the_token_and_names_the_bad_knob(
        dsn: str, redis_url: str) -> None:
    token = "drill-Token-7731"
    auth = {"Authorization": f"Bearer {token}"}
    async with running(config(dsn, redis_url, faults_token=token)) as (client, registry):
        assert (await client.get("/-/faults")).status == 401
        assert (await client.post("/-/faults", json={"error_rate": 1})).status == 401
        assert (await client.get("/-/faults", headers={"Authorization": "Bearer no"})).status \
            == 401
        for body, problem in (({"error_rate": 1.5}, "error_rate: must be between 0 and 1"),
                              ({"health": "sick"}, "health: must be one of"),
                              ({"ws_delay_seconds": -1}, "ws_delay_seconds: must be between"),
                              ({"bogus": 1}, "bogus: unknown knob"),
                              ({"error_rate": 0.5, "health": "x"}, "health:")):
            answer = await client.post("/-/faults", json=body, headers=auth)
            assert answer.status == 400 and problem in (await answer.json())["error"], body
        # A rejected change changes nothing, not even its valid part.
        current = await (await client.get("/-/faults", headers=auth)).json()
        assert current["error_rate"] == 0 and current["health"] is None
        forced = await client.post("/-/faults", json={"health": "unhealthy"}, headers=auth)
        assert forced.status == 200
        health = await client.get("/health")
        assert health.status == 503 and (await health.json())["status"] == "unhealthy"
        assert (await client.get("/health/ready")).status == 503
        assert metric(registry, "refapp_fault_health_forced", status="unhealthy") == 1
        await client.post("/-/faults", json={"health": "degraded"}, headers=auth)
        health = await client.get("/health")
        assert health.status == 200 and (await health.json())["status"] == "degraded"
        await client.post("/-/faults", json={"health": None}, headers=auth)
        assert (await (await client.get("/health")).json())["status"] == "healthy"


# -- health ----------------------------------------------------------------------------------
async def wait_health(client: Client, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = await (await client.get("/health")).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"health not {status} within {timeout}s: {body}")


async def test_health_degrades_without_redis_turns_unhealthy_without_postgres_and_recovers(
        dsn: str, redis_url: str, shared_pg: PostgresServer,
        shared_redis: RedisServer) -> None:
    # The module's own servers are stopped for real; `finally` brings them back for the
    # tests after this one even when it fails halfway.
    stopped: list[str] = []
    try:
        await _health_through_outages(dsn, redis_url, shared_pg, shared_redis, stopped)
    finally:
        if "redis" in stopped:
            shared_redis.start()
        if "postgres" in stopped:
            shared_pg.start()


async def _health_through_outages(dsn: str, redis_url: str, postgres: PostgresServer,
                                  redis_server: RedisServer, stopped: list[str]) -> None:
    async with running(config(dsn, redis_url)) as (client, registry):
        answer = await client.get("/health")
        body = await answer.json()
        assert answer.status == 200 and body["status"] == "healthy"
        assert {n: c["status"] for n, c in body["checks"].items()} == {"database": "pass",
                                                                        "cache": "pass"}
        assert body["checks"]["database"]["latency"] >= 0

        redis_server.stop()
        stopped.append("redis")
        answer = await client.get("/health")
        body = await answer.json()
        assert answer.status == 200 and body["status"] == "degraded"
        assert body["checks"]["cache"]["status"] == "fail"
        assert body["checks"]["database"]["status"] == "pass"
        assert (await client.get("/health/ready")).status == 200
        # The API works on without its cache.
        assert (await client.get("/api/customers")).status == 200
        assert metric(registry, "refapp_cache_requests_total", result="error") == 1

        postgres.stop("fast")
        stopped.append("postgres")
        answer = await client.get("/health")
        body = await answer.json()
        assert answer.status == 503 and body["status"] == "unhealthy"
        assert body["checks"]["database"]["status"] == "fail"
        assert "message" in body["checks"]["database"]
        assert (await client.get("/health/ready")).status == 503
        assert (await client.get("/health/live")).status == 200
        assert (await client.get("/api/customers")).status == 503
        assert metric(registry, "http_request_errors_total", route="/api/customers",
                      **{"class": "5xx"}) == 1
        assert metric(registry, "refapp_health_status", status="unhealthy") == 1
        assert metric(registry, "refapp_health_check_up", check="database") == 0
        assert metric(registry, "refapp_health_check_up", check="cache") == 0

        postgres.start()
        stopped.remove("postgres")
        redis_server.start()
        stopped.remove("redis")
        await wait_health(client, "healthy")
        assert metric(registry, "refapp_health_status", status="healthy") == 1
        assert metric(registry, "refapp_health_check_up", check="database") == 1


# -- realtime --------------------------------------------------------------------------------
async def converse(client: Client, path: str, events: int) -> None:
    """Answer pings and acknowledge `events` events, then close."""
    ws = await client.ws_connect(path)
    acked = 0
    while acked < events:
        msg = await ws.receive(timeout=10)
        assert msg.type == WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] == "ping":
            await ws.send_json({"type": "pong", "id": data["id"]})
        else:
            assert data["type"] == "event" and data["sent_at"] <= time.time()
            await ws.send_json({"type": "ack", "seq": data["seq"]})
            acked += 1
    await asyncio.sleep(0.1)  # let the server read the last answers before closing
    await ws.close()


async def wait_metric(registry: CollectorRegistry, name: str, want: float) -> None:
    for _ in range(200):
        if metric(registry, name) == want:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{name} is {metric(registry, name)}, not {want}")


async def test_websocket_client_moves_connection_latency_and_reconnection_metrics(
        dsn: str, redis_url: str) -> None:
    async with running(config(dsn, redis_url)) as (client, registry):
        await converse(client, "/ws", events=3)
        await wait_metric(registry, "realtime_connections", 0)
        assert metric(registry, "realtime_reconnections_total") == 0
        # Exactly the pongs and acks the client sent: ping, event, ping, event, ping, event.
        assert metric(registry, "realtime_message_delay_seconds_count") == 3
        assert metric(registry, "realtime_socket_latency_seconds_count") == 3

        held = await client.ws_connect("/ws")
        await wait_metric(registry, "realtime_connections", 1)
        await converse(client, "/ws?reconnect=1", events=2)
        assert metric(registry, "realtime_reconnections_total") == 1
        assert metric(registry, "realtime_message_delay_seconds_count") == 5
        assert metric(registry, "realtime_socket_latency_seconds_count") == 5
        await held.close()
        await wait_metric(registry, "realtime_connections", 0)


async def test_ws_delay_knob_shows_in_message_delay_not_in_socket_latency(
        dsn: str, redis_url: str) -> None:
    faults = Faults(ws_delay_seconds=0.25)
    async with running(config(dsn, redis_url, faults=faults)) as (client, registry):
        await converse(client, "/ws", events=2)
    # Every event waited at least the injected 0.25 s: none under the 200 ms alert edge.
    assert metric(registry, "realtime_message_delay_seconds_count") == 2
    assert metric(registry, "realtime_message_delay_seconds_bucket", le="0.2") == 0
    assert metric(registry, "realtime_message_delay_seconds_sum") >= 0.5


# -- cron runner ----------------------------------------------------------------------------
CRON = [sys.executable, "-m", "refapp.cronrunner"]


async def test_cron_runner_inserts_running_rows_and_completes_them_in_place(dsn: str) -> None:
    # 07:59:59 at 600x: 08:00 (three jobs), 08:15 and 08:30 fall within 3.5 real seconds.
    proc = await asyncio.create_subprocess_exec(
        *CRON, "--dsn", dsn, "--migrate", "--start", "2024-01-01T07:59:59Z", "--speed", "600",
        "--run-for", "3.5", "--work-seconds", "0.05", "--fail-job", "check-system-health",
        "--slow-job", "process-opportunity-offers", "--slow-seconds", "1.5",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    seen_running: asyncpg.Record | None = None
    deadline = time.monotonic() + 20
    while seen_running is None and time.monotonic() < deadline:
        try:
            rows = await fetch(dsn, "SELECT id, status, completed_at FROM cron_job_logs WHERE "
                                    "job_name = 'process-opportunity-offers'")
        except asyncpg.UndefinedTableError:
            rows = []
        seen_running = rows[0] if rows else None
        await asyncio.sleep(0.05)
    assert seen_running is not None
    assert seen_running["status"] == "running" and seen_running["completed_at"] is None
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()

    rows = await fetch(dsn, "SELECT id, job_name, status, error_message, started_at, "
                            "completed_at FROM cron_job_logs ORDER BY id")
    assert Counter((r["job_name"], r["status"]) for r in rows) == {
        ("process-opportunity-offers", "success"): 1,
        ("process-promotion-deliveries", "success"): 2,
        ("check-system-health", "failed"): 3,
    }
    by_id = {r["id"]: r for r in rows}
    slow = by_id[seen_running["id"]]  # the same row, updated in place
    assert slow["status"] == "success" and slow["error_message"] is None
    assert (slow["completed_at"] - slow["started_at"]).total_seconds() >= 1.5
    for row in rows:
        assert row["completed_at"] is not None and row["completed_at"] >= row["started_at"]
        if row["status"] == "failed":
            assert row["error_message"] == "injected failure (failing job knob)"


async def test_cron_runner_reads_the_failing_job_knob_from_the_app(
        dsn: str, redis_url: str) -> None:
    token = "cron-drill-token-1"
    async with running(config(dsn, redis_url, faults_token=token)) as (client, _):
        await client.post("/-/faults", json={"failing_cron_job": "generate-scheduled-reports"},
                          headers={"Authorization": f"Bearer {token}"})
        faults_url = str(client.make_url("/-/faults"))
        proc = await asyncio.create_subprocess_exec(
            *CRON, "--dsn", dsn, "--start", "2024-01-01T05:59:59Z", "--speed", "600",
            "--run-for", "1", "--work-seconds", "0", "--only", "generate-scheduled-reports",
            "--only", "send-review-requests", "--faults-url", faults_url,
            "--faults-token", token, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    assert token not in stderr.decode()
    rows = await fetch(dsn, "SELECT job_name, status FROM cron_job_logs ORDER BY job_name")
    assert [(r["job_name"], r["status"]) for r in rows] == [
        ("generate-scheduled-reports", "failed"), ("send-review-requests", "success")]


CRON_BAD_FLAGS = [
    (["--fail-job", "nightly"], "--fail-job: unknown job 'nightly'"),
    (["--job", "extra=61 * * * *"], "--job: extra: bad schedule"),
    (["--speed", "0"], "--speed: must be > 0"),
    (["--start", "yesterday"], "--start: not an ISO 8601 time"),
    (["--run-for", "-1"], "--run-for: must not be negative"),
]


@pytest.mark.parametrize(("args", "problem"), CRON_BAD_FLAGS)
def test_cron_runner_bad_flags_exit_2_with_one_line(
        args: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cronrunner.main(["--dsn", "postgresql://x@127.0.0.1:1/x", *args])
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert stderr.strip().count("\n") == 0 and problem in stderr, stderr


def test_cron_runner_process_exits_2_on_a_bad_flag() -> None:
    args, problem = CRON_BAD_FLAGS[0]
    done = subprocess.run([*CRON, "--dsn", "postgresql://x@127.0.0.1:1/x", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"refapp.cronrunner: {problem} " \
        "(known: " + ", ".join(DEFAULT_JOBS) + ")"


# -- the app as a process -------------------------------------------------------------------
APP = [sys.executable, "-m", "refapp"]


def http(url: str, data: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {},
                                     method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class AppProcess:
    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # Only the flags configure it: none of the REFAPP_* variables of this environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFAPP_")}
        self.process = Process("refapp", [*APP, "--listen", f"127.0.0.1:{self.port}", *args],
                               log, env, inherit_env=False).start()
        try:
            self.process.wait_http(self.url + "/health/live", timeout=30)
        except ProcessError as exc:
            raise AssertionError(str(exc)) from None

    def scrape(self) -> Samples:
        status, text = http(self.url + "/metrics")
        assert status == 200
        return parse(text)

    def stop(self) -> int | None:
        self.process.stop(15)
        return self.process.returncode


@pytest.fixture
def app_processes() -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for app in started:
        app.process.kill()


async def test_refapp_command_sets_knobs_from_flags_and_its_metrics_pass_promtool(
        dsn: str, redis_url: str, base_dir: Path, app_processes: list[AppProcess]) -> None:
    password = "PgSecret-4471"
    with_password = dsn.replace("postgres@", f"postgres:{password}@")  # trust auth: accepted
    token = "flag-token-2291"
    app = AppProcess(["--dsn", with_password, "--redis-url", redis_url, "--migrate",
                      "--error-rate", "0.5", "--payment-failure-rate", "1", "--health",
                      "degraded", "--ws-interval", "0.05", "--faults-token", token],
                     base_dir / f"app-{free_port()}.log")
    app_processes.append(app)
    status, body = await asyncio.to_thread(
        http, app.url + "/-/faults", None, {"Authorization": f"Bearer {token}"})
    knobs = json.loads(body)
    assert status == 200 and knobs["error_rate"] == 0.5 and knobs["health"] == "degraded"
    assert knobs["payment_failure_rate"] == 1
    status, body = await asyncio.to_thread(http, app.url + "/health")
    assert status == 200 and json.loads(body)["status"] == "degraded"
    statuses = [(await asyncio.to_thread(http, app.url + "/api/customers"))[0]
                for _ in range(4)]
    assert sorted(statuses) == [200, 200, 500, 500]
    async with ClientSession() as session, session.ws_connect(app.url + "/ws") as ws:
        msg = await ws.receive(timeout=10)
        await ws.send_json({"type": "pong", "id": json.loads(msg.data)["id"]})
        await asyncio.sleep(0.1)

    status, text = await asyncio.to_thread(http, app.url + "/metrics")
    assert status == 200
    samples = parse(text)
    assert total(samples, "http_requests_total", route="/api/customers") == 4
    assert value(samples, "refapp_fault_health_forced", status="degraded") == 1
    assert value(samples, "realtime_socket_latency_seconds_count") >= 1
    assert total(samples, "process_resident_memory_bytes") > 0  # the default registry
    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert app.stop() == 0
    log = app.log.read_text()
    assert password not in log and token not in log and password not in text


APP_BAD_FLAGS = [
    (["--error-rate", "2"], "--error-rate: must be between 0 and 1"),
    (["--ws-delay", "-1"], "--ws-delay: must be between 0 and"),
    (["--health", "sick"], "argument --health: invalid choice: 'sick'"),
    (["--listen", "nowhere"], "argument --listen: must be HOST:PORT"),
    (["--ws-interval", "0"], "--ws-interval: out of range"),
    (["--webvitals-url", "rum.example.com/beacon"], "--webvitals-url: must be an http(s) URL"),
    (["--interaction-ms", "-5"], "--interaction-ms: out of range 0..60000"),
    ([], "--dsn: required"),
]


@pytest.mark.parametrize(("args", "problem"), APP_BAD_FLAGS)
def test_refapp_bad_flags_exit_2_with_one_line(
        args: list[str], problem: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REFAPP_DSN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    dsn = [] if not args else ["--dsn", "postgresql://x@127.0.0.1:1/x"]
    with pytest.raises(SystemExit) as exited:
        refapp_main.main([*dsn, *args])
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert stderr.strip().count("\n") == 0 and problem in stderr, stderr


def test_refapp_process_exits_2_on_a_bad_flag() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("REFAPP_") and k != "DATABASE_URL"}
    done = subprocess.run([*APP, "--dsn", "postgresql://x@127.0.0.1:1/x", "--error-rate", "2"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == "refapp: --error-rate: must be between 0 and 1, got 2.0"


# -- load generator -------------------------------------------------------------------------
def test_load_plan_is_the_same_for_a_seed_and_differs_between_seeds() -> None:
    first = plan(7, 300)
    assert first == plan(7, 300) and first != plan(8, 300)
    assert first[:100] == plan(7, 100)
    assert {"list_customers", "payment", "assistant", "message", "login"} <= set(first)


async def test_load_generator_drives_api_websockets_beacons_and_heartbeats(
        dsn: str, redis_url: str, base_dir: Path, app_processes: list[AppProcess]) -> None:
    app = AppProcess(["--dsn", dsn, "--redis-url", redis_url, "--migrate", "--ws-interval",
                      "0.1", "--assistant-latency", "0.01"], base_dir / f"app-{free_port()}.log")
    app_processes.append(app)
    beacons: list[Any] = []
    pings: Counter[str] = Counter()

    async def beacon(request: web.Request) -> web.Response:
        assert request.headers["Origin"] == app.url  # as the app's pages would send it
        beacons.append(await request.json())
        return web.Response(status=204)

    async def ping(request: web.Request) -> web.Response:
        pings[request.match_info["job"]] += 1
        return web.Response(text="OK")

    receiver = web.Application()
    receiver.router.add_post("/beacon", beacon)
    receiver.router.add_get("/ping/{job}", ping)
    async with TestClient(TestServer(receiver)) as sink:
        before = await asyncio.to_thread(app.scrape)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "refapp.load", "--url", app.url, "--rps", "20",
            "--duration", "2", "--seed", "5", "--ws-clients", "2", "--ws-reconnect-every",
            "0.6", "--webvitals-url", str(sink.make_url("/beacon")), "--webvitals-every", "0.4",
            "--heartbeat-url", f"http://127.0.0.1:{sink.server.port}/ping/{{job}}",
            "--heartbeat-every", "0.6",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    after = await asyncio.to_thread(app.scrape)

    def served(samples: Samples) -> float:
        return sum(v for (n, ls), v in samples.items() if n == "http_requests_total"
                   and dict(ls)["route"] not in ("/metrics", "/ws"))

    assert summary["skipped"] == 0 and summary["requests"] >= 40
    assert all(int(status) < 500 for status in summary["by_status"]), summary
    # Every request the load counted, the app counted, and nothing else.
    assert served(after) - served(before) == summary["requests"]
    assert summary["ws_reconnects"] >= 2 and summary["ws_messages"] > 0
    assert value(after, "realtime_reconnections_total") == summary["ws_reconnects"]
    assert value(after, "realtime_message_delay_seconds_count") > 0

    assert len(beacons) == summary["webvitals_batches"] >= 3
    for batch in beacons:
        assert {b["name"] for b in batch} == set(VITALS) and len(batch) == len(VITALS)
        for b in batch:
            assert set(b) == {"name", "value", "rating", "delta", "id", "navigationType",
                              "route"}
            assert b["rating"] == rating(b["name"], b["value"]) and b["delta"] == b["value"]
            assert b["route"] in PAGES and b["navigationType"] in (
                "navigate", "reload", "back-forward", "prerender")
    assert set(pings) == set(DEFAULT_JOBS)
    assert sum(pings.values()) == summary["heartbeats"] >= 2 * len(DEFAULT_JOBS)
