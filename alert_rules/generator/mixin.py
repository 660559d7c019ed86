"""Evaluate the repository's Jsonnet mixin (mixin.libsonnet at the repository root).

The one place the generator touches Jsonnet: rules, alerts, rule descriptions and boards all
come from one evaluation of `mixin.libsonnet` with optional `_config` overrides (the drills'
`timeScale`). The import callback does two things a vendoring user's `jsonnet -J vendor` does
by itself: it resolves `saasmon/...` (the name the mixin is vendored under) to this
repository, and it serves `alert_rules/generated/catalog.json` from memory, so rendering and
`--check` never depend on the committed copy being current.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _jsonnet

from alert_rules.generator.catalog import CatalogError

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "alert_rules" / "generated"
CATALOG_JSON = GENERATED / "catalog.json"
# The directory name the mixin has under a jsonnet-bundler `vendor/` (the repository's name).
VENDOR_NAME = "saasmon"

Importer = Callable[[str, str], tuple[str, bytes]]


def importer(catalog_text: str) -> Importer:
    """Jsonnet import callback: relative to the importing file first, then the jpath."""

    def load(base: str, rel: str) -> tuple[str, bytes]:
        path = (Path(base) / rel).resolve()
        if not path.is_file() and rel.startswith(VENDOR_NAME + "/"):
            path = (REPO / rel.removeprefix(VENDOR_NAME + "/")).resolve()
        if path == CATALOG_JSON:
            return str(path), catalog_text.encode()
        if not path.is_file():
            raise RuntimeError(f"import {rel!r}: not found from {base}")
        return str(path), path.read_bytes()

    return load


def evaluate(catalog_text: str, config: dict[str, Any] | None = None,
             dashboards: bool = True) -> dict[str, Any]:
    """The mixin against catalog JSON text, with `config` merged into its `_config`:
    {alerts, rules} in Prometheus form, `descriptions` (one per alert rule, in the alert
    file's order), `scrape` (the job names the rules select on) and, unless `dashboards` is
    False, `dashboards` (file name -> board)."""
    snippet = (
        f"local mixin = (import 'mixin.libsonnet') + {{ _config+:: {json.dumps(config or {})} }};\n"
        "{alerts: mixin.prometheusAlerts, rules: mixin.prometheusRules, "
        "descriptions: mixin.ruleDescriptions, "
        # The job names the rules select on, and the status-page probe target (devstack/scrape.py).
        "scrape: {jobs: mixin._config.jobs, statusPageTarget: mixin._config.statusPageTarget}"
        + (", dashboards: mixin.grafanaDashboards" if dashboards else "") + "}"
    )
    try:
        text = _jsonnet.evaluate_snippet(str(REPO / "generate.jsonnet"), snippet,
                                         import_callback=importer(catalog_text))
    except RuntimeError as exc:  # _jsonnet reports Jsonnet errors as RuntimeError
        raise CatalogError(f"mixin: {exc}") from exc
    out: dict[str, Any] = json.loads(text)
    return out
