"""One probe: fetch a target within a budget, classify what went wrong, render probe_*.

Everything a probe learns is returned to its own request: nothing is cached, so each
Prometheus scrape of /probe sees the target as it is now (blackbox_exporter's model).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from prometheus_client.core import GaugeMetricFamily, Metric
from yarl import URL

from saasmon import __version__
from saasmon.integrations import status as st
from saasmon.integrations.config import ModuleConfig, TargetConfig
from saasmon.integrations.parsers import PARSERS, InvalidBody, Reading, load_json, select
from saasmon.runtime.families import gauge

MAX_REDIRECTS = 5


class BodyTooLarge(Exception):
    pass


class RedirectRefused(Exception):
    """A redirect off the configured host, or more than MAX_REDIRECTS of them."""


REDIRECTS = frozenset({301, 302, 303, 307, 308})


def same_host(origin: str, url: str) -> bool:
    """Whether a redirect stays on the probed host (and does not drop https): a probe
    checks the vendor it names, and its bearer token must go nowhere else."""
    a, b = urlsplit(origin), urlsplit(url)
    return (a.hostname or "").lower() == (b.hostname or "").lower() \
        and not (a.scheme == "https" and b.scheme != "https")


@dataclass(frozen=True)
class Outcome:
    success: bool
    reason: str  # one of status.REASONS
    duration: float
    http_status: int  # 0 when nothing answered
    reading: Reading | None
    tls: TlsInfo | None = None  # set when the final answer came over https


@dataclass(frozen=True)
class TlsInfo:
    # Unix time the server's certificate expires; None when unknown (the module skips
    # verification, so Python's ssl hands out no parsed certificate, or the check failed).
    cert_expiry: float | None


def target_url(url: str, module: ModuleConfig) -> str:
    """The module's path is added only to a bare host URL: a full URL is used as given."""
    parts = urlsplit(url)
    if module.path and parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, module.path, parts.query, ""))
    return url


def classify(exc: BaseException) -> str:
    """A bounded reason for a failed fetch; TLS is checked first as aiohttp's TLS errors
    are also connection errors."""
    if isinstance(exc, BodyTooLarge | aiohttp.ClientPayloadError):
        return "invalid_body"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, RedirectRefused):
        return "redirect"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "http_status"
    return "connection"


class Prober:
    """Shares one HTTP client (connection reuse) between the probes of an instance."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}  # by CA file ("": the system's)

    def _ssl(self, module: ModuleConfig) -> ssl.SSLContext | bool:
        if module.tls.insecure_skip_verify:
            return False
        path = module.tls.ca_file
        if path is None:
            return True
        if path not in self._contexts:
            self._contexts[path] = ssl.create_default_context(cafile=path)
        return self._contexts[path]

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=60),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": f"saasmon-integrations/{__version__}"},
                # The proxy environment is not read: a probe goes where its URL says.
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _fetch(self, url: str, module: ModuleConfig,
                     target: TargetConfig | None) -> tuple[int, bytes, str]:
        """Status, body and the URL that answered (after redirects)."""
        headers = dict(module.headers)
        if target is not None and target.bearer_token is not None:
            headers["Authorization"] = f"Bearer {target.bearer_token.get_secret_value()}"
        origin = url
        # Redirects are followed here, not by the client, so each hop is checked first.
        for _ in range(MAX_REDIRECTS + 1):
            async with self.session().request(
                    module.method, url, headers=headers, ssl=self._ssl(module),
                    allow_redirects=False) as response:
                location = response.headers.get("Location")
                if module.follow_redirects and response.status in REDIRECTS and location:
                    url = str(response.url.join(URL(location)))
                    if not same_host(origin, url):
                        raise RedirectRefused(f"redirect to another host: {urlsplit(url).hostname}")
                    continue
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > module.max_body_bytes:
                        raise BodyTooLarge(f"body larger than {module.max_body_bytes} bytes")
                    chunks.append(chunk)
                return response.status, b"".join(chunks), url
        raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects")

    async def probe(self, url: str, module: ModuleConfig, target: TargetConfig | None,
                    budget: float) -> tuple[Outcome, str]:
        """The outcome and, for a failure, a short description (for logs; no secrets)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                code, body, final = await self._fetch(url, module, target)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, BodyTooLarge,
                RedirectRefused) as exc:
            # ValueError: a URL the client cannot use (bad IDNA host, bad port): no connection.
            reason = classify(exc)
            detail = f"no answer within {budget:.2f}s" if reason == "timeout" \
                else f"{type(exc).__name__}: {exc}"
            return Outcome(False, reason, time.monotonic() - started, 0, None), detail
        duration = time.monotonic() - started
        tls = None
        if urlsplit(final).scheme == "https":
            tls = await self.certificate(final, module, budget - duration)
        outcome, detail = evaluate(code, body, module, target)
        return Outcome(outcome.success, outcome.reason, duration, code, outcome.reading,
                       tls), detail

    async def certificate(self, url: str, module: ModuleConfig, budget: float) -> TlsInfo:
        """When the certificate of the server that answered `url` expires, from a handshake
        of its own: aiohttp hands a small answer's connection back to its pool before the
        caller can see it. The server's own certificate only (Python before 3.13 exposes no
        verified chain), so unlike blackbox_exporter's "earliest" the intermediates are not
        read (they rarely expire first)."""
        context = self._ssl(module)
        if context is False or budget <= 0:
            return TlsInfo(None)
        parts = urlsplit(url)
        try:
            async with asyncio.timeout(budget):
                _, writer = await asyncio.open_connection(
                    parts.hostname, parts.port or 443,
                    ssl=context if isinstance(context, ssl.SSLContext) else self._default_tls(),
                    server_hostname=parts.hostname)
                try:
                    cert = writer.get_extra_info("peercert") or {}
                finally:
                    writer.close()
                    await writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            return TlsInfo(None)  # the probe itself succeeded: only the expiry is unknown
        not_after = cert.get("notAfter")
        return TlsInfo(ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None)

    def _default_tls(self) -> ssl.SSLContext:
        if "" not in self._contexts:
            self._contexts[""] = ssl.create_default_context()
        return self._contexts[""]


