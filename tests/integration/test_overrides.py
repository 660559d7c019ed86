"""Per-collector overrides (issue 14): one runtime model for every exporter, and a
collector's own timeout honoured down to the database and Redis calls.

The config cases run in process (the loader the CLI runs); the timeout cases build the
exporter's instance in process against real servers and run collectors through the
runtime's Scheduler. The 10 s end-to-end case is in test_postgres_exporter.py
(test_slow_collector_override_outlasts_the_exporter_timeout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from devstack.servers import PostgresServer, RedisServer
from saasmon.cli import load_kind
from saasmon.runtime.collector import Scheduler
from saasmon.runtime.config import ConfigError, load_config
from saasmon.runtime.exporter import Instance

DSN = "postgresql://u:p@127.0.0.1:5/db"
# Smallest config of each exporter, and one collector name it has (None: it has none).
KINDS: dict[str, tuple[dict[str, Any], str | None]] = {
    "postgres": ({"dsn": DSN}, "tables"),
    "redis": ({"targets": [{"name": "main", "url": "redis://127.0.0.1:6379/0"}]}, "info"),
    "cron": ({"dsn": DSN}, "table"),
    "integrations": ({"dsn": DSN}, "payments"),
    "business": ({"dsn": DSN}, "support_open"),
    "webvitals": ({"allowed_origins": ["https://app.example.com"]}, None),
    "sms-relay": ({"twilio": {"account_sid": "AC" + "0123456789abcdef" * 2,
                              "auth_token": "t" * 32, "from_number": "+15551234567"},
                   "recipients": ["+15557654321"]}, None),
}


def load(kind: str, extra: dict[str, Any], tmp_path: Path) -> Any:
    path = tmp_path / f"{kind}.yml"
    path.write_text(yaml.safe_dump({**KINDS[kind][0], **extra}))
    exporter = load_kind(kind)
    return load_config(exporter.config_model, str(path), exporter.name)


def problem(kind: str, extra: dict[str, Any], tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load(kind, extra, tmp_path)
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("kind", [k for k, (_, name) in KINDS.items() if name])
def test_every_exporter_with_collectors_takes_the_same_override_shape(
        kind: str, tmp_path: Path) -> None:
    name = KINDS[kind][1]
    assert name is not None
    config = load(kind, {"collectors": {name: {
        "enabled": True, "interval_seconds": 120, "timeout_seconds": 30}}}, tmp_path)
    schedule = config.schedule(name)
    assert (schedule.interval, schedule.timeout) == (120, 30)
    off = load(kind, {"collectors": {name: {"enabled": False}}}, tmp_path)
    assert off.schedule(name) is None
    assert name not in off.schedules()


@pytest.mark.parametrize("kind", list(KINDS))
def test_unknown_collector_is_one_line_naming_the_key(kind: str, tmp_path: Path) -> None:
    message = problem(kind, {"collectors": {"nope": {"enabled": False}}}, tmp_path)
    assert message.startswith("collectors.nope: no such "), message
    name = KINDS[kind][1]
    assert (name in message) if name else "has none" in message


@pytest.mark.parametrize("kind", ["postgres", "redis", "cron", "integrations", "business"])
def test_one_set_of_bounds_everywhere(kind: str, tmp_path: Path) -> None:
    name = KINDS[kind][1]
    assert problem(kind, {"collectors": {name: {"timeout_seconds": 601}}}, tmp_path) == \
        f"collectors.{name}.timeout_seconds: Input should be less than or equal to 600"
    assert problem(kind, {"collectors": {name: {"timeout_seconds": 0}}}, tmp_path) == \
        f"collectors.{name}.timeout_seconds: Input should be greater than 0"
    assert problem(kind, {"collectors": {name: {"interval_seconds": 86401}}}, tmp_path) == \
        f"collectors.{name}.interval_seconds: Input should be less than or equal to 86400"
    assert problem(kind, {"collectors": {name: {"enabld": True}}}, tmp_path) == \
        f"collectors.{name}.enabld: Extra inputs are not permitted"


def test_timeout_of_a_collector_run_in_the_scrape_must_fit_the_scrape_budget(
        tmp_path: Path) -> None:
    """Interval 0 runs the collector inside the scrape, which waits at most 9.5 s under
    Prometheus' default scrape timeout: a longer timeout would never be honoured."""
    assert problem("postgres", {"collectors": {"tables": {
        "interval_seconds": 0, "timeout_seconds": 30}}}, tmp_path).startswith(
        "collectors.tables.timeout_seconds: 30 s does not fit the scrape budget (9.5 s)")
    # The override's timeout against the exporter's interval 0, too.
    assert problem("postgres", {"interval_seconds": 0, "collectors": {"tables": {
        "timeout_seconds": 30}}}, tmp_path).startswith("collectors.tables.timeout_seconds")
    fits = load("postgres", {"collectors": {"tables": {
        "interval_seconds": 0, "timeout_seconds": 9}}}, tmp_path)
    assert fits.schedule("tables").interval == 0  # 0 is a value, not "unset"
    # In the background the same timeout is fine: nothing waits for the run but itself.
    assert load("postgres", {"collectors": {"tables": {"timeout_seconds": 30}}},
                tmp_path).schedule("tables").timeout == 30


