"""The threshold catalog: valid, consistent, and covering every guide section the bundle
promises to encode (alert_rules/catalog/, checked through the generator's own loader)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alert_rules.generator.catalog import CATALOG_DIR, GUIDES, Catalog, CatalogError, load_catalog

DASHBOARD = "1.1 Comprehensive Monitoring Dashboard \u203a "  # the guides' section separator
# Guide sections (by the catalog's `section` prefix) that must hold alerting entries:
# the list of what each guide contributes.
ALERTING_SECTIONS = {
    "nova-crm": [DASHBOARD + "health.api",
                 DASHBOARD + "health.database",
                 DASHBOARD + "health.redis",
                 DASHBOARD + "health.storage",
                 DASHBOARD + "ux.frontend",
                 DASHBOARD + "ux.realtime",
                 DASHBOARD + "business",
                 DASHBOARD + "ai",
                 "3.2 Frontend Performance Monitoring"],
    "estimate-library": ["Key Metrics to Track", "Success Criteria"],
    "dirt-free-crm": ["Alert Thresholds", "First Hour", "First 24 Hours"],
    "tpt-erp": ["System Monitoring", "Error Monitoring & Alerting"],
    "saas-ops-module": ["Health Check Endpoint", "Incident Severity Levels"],
}
# Sections encoded by routing/timing rather than alert rules.
ENCODED_SECTIONS = {
    "nova-crm": ["1.2 Automated Alert System"],
    "dirt-free-crm": ["Issue Response"],
    "saas-ops-module": ["Incident Severity Levels"],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The shipped catalog, loaded once for the tests that only read it (the broken copies
    below are loaded each on its own)."""
    return load_catalog()


def test_catalog_loads_and_every_guide_has_entries(catalog: Catalog) -> None:
    assert {g.guide for g in catalog.guides} >= set(GUIDES)
    for guide in catalog.guides:
        assert guide.entries, guide.guide


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_sections_the_bundle_promises_are_alerting(guide: str, catalog: Catalog) -> None:
    entries = next(g for g in catalog.guides if g.guide == guide).entries
    for prefix in ALERTING_SECTIONS[guide]:
        assert any(e.section.startswith(prefix) and e.signal for e in entries), prefix
    for prefix in ENCODED_SECTIONS.get(guide, []):
        assert any(e.section.startswith(prefix) and e.encoded_by for e in entries), prefix


def test_guide_disagreements_stay_as_ladders(catalog: Catalog) -> None:
    """Error rate, latency, slow query, replication lag, FCP, TTFB, CPU and memory have
    different levels in different guides: every level survives as its own rule."""
    for signal in ("api_error_ratio", "pg_replication_lag", "pg_slowest_statement", "webvitals_fcp",
                   "webvitals_ttfb", "host_cpu", "host_memory"):
        rules = [r for r in catalog.rules if r.signal == signal]
        assert len({r.value for r in rules}) >= 2, signal
        # TTFB's two levels are both nova-crm's (dashboard 1 s, web-vitals "poor" 1.5 s).
        assert len({r.guide for r in rules}) >= 2 or signal == "webvitals_ttfb", signal


def test_unencodable_items_give_a_reason(catalog: Catalog) -> None:
    for guide in catalog.guides:
        for item in guide.unencodable:
            assert len(item.reason) >= 10, (guide.guide, item.section)


def _broken_copy(tmp_path: Path, guide: str, old: str, new: str) -> Path:
    copy = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, copy)
    path = copy / f"{guide}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return copy


@pytest.mark.parametrize(("old", "new", "message"), [
    ("signal: api_error_ratio", "signal: no_such_signal", "unknown signal 'no_such_signal'"),
    ("signal: api_error_ratio", "signal: api_error_ratio\n  colour: red", "colour: Extra inputs"),
    ("comparator: '>'", "comparator: '<'", "disagrees with signal"),
    ("severity: high", "severity: urgent", "severity: Input should be"),
])
def test_inconsistent_catalog_is_rejected_with_the_entry_named(
        tmp_path: Path, old: str, new: str, message: str) -> None:
    copy = _broken_copy(tmp_path, "nova-crm", old, new)
    with pytest.raises(CatalogError, match=r"nova-crm\.yaml") as raised:
        load_catalog(copy)
    assert message in str(raised.value)
