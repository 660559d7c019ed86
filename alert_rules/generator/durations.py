"""Prometheus durations: parsing, and the catalog's PromQL turned into mixin templates.

The catalog's authors write plain PromQL (`rate(x[5m])`, `x offset 1w`). The mixin must own
every duration of a rule so that one parameter, `_config.timeScale`, scales them all (the
drills shrink hours to seconds). So when the catalog is handed to Jsonnet, each range window
becomes `%(range:5m)s` and each subquery step or offset `%(duration:1w)s`: the mixin fills
them from `_config.promqlParams`. This reads the catalog's source text once, at load time;
nothing parses rendered output.
"""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION = r"(?:\d+(?:ms|[smhdwy]))+"
# [5m], [1h:5m], [1h:] (a subquery) and `offset 1w`, in PromQL outside string literals.
RANGE = re.compile(rf"\[\s*({DURATION})\s*(?::\s*({DURATION})?\s*)?\]")
OFFSET = re.compile(rf"\boffset\s+(-?)({DURATION})")
# A double-, single- or back-quoted PromQL string (label values, regexes): left untouched.
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')


def seconds(duration: str) -> float:
    """A Prometheus duration (`1h30m`, `500ms`) in seconds."""
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * UNITS[u] for n, u in parts)


def _single_unit(duration: str) -> str:
    """The mixin scales `<n><unit>` durations; a compound one (`1h30m`) is a catalog error."""
    if not re.fullmatch(r"\d+[smhdw]", duration):
        raise ValueError(f"duration {duration!r}: write one number and one unit (s, m, h, d, w)")
    return duration


def template(expr: str) -> str:
    """`expr` with every range window, subquery step and offset as a mixin parameter."""

    def window(match: re.Match[str]) -> str:
        out = "[%(range:" + _single_unit(match.group(1)) + ")s"
        if ":" in match.group(0):
            step = match.group(2)
            out += ":" + ("%(duration:" + _single_unit(step) + ")s" if step else "")
        return out + "]"

    def offset(match: re.Match[str]) -> str:
        return f"offset {match.group(1)}%(duration:{_single_unit(match.group(2))})s"

    out, last = [], 0
    for literal in STRING.finditer(expr):
        out.append(OFFSET.sub(offset, RANGE.sub(window, expr[last:literal.start()])))
        out.append(literal.group(0))
        last = literal.end()
    out.append(OFFSET.sub(offset, RANGE.sub(window, expr[last:])))
    return "".join(out)


PARAM = re.compile(r"%\((range|duration):([^)]+)\)s")


def parameters(templates: list[str]) -> dict[str, list[str]]:
    """The duration parameters the templates use, by kind: what the mixin must provide."""
    found: dict[str, set[str]] = {"range": set(), "duration": set()}
    for text in templates:
        for kind, duration in PARAM.findall(text):
            found[kind].add(duration)
    return {kind: sorted(values, key=seconds) for kind, values in found.items()}
