"""aiohttp server: telemetry path, health/ready/reload, basic auth, SIGHUP reload."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import StreamReader, web
from prometheus_client import ProcessCollector
from prometheus_client.core import Metric

from saasmon import __version__
from saasmon.runtime.collector import DEFAULT_SCRAPE_TIMEOUT, SCRAPE_DEADLINE_MARGIN, Scheduler
from saasmon.runtime.config import ConfigError, load_config
from saasmon.runtime.connections import BodyTimeout, Gate, Slot
from saasmon.runtime.exporter import ExporterKind, Instance
from saasmon.runtime.exposition import negotiate, respond
from saasmon.runtime.families import counter, gauge
from saasmon.runtime.logs import SecretRegistry, current_exporter, log_fields
from saasmon.runtime.memory import release_free_memory
from saasmon.runtime.webconfig import (
    BasicAuth,
    WebConfig,
    allowed_client,
    rate_limiter,
    ssl_context,
)

log = logging.getLogger("saasmon.server")

# Seconds a connection may sit without a complete request (slow headers, or idle between
# keep-alive requests) before it is closed: longer than common scrape intervals' gaps
# would make Prometheus reconnect each time, much longer lets slow clients hold slots.
DEFAULT_HEADER_TIMEOUT = 60.0
# Seconds from a request's headers to the end of its body (a deadline, not an idle timer):
# beacons, Alertmanager webhooks and pings are small and sent at once.
DEFAULT_BODY_TIMEOUT = 10.0
# Renderings of the collected data kept per generation, one per Content-Type negotiated
# (text 0.0.4 and OpenMetrics 1.0.0 in practice).
RENDER_CACHE_FORMATS = 4


def render(families: Iterable[Metric]) -> bytes:
    """Families in the text format (0.0.4), for callers that do not negotiate."""
    return negotiate("").document(families)


class ExporterServer:
    def __init__(self, kind: ExporterKind[Any], config_path: str | None, telemetry_path: str,
                 web_config: WebConfig, max_connections: int | None = None,
                 header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 per_address: int | None = None,
                 body_timeout: float = DEFAULT_BODY_TIMEOUT, name: str | None = None) -> None:
        self.kind = kind
        # What logs call it and the prefix of its config's env overrides: the kind's name,
        # or a bundle entry's (two postgres exporters in one process need two names).
        self.name = name or kind.name
        self.max_connections = max_connections or kind.max_connections
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        # By default one client address may hold a quarter of the slots.
        self.gate = Gate(self.max_connections, per_address or max(1, self.max_connections // 4))
        self.config_path = config_path
        self.telemetry_path = telemetry_path
        self.web_config = web_config
        self.auth = BasicAuth(web_config.basic_auth_users) if web_config.basic_auth_users else None
        self.limiter = rate_limiter(web_config)
        http, tls = web_config.http_server_config, web_config.tls_server_config
        self.response_headers = http.response_headers() if http is not None else {}
        self.allowed_sans = tls.client_allowed_sans if tls is not None else []
        self.instance: Instance | None = None
        self.scheduler: Scheduler | None = None
        self.reload_ok = 1
        self.reload_time = time.time()
        self._reload_lock = asyncio.Lock()
        # Rendered data keyed by (scheduler, generation): a reload brings a new scheduler
        # whose generations start again at 0, so the number alone cannot tell them apart.
        # One rendering per negotiated Content-Type (text, OpenMetrics).
        self._cache: tuple[Scheduler | None, int, dict[str, bytes]] = (None, -1, {})
        self._process = ProcessCollector(registry=None)
        self._public_paths = {r.path for r in kind.routes if r.public}

    # -- lifecycle -----------------------------------------------------------------
    async def activate(self, config: Any) -> None:
        SecretRegistry.add(*self.kind.secrets(config))
        instance = self.kind.build(config)
        scheduler = Scheduler(self.kind.namespace, instance.collectors)
        scheduler.start()
        old_instance, old_scheduler = self.instance, self.scheduler
        self.instance, self.scheduler = instance, scheduler
        if old_scheduler is not None:
            await old_scheduler.stop()
        if old_instance is not None:
            await old_instance.close()

    async def reload(self) -> str | None:
        """Load and apply the config file; None on success, else the problem as one line.

        Never raises: a SIGHUP reload runs as a task nobody awaits, and whatever escaped it
        would be logged by asyncio as a multi-line traceback quoting the exception's args.
        """
        async with self._reload_lock:
            try:
                config = load_config(self.kind.config_model, self.config_path, self.name)
                await self.activate(config)
            except ConfigError as exc:
                problem = str(exc)
            except Exception as exc:  # a config that validates but cannot be applied
                problem = f"cannot apply the config: {type(exc).__name__}"
            else:
                self.reload_ok, self.reload_time = 1, time.time()
                log.info("config reloaded")
                return None
            self.reload_ok = 0
            problem = " ".join(SecretRegistry.mask(problem).split())
            log.error("reload failed, keeping the running config", extra=log_fields(error=problem))
            return problem

    async def close(self) -> None:
        await self._reload_lock.acquire()  # let a running reload finish installing first
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.instance is not None:
            await self.instance.close()

    # -- HTTP ----------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        slot = _slot(request)
        try:
            response = await self._answer(request, handler, slot)
        finally:
            if slot is not None:
                slot.request_done()
        response.headers.update(self.response_headers)
        return response

    async def _answer(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      slot: Slot | None) -> web.StreamResponse:
        if self.allowed_sans and not allowed_client(_peercert(request), self.allowed_sans):
            # Go's toolkit fails such a handshake; here it is refused before any work.
            response = web.Response(status=403, text="Client certificate not allowed\n")
            response.force_close()
            return response
        if self.limiter is not None and not self.limiter.allow():
            return web.Response(status=429, text="Too many requests\n")
        # Until its request is authorised, a connection is still waiting on its client:
        # while credentials are checked, a newer connection may take its slot.
        route = request.match_info.route.resource
        public = route is not None and route.canonical in self._public_paths
        if self.auth is not None and not public and not await self._authorized(request):
            return web.Response(status=401, text="Unauthorized\n",
                                headers={"WWW-Authenticate": 'Basic realm="saasmon"'})
        if slot is not None and not slot.admitted:
            # Displaced during the check: closed already, so no work on its behalf.
            return web.Response(status=503, text="Too many connections\n")
        body = request.content
        timer = None
        if body.is_eof():
            if slot is not None:
                slot.start_work()
        else:
            if slot is not None:
                slot.await_body(body)
            timer = asyncio.get_running_loop().call_later(self.body_timeout,
                                                          self._body_late, body)
        try:
            return await handler(request)
        except BodyTimeout:
            response = web.Response(status=408, text="Request body not received in time\n")
            response.force_close()
            return response
        finally:
            if timer is not None:
                timer.cancel()

    def _body_late(self, body: StreamReader) -> None:
        """--web.body-timeout is up: the handler's read (or aiohttp's drain) raises."""
        if not body.is_eof():
            self.gate.dropped["body_timeout"] += 1
            body.set_exception(BodyTimeout())

    async def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        assert self.auth is not None
        return await self.auth.check(user, password)

    async def metrics(self, request: web.Request) -> web.Response:
        scheduler = self.scheduler
        assert scheduler is not None
        await scheduler.collect_on_scrape(scrape_deadline(request))
        fmt = negotiate(request.headers.get("Accept", ""))
        cached_for, generation, rendered = self._cache
        if cached_for is not scheduler or generation != scheduler.generation:
            rendered = {}
            self._cache = (scheduler, scheduler.generation, rendered)
        data = rendered.get(fmt.content_type)
        if data is None:
            # Re-render the collected data only when a collector has finished since.
            data = fmt.fragment(scheduler.data_families())
            # The Content-Type echoes the version asked for: a few are kept, not any number.
            if len(rendered) < RENDER_CACHE_FORMATS:
                rendered[fmt.content_type] = data
        assert self.instance is not None
        body = (data + fmt.fragment(self.instance.families())
                + fmt.document(self._own_families(scheduler)))
        return await respond(request, fmt, body)

    def _own_families(self, scheduler: Scheduler) -> Iterable[Metric]:
        ns = self.kind.namespace
        yield from scheduler.self_families()
        yield gauge(f"{ns}_exporter_config_last_reload_successful",
                    "Whether the last config reload succeeded.", self.reload_ok)
        yield gauge(f"{ns}_exporter_config_last_reload_success_timestamp_seconds",
                    "Unix time of the last successful config load.", self.reload_time)
        yield gauge(f"{ns}_exporter_build_info", "saasmon version.", labels=("version",),
                    rows=[((__version__,), 1)])
        yield gauge(f"{ns}_exporter_http_connections",
                    "Open HTTP connections (at most --web.max-connections).",
                    value=self.gate.open)
        yield counter(f"{ns}_exporter_http_connections_dropped",
                      "HTTP connections ended early, by reason: displaced (gave its slot to a "
                      "newer connection while waiting on its client), refused (503: every slot "
                      "busy answering), body_timeout (408: body not received in time).",
                      labels=("reason",), rows=[((r,), n) for r, n in self.gate.dropped.items()])
        yield from self._process.collect()

    async def healthy(self, _: web.Request) -> web.Response:
        return web.Response(text="Healthy\n")

    async def ready(self, _: web.Request) -> web.Response:
        if self.scheduler is not None and self.scheduler.first_round.is_set():
            return web.Response(text="Ready\n")
        return web.Response(status=503, text="Not ready: first collection pending\n")

    async def reload_handler(self, _: web.Request) -> web.Response:
        problem = await self.reload()
        if problem is None:
            return web.Response(text="Reloaded\n")
        # 400: the file is at fault, not the server; one line, as in the log.
        return web.Response(status=400, text=f"reload failed, running config kept: {problem}\n")

    async def landing(self, _: web.Request) -> web.Response:
        path = self.telemetry_path
        return web.Response(
            content_type="text/html",
            text=f"<html><head><title>saasmon {self.kind.name} exporter</title></head><body>"
                 f"<h1>saasmon {self.kind.name} exporter</h1>"
                 f'<p><a href="{path}">Metrics</a></p></body></html>',
        )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(self.telemetry_path, self.metrics)
        app.router.add_get("/-/healthy", self.healthy)
        app.router.add_get("/-/ready", self.ready)
        app.router.add_post("/-/reload", self.reload_handler)
        if self.telemetry_path != "/":
            app.router.add_get("/", self.landing)
        for route in self.kind.routes:
            app.router.add_route(route.method, route.path, self._delegate(route.handler))
        return app

    def _delegate(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            instance = self.instance
            assert instance is not None
            response: web.StreamResponse = await getattr(instance, name)(request)
            return response
        return handle


def _slot(request: web.Request) -> Slot | None:
    """The connection's slot (None when served by something else, e.g. a test client)."""
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, Slot) else None