def evaluate(code: int, body: bytes, module: ModuleConfig,
             target: TargetConfig | None) -> tuple[Outcome, str]:
    """Judge an answer: HTTP status first, then (except for `http`) the parsed body."""
    good = code in module.valid_status_codes if module.valid_status_codes else 200 <= code < 300
    if module.prober == "http":
        status = st.OPERATIONAL if good else st.MAJOR_OUTAGE
        return (Outcome(good, "none" if good else "http_status", 0.0, code, Reading(status)),
                "" if good else f"HTTP {code}")
    try:
        reading = PARSERS[module.prober](load_json(body))
    except InvalidBody as exc:
        # A non-2xx error page is an HTTP failure first; a 2xx with junk is a body failure.
        reason = "invalid_body" if good else "http_status"
        return Outcome(False, reason, 0.0, code, None), f"HTTP {code}: {exc}"
    reading.components = select(reading.components, target.components if target else [],
                                module.max_components)
    if module.prober == "app_health":
        # saas-ops-module § Health Check Endpoint: unhealthy answers 503 with the same body;
        # it is read (which checks fail) and is a failed probe. Degraded answers 200: up.
        if reading.status == st.MAJOR_OUTAGE:
            return Outcome(False, "unhealthy", 0.0, code, reading), f"HTTP {code}: unhealthy"
        if not good:
            return Outcome(False, "http_status", 0.0, code, reading), f"HTTP {code}"
        return Outcome(True, "none", 0.0, code, reading), ""
    if not good:
        # A status page answering an error is not a statement about the vendor.
        return Outcome(False, "http_status", 0.0, code, None), f"HTTP {code}"
    return Outcome(True, "none", 0.0, code, reading), ""


def _one_hot(name: str, doc: str, current: str | None, values: tuple[str, ...],
             label: str) -> GaugeMetricFamily:
    return gauge(name, doc, labels=(label,),
                 rows=[((v,), 1 if v == current else 0) for v in values])


def families(outcome: Outcome) -> list[Metric]:
    reading = outcome.reading
    out: list[Metric] = [
        gauge("probe_success", "Whether the probe reached the target and got a good answer.",
              1 if outcome.success else 0),
        gauge("probe_duration_seconds", "How long the probe took.", outcome.duration),
        gauge("probe_http_status_code", "HTTP status of the answer; 0 when none came.",
              outcome.http_status),
        _one_hot("probe_failure_reason", "Why the probe failed (none when it succeeded).",
                 outcome.reason, st.REASONS, "reason"),
        # All five 0: the target said nothing we could read (see probe_failure_reason).
        _one_hot("probe_status", "Overall status the target reports, one-hot.",
                 reading.status if reading else None, st.STATUSES, "status"),
        # blackbox_exporter's names, so rules on certificate expiry read both alike.
        gauge("probe_http_ssl", "Whether the final answer came over TLS (https).",
              1 if outcome.tls is not None else 0),
    ]
    if outcome.tls is not None and outcome.tls.cert_expiry is not None:
        out.append(gauge("probe_ssl_earliest_cert_expiry", "Unix time the server's own "
                         "certificate expires (known only when the module verifies it).",
                         outcome.tls.cert_expiry))
    if reading is None:
        return out
    if reading.components:
        out.append(gauge(
            "probe_component_status", "Status of each component the target reports, one-hot "
            "(components beyond the module's max_components fold into component=\"other\").",
            labels=("component", "status"),
            rows=[((c.name, s), 1 if c.status == s else 0)
                  for c in reading.components for s in st.STATUSES]))
    timed = [c for c in reading.components if c.latency_seconds is not None]
    if timed:
        out.append(gauge("probe_component_latency_seconds",
                         "Latency the app's health check measured for the component.",
                         labels=("component",),
                         rows=[((c.name,), c.latency_seconds or 0.0) for c in timed]))
    if reading.listed:
        out.append(gauge("probe_components", "Components the target listed (before capping).",
                         reading.listed))
    if reading.incidents is not None:
        out.append(gauge("probe_incidents", "Unresolved incidents the status page lists.",
                         reading.incidents))
    return out
