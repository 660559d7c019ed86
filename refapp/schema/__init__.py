"""SQL migrations of the reference app, applied in file-name order."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def migrations() -> list[Path]:
    return sorted(HERE.glob("*.sql"))


def schema_sql() -> str:
    """Every migration, concatenated in order (each is idempotent)."""
    return "\n".join(p.read_text() for p in migrations())
