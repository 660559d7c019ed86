"""Body parsers, one per prober kind: a source's JSON turned into normalized statuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from saasmon.integrations import status as st

NAME_CHARS = 100  # component names become label values: bounded length
OTHER = "other"


class InvalidBody(Exception):
    """The answer is not the format the module expects (junk, wrong shape, unknown status)."""


@dataclass(frozen=True)
class Component:
    name: str
    status: str | None  # None: the source's word is not one we know
    top_level: bool = True
    position: float = 0.0
    latency_seconds: float | None = None


@dataclass
class Reading:
    """What a status source said: overall status and its components."""

    status: str
    components: list[Component] = field(default_factory=list)
    listed: int = 0  # components the source listed, before selection and capping
    incidents: int | None = None  # unresolved incidents, where the source lists them


def load_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidBody("body is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidBody("body is not a JSON object")
    return doc


def _name(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())[:NAME_CHARS]


def statuspage(doc: dict[str, Any]) -> Reading:
    """Atlassian Statuspage v2 summary.json (or status.json, which has no components)."""
    block = doc.get("status")
    indicator = block.get("indicator") if isinstance(block, dict) else None
    overall = st.normalize(indicator, st.STATUSPAGE_INDICATORS)
    if overall is None:
        raise InvalidBody("status.indicator is missing or not a Statuspage indicator")
    maintenances = doc.get("scheduled_maintenances")
    if overall == st.OPERATIONAL and isinstance(maintenances, list) and any(
            isinstance(m, dict) and m.get("status") == "in_progress" for m in maintenances):
        # The indicator only tracks incidents; planned work in progress is maintenance.
        overall = st.MAINTENANCE
    raw = doc.get("components", [])
    if not isinstance(raw, list):
        raise InvalidBody("components is not a list")
    components = []
    for index, item in enumerate(raw):
        name = _name(item.get("name")) if isinstance(item, dict) else None
        if name is None:
            continue
        position = item.get("position")
        components.append(Component(
            name=name,
            status=st.normalize(item.get("status"), st.STATUSPAGE_COMPONENTS),
            # Children of a group are summed up by the group: the page's own top level.
            top_level=not item.get("group_id"),
            position=float(position) if isinstance(position, int | float) else 1e9 + index,
        ))
    components.sort(key=lambda c: c.position)
    incidents = doc.get("incidents")
    return Reading(overall, components, len(components),
                   len(incidents) if isinstance(incidents, list) else None)


def stripe_status(doc: dict[str, Any]) -> Reading:
    """Stripe's status feed: {"largestatus": "up", "statuses": {"api": "up", ...}}."""
    word = doc.get("largestatus", doc.get("UptimeStatus"))
    overall = st.normalize(word, st.STRIPE)
    if overall is None:
        raise InvalidBody("largestatus is missing or not up/degraded/down")
    statuses = doc.get("statuses", {})
    if not isinstance(statuses, dict):
        raise InvalidBody("statuses is not an object")
    components = [Component(name, st.normalize(value, st.STRIPE), position=index)
                  for index, (key, value) in enumerate(statuses.items())
                  if (name := _name(key)) is not None]
    return Reading(overall, components, len(components))


def _latency_seconds(check: dict[str, Any]) -> float | None:
    # saas-ops-module § Health Check Endpoint: `latency` is Date.now() - start, milliseconds.
    value = check.get("latency")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value) / 1000.0
    return None


def app_health(doc: dict[str, Any]) -> Reading:
    """The app's health JSON: overall status and per-check statuses (saas-ops-module)."""
    overall = st.normalize(doc.get("status"), st.APP_HEALTH)
    if overall is None:
        raise InvalidBody("status is missing or not healthy/degraded/unhealthy")
    checks = doc.get("checks", doc.get("services", {}))
    items: list[tuple[object, object]]
    if isinstance(checks, dict):
        items = list(checks.items())
    elif isinstance(checks, list):
        items = [(c.get("name"), c) for c in checks if isinstance(c, dict)]
    else:
        raise InvalidBody("checks is neither an object nor a list")
    components = []
    for index, (key, check) in enumerate(items):
        name = _name(key)
        if name is None:
            continue
        if isinstance(check, dict):
            components.append(Component(name, st.normalize(check.get("status"), st.APP_HEALTH),
                                        position=index, latency_seconds=_latency_seconds(check)))
        else:
            components.append(Component(name, st.normalize(check, st.APP_HEALTH), position=index))
    return Reading(overall, components, len(components))


PARSERS: dict[str, Callable[[dict[str, Any]], Reading]] = {
    "statuspage": statuspage,
    "stripe_status": stripe_status,
    "app_health": app_health,
}


def select(components: list[Component], keep: list[str], limit: int) -> list[Component]:
    """The components that get series: the named ones, else the top level, capped.

    Beyond `limit`, the rest fold into one "other" component with their worst status, so a
    page with 600 components costs `limit + 1` series and an outage in the tail still shows.
    """
    if keep:
        order = {name.lower(): i for i, name in enumerate(keep)}
        chosen = sorted((c for c in components if c.name.lower() in order),
                        key=lambda c: order[c.name.lower()])
    else:
        chosen = [c for c in components if c.top_level]
    merged: dict[str, Component] = {}
    for component in chosen:
        # Label sets must be unique: same-named components share the worst status.
        seen = merged.get(component.name)
        if seen is not None:
            component = Component(seen.name, st.worst([seen.status, component.status]),
                                  latency_seconds=seen.latency_seconds)
        merged[component.name] = component
    unique = list(merged.values())
    if len(unique) <= limit:
        return unique
    head, tail = unique[:limit], unique[limit:]
    rest = [c.status for c in tail] + [c.status for c in head if c.name == OTHER]
    head = [c for c in head if c.name != OTHER]
    return [*head, Component(OTHER, st.worst(rest))]