def _peercert(request: web.Request) -> dict[str, Any] | None:
    """The verified client certificate of a TLS connection (None without one)."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    return cert if isinstance(cert, dict) else None


def scrape_deadline(request: web.Request) -> float:
    """Seconds this request may take: Prometheus' scrape timeout header minus a margin."""
    header = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    try:
        budget = float(header) if header else DEFAULT_SCRAPE_TIMEOUT
    except ValueError:
        budget = DEFAULT_SCRAPE_TIMEOUT
    return max(budget - SCRAPE_DEADLINE_MARGIN, 0.1)


def split_address(address: str) -> tuple[str | None, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"web.listen-address: {address!r} is not host:port")
    host = host.strip("[]")
    return (host or None), int(port)


class Listening:
    """An exporter that is collecting and listening; close() stops both."""

    def __init__(self, server: ExporterServer, runner: web.AppRunner,
                 listener: asyncio.Server) -> None:
        self.server, self.runner, self.listener = server, runner, listener

    async def close(self) -> None:
        log.info("shutting down")
        self.listener.close()
        await self.runner.cleanup()
        await self.server.close()


async def listen(server: ExporterServer, config: Any, address: str) -> Listening:
    """Start collecting with `config` and listen on `address` (OSError when it cannot)."""
    host, port = split_address(address)
    await server.activate(config)
    # aiohttp closes a connection whose request is incomplete when its keep-alive timer
    # fires (it starts on connect and after each response): that is the header timeout.
    # A body the handler left unread is drained for at most the body timeout.
    runner = web.AppRunner(server.app(), handle_signals=False,
                           keepalive_timeout=server.header_timeout,
                           lingering_time=server.body_timeout)
    await runner.setup()
    tls = server.web_config.tls_server_config
    handlers = runner.server
    assert handlers is not None

    def protocol() -> Slot:
        # Slow or idle clients must not pile up without bound, nor keep scrapes out.
        return Slot(server.gate, handlers)

    try:
        listener = await asyncio.get_running_loop().create_server(
            protocol, host, port, ssl=ssl_context(tls) if tls else None, reuse_address=True,
            # A TLS handshake is part of getting a request: bounded like the headers.
            ssl_handshake_timeout=server.header_timeout if tls else None)
    except BaseException:
        await runner.cleanup()
        await server.close()
        raise
    log.info("listening", extra=log_fields(address=address, tls=tls is not None,
                                           telemetry_path=server.telemetry_path))
    return Listening(server, runner, listener)


class ListenError(Exception):
    """An exporter could not listen on its address: `server` names which."""

    def __init__(self, server: ExporterServer, error: OSError) -> None:
        # asyncio's bind error repeats the address in its text: the errno says it alone.
        super().__init__(os.strerror(error.errno) if error.errno else str(error))
        self.server = server


async def serve(exporters: list[tuple[ExporterServer, Any, str]],
                on_sighup: Callable[[], None] | None = None) -> None:
    """Run exporters in this event loop until SIGTERM or SIGINT; SIGHUP reloads each.

    Each runs in a context of its own (tasks started from it inherit it), so its log
    lines carry its name. They share nothing else: each has its own listener, config,
    collectors, connections and self-metrics; one failing does not stop the others.
    Raises ListenError (after stopping those started) when one cannot listen.
    """
    loop = asyncio.get_running_loop()
    contexts = {id(server): _context_of(server) for server, _, _ in exporters}
    running: list[Listening] = []

    async def stop_all() -> None:
        await asyncio.gather(*(asyncio.create_task(r.close(), context=contexts[id(r.server)])
                               for r in running))

    for server, config, address in exporters:
        try:
            running.append(await asyncio.create_task(listen(server, config, address),
                                                     context=contexts[id(server)]))
        except BaseException as exc:
            await stop_all()
            if isinstance(exc, OSError):
                raise ListenError(server, exc) from None
            raise
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reloads: set[asyncio.Task[str | None]] = set()  # held so a running reload is not collected

    def on_hup() -> None:
        for server, _, _ in exporters:
            task = asyncio.create_task(server.reload(), context=contexts[id(server)])
            reloads.add(task)
            task.add_done_callback(reloads.discard)
        if on_sighup is not None:
            on_sighup()

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    trim = asyncio.create_task(_release_after_first_rounds([r.server for r in running]))
    try:
        await stop.wait()
    finally:
        trim.cancel()
        await stop_all()


async def _release_after_first_rounds(servers: list[ExporterServer]) -> None:
    """Once every exporter has collected once, the start-up's garbage is freed: hand it
    back to the OS (an idle exporter would otherwise keep it resident)."""
    await asyncio.gather(*(server.scheduler.first_round.wait() for server in servers
                           if server.scheduler is not None))
    release_free_memory()


def _context_of(server: ExporterServer) -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(current_exporter.set, server.name)
    return context