def test_business_keeps_its_queries_key(tmp_path: Path) -> None:
    config = load("business", {"queries": {"support_open": {"timeout_seconds": 30}}}, tmp_path)
    assert config.schedule("support_open").timeout == 30
    assert problem("business", {"queries": {"nope": {}}}, tmp_path).startswith(
        "queries.nope: no such query in the pack (it has ")
    assert "set only one of collectors and queries" in problem("business", {
        "queries": {"support_open": {}}, "collectors": {"support_open": {}}}, tmp_path)


def test_integrations_tables_keep_settle_seconds(tmp_path: Path) -> None:
    config = load("integrations", {"collectors": {"message_deliveries": {
        "settle_seconds": 2, "timeout_seconds": 30}}}, tmp_path)
    override = config.override("message_deliveries")
    assert override.settle_seconds == 2
    assert config.schedule("message_deliveries").timeout == 30


async def _session_timeouts(instance: Instance, pool: Any) -> tuple[str, dict[str, float]]:
    """statement_timeout of the pool's sessions, and each collector's own timeout."""
    connections = await pool.pool()
    async with connections.acquire() as conn:
        shown: str = await conn.fetchval("SHOW statement_timeout")
    await instance.close()
    return shown, {c.name: c.timeout for c in instance.collectors}


async def test_collector_timeout_reaches_the_database_session(
        postgres: PostgresServer, tmp_path: Path) -> None:
    """Every exporter that reads PostgreSQL: a 30 s override on a 2 s exporter timeout
    gives that collector 30 s and the shared pool's sessions a 30 s statement_timeout
    (it was the exporter's 2 s: the server cancelled the slow collector's query)."""
    dsn = postgres.dsn
    cases = {"postgres": ("tables", "activity"), "cron": ("table", None),
             "integrations": ("payments", "webhook_events")}
    for kind, (slow, other) in cases.items():
        config = load(kind, {"dsn": dsn, "timeout_seconds": 2,
                             "collectors": {slow: {"timeout_seconds": 30}}}, tmp_path)
        instance: Any = load_kind(kind).build(config)
        # The PostgreSQL exporter's DSN pool is its server's (the /probe targets have their own).
        pool = instance.server.pool if kind == "postgres" else instance.pool
        session, found = await _session_timeouts(instance, pool)
        assert session == "30s", kind
        assert found[slow] == 30, kind
        if other:
            assert found[other] == 2, kind
    config = load("business", {"dsn": dsn, "queries": {
        "support_open": {"timeout_seconds": 300}}}, tmp_path)
    business: Any = load_kind("business").build(config)
    session, found = await _session_timeouts(business, business.pools["fast"])
    assert session == "5min"
    assert found["support_open"] == 300


async def test_business_query_longer_than_its_pack_timeout_succeeds_with_an_override(
        postgres: PostgresServer, tmp_path: Path) -> None:
    """A 3 s query whose pack timeout is 1 s runs to the end under a 10 s override."""
    pack = tmp_path / "pack.yml"
    pack.write_text(yaml.safe_dump({"queries": [{
        "name": "slow", "interval_seconds": 60, "timeout_seconds": 1,
        "sql": "SELECT 1 AS crm_slow FROM pg_sleep(3)",
        "metrics": [{"name": "crm_slow", "type": "gauge", "help": "Takes 3 s."}]}]}))
    config = load("business", {"dsn": postgres.dsn, "pack_file": str(pack),
                               "collectors": {"slow": {"timeout_seconds": 10}}}, tmp_path)
    instance = load_kind("business").build(config)
    scheduler = Scheduler("business", instance.collectors)
    try:
        [state] = scheduler.states
        await scheduler.run_once(state, state.collector.timeout)
        assert state.success, state.last_reason
        assert state.duration >= 3  # pg_sleep's lower bound, never tight
    finally:
        await instance.close()


async def test_redis_collector_timeout_reaches_the_client(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """A server paused for 3 s (CLIENT PAUSE) is read by the info collector with a 10 s
    override though the exporter's timeout is 1 s (the client's socket timeout was 1 s)."""
    config = load("redis", {"targets": [{"name": "main", "url": redis_server.url}],
                            "timeout_seconds": 1,
                            "collectors": {"info": {"timeout_seconds": 10}}}, tmp_path)
    instance = load_kind("redis").build(config)
    scheduler = Scheduler("redis", instance.collectors)
    admin = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        [state] = scheduler.states
        await admin.client_pause(3000, all=True)
        await scheduler.run_once(state, state.collector.timeout)
        assert state.success, state.last_reason
        assert state.duration >= 2  # the pause's lower bound, never tight
    finally:
        await admin.aclose()
        await instance.close()

