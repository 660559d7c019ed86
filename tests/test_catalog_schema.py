"""The draft threshold catalog (alert_rules/catalog/) keeps the shape in its SCHEMA.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CATALOG = Path(__file__).resolve().parent.parent / "alert_rules" / "catalog"
GUIDES = {"nova-crm", "estimate-library", "dirt-free-crm", "tpt-erp", "saas-ops-module"}
AREAS = {"api", "database", "redis", "storage", "frontend", "realtime", "host", "cron",
         "integrations", "business", "ai", "support", "health", "incident", "exporter"}
SEVERITIES = {"critical", "high", "medium", "low"}
ENTRY_KEYS = {"id", "area", "section", "measure", "metric_hint", "unit", "comparator", "target",
              "levels", "escalation", "notes"}
LEVEL_KEYS = {"value", "guide_level", "severity", "for"}
DURATION = re.compile(r"^\d+(ms|s|m|h|d|w)$")
FILES = sorted(CATALOG.glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_catalog_file_follows_schema(path: Path) -> None:
    data = load(path)
    assert data["guide"] == path.stem and path.stem in GUIDES
    assert set(data) <= {"guide", "entries", "unencodable"}
    assert data["entries"], "a guide with no encodable number is unlikely"
    for entry in data["entries"]:
        where = f"{path.name}:{entry.get('id')}"
        assert set(entry) <= ENTRY_KEYS, f"{where}: unknown keys {set(entry) - ENTRY_KEYS}"
        assert re.fullmatch(r"[a-z0-9_]+", entry["id"]), where
        assert entry["area"] in AREAS, where
        assert entry["section"] and entry["measure"] and entry["unit"], where
        assert entry.get("comparator") in (">", "<", ">=", "<=", None), where
        for level in entry.get("levels") or []:
            assert set(level) <= LEVEL_KEYS, where
            assert level["severity"] in SEVERITIES, where
            assert "for" not in level or DURATION.match(str(level["for"])), where
        if "escalation" in entry:
            assert DURATION.match(str(entry["escalation"])), where
    for item in data.get("unencodable") or []:
        assert item["section"] and item["reason"], path.name


def test_catalog_ids_are_unique_across_guides() -> None:
    ids = [e["id"] for path in FILES for e in load(path)["entries"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates
