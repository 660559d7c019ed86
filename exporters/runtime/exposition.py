"""Metrics responses: the format negotiated from Accept, gzip when Accept-Encoding allows.

prometheus_client does the encoding (`choose_encoder`, both text encoders, `gzip_accepted`),
except the plain text format 0.0.4, which runtime.textformat renders faster to the same
bytes; this module only adds what an aiohttp handler needs around it:

- Accept entries are tried by preference (`q`, then order), as Prometheus' own Go client
  does: Prometheus >= 2.49 lists the protocols of `scrape_protocols` in the order given,
  which may put the text format first. `q=0` means "not this one".
- A body made of several parts (cached collector data, then per-scrape families) carries
  one OpenMetrics `# EOF`, at its end.
- `_created` samples (counters, histograms, summaries) can be left out: Prometheus 2.x
  stores each as one more series, noise for most dashboards.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from prometheus_client.registry import Collector

from saasmon.runtime.textformat import generate_text

OPENMETRICS_TYPE = "application/openmetrics-text"
OPENMETRICS_EOF = b"# EOF\n"
# Media ranges the text encoders can answer; anything else (protobuf) is skipped.
_SERVABLE = frozenset({OPENMETRICS_TYPE, "text/plain", "text/*", "*/*"})
# zlib's fastest level: a scrape body (~35 KB of text) compresses to about 6 KB instead
# of 5 KB at the default level 6, in well under half the CPU (issue 16: with collection on
# each scrape, compression was a tenth of a scrape's CPU).
GZIP_LEVEL = 1
# Bodies above this are compressed in a worker thread, off the event loop.
GZIP_INLINE_LIMIT = 256 * 1024
# The created series are families' "<name>_created" samples (prometheus_client's naming).
CREATED_SUFFIX = "_created"


class Families(Collector):
    """Adapter so prometheus_client's encoders can render a list of families."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


@dataclass(frozen=True)
class Format:
    """One negotiated exposition format: its Content-Type and prometheus_client encoder."""

    content_type: str
    encoder: Callable[[Collector], bytes]

    @property
    def openmetrics(self) -> bool:
        return self.content_type.startswith(OPENMETRICS_TYPE)

    def document(self, families: Iterable[Metric]) -> bytes:
        """A whole exposition (OpenMetrics: with its `# EOF`)."""
        return self.encoder(Families(families))

    def fragment(self, families: Iterable[Metric]) -> bytes:
        """A part to put before another part or a document: no `# EOF`."""
        data = self.document(families)
        return data.removesuffix(OPENMETRICS_EOF) if self.openmetrics else data


def _preference(entry: str) -> float:
    """The q value of one Accept or Accept-Encoding entry (1 when absent, 0 when invalid)."""
    for param in entry.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def by_preference(header: str) -> list[str]:
    """A header's entries, most preferred first (stable for equal q), q=0 left out."""
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    ranked = sorted(((-_preference(entry), i, entry) for i, entry in enumerate(entries)))
    return [entry for negative_q, _, entry in ranked if negative_q < 0]


def negotiate(accept: str) -> Format:
    """The format for an Accept header: OpenMetrics 1.0.0 when it is the preferred servable
    type, else the text format (0.0.4 unless text/plain version 1.0.0 is asked for)."""
    for entry in by_preference(accept):
        if entry.split(";")[0].strip().lower() in _SERVABLE:
            try:
                encoder, content_type = choose_encoder(entry)
            except (TypeError, ValueError):
                # prometheus_client fails on a version it cannot compare ("version=abc"):
                # an entry we cannot read is one we cannot serve.
                continue
            return Format(content_type, _faster(encoder))
    encoder, content_type = choose_encoder("")
    return Format(content_type, _faster(encoder))


def _faster(encoder: Callable[[Collector], bytes]) -> Callable[[Collector], bytes]:
    # The plain text format with default escaping has a faster renderer of the same bytes.
    return generate_text if encoder is generate_latest else encoder


def wants_gzip(accept_encoding: str) -> bool:
    return gzip_accepted(",".join(by_preference(accept_encoding)))


def without_created(families: Iterable[Metric]) -> Iterator[Metric]:
    """The families with their `_created` samples left out (other samples unchanged,
    exemplars included)."""
    for family in families:
        created = family.name + CREATED_SUFFIX
        if not any(sample.name == created for sample in family.samples):
            yield family
            continue
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [sample for sample in family.samples if sample.name != created]
        yield copy


async def respond(request: web.Request, fmt: Format, body: bytes) -> web.Response:
    """The metrics response: the negotiated Content-Type, gzip when the client accepts it."""
    headers = {"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding"}
    if wants_gzip(request.headers.get("Accept-Encoding", "")):
        if len(body) > GZIP_INLINE_LIMIT:
            body = await asyncio.to_thread(gzip.compress, body, GZIP_LEVEL)
        else:
            body = gzip.compress(body, GZIP_LEVEL)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def metrics_response(request: web.Request, families: Iterable[Metric]) -> web.Response:
    """Render `families` in the format the request asks for."""
    fmt = negotiate(request.headers.get("Accept", ""))
    return await respond(request, fmt, fmt.document(families))
