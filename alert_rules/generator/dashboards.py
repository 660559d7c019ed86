"""Render the Grafana boards: dashboards/boards/<name>.jsonnet -> dashboards/generated/saasmon-<name>.json.

The boards import dashboards/lib, which reads the catalog through the mixin's _config; the
catalog is served from memory exactly as for the rules, so boards and alerts always come
from the same catalog text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _jsonnet

from alert_rules.generator.catalog import CatalogError
from alert_rules.generator.render import REPO, importer

BOARDS = REPO / "dashboards" / "boards"
OUT = REPO / "dashboards" / "generated"
UID_PREFIX = "saasmon-"


def render_board(source: Path, catalog_text: str) -> dict[str, Any]:
    try:
        board: dict[str, Any] = json.loads(_jsonnet.evaluate_file(
            str(source), import_callback=importer(catalog_text)))
    except RuntimeError as exc:  # _jsonnet reports Jsonnet errors as RuntimeError
        raise CatalogError(f"{source.relative_to(REPO)}: {exc}") from exc
    uid = UID_PREFIX + source.stem
    if board.get("uid") != uid:
        raise CatalogError(f"{source.relative_to(REPO)}: uid {board.get('uid')!r}, expected {uid!r}")
    return board


def boards(catalog_text: str) -> dict[Path, str]:
    """Every board's JSON, keyed by its path under dashboards/generated/."""
    out: dict[Path, str] = {}
    for source in sorted(BOARDS.glob("*.jsonnet")):
        board = render_board(source, catalog_text)
        out[OUT / f"{board['uid']}.json"] = json.dumps(board, indent=2, sort_keys=True) + "\n"
    return out
