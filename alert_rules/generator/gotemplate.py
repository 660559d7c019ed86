"""The small part of Prometheus' alert templating our annotations use, in Python.

The promtool tests list each alert's expanded annotations; they are computed here rather
than copied from promtool's output, so a wrong template or formatter fails the test.
Formatters follow Prometheus' template functions (humanize, humanizePercentage,
humanizeDuration) including Go's %.4g formatting.
"""

from __future__ import annotations

import math
import re

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _g4(value: float) -> str:
    """Go's fmt %.4g: like C's, but exponents have at least two digits (same as Python)."""
    return f"{value:.4g}"


def humanize(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _g4(value)
    if abs(value) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
        return _g4(value) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return _g4(value) + prefix


def humanize_percentage(value: float) -> str:
    return _g4(value * 100) + "%"


def humanize_duration(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return _g4(value)
    if value == 0:
        return "0s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        seconds = int(abs(value))
        days, hours = seconds // 86400, seconds // 3600 % 24
        minutes, secs = seconds // 60 % 60, seconds % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {secs}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {secs}s"
        if minutes:
            return f"{sign}{minutes}m {secs}s"
        return f"{sign}{_g4(abs(value))}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{_g4(value)}{prefix}s"


FUNCTIONS = {"humanize": humanize, "humanizePercentage": humanize_percentage,
             "humanizeDuration": humanize_duration}


def expand(template: str, labels: dict[str, str], value: float) -> str:
    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if body.startswith("$labels."):
            return labels.get(body[len("$labels."):], "")
        if body == "$value":
            return repr(value)
        head, _, func = (part.strip() for part in body.partition("|"))
        if head == "$value" and func in FUNCTIONS:
            return FUNCTIONS[func](value)
        raise ValueError(f"template construct not supported by the test generator: {body!r}")

    return _PLACEHOLDER.sub(one, template)
