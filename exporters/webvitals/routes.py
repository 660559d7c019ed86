"""Page paths from beacons -> a bounded set of route names (the `route` label)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from saasmon.webvitals.config import RouteRule

OTHER = "other"  # every path no rule matches: the label set stays bounded
MAX_CACHED_PATH = 256  # longer paths are matched but not cached
CACHE_SIZE = 4096


def glob_regex(glob: str) -> str:
    """`*` is one path segment, `**` any number of them, `?` one character but `/`."""
    parts: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            parts.append(".*")
            i += 2
            continue
        char = glob[i]
        parts.append("[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char))
        i += 1
    return "".join(parts)


def page_path(raw: str) -> str:
    """The path of what the page sent: a path, or a full URL (location.href)."""
    if not raw.startswith("/") or raw.startswith("//"):
        try:
            raw = urlsplit(raw).path or "/"
        except ValueError:  # e.g. an unbalanced [ in a would-be IPv6 host
            return ""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    # /deals/ and /deals are the same page for routing purposes.
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


class RouteNormalizer:
    def __init__(self, rules: Sequence[RouteRule]) -> None:
        self.rules = [
            (re.compile(glob_regex(r.glob) if r.glob is not None else str(r.regex)), r.name)
            for r in rules
        ]
        self.names = frozenset({OTHER, *(r.name for r in rules)})
        self._cache: dict[str, str] = {}

    def name(self, raw: str) -> str:
        found = self._cache.get(raw)
        if found is not None:
            return found
        path = page_path(raw)
        found = OTHER
        for pattern, route in self.rules:
            # Anchored at both ends, like Prometheus relabelling regexes.
            if pattern.fullmatch(path):
                found = route
                break
        if len(raw) <= MAX_CACHED_PATH:
            if len(self._cache) >= CACHE_SIZE:
                # Random paths from a flood must not grow memory: start over.
                self._cache.clear()
            self._cache[raw] = found
        return found
