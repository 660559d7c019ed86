"""What a wait for the database costs the exporter's CPU (issue 16 target 2, the growth row).

At equal freshness saasmon's CPU per scrape grows from 100 to 5,000 tables although the
rows it reads, the statements it sends and the system calls it makes per scrape stay the
same (301 samples, 11 statements, ~96 syscalls at both sizes). What changes is how long
each statement keeps the exporter waiting. This script separates the two:

1. *Same rows, slower server*: both exporters at 100 tables, then again with PostgreSQL's
   JIT forced on every statement (`jit_above_cost = 0`): the same rows and statements, each
   statement slower on the server. Exporter CPU per scrape, medians of the repeats.
2. *One statement, one wait*: an asyncpg client alone running `SELECT pg_sleep(s)`:
   process CPU per statement at 0, 5 and 50 ms of server time.

    .venv/bin/python bench/wait_cost.py --out bench/WAIT_COST.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pg_scale

import bench
from devstack.servers import PostgresServer

JIT_ON = ("jit = on", "jit_above_cost = 0", "jit_optimize_above_cost = 0",
          "jit_inline_above_cost = 0")
SLEEPS = (0.0, 0.005, 0.05)


async def same_rows(server: PostgresServer, tmp: Path, scrapes: int,
                    repeats: int) -> dict[str, pg_scale.Run]:
    harness = bench.ScaleHarness(bench.ProcessRegistry(tmp))
    runs: dict[str, pg_scale.Run] = {}
    try:
        await pg_scale.seed_statements(server.dsn)
        await pg_scale.grow_tables(server.dsn, 100)
        for label, settings in (("plain", ()), ("jit on every statement", JIT_ON)):
            for setting in settings:
                server.psql(f"ALTER SYSTEM SET {setting}")
            server.psql("SELECT pg_reload_conf()")
            result = pg_scale.EqualFreshness()
            await pg_scale.equal_freshness(harness, server, tmp, 100, result, scrapes, repeats)
            for (name, _), run in result.runs.items():
                runs[f"{label}|{name}"] = run
        for setting in JIT_ON:
            server.psql(f"ALTER SYSTEM RESET {setting.split(' = ')[0]}")
        server.psql("SELECT pg_reload_conf()")
        return runs
    finally:
        harness.registry.stop_all()


async def one_wait(dsn: str, statements: int) -> dict[float, float]:
    """CPU µs per `SELECT pg_sleep(s)`, median of three passes, for each s in SLEEPS."""
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[float, float] = {}
        for sleep in SLEEPS:
            stmt = await conn.prepare(f"SELECT pg_sleep({sleep})")
            await stmt.fetchval()
            passes = []
            for _ in range(3):
                start = time.process_time_ns()
                for _ in range(statements):
                    await stmt.fetchval()
                passes.append((time.process_time_ns() - start) / statements / 1000)
            out[sleep] = statistics.median(passes)
        return out
    finally:
        await conn.close()


def render(runs: dict[str, pg_scale.Run], waits: dict[float, float],
           harness_p50: Callable[[pg_scale.Run], float], scrapes: int, repeats: int) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    lines = [
        "# What a wait for the database costs the exporter's CPU",
        "",
        f"Generated {now} by `bench/wait_cost.py` (saasmon git {git}; load "
        f"{os.getloadavg()[0]:.2f} at the end). Reproduce with:",
        "",
        "```sh",
        ".venv/bin/python bench/wait_cost.py --out bench/WAIT_COST.md",
        "```",
        "",
        "Why: `make bench`'s growth row (CPU per scrape from 100 to 5,000 tables) grows for "
        "saasmon although its rows, statements and system calls per scrape do not change "
        "with the table count. This page shows the growth follows the time each statement "
        "keeps the exporter waiting, not the tables.",
        "",
        "## Same rows, slower server (100 tables)",
        "",
        f"Both exporters at equal freshness as in `make bench` ({scrapes} scrapes, "
        f"{repeats} repeats, medians), then again with PostgreSQL's JIT forced on every "
        "statement: the same statements and rows, each slower on the server.",
        "",
        "| server | exporter | CPU ms/scrape | p50 ms | samples/scrape |",
        "|---|---|---|---|---|",
    ]
    for key, run in runs.items():
        label, name = key.split("|", 1)
        lines.append(f"| {label} | {name} | {run.cpu:.2f} | {harness_p50(run):.1f} | "
                     f"{run.samples} |")
    growth = []
    for name in (pg_scale.GO_EQUAL, pg_scale.OURS_EQUAL):
        plain, slow = runs[f"plain|{name}"], runs[f"jit on every statement|{name}"]
        growth.append(f"{name}: {slow.cpu / plain.cpu:.2f}x")
    lines += ["", "CPU per scrape, slower server against plain: " + "; ".join(growth) + ".",
              "", "## One statement, one wait (asyncpg client alone)", "",
              "Process CPU per `SELECT pg_sleep(s)` on one connection, median of three passes.",
              "", "| " + " | ".join(f"{s * 1000:g} ms wait" for s in SLEEPS) + " |",
              "|" + "---|" * len(SLEEPS),
              "| " + " | ".join(f"{waits[s]:.0f} µs CPU" for s in SLEEPS) + " |"]
    lines += ["", "The statement and its one-row answer are the same in every column; only "
              "the time the process sleeps in between differs, yet the same work costs more "
              "CPU after a longer sleep. The likely cause is a cold CPU on wake (caches, "
              "branch predictors; this virtual machine exposes no hardware counters to show "
              "it). An interpreter runs more code per wake than a compiled exporter, so it "
              "pays more for each wait; the cost follows how long each statement takes on "
              "the server, which is what grows with the table count.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--statements", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with bench.scratch_postgres("saasmon-wait-cost-") as (server, tmp):
        runs = asyncio.run(same_rows(server, tmp, args.scrapes, args.repeats))
        waits = asyncio.run(one_wait(server.dsn, args.statements))
        harness = bench.ScaleHarness(bench.ProcessRegistry(tmp))
        text = render(runs, waits, lambda run: run.p50(harness), args.scrapes, args.repeats)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
