"""JSON log lines with levels; every registered secret is masked before output."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import ClassVar
from urllib.parse import unquote

MASK = "<secret>"

# The exporter a log line comes from, when one process hosts several (`saasmon bundle`):
# set at the start of each exporter's task, so its collectors, requests and reloads (tasks
# started from it inherit the context) log under its name.
current_exporter: ContextVar[str | None] = ContextVar("current_exporter", default=None)

# Secrets by shape, for values the registry cannot know yet (a password rotated in a file
# that failed to load): the password of a URL, and the value of a secret-named key.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^@\s/'\"]+(?=@)", re.I)
_SECRET_VALUE = re.compile(
    r"((?i:\b[\w.-]*(?:password|passwd|secret|token|api_?key)\b)['\"]?\s*[:=]\s*['\"]?"
    # Left alone: an already masked value, a statement's $1, and prose such as a config
    # error about a key (`targets.0.passwd: Extra inputs are not permitted`).
    r"|(?i:\bbearer)\s+)(?!\*\*\*|<secret>|\$\d|[A-Z][a-z]+,? [a-z])[^\s'\",;&]+")


class SecretRegistry:
    """Known secret strings (passwords, DSNs, tokens) to mask wherever text leaves us."""

    _secrets: ClassVar[set[str]] = set()

    @classmethod
    def add(cls, *secrets: str | None) -> None:
        for secret in secrets:
            if secret and len(secret) >= 3:
                cls._secrets.add(secret)
                # URLs carry secrets percent-encoded; drivers use the decoded form.
                cls._secrets.add(unquote(secret))

    @classmethod
    def mask(cls, text: str) -> str:
        # Longest first, so a DSN is masked whole before the password inside it.
        for secret in sorted(cls._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        text = _URL_PASSWORD.sub(rf"\1{MASK}", text)
        return _SECRET_VALUE.sub(rf"\1{MASK}", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, exporter: str) -> None:
        super().__init__()
        self.exporter = exporter

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "exporter": current_exporter.get() or self.exporter,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            # One line, never a traceback: the type and message say enough for an operator.
            exc = record.exc_info[1]
            entry["error"] = f"{type(exc).__name__}: {exc}"
        # Mask each value before encoding: JSON escaping (quotes, non-ASCII) would otherwise
        # change how a secret is spelled and let it slip past the mask.
        masked = {k: SecretRegistry.mask(v if isinstance(v, str) else str(v))
                  if not isinstance(v, int | float | bool) else v for k, v in entry.items()}
        return json.dumps(masked, ensure_ascii=False)


def setup_logging(exporter: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(exporter))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per scrape: noise at info level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """`logger.info("msg", extra=log_fields(collector="x"))` adds structured fields."""
    return {"fields": fields}
