"""Health endpoints in the shape of saas-ops-module § Health Check Endpoint.

`GET /health`: overall `healthy | degraded | unhealthy` with one result per check
(`pass | warn | fail`, latency in ms, message); HTTP 200 for healthy and degraded, 503 for
unhealthy. `GET /health/live`: the process answers. `GET /health/ready`: the database
answers, so the app can take traffic. The same three also under `/api/health`, the
guide's own path.

The guide's app has only a database check, whose failure makes it unhealthy. Here the
database stays the critical check; the Redis cache is optional (the API falls back to the
database without it), so a cache failure, or a slow but working database, only degrades.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge

from refapp.faults import HEALTH_STATES, Faults
from saasmon.runtime.logs import SecretRegistry

# A check slower than this warns: nova-crm § 1.1 database queryTime alert 200 ms. The
# guides give no Redis latency target; the same budget applies to the cache ping.
SLOW_CHECK_SECONDS = 0.2
# A check that has not answered by then fails: a hung dependency must not hang /health.
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    status: str  # pass | warn | fail
    latency_seconds: float | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.latency_seconds is not None:
            # Milliseconds under the guide's key (`latency: Date.now() - start`).
            out["latency"] = round(self.latency_seconds * 1000, 3)
        if self.message:
            out["message"] = self.message
        return out


Probe = Callable[[], Awaitable[object]]


async def run_check(probe: Probe, timeout: float = CHECK_TIMEOUT_SECONDS,
                    slow: float = SLOW_CHECK_SECONDS) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await probe()
    except TimeoutError:
        return CheckResult("fail", message=f"no answer within {timeout:g}s")
    except Exception as exc:
        # Type and a short, masked message: enough for an operator, never a DSN.
        text = SecretRegistry.mask(str(exc)).splitlines()[0][:160] if str(exc) else ""
        return CheckResult("fail", message=f"{type(exc).__name__}: {text}".rstrip(": "))
    latency = time.perf_counter() - started
    if latency > slow:
        return CheckResult("warn", latency, f"slower than {slow:g}s")
    return CheckResult("pass", latency)


def overall(checks: dict[str, CheckResult], critical: str = "database") -> str:
    if checks[critical].status == "fail":
        return "unhealthy"
    if all(c.status == "pass" for c in checks.values()):
        return "healthy"
    return "degraded"


class Health:
    """Runs the checks and keeps the last results as metrics."""

    def __init__(self, probes: dict[str, Probe], faults: Faults, version: str,
                 registry: CollectorRegistry) -> None:
        if "database" not in probes:
            raise ValueError("the database check is required")
        self.probes = probes
        self.faults = faults
        self.version = version
        self._up = Gauge("refapp_health_check_up", "Whether the last health check of this "
                         "dependency passed or warned (1) or failed (0).", ["check"],
                         registry=registry)
        self._latency = Gauge("refapp_health_check_latency_seconds", "Latency of the last "
                              "successful health check of this dependency.", ["check"],
                              registry=registry)
        self._status = Gauge("refapp_health_status", "1 for the app's current overall "
                             "health status (saas-ops-module § Health Check Endpoint).",
                             ["status"], registry=registry)
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> tuple[str, dict[str, CheckResult]]:
        names = list(self.probes)
        results = await asyncio.gather(*(run_check(self.probes[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        status = self.faults.health or overall(checks)
        for name, result in checks.items():
            self._up.labels(name).set(0 if result.status == "fail" else 1)
            if result.latency_seconds is not None:
                self._latency.labels(name).set(result.latency_seconds)
        for state in HEALTH_STATES:
            self._status.labels(state).set(1 if state == status else 0)
        return status, checks

    async def health(self, request: web.Request) -> web.Response:
        status, checks = await self.check()
        body: dict[str, Any] = {
            "status": status,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "version": self.version,
            "checks": {name: result.as_json() for name, result in checks.items()},
        }
        if self.faults.health is not None:
            body["forced"] = True  # a drill set it through /-/faults
        return web.json_response(body, status=503 if status == "unhealthy" else 200)

    async def live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        result = await run_check(self.probes["database"])
        ready = result.status != "fail" and self.faults.health != "unhealthy"
        if ready:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready"}, status=503)

    def add_routes(self, app: web.Application) -> None:
        # Both spellings: /health as the brief of this app, /api/health as the guide's
        # Next.js route (app/api/health/route.ts) that probes default to.
        for prefix in ("", "/api"):
            app.router.add_get(f"{prefix}/health", self.health)
            app.router.add_get(f"{prefix}/health/live", self.live)
            app.router.add_get(f"{prefix}/health/ready", self.ready)

    # Checks also run in the background so the metrics stay current with nobody polling.
    def start(self, interval: float) -> None:
        if interval > 0:
            self._task = asyncio.create_task(self._loop(interval))

    async def _loop(self, interval: float) -> None:
        while True:
            await self.check()
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
