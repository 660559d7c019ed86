"""Equal freshness alone (issue 16 target 2): saasmon collecting on each scrape against
prometheus-postgres-exporter running the same queries, at the sizes asked, nothing else.

The method is bench/pg_scale.py's (`equal_freshness`: the two exporters alternating,
medians of the repeats); this script only skips the other phases of `make bench`, to check
a change in a few minutes. The numbers of record are `make bench`'s (bench/RESULTS.md).

    .venv/bin/python bench/pg_equal.py --sizes 100 5000 --scrapes 40 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import pg_scale

import bench
from devstack.servers import PostgresServer


async def measure(server: PostgresServer, tmp: Path, sizes: list[int], scrapes: int,
                  repeats: int) -> pg_scale.EqualFreshness:
    harness = bench.ScaleHarness(bench.ProcessRegistry(tmp))
    try:
        await pg_scale.seed_statements(server.dsn)
        result = pg_scale.EqualFreshness()
        for size in sizes:
            await pg_scale.grow_tables(server.dsn, size)
            load = os.getloadavg()
            await pg_scale.equal_freshness(harness, server, tmp, size, result, scrapes, repeats)
            report(result, size, load, os.getloadavg(), harness)
        return result
    finally:
        harness.registry.stop_all()


def report(result: pg_scale.EqualFreshness, size: int, load_before: tuple[float, ...],
           load_after: tuple[float, ...], harness: bench.ScaleHarness) -> None:
    go = result.runs[(pg_scale.GO_EQUAL, size)]
    ours = result.runs[(pg_scale.OURS_EQUAL, size)]
    print(f"{size} tables (load {load_before[0]:.2f} -> {load_after[0]:.2f})")
    for run in (go, ours):
        print(f"  {run.exporter:45s} cpu {run.cpu:6.2f} ms/scrape (repeats "
              + ", ".join(f"{c:.2f}" for c in run.cpu_ms) + f"), statements {run.stmts:.1f}, "
              f"p50 {run.p50(harness):.1f} ms, samples {run.samples}, failed {run.errors}")
    print(f"  ratio saasmon/Go: cpu {pg_scale.ratio(ours.cpu, go.cpu):.3f}x, statements "
          f"{pg_scale.ratio(ours.stmts, go.stmts):.3f}x", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100])
    parser.add_argument("--scrapes", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with bench.scratch_postgres("saasmon-pg-equal-") as (server, tmp):
        result = asyncio.run(measure(server, tmp, args.sizes, args.scrapes, args.repeats))
    if len(args.sizes) > 1:
        small, large = args.sizes[0], args.sizes[-1]
        print(f"growth {small} -> {large}: saasmon "
              f"{pg_scale.growth(result.runs, pg_scale.OURS_EQUAL, small, large):.3f}x, Go "
              f"{pg_scale.growth(result.runs, pg_scale.GO_EQUAL, small, large):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
