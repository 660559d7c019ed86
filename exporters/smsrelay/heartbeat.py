"""Forward Alertmanager's Watchdog notification to a dead man's switch ping URL."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import aiohttp

from saasmon.runtime.logs import log_fields
from saasmon.smsrelay.config import HeartbeatConfig

log = logging.getLogger("saasmon.smsrelay.heartbeat")

RESULTS = ("ok", "failed", "timeout")


@dataclass
class HeartbeatStats:
    forwards: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    last_success: float = 0.0
    last_result: str = ""


class HeartbeatForwarder:
    """One ping per notification, no retry: Alertmanager sends the next one within a minute,
    and retries a failed one itself when we answer 502."""

    def __init__(self, config: HeartbeatConfig, stats: HeartbeatStats) -> None:
        self.config = config
        self.stats = stats
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def ping(self) -> str:
        try:
            async with self.session().request(self.config.method, self.config.url) as response:
                await response.read()
                result = "ok" if 200 <= response.status < 300 else "failed"
                detail = f"HTTP {response.status}"
        except TimeoutError:
            result, detail = "timeout", f"no answer within {self.config.timeout_seconds:g}s"
        except aiohttp.ClientError as exc:
            result, detail = "failed", type(exc).__name__
        self.stats.forwards[result] += 1
        if result == "ok":
            self.stats.last_success = time.time()
            if self.stats.last_result not in ("", "ok"):
                log.info("heartbeat forwarding recovered")
        elif self.stats.last_result != result:
            # The URL is a secret: only the outcome is logged, once per change.
            log.warning("heartbeat not forwarded", extra=log_fields(result=result, detail=detail))
        self.stats.last_result = result
        return result
