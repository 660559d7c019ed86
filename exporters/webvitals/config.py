"""Config of the Web Vitals receiver: origins, routes, rating thresholds and abuse limits."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from saasmon.runtime.config import StrictModel
from saasmon.runtime.overrides import CollectorOverride, CollectorsConfig

# Route names become label values: printable, short, no control characters.
ROUTE_NAME = r"^[^\x00-\x1f\x7f]{1,100}$"


class RouteRule(StrictModel):
    """A page path pattern and the route name it is exported as (first match wins)."""

    name: str = Field(pattern=ROUTE_NAME)
    glob: str | None = Field(default=None, min_length=1, max_length=500)
    regex: str | None = Field(default=None, min_length=1, max_length=500)

    @field_validator("glob")
    @classmethod
    def _glob_is_a_path(cls, glob: str | None) -> str | None:
        if glob is not None and not glob.startswith("/"):
            raise ValueError("must start with / (it is matched against the page path)")
        return glob

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, regex: str | None) -> str | None:
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return regex

    @model_validator(mode="after")
    def _one_pattern(self) -> RouteRule:
        if (self.glob is None) == (self.regex is None):
            raise ValueError("set exactly one of glob and regex")
        return self


class Threshold(StrictModel):
    """Upper bounds of `good` and `needs-improvement`, in the unit the library reports."""

    good: float = Field(gt=0)
    poor: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.good > self.poor:
            raise ValueError("good must not be above poor")
        return self


class Thresholds(StrictModel):
    """Rating thresholds: milliseconds for times, unitless for CLS (as web-vitals sends them).

    A value <= good is `good`, <= poor `needs-improvement`, above it `poor` (the library's
    own rule). Defaults are the guides' numbers; each is also a histogram bucket edge.
    """

    # nova-crm § 3.2 Frontend Performance Monitoring: CLS good 0.1 / poor 0.25.
    cls: Threshold = Threshold(good=0.1, poor=0.25)
    # nova-crm § 3.2: FCP good 1800 ms / poor 3000 ms.
    fcp: Threshold = Threshold(good=1800, poor=3000)
    # nova-crm § 3.2: FID good 100 ms / poor 300 ms.
    fid: Threshold = Threshold(good=100, poor=300)
    # No guide states INP (it replaced FID in 2024): web-vitals library defaults 200 / 500 ms.
    inp: Threshold = Threshold(good=200, poor=500)
    # nova-crm § 3.2: LCP good 2500 ms / poor 4000 ms.
    lcp: Threshold = Threshold(good=2500, poor=4000)
    # nova-crm § 3.2: TTFB good 600 ms / poor 1500 ms (its § 1.1 alerts at 1000 ms: an edge too).
    ttfb: Threshold = Threshold(good=600, poor=1500)


class RateLimit(StrictModel):
    """Token buckets, one request = one token. Not from the guides: sized for real pages,
    which send one or two beacons per page view (a batch each), with NAT headroom."""

    per_client_rate: float = Field(default=2.0, gt=0, le=1_000_000)  # tokens per second
    per_client_burst: int = Field(default=30, ge=1, le=1_000_000)
    global_rate: float = Field(default=2000.0, gt=0, le=10_000_000)
    global_burst: int = Field(default=4000, ge=1, le=10_000_000)
    # Clients tracked at once (least recently seen are forgotten): bounds memory under a
    # flood of spoofed or rotating addresses; the global bucket still caps the total.
    max_clients: int = Field(default=10_000, ge=1, le=1_000_000)


class Dedupe(StrictModel):
    """Beacon ids seen recently; a page may flush the same metric twice (hidden, pagehide)."""

    max_entries: int = Field(default=100_000, ge=0, le=10_000_000)  # 0 disables dedupe
    ttl_seconds: float = Field(default=900.0, gt=0, le=86_400)


def _origin_ok(origin: str) -> bool:
    if origin == "*":
        return True
    parts = urlsplit(origin)
    host = parts.netloc.removeprefix("*.")
    return (parts.scheme in ("http", "https") and bool(host) and "*" not in host
            and parts.path == "" and not parts.query and not parts.fragment
            and "@" not in parts.netloc and origin == origin.strip())


# No collectors (beacon-fed): `collectors` is accepted like everywhere, and stays empty.
class WebVitalsConfig(CollectorsConfig[CollectorOverride]):
    # Browsers send Origin as scheme://host[:port]; `https://*.example.com` allows every
    # subdomain, `*` any site (not recommended: any page could then feed your histograms).
    allowed_origins: list[str] = Field(min_length=1, max_length=200)
    # Non-browser clients (curl, server-side tests) send no Origin header.
    allow_missing_origin: bool = False
    # Each route can add 6 metrics x 3 ratings x up to 17 samples to every scrape.
    routes: list[RouteRule] = Field(default=[], max_length=100)
    thresholds: Thresholds = Thresholds()
    # A batch of six metrics with route and id is well under 2 KiB.
    max_body_bytes: int = Field(default=16_384, ge=256, le=1_048_576)
    max_batch: int = Field(default=20, ge=1, le=1000)
    # Sanity ranges: a value outside is a broken or forged beacon, not a slow page.
    max_duration_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_cls: float = Field(default=10.0, gt=0, le=1000)
    # X-Forwarded-For is honoured only when the TCP peer is in one of these networks.
    trusted_proxies: list[str] = Field(default=[], max_length=100)
    rate_limit: RateLimit = RateLimit()
    dedupe: Dedupe = Dedupe()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _origin_ok(origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com "
                                 "(scheme and host, optional port and *. prefix, no path)")
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or CIDR network") from None
        return proxies
