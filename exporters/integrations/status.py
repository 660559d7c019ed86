"""One status vocabulary for every source, and the bounded failure reasons of a probe.

Each source speaks its own words (Statuspage indicators and component states, Stripe's
up/degraded/down, the app's healthy/degraded/unhealthy and pass/warn/fail); alerts and
dashboards see only the five statuses below.
"""

from __future__ import annotations

from collections.abc import Iterable

OPERATIONAL = "operational"
DEGRADED = "degraded"
PARTIAL_OUTAGE = "partial_outage"
MAJOR_OUTAGE = "major_outage"
MAINTENANCE = "maintenance"

# Every one-hot family carries exactly these values, in this order.
STATUSES = (OPERATIONAL, DEGRADED, PARTIAL_OUTAGE, MAJOR_OUTAGE, MAINTENANCE)

# Why a probe failed. Error text never becomes a label: only these values do.
REASONS = ("none", "timeout", "connection", "tls", "http_status", "invalid_body", "unhealthy",
           "redirect")

# Worst first when folding several statuses into one. Maintenance is planned work, so a real
# outage anywhere outranks it.
_SEVERITY = {OPERATIONAL: 0, MAINTENANCE: 1, DEGRADED: 2, PARTIAL_OUTAGE: 3, MAJOR_OUTAGE: 4}

# Atlassian Statuspage v2: `status.indicator` of summary.json / status.json.
STATUSPAGE_INDICATORS = {
    "none": OPERATIONAL,
    "minor": DEGRADED,
    "major": PARTIAL_OUTAGE,
    "critical": MAJOR_OUTAGE,
    "maintenance": MAINTENANCE,  # not in the documented set, but some pages report it
}

# Atlassian Statuspage v2: `components[].status`.
STATUSPAGE_COMPONENTS = {
    "operational": OPERATIONAL,
    "degraded_performance": DEGRADED,
    "partial_outage": PARTIAL_OUTAGE,
    "major_outage": MAJOR_OUTAGE,
    "under_maintenance": MAINTENANCE,
}

# Stripe's status feed (status.stripe.com/current): `largestatus` and `statuses.*`.
STRIPE = {"up": OPERATIONAL, "degraded": DEGRADED, "down": MAJOR_OUTAGE}

# The app's health JSON (saas-ops-module § Health Check Endpoint: healthy/degraded/unhealthy
# overall, pass/fail per check; "ok" is dirt-free-crm § System Health Check's liveness body;
# "warn" is the common third check state between pass and fail).
APP_HEALTH = {
    "healthy": OPERATIONAL, "ok": OPERATIONAL, "pass": OPERATIONAL, "up": OPERATIONAL,
    "operational": OPERATIONAL, "ready": OPERATIONAL,
    "degraded": DEGRADED, "warn": DEGRADED, "warning": DEGRADED,
    "partial_outage": PARTIAL_OUTAGE,
    "unhealthy": MAJOR_OUTAGE, "fail": MAJOR_OUTAGE, "down": MAJOR_OUTAGE,
    "error": MAJOR_OUTAGE, "major_outage": MAJOR_OUTAGE, "not ready": MAJOR_OUTAGE,
    "maintenance": MAINTENANCE, "under_maintenance": MAINTENANCE,
}


def normalize(value: object, vocabulary: dict[str, str]) -> str | None:
    """The normalized status of a source's word, or None when the word is not known."""
    if not isinstance(value, str):
        return None
    return vocabulary.get(value.strip().lower())


def worst(statuses: Iterable[str | None]) -> str | None:
    """The most severe known status, or None when none is known."""
    known = [s for s in statuses if s is not None]
    return max(known, key=_SEVERITY.__getitem__) if known else None
