"""The mixin's grafanaDashboards -> dashboards/generated/<uid>.json (one file per board).

The boards are evaluated with the rules, in one pass of the mixin (mixin.py); this module
only checks each board's uid against its file name and formats the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alert_rules.generator.catalog import CatalogError
from alert_rules.generator.mixin import REPO

OUT = REPO / "dashboards" / "generated"
UID_PREFIX = "saasmon-"


def board_files(boards: dict[str, dict[str, Any]]) -> dict[Path, str]:
    """Every board's JSON keyed by its path under dashboards/generated/."""
    out: dict[Path, str] = {}
    for name, board in sorted(boards.items()):
        uid = name.removesuffix(".json")
        if not uid.startswith(UID_PREFIX) or board.get("uid") != uid:
            raise CatalogError(f"grafanaDashboards[{name!r}]: uid {board.get('uid')!r}, expected {uid!r}")
        out[OUT / name] = json.dumps(board, indent=2, sort_keys=True) + "\n"
    return out
