"""Beacon bodies -> validated metric reports, or the bounded reason they were rejected.

A body is one web-vitals metric object or an array of them (a batch), JSON in UTF-8:
    {"name": "LCP", "value": 2304.1, "id": "v4-1700000000000-1234", "route": "/deals/42",
     "rating": "good", "delta": 2304.1, "navigationType": "navigate"}
Only name, value and id are required; route (or path) names the page; navigationType
becomes the `navigation_type` label (a closed set, see NAVIGATION_TYPES); rating is read but
not trusted (it is recomputed, see exporter.py); delta is ignored.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

# Rejection reasons: the one label of webvitals_beacons_rejected_total, a closed set.
# Request-level reasons count once per request (its body is not, or not fully, read);
# entry-level reasons count once per metric report in the body.
ORIGIN = "origin"
CONTENT_TYPE = "content_type"
TOO_LARGE = "too_large"
RATE_LIMITED_CLIENT = "rate_limited_client"
RATE_LIMITED_GLOBAL = "rate_limited_global"
INVALID_JSON = "invalid_json"
BATCH_TOO_LARGE = "batch_too_large"
INVALID = "invalid"
UNKNOWN_METRIC = "unknown_metric"
OUT_OF_RANGE = "out_of_range"
DUPLICATE = "duplicate"
REASONS = (ORIGIN, CONTENT_TYPE, TOO_LARGE, RATE_LIMITED_CLIENT, RATE_LIMITED_GLOBAL,
           INVALID_JSON, BATCH_TOO_LARGE, INVALID, UNKNOWN_METRIC, OUT_OF_RANGE, DUPLICATE)

MAX_ID_CHARS = 128  # web-vitals ids look like "v4-1700000000000-8866455284906"
MAX_ROUTE_CHARS = 2048  # a URL longer than this is not a page anyone routes to

# The web-vitals library's navigationType values (v3.5 and later, v5 included): how the
# page was reached. `back-forward-cache` is a restore from the back/forward cache (the
# page was kept in memory: its load metrics are measured from the restore, near zero);
# `restore` a discarded tab reloaded when it is reactivated; `prerender` a page activated
# after prerendering (times count from activation). Anything else, or none (older
# snippets), is OTHER_NAVIGATION: the label stays a closed set whatever clients send.
NAVIGATION_TYPES = frozenset({"navigate", "reload", "back-forward", "back-forward-cache",
                              "prerender", "restore"})
OTHER_NAVIGATION = "other"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    key: str  # config and metric-name stem: "lcp"
    # Client unit -> base unit. Dividing (not multiplying by 0.001) keeps 2500 ms exactly
    # equal to the 2.5 s bucket edge: both are the double nearest to 2.5.
    divisor: float


SPECS = {
    "CLS": MetricSpec("cls", 1.0),
    "FCP": MetricSpec("fcp", 1000.0),
    "FID": MetricSpec("fid", 1000.0),
    "INP": MetricSpec("inp", 1000.0),
    "LCP": MetricSpec("lcp", 1000.0),
    "TTFB": MetricSpec("ttfb", 1000.0),
}


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a slow setattr per field
class Beacon:
    spec: MetricSpec
    value: float  # in the client's unit (ms, or unitless CLS)
    id: str
    route: str | None  # page path or URL as sent; None when the page sent none
    rating: str | None  # the client's claim, compared but never exported
    navigation_type: str  # one of NAVIGATION_TYPES or OTHER_NAVIGATION


@functools.lru_cache(maxsize=64)  # browsers send a handful of distinct header values
def content_type_ok(header: str) -> bool:
    """sendBeacon with a string sends text/plain;charset=UTF-8; fetch may send JSON.

    An empty header (a Blob without type) is accepted; other charsets are not, since the
    body is decoded as UTF-8.
    """
    mime, _, params = header.partition(";")
    if mime.strip().lower() not in ("text/plain", "application/json", ""):
        return False
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            return False
    return True


_DECODER = json.JSONDecoder()
JSON_SPACE = " \t\n\r"


def _loads(text: str) -> object:
    """json.loads without its wrapper's extra regex passes (the hot path of every beacon)."""
    try:
        data, end = _DECODER.raw_decode(text)
    except ValueError:
        return json.loads(text)  # leading whitespace, or really invalid: the full parser
    if end != len(text) and text[end:].strip(JSON_SPACE):
        raise ValueError("extra data after the JSON value")
    return data


def decode(body: bytes, max_batch: int) -> list[object] | str:
    """The body's metric reports, or a request-level rejection reason."""
    try:
        data = _loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers bad JSON and integers past Python's digit limit;
        # RecursionError a deeply nested array that fits under the body cap.
        return INVALID_JSON
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data:
        return data if len(data) <= max_batch else BATCH_TOO_LARGE
    return INVALID


class Validator:
    """Checks one report's types and sanity range; never raises on any JSON value."""

    def __init__(self, max_duration_seconds: float, max_cls: float) -> None:
        # Upper bounds in the client's unit, keyed by the name the client sends.
        self.max_value = {name: max_cls if spec.key == "cls" else max_duration_seconds * 1000
                          for name, spec in SPECS.items()}

    def check(self, entry: object) -> Beacon | str:
        if type(entry) is not dict:
            return INVALID
        name = entry.get("name")
        if type(name) is not str:
            return INVALID
        spec = SPECS.get(name)
        if spec is None:
            return UNKNOWN_METRIC
        value = entry.get("value")
        kind = type(value)
        if kind is not float and kind is not int:  # bool is an int subclass: excluded here
            return INVALID
        assert isinstance(value, int | float)
        # Compared before float(): a 400-digit integer is out of range, not an overflow.
        # NaN fails every comparison, so it lands here too.
        if not 0 <= value <= self.max_value[name]:
            return OUT_OF_RANGE
        beacon_id = entry.get("id")
        if type(beacon_id) is not str or not 0 < len(beacon_id) <= MAX_ID_CHARS:
            return INVALID
        route = entry.get("route")
        if route is None:
            route = entry.get("path")
        if route is not None and (type(route) is not str or len(route) > MAX_ROUTE_CHARS):
            return INVALID
        rating = entry.get("rating")
        navigation = entry.get("navigationType")
        # `in` on a frozenset hashes the value: an unhashable JSON value (list, dict) must
        # not reach it, hence the type check first.
        if type(navigation) is not str or navigation not in NAVIGATION_TYPES:
            navigation = OTHER_NAVIGATION
        return Beacon(spec, float(value), beacon_id, route,
                      rating if type(rating) is str else None, navigation)
