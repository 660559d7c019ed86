"""Fault knobs for demos and drills: set at start by flags, changed live by /-/faults.

Rates are applied deterministically, not by chance: of N requests under a rate r, exactly
floor(N * r) fail, spread evenly (an error-diffusion counter). A drill then shows the same
error ratio every time, and a test can assert exact counts.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HEALTH_STATES = ("healthy", "degraded", "unhealthy")
# Upper bounds for the latency knobs: a drill, not a way to hang the server forever.
MAX_DELAY_SECONDS = 120.0
MAX_JOB_NAME = 100


class FaultError(ValueError):
    """A knob value out of range; the message names the knob."""


class RateGate:
    """Answers True for exactly floor(n * rate) of n calls, evenly spread."""

    def __init__(self, rate: float = 0.0) -> None:
        self.rate = rate
        self._credit = 0.0

    def set(self, rate: float) -> None:
        if rate != self.rate:
            self.rate, self._credit = rate, 0.0

    def hit(self) -> bool:
        self._credit += self.rate
        if self._credit >= 1.0 - 1e-9:
            self._credit -= 1.0
            return True
        return False


def _ratio(key: str, value: Any) -> float:
    number = _number(key, value)
    if not 0.0 <= number <= 1.0:
        raise FaultError(f"{key}: must be between 0 and 1, got {value!r}")
    return number


def _delay(key: str, value: Any) -> float:
    number = _number(key, value)
    if not 0.0 <= number <= MAX_DELAY_SECONDS:
        raise FaultError(f"{key}: must be between 0 and {MAX_DELAY_SECONDS:g} seconds, "
                         f"got {value!r}")
    return number


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{key}: must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise FaultError(f"{key}: must be finite, got {value!r}")
    return number


def _health(key: str, value: Any) -> str | None:
    if value is None or value == "auto":
        return None
    if value not in HEALTH_STATES:
        raise FaultError(f"{key}: must be one of {', '.join(HEALTH_STATES)}, auto or null, "
                         f"got {value!r}")
    return str(value)


def _name(key: str, value: Any, allowed: Iterable[str] | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_JOB_NAME:
        raise FaultError(f"{key}: must be a job name (at most {MAX_JOB_NAME} characters) or "
                         f"null, got {value!r}")
    names = list(allowed or ())
    if names and value not in names:
        raise FaultError(f"{key}: unknown job {value!r} (known: {', '.join(names)})")
    return value


@dataclass
class Faults:
    """Current knob values; `update()` validates a partial change atomically."""

    error_rate: float = 0.0  # share of /api requests answered 500
    extra_latency_seconds: float = 0.0  # added before every /api handler
    # Share of /api requests that get the delay (1: all). Below 1 a drill moves a high
    # percentile (p95) without moving the median with it.
    extra_latency_ratio: float = 1.0
    health: str | None = None  # None: real checks decide; else forced overall status
    failing_cron_job: str | None = None  # read by the cron runner (--faults-url)
    slow_cron_job: str | None = None  # ditto: runs `slow_cron_seconds` longer
    slow_cron_seconds: float = 0.0
    payment_failure_rate: float = 0.0  # share of payments written as failed
    # None: a failed payment is a customer's declined card (random decline code); else this
    # failure_reason, e.g. a provider error such as "api_connection_error".
    payment_failure_reason: str | None = None
    message_failure_rate: float = 0.0  # share of message deliveries written as failed
    ws_delay_seconds: float = 0.0  # delay of every realtime message before it is sent
    known_jobs: tuple[str, ...] = field(default=(), repr=False)
    error_gate: RateGate = field(default_factory=RateGate, repr=False)
    payment_gate: RateGate = field(default_factory=RateGate, repr=False)
    message_gate: RateGate = field(default_factory=RateGate, repr=False)
    latency_gate: RateGate = field(default_factory=RateGate, repr=False)

    def __post_init__(self) -> None:
        self.update(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for private in ("known_jobs", "error_gate", "payment_gate", "message_gate",
                        "latency_gate"):
            data.pop(private)
        return data

    def update(self, changes: Mapping[str, Any]) -> None:
        validators: dict[str, Callable[[str, Any], Any]] = {
            "error_rate": _ratio,
            "extra_latency_seconds": _delay,
            "extra_latency_ratio": _ratio,
            "health": _health,
            "failing_cron_job": lambda k, v: _name(k, v, self.known_jobs),
            "slow_cron_job": lambda k, v: _name(k, v, self.known_jobs),
            "slow_cron_seconds": _delay,
            "payment_failure_rate": _ratio,
            "payment_failure_reason": lambda k, v: _name(k, v, None),
            "message_failure_rate": _ratio,
            "ws_delay_seconds": _delay,
        }
        unknown = sorted(set(changes) - set(validators))
        if unknown:
            raise FaultError(f"{unknown[0]}: unknown knob (known: {', '.join(validators)})")
        checked = {key: validators[key](key, value) for key, value in changes.items()}
        for key, value in checked.items():
            setattr(self, key, value)
        self.error_gate.set(self.error_rate)
        self.payment_gate.set(self.payment_failure_rate)
        self.message_gate.set(self.message_failure_rate)
        self.latency_gate.set(self.extra_latency_ratio)


class FaultsCollector(Collector):
    """The knobs as gauges, so a dashboard shows when a drill is injecting faults."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def collect(self) -> Iterable[Metric]:
        f = self.faults
        for name, help_text, value in (
            ("refapp_fault_error_ratio", "Injected share of /api requests answered 500.",
             f.error_rate),
            ("refapp_fault_extra_latency_seconds", "Injected delay before /api handlers.",
             f.extra_latency_seconds),
            ("refapp_fault_extra_latency_ratio", "Share of /api requests given the delay.",
             f.extra_latency_ratio),
            ("refapp_fault_payment_failure_ratio", "Injected share of failed payments.",
             f.payment_failure_rate),
            ("refapp_fault_message_failure_ratio", "Injected share of failed messages.",
             f.message_failure_rate),
            ("refapp_fault_ws_delay_seconds", "Injected delay of realtime messages.",
             f.ws_delay_seconds),
        ):
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge
        forced = GaugeMetricFamily("refapp_fault_health_forced",
                                   "1 for the health status forced by /-/faults, else 0.",
                                   labels=["status"])
        for state in HEALTH_STATES:
            forced.add_metric([state], 1.0 if f.health == state else 0.0)
        yield forced


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def faults_middleware(faults: Faults, prefix: str = "/api/",
                      spared: str = "/api/health") -> Callable[..., Any]:
    """Inject latency and 500s into requests under `prefix`; health endpoints (the `health`
    knob drives those), metrics and the knobs themselves stay true."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(prefix) or request.path.startswith(spared):
            return await handler(request)
        if faults.extra_latency_seconds > 0 and faults.latency_gate.hit():
            await asyncio.sleep(faults.extra_latency_seconds)
        if faults.error_gate.hit():
            raise web.HTTPInternalServerError(
                text='{"error": "injected fault (error_rate)"}', content_type="application/json")
        return await handler(request)

    return middleware


def _authorized(request: web.Request, token: str | None) -> bool:
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else request.headers.get(
        "X-Faults-Token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def add_faults_routes(app: web.Application, faults: Faults, token: str | None) -> None:
    """GET/POST /-/faults; with a token, both need `Authorization: Bearer <token>`."""

    async def get_faults(request: web.Request) -> web.Response:
        if not _authorized(request, token):
            raise web.HTTPUnauthorized(text='{"error": "faults token required"}',
                                       content_type="application/json")
        return web.json_response(faults.as_dict())

    async def post_faults(request: web.Request) -> web.Response:
        if not _authorized(request, token):
            raise web.HTTPUnauthorized(text='{"error": "faults token required"}',
                                       content_type="application/json")
        try:
            changes = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        if not isinstance(changes, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        try:
            faults.update(changes)
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(faults.as_dict())

    app.router.add_get("/-/faults", get_faults)
    app.router.add_post("/-/faults", post_faults)
