"""The SMS relay as the runtime sees it: no collectors, two webhook routes, request-fed metrics.

Alertmanager has no SMS receiver. Its webhook posts each alert group to `POST /alert`; the
relay renders one short text per group and sends it to every recipient through Twilio.
`POST /heartbeat` forwards the Watchdog notification to a dead man's switch URL kept in a
file. Both answer 502 when delivery failed in a way worth retrying, so Alertmanager retries.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from collections.abc import Iterable
from typing import ClassVar

from aiohttp import web
from prometheus_client.core import HistogramMetricFamily, Metric
from pydantic import ValidationError

from saasmon.runtime.collector import Collector
from saasmon.runtime.exporter import ExporterKind, Instance, Route
from saasmon.runtime.families import counter, gauge
from saasmon.runtime.logs import log_fields
from saasmon.smsrelay.config import SmsRelayConfig
from saasmon.smsrelay.heartbeat import HeartbeatForwarder, HeartbeatStats
from saasmon.smsrelay.message import parse_webhook, render
from saasmon.smsrelay.twilio import DURATION_BUCKETS, TwilioClient, TwilioStats

log = logging.getLogger("saasmon.smsrelay")

NS = "smsrelay"
ENDPOINTS = ("alert", "heartbeat")
WEBHOOK_RESULTS = ("ok", "failed", "unauthorized", "invalid")


class RelayStats:
    """Counters of one relay process; they survive config reloads."""

    def __init__(self) -> None:
        self.twilio = TwilioStats()
        self.heartbeat = HeartbeatStats()
        self.webhooks = {(e, r): 0 for e in ENDPOINTS for r in WEBHOOK_RESULTS}


class SmsRelayInstance(Instance):
    stats: ClassVar[RelayStats] = RelayStats()

    def __init__(self, config: SmsRelayConfig) -> None:
        self.collectors: list[Collector] = []
        self.config = config
        self.twilio = TwilioClient(config, self.stats.twilio)
        self.heartbeat_forwarder = (HeartbeatForwarder(config.heartbeat, self.stats.heartbeat)
                                    if config.heartbeat is not None else None)
        bearer = config.bearer_value
        self._expected = f"Bearer {bearer}".encode() if bearer else None

    async def close(self) -> None:
        await self.twilio.close()
        if self.heartbeat_forwarder is not None:
            await self.heartbeat_forwarder.close()

    # -- routes ------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        if self._expected is None:
            return True
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._expected)

    def _answer(self, endpoint: str, result: str, status: int,
                body: dict[str, object]) -> web.Response:
        self.stats.webhooks[(endpoint, result)] += 1
        return web.json_response(body, status=status)

    async def alert(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._answer("alert", "unauthorized", 401, {"error": "unauthorized"})
        try:
            message = parse_webhook(await request.read(), request.charset)
        except (ValueError, ValidationError, web.HTTPRequestEntityTooLarge) as exc:
            # ValidationError is a ValueError, and so is json's decode error.
            problem = "body too large" if isinstance(exc, web.HTTPException) else (
                "not an Alertmanager webhook (version 4) payload")
            return self._answer("alert", "invalid", 400, {"error": problem})
        text, cut = render(self.config.template, message, self.config.max_length)
        if cut:
            self.stats.twilio.truncated += 1
        sent = await asyncio.gather(*(self.twilio.send(to, text)
                                      for to in self.config.recipients))
        results = [result for result, _ in sent]
        summary = {r: results.count(r) for r in sorted(set(results))}
        if all(r == "sent" for r in results):
            return self._answer("alert", "ok", 200, {"results": summary, "truncated": cut})
        log.warning("alert group not delivered to every recipient",
                    extra=log_fields(group=message.group_labels.get("alertname", ""),
                                     **summary))
        # Never a 2xx for an undelivered page. 502 makes Alertmanager retry; a 4xx fails
        # the notification without retries that would text the other recipients again.
        retry = any(later for _, later in sent)
        return self._answer("alert", "failed", 502 if retry else 422,
                            {"results": summary, "truncated": cut})

    async def heartbeat(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._answer("heartbeat", "unauthorized", 401, {"error": "unauthorized"})
        if self.heartbeat_forwarder is None:
            return self._answer("heartbeat", "invalid", 404,
                                {"error": "heartbeat forwarding is not configured"})
        try:
            await request.read()  # drained, not needed: any Watchdog notification is a ping
        except web.HTTPRequestEntityTooLarge:
            return self._answer("heartbeat", "invalid", 400, {"error": "body too large"})
        result = await self.heartbeat_forwarder.ping()
        ok = result == "ok"
        return self._answer("heartbeat", "ok" if ok else "failed", 200 if ok else 502,
                            {"result": result})

    # -- metrics -----------------------------------------------------------------
    def families(self) -> Iterable[Metric]:
        tw, hb = self.stats.twilio, self.stats.heartbeat
        yield counter(f"{NS}_messages", "SMS messages by final result after retries "
                      "(sent, rejected = Twilio 4xx, failed = 5xx/429/connection, timeout).",
                      labels=("result",), rows=[((r,), n) for r, n in tw.messages.items()])
        yield counter(f"{NS}_messages_truncated", "SMS texts cut to max_length.",
                      value=tw.truncated)
        yield counter(f"{NS}_twilio_requests", "HTTP requests to the Twilio API by outcome.",
                      labels=("outcome",), rows=[((o,), n) for o, n in tw.requests.items()])
        cumulative = [(str(edge), float(n)) for edge, n in zip(DURATION_BUCKETS,
                                                                tw.bucket_counts, strict=True)]
        yield HistogramMetricFamily(
            f"{NS}_twilio_request_duration_seconds", "Duration of Twilio API requests.",
            buckets=[*cumulative, ("+Inf", float(tw.duration_count))],
            sum_value=tw.duration_sum)
        yield gauge(f"{NS}_twilio_up", "Whether the last Twilio request was answered and "
                    "authenticated (1 before the first request).", value=tw.up)
        yield gauge(f"{NS}_twilio_last_success_timestamp_seconds",
                    "Unix time of the last message Twilio accepted (0 = none yet).",
                    value=tw.last_success)
        yield counter(f"{NS}_webhook_requests", "Webhook requests from Alertmanager.",
                      labels=("endpoint", "result"),
                      rows=[(key, n) for key, n in self.stats.webhooks.items()])
        yield gauge(f"{NS}_heartbeat_configured", "Whether heartbeat forwarding is configured.",
                    value=1 if self.heartbeat_forwarder is not None else 0)
        yield counter(f"{NS}_heartbeat_forwards", "Heartbeat pings forwarded, by result.",
                      labels=("result",), rows=[((r,), n) for r, n in hb.forwards.items()])
        yield gauge(f"{NS}_heartbeat_last_success_timestamp_seconds",
                    "Unix time of the last heartbeat ping answered 2xx (0 = none yet).",
                    value=hb.last_success)


class SmsRelayExporter(ExporterKind[SmsRelayConfig]):
    name = "sms-relay"
    namespace = NS
    default_address = ":9636"
    config_model = SmsRelayConfig
    # Public: Alertmanager authenticates with the optional bearer token, not basic auth.
    routes = (Route("POST", "/alert", "alert", public=True),
              Route("POST", "/heartbeat", "heartbeat", public=True))

    def secrets(self, config: SmsRelayConfig) -> list[str]:
        twilio = config.twilio
        basic = base64.b64encode(f"{twilio.account_sid}:{twilio.token}".encode()).decode()
        found = [twilio.token, basic, config.bearer_value or ""]
        if config.heartbeat is not None:
            found.append(config.heartbeat.url)
        return [s for s in found if s]

    def build(self, config: SmsRelayConfig) -> SmsRelayInstance:
        return SmsRelayInstance(config)

    def summary(self, config: SmsRelayConfig) -> str:
        heartbeat = "on" if config.heartbeat is not None else "off"
        auth = "bearer token" if config.bearer_token is not None else "no auth"
        return (f"sms-relay: config ok: {len(config.recipients)} recipient(s), "
                f"from {config.twilio.from_number}, api {config.twilio.api_url}, {auth}, "
                f"timeout {config.timeout_seconds:g}s, {config.retries} retries, "
                f"heartbeat forwarding {heartbeat}")

