"""Send one SMS through Twilio's Messages API, with retries on 5xx/429, none on other 4xx."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from saasmon.runtime.logs import SecretRegistry, log_fields
from saasmon.smsrelay.config import SmsRelayConfig

log = logging.getLogger("saasmon.smsrelay.twilio")

# Bounded label values.
RESULTS = ("sent", "rejected", "failed", "timeout")  # per message, after retries
OUTCOMES = ("2xx", "4xx", "429", "5xx", "timeout", "connection", "error")  # per HTTP request
RETRYABLE = frozenset({"5xx", "429", "connection"})
# Twilio answers within a second normally; the last buckets catch a slow or hanging API.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
API_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"


@dataclass
class TwilioStats:
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    bucket_counts: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_sum: float = 0.0
    duration_count: int = 0
    up: int = 1  # nothing has failed yet
    last_success: float = 0.0
    truncated: int = 0

    def observe(self, seconds: float) -> None:
        for index, edge in enumerate(DURATION_BUCKETS):
            if seconds <= edge:
                self.bucket_counts[index] += 1
        self.duration_sum += seconds
        self.duration_count += 1


@dataclass(frozen=True)
class Attempt:
    outcome: str
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""  # Twilio's error code and message, or the exception type


def classify(status: int) -> str:
    if 200 <= status < 300:
        return "2xx"
    if status < 400:
        # Redirects are not followed (they would take the credentials elsewhere): the
        # api_url is wrong, which no retry fixes.
        return "error"
    if status == 429:
        return "429"
    if 400 <= status < 500:
        return "4xx"
    return "5xx"


def healthy(attempt: Attempt) -> bool:
    """Whether Twilio answered and accepted our credentials (a bad number is not its fault)."""
    return attempt.outcome == "2xx" or (attempt.outcome == "4xx"
                                        and attempt.status not in (401, 403))


def masked_number(number: str) -> str:
    """Phone numbers are personal data: logs show the last four digits only."""
    return "..." + number[-4:]


class TwilioClient:
    def __init__(self, config: SmsRelayConfig, stats: TwilioStats) -> None:
        self.config = config
        self.stats = stats
        twilio = config.twilio
        self.url = twilio.api_url + API_PATH.format(sid=twilio.account_sid)
        self.auth = aiohttp.BasicAuth(twilio.account_sid, twilio.token)
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(config.max_concurrent_requests)

    def session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, to: str, body: str) -> tuple[str, bool]:
        """Deliver one message within the deadline; returns its result (one of RESULTS)
        and whether a later try may deliver it (Alertmanager should retry)."""
        deadline = time.monotonic() + self.config.deadline_seconds
        retries = self.config.retries
        attempt = Attempt("timeout", detail="deadline passed waiting for a free slot")
        for number in range(retries + 1):
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._limit.acquire(), max(remaining, 0.001))
            except TimeoutError:
                break
            try:
                attempt = await self._attempt(to, body, deadline - time.monotonic())
            finally:
                self._limit.release()
            if attempt.outcome not in RETRYABLE or number == retries:
                break
            delay = self.config.backoff_seconds * 2 ** number
            if attempt.retry_after is not None:
                delay = max(delay, attempt.retry_after)
            if time.monotonic() + delay >= deadline:
                # Waiting would outlast Alertmanager's patience: fail now, it retries later.
                log.info("twilio request failed, no time left to retry",
                         extra=log_fields(outcome=attempt.outcome, status=attempt.status,
                                          retry_in_seconds=round(delay, 3)))
                break
            log.info("twilio request failed, retrying",
                     extra=log_fields(outcome=attempt.outcome, status=attempt.status,
                                      retry_in_seconds=round(delay, 3)))
            await asyncio.sleep(delay)
        result = {"2xx": "sent", "4xx": "rejected", "timeout": "timeout"}.get(
            attempt.outcome, "failed")
        self.stats.messages[result] += 1
        if result != "sent":
            log.warning("sms not sent", extra=log_fields(
                result=result, outcome=attempt.outcome, status=attempt.status,
                recipient=masked_number(to), detail=SecretRegistry.mask(attempt.detail)[:300]))
        # A rejected number stays rejected; rejected credentials are ours to fix.
        later = result in ("failed", "timeout") or attempt.status in (401, 403)
        return result, later

    async def _attempt(self, to: str, body: str, remaining: float) -> Attempt:
        form = {"To": to, "From": self.config.twilio.from_number, "Body": body}
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=max(min(self.config.timeout_seconds, remaining),
                                                  0.001))
        try:
            async with self.session().post(self.url, data=form, auth=self.auth, timeout=timeout,
                                           allow_redirects=False) as response:
                text = await response.text()
                attempt = Attempt(classify(response.status), response.status,
                                  _retry_after(response.headers.get("Retry-After")),
                                  _error_detail(response.status, text))
        except TimeoutError:
            attempt = Attempt("timeout", detail=f"no answer within {timeout.total:g}s")
        except aiohttp.ClientConnectorError as exc:
            # Nothing reached Twilio: safe to retry, unlike a timeout after sending.
            attempt = Attempt("connection", detail=type(exc).__name__)
        except aiohttp.ClientError as exc:
            attempt = Attempt("error", detail=type(exc).__name__)
        self.stats.observe(time.monotonic() - started)
        self.stats.requests[attempt.outcome] += 1
        self.stats.up = 1 if healthy(attempt) else 0
        if attempt.outcome == "2xx":
            self.stats.last_success = time.time()
        return attempt


def _retry_after(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_detail(status: int, text: str) -> str:
    if 200 <= status < 300:
        return ""
    # Twilio's error body is JSON with `code` and `message`; keep it short and one line.
    return f"HTTP {status}: " + " ".join(text.split())[:200]
