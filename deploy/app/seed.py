"""One-shot `db-init` service of docker-compose.yml: the reference schema, and generated
history the first time only.

`python seed.py [--days N]` reads the app's DSN from the file REFAPP_DSN_FILE names (the
compose secret; a DSN never goes on a command line). It applies the schema (idempotent, so
an upgraded image's migrations land on every `up`) and, only while the `customers` table is
empty, loads `refapp.datagen`'s history ending now. Re-running keeps the data the stack has
built up since, which `python -m refapp.datagen` would replace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from refapp.app import migrate
from refapp.datagen import generate_into
from saasmon.runtime.logs import SecretRegistry

# Enough for the 30-day KPIs (retention day 30, monthly active users) to have a full window.
DEFAULT_DAYS = 45


async def has_rows(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM customers)"))
    finally:
        await conn.close()


async def seed(dsn: str, days: int) -> str:
    await migrate(dsn)
    if await has_rows(dsn):
        return "db-init: schema applied; data present, not regenerated"
    data = await generate_into(dsn, days=days)
    return f"db-init: schema applied; generated {days} days ({len(data['customers'].rows)} customers)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seed.py", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS,
                        help="days of history on first start (default %(default)s)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days: must be at least 1")
    dsn_file = os.environ.get("REFAPP_DSN_FILE")
    if not dsn_file:
        parser.error("REFAPP_DSN_FILE is not set")
    try:
        dsn = Path(dsn_file).read_text().strip()
    except OSError as exc:
        print(f"db-init: cannot read REFAPP_DSN_FILE {dsn_file!r}: {exc.strerror}", file=sys.stderr)
        return 2
    SecretRegistry.add(dsn, urlsplit(dsn).password)
    try:
        print(asyncio.run(seed(dsn, args.days)), flush=True)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        # The exception text may quote the DSN: masked like every saasmon error line.
        print(f"db-init: {SecretRegistry.mask(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
