"""Heartbeat source: /ping/<job>[/start|/fail] requests from jobs that do not write the table.

The store belongs to the exporter kind, not to one configured instance, so a config
reload keeps every job's state; a state file (optional) keeps it across restarts too.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from saasmon.cron.state import JobState
from saasmon.runtime.logs import log_fields

log = logging.getLogger("saasmon.cron")

REJECT_REASONS = ("unauthorized", "unknown_job", "not_heartbeat_job", "rate_limited")
# Token guessing: a client with this many wrong tokens within the window is refused
# (429, token not even compared) until the window since its first failure has passed.
MAX_TOKEN_FAILURES = 10
FAILURE_WINDOW_SECONDS = 60.0
MAX_TRACKED_CLIENTS = 4096
# A burst of pings writes the state file once, this long after the first of them.
FLUSH_DELAY_SECONDS = 1.0
STATE_VERSION = 1
RUN_KEY = "heartbeat"  # one open run per job: a new /start replaces an unfinished one


class HeartbeatStore:
    """Run state of the heartbeat jobs and the rejected-request counters."""

    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)
        # Kept across reloads with the store: a reload must not reset a guesser's count.
        self.failures = FailureLimiter()
        self.path: Path | None = None
        self._dirty = False
        self._flush: asyncio.TimerHandle | None = None
        self._write_error: str | None = None

    def configure(self, jobs: list[str], state_file: str | None) -> None:
        """Adopt a (re)loaded config: keep known jobs' state, start new jobs' watch now."""
        path = Path(state_file) if state_file else None
        if path is not None and path != self.path and not self.states:
            self.states = self._load(path)
        self.path = path
        now = time.time()
        self.states = {name: self.states.get(name) or JobState(known_since=now)
                       for name in jobs}

    def record(self, job: str, event: str) -> None:
        state = self.states[job]
        now = time.time()
        if event == "start":
            state.start(RUN_KEY, now)
        else:
            started = state.open_runs.get(RUN_KEY)
            state.finish(RUN_KEY, event, started, now,
                         None if started is None else now - started)
        self._dirty = True
        self._schedule_flush()

    # -- state file ----------------------------------------------------------------
    def _schedule_flush(self) -> None:
        if self.path is None or self._flush is not None:
            return
        self._flush = asyncio.get_running_loop().call_later(FLUSH_DELAY_SECONDS, self.flush)

    def flush(self) -> None:
        self._flush = None
        if self.path is None or not self._dirty:
            return
        data = {"version": STATE_VERSION,
                "jobs": {name: s.to_json() for name, s in self.states.items()}}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text(json.dumps(data, sort_keys=True))
            os.replace(tmp, self.path)  # atomic: a crash leaves the old file or the new one
        except OSError as exc:
            if self._write_error != exc.strerror:
                log.warning("cannot write heartbeat state file",
                            extra=log_fields(path=str(self.path), error=exc.strerror))
            self._write_error = exc.strerror
            return
        self._write_error = None
        self._dirty = False

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self.flush()

    @staticmethod
    def _load(path: Path) -> dict[str, JobState]:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_bytes(), parse_constant=_no_constant)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            return {str(name): JobState.from_json(raw) for name, raw in data["jobs"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError,
                RecursionError) as exc:
            # A broken file must not stop the exporter: start afresh and say so once. The
            # file is kept aside for a look (the next flush would overwrite it).
            aside = path.with_name(path.name + ".bad")
            try:
                os.replace(path, aside)
            except OSError:
                aside = path
            error = "nested too deep" if isinstance(exc, RecursionError) \
                else f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("heartbeat state file unreadable, starting without it",
                        extra=log_fields(path=str(path), moved_to=str(aside), error=error))
            return {}


def _no_constant(name: str) -> float:
    """json accepts NaN and Infinity, which JSON itself does not: refuse them."""
    raise ValueError(f"{name} is not a number")


class FailureLimiter:
    """Failed token checks per client address in a fixed window, for a bounded set of
    clients (the oldest is forgotten first: a flood of addresses cannot grow memory)."""

    def __init__(self, max_failures: int = MAX_TOKEN_FAILURES,
                 window: float = FAILURE_WINDOW_SECONDS,
                 max_clients: int = MAX_TRACKED_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window, self.max_clients = max_failures, window, max_clients
        self.clock = clock
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()  # since, count

    def __len__(self) -> int:
        return len(self._failures)

    def blocked(self, client: str) -> bool:
        entry = self._failures.get(client)
        if entry is None:
            return False
        if self.clock() - entry[0] >= self.window:
            del self._failures[client]
            return False
        return entry[1] >= self.max_failures

    def failed(self, client: str) -> None:
        now = self.clock()
        since, count = self._failures.pop(client, (now, 0))
        if now - since >= self.window:
            since, count = now, 0
        self._failures[client] = (since, count + 1)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


class HeartbeatHandler:
    """The HTTP side for one configured instance: token check, job lookup, record."""

    def __init__(self, store: HeartbeatStore, heartbeat_jobs: list[str],
                 table_jobs: list[str], token: str | None) -> None:
        self.store = store
        self.heartbeat_jobs = set(heartbeat_jobs)
        self.table_jobs = set(table_jobs)
        self.token = token.encode() if token else None

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        offered = [header[7:].strip()] if header[:7].lower() == "bearer " else []
        offered += request.query.getall("token", [])
        # Compare every offer in constant time; no early exit on the first mismatch.
        matches = [hmac.compare_digest(o.encode(), self.token) for o in offered]
        return any(matches)

    async def handle(self, request: web.Request, event: str) -> web.Response:
        client = request.remote or "unknown"
        if self.token is not None and self.store.failures.blocked(client):
            self.store.rejected["rate_limited"] += 1
            return web.Response(status=429, text="Too many failed tokens\n",
                                headers={"Retry-After": str(int(FAILURE_WINDOW_SECONDS))})
        if not self._authorized(request):
            self.store.failures.failed(client)
            self.store.rejected["unauthorized"] += 1
            return web.Response(status=401, text="Unauthorized\n",
                                headers={"WWW-Authenticate": 'Bearer realm="saasmon"'})
        job = request.match_info["job"]
        if job not in self.heartbeat_jobs:
            # The name is never echoed nor used as a label: it is whatever the caller sent.
            if job in self.table_jobs:
                self.store.rejected["not_heartbeat_job"] += 1
                return web.Response(status=409, text="job reports through the table\n")
            self.store.rejected["unknown_job"] += 1
            return web.Response(status=404, text="unknown job\n")
        self.store.record(job, event)
        return web.Response(text="OK\n")
