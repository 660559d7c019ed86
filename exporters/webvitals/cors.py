"""CORS allowlist: which page origins may send beacons, and the headers they get back."""

from __future__ import annotations

import re

CACHE_SIZE = 1024
# What may stand for `*` in `https://*.example.com`: DNS labels, nothing else.
SUBDOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")
PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    # Browsers cap this (Chromium at 2 h); one preflight per page per 2 h is plenty.
    "Access-Control-Max-Age": "7200",
}


class CorsPolicy:
    def __init__(self, origins: list[str], allow_missing: bool) -> None:
        self.any = "*" in origins
        self.allow_missing = allow_missing
        self.exact = frozenset(o.lower() for o in origins if o != "*" and "://*." not in o)
        # `https://*.example.com` -> ("https://", ".example.com")
        self.wildcards = [(o[: o.index("*")].lower(), o[o.index("*") + 1:].lower())
                          for o in origins if "://*." in o]
        self._cache: dict[str, dict[str, str] | None] = {}

    def _allowed(self, origin: str) -> bool:
        origin = origin.lower()
        if self.any or origin in self.exact:
            return True
        for prefix, suffix in self.wildcards:
            if origin.startswith(prefix) and origin.endswith(suffix):
                middle = origin[len(prefix): len(origin) - len(suffix)]
                if SUBDOMAIN.fullmatch(middle):
                    return True
        return False

    def headers(self, origin: str | None) -> dict[str, str] | None:
        """Response headers for an allowed request, None for a rejected origin."""
        if origin is None:
            return {} if self.allow_missing else None
        if origin in self._cache:
            return self._cache[origin]
        found = None
        if self._allowed(origin):
            # sendBeacon sends credentials: the origin is echoed (never `*`) with
            # Allow-Credentials, and Vary keeps caches from mixing origins.
            found = {"Access-Control-Allow-Origin": origin,
                     "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()  # forged origins must not grow memory
        self._cache[origin] = found
        return found
