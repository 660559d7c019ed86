"""Idle resident memory: each exporter alone, and all of them in one `saasmon bundle`.

Not a test: it starts one private PostgreSQL (pg_stat_statements, and the reference app's
schema in database `app` for cron, integrations and business) and one private Redis on
free loopback ports, then starts every exporter with a minimal config against them, one
at a time: waits for /-/ready (the first collection round done), scrapes /metrics a few
times, lets it settle and reads VmRSS, RssAnon and RssFile from /proc/PID/status. The
same is done for the code at --base (default 287760c, before `saasmon bundle`), exported
with `git archive` into a temporary directory and run by the same interpreter, so before
and after differ only in saasmon's own code. Then the bundle: all seven exporters in one
process, and the demo's eight (a second postgres entry for its standby). Each row is the
median of --runs runs. A last table shows where a single exporter's memory goes: the RSS
a fresh interpreter gains with each group of imports, in the order the exporter loads them.

    .venv/bin/python bench/rss.py --out bench/RSS.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import report  # noqa: E402  (bench/, the script's own folder)

from devstack.process import Process  # noqa: E402
from devstack.servers import PostgresServer, RedisServer, free_port  # noqa: E402
from refapp.schema import schema_sql  # noqa: E402

BASE = "287760c"
KINDS = ("postgres", "redis", "cron", "integrations", "business", "webvitals", "sms-relay")
SINGLE_TARGET_MIB = 40.0
BUNDLE_TARGET_MIB = 80.0
# The rows of IMPORT_STEPS (with the interpreter's) that every exporter loads.
FLOOR_STEPS = 6
SCRAPES = 3  # per exporter before reading: the scrape path's allocations are in the number
SETTLE_SECONDS = 1.0
READY_TIMEOUT = 60.0
FIELDS = ("VmRSS", "RssAnon", "RssFile")

# Import groups in the order a postgres exporter loads them; each row is what the group
# adds to the RSS of a fresh interpreter that has loaded the rows above it.
IMPORT_STEPS = (
    ("asyncio (with ssl)", "import ssl, asyncio"),
    ("PyYAML", "import yaml"),
    ("pydantic", "import pydantic"),
    ("prometheus_client", "import prometheus_client"),
    ("aiohttp (server and client, attrs, yarl, multidict)", "import aiohttp.web"),
    ("saasmon runtime (config models built, server)",
     "import saasmon.runtime.options, saasmon.bundle"),
    ("asyncpg", "import asyncpg"),
    ("postgres exporter code", "import saasmon.postgres.exporter"),
    ("redis-py (redis.asyncio)", "import redis.asyncio"),
    ("redis exporter code", "import saasmon.redis.exporter"),
    ("the other exporters' code", "import saasmon.cron.exporter, "
     "saasmon.integrations.exporter, saasmon.business.exporter, "
     "saasmon.webvitals.exporter, saasmon.smsrelay.exporter"),
)
IMPORT_PROBE = """
import sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
print(rss())
for statement in sys.argv[1:]:
    exec(statement)
    print(rss())
"""


@dataclass
class Memory:
    kib: dict[str, int]

    def mib(self, name: str = "VmRSS") -> float:
        return self.kib[name] / 1024


@dataclass
class Row:
    label: str
    runs: list[Memory] = field(default_factory=list)

    def median(self, name: str = "VmRSS") -> float:
        return statistics.median(m.mib(name) for m in self.runs) if self.runs else float("nan")

    def spread(self) -> str:
        values = [m.mib() for m in self.runs]
        return f"{min(values):.1f}-{max(values):.1f}" if values else "n/a"


def proc_status(pid: int) -> Memory:
    kib: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            kib[name] = int(rest.split()[0])
    return Memory(kib)


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


@contextlib.contextmanager
def process(argv: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    child = Process(log.stem, argv, log, cwd=cwd, append_log=True).start()
    try:
        assert child.proc is not None
        yield child.proc
    finally:
        child.stop()


def measure(proc: subprocess.Popen[bytes], ports: list[int], log: Path) -> Memory:
    deadline = time.monotonic() + READY_TIMEOUT
    for port in ports:
        while get(f"http://127.0.0.1:{port}/-/ready") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"not ready on :{port}; log {log}:\n"
                                   + "\n".join(log.read_text().splitlines()[-10:]))
            time.sleep(0.1)
    for _ in range(SCRAPES):
        for port in ports:
            if get(f"http://127.0.0.1:{port}/metrics") != 200:
                raise RuntimeError(f"scrape of :{port} failed; log {log}")
    time.sleep(SETTLE_SECONDS)
    return proc_status(proc.pid)


def configs(pg: PostgresServer, redis: RedisServer) -> dict[str, dict[str, Any]]:
    app = f"postgresql://postgres@127.0.0.1:{pg.port}/app"
    return {
        "postgres": {"dsn": pg.dsn},
        "redis": {"targets": [{"name": "main", "url": redis.url}]},
        "cron": {"dsn": app},
        "integrations": {"dsn": app, "builtin_targets": False},
        "business": {"dsn": app},
        "webvitals": {"allowed_origins": ["http://127.0.0.1:8080"]},
        "sms-relay": {"twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "bench-token",
                                 "from_number": "+15005550006"},
                      "recipients": ["+15005550001"]},
    }


def single(kind: str, tree: Path, config: Path, logs: Path) -> Memory:
    port = free_port()
    log = logs / f"{tree.name}-{kind}.log"
    # The base tree predates the package's name: its folder is the module it runs as.
    module = "saasmon" if tree == REPO else "exporters"
    argv = [sys.executable, "-m", module, kind, "--config.file", str(config),
            "--web.listen-address", f"127.0.0.1:{port}"]
    with process(argv, tree, log) as proc:
        return measure(proc, [port], log)


def bundle(entries: dict[str, tuple[str, Path]], tmp: Path, logs: Path) -> Memory:
    ports = {name: free_port() for name in entries}
    path = tmp / f"bundle-{len(entries)}.yml"
    path.write_text(yaml.safe_dump({"exporters": {
        name: {"exporter": kind, "config.file": str(config),
               "web.listen-address": f"127.0.0.1:{ports[name]}"}
        for name, (kind, config) in entries.items()}}))
    log = logs / f"bundle-{len(entries)}.log"
    argv = [sys.executable, "-m", "saasmon", "bundle", "--config.file", str(path)]
    with process(argv, REPO, log) as proc:
        return measure(proc, list(ports.values()), log)


def interpreter(logs: Path) -> Memory:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with process(argv, REPO, logs / "interpreter.log") as proc:
        time.sleep(1.0)
        return proc_status(proc.pid)


def import_steps() -> list[tuple[str, float]]:
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE,
                          *(statement for _, statement in IMPORT_STEPS)],
                         cwd=REPO, capture_output=True, text=True, check=True, timeout=120)
    values = [int(v) / 1024 for v in out.stdout.split()]
    rows = [("interpreter (python -c, venv site)", values[0])]
    rows += [(label, after - before) for (label, _), before, after
             in zip(IMPORT_STEPS, values[:-1], values[1:], strict=True)]
    return rows


def export_tree(commit: str, into: Path) -> Path:
    tree = into / f"base-{commit}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    # -m exporters from this directory (the base's layout, before the package was named
    # saasmon) must load this tree's package, not the checkout's.
    found = subprocess.run([sys.executable, "-c", "import exporters; print(exporters.__file__)"],
                           cwd=tree, capture_output=True, text=True, check=True).stdout.strip()
    if not found.startswith(str(tree)):
        raise RuntimeError(f"the base tree's package is not the one imported: {found}")
    return tree


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False).stdout.strip()


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "FAIL"


def render(rows: dict[str, tuple[Row, Row]], bundles: dict[str, Row], base_sum: Row,
           interp: Row, steps: list[tuple[str, float]], args: argparse.Namespace,
           pg_version: str) -> str:
    lines = [
        *report.header("saasmon idle memory (RSS)", "bench/rss.py",
                       [f".venv/bin/python bench/rss.py --runs {args.runs} --out {args.out}"],
                       note=f"; before = {args.base}"),
        "## Machine", "",
        f"- {report.machine_line()}, PostgreSQL `{pg_version}`",
        f"- uptime at end: `{report.uptime()}`", "",
        "## Method", "",
        "- One private PostgreSQL (pg_stat_statements; the reference app schema in `app`) and "
        "one private Redis on loopback. Each exporter starts with a minimal config against "
        "them (default intervals), as `python -m saasmon <exporter>` from the venv.",
        f"- Measured when every port answers `/-/ready` (first collection round done) and has "
        f"been scraped {SCRAPES} times, {SETTLE_SECONDS:g} s later: VmRSS (and its anonymous "
        "and file-backed parts) from /proc/PID/status. One process at a time.",
        f"- *before*: the tree at `{args.base}` (`git archive`), run by the same interpreter "
        "and libraries; *after*: this checkout. Each cell is the median of "
        f"{args.runs} run(s); the range is after's min-max.",
        "- The venv is an editable install: its startup hook is in every number here "
        "(the interpreter row) and absent from a regular install such as the Docker image.",
        "", "## Results", "",
        "| exporter | before MiB | after MiB | after range | after anon / file MiB |"
        " target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, (before, after) in rows.items():
        value = after.median()
        lines.append(f"| `saasmon {kind}` | {before.median():.1f} | {value:.1f} | "
                     f"{after.spread()} | {after.median('RssAnon'):.1f} / "
                     f"{after.median('RssFile'):.1f} | <= {SINGLE_TARGET_MIB:g} | "
                     f"{verdict(value, SINGLE_TARGET_MIB)} |")
    seven = bundles["seven"]
    lines.append(f"| all seven | {base_sum.median():.1f} (seven processes, sum) | "
                 f"{seven.median():.1f} (one `saasmon bundle`) | {seven.spread()} | "
                 f"{seven.median('RssAnon'):.1f} / {seven.median('RssFile'):.1f} | "
                 f"<= {BUNDLE_TARGET_MIB:g} | {verdict(seven.median(), BUNDLE_TARGET_MIB)} |")
    eight = bundles["eight"]
    lines.append(f"| the demo's eight (two postgres) | - | {eight.median():.1f} (one "
                 f"`saasmon bundle`) | {eight.spread()} | {eight.median('RssAnon'):.1f} / "
                 f"{eight.median('RssFile'):.1f} | | |")
    lines.append(f"| python interpreter alone | | {interp.median():.1f} | {interp.spread()} | "
                 f"{interp.median('RssAnon'):.1f} / {interp.median('RssFile'):.1f} | | |")
    worst = max(after.median() for _, after in rows.values())
    lines += [
        "", "## Targets (issue 16, target 1)", "",
        "| target | measured | verdict |", "|---|---|---|",
        f"| all seven exporters in one process <= {BUNDLE_TARGET_MIB:g} MiB | "
        f"{seven.median():.1f} MiB | {verdict(seven.median(), BUNDLE_TARGET_MIB)} |",
        f"| any single exporter <= {SINGLE_TARGET_MIB:g} MiB | largest {worst:.1f} MiB | "
        f"{verdict(worst, SINGLE_TARGET_MIB)} |",
        "", "## Where a single exporter's memory goes", "",
        "What a fresh interpreter's RSS gains with each group of imports, in the order an "
        "exporter loads them (one run; a group's cost depends on what came before it).", "",
        "| step | + MiB |", "|---|---|",
        *(f"| {label} | {mib:.1f} |" for label, mib in steps),
        "", f"The interpreter and the libraries every exporter loads (the first {FLOOR_STEPS} "
        f"rows) come to {sum(mib for _, mib in steps[:FLOOR_STEPS]):.1f} MiB before any "
        "saasmon code or database driver, so no single exporter fits in "
        f"{SINGLE_TARGET_MIB:g} MiB by choosing what to import: that would take dropping "
        "aiohttp (an HTTP server of our own on asyncio streams) or pydantic (hand-written "
        "config validation). In a bundle those libraries are loaded once: each further "
        "exporter adds its own code, its config models and, for the first that needs it, "
        "its driver.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", default=BASE, help="commit for the before column")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default="bench/RSS.md")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="saasmon-rss-"))
    tmp.chmod(0o755)  # initdb runs as user postgres when we are root
    logs = tmp / "logs"
    logs.mkdir()
    pg = PostgresServer(tmp / "pg")
    redis = RedisServer(tmp / "redis")
    try:
        pg.start()
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pg.psql("CREATE DATABASE app")
        pg.psql(schema_sql(), db="app")
        redis.start()
        base = export_tree(args.base, tmp)
        paths: dict[str, Path] = {}
        for kind, config in configs(pg, redis).items():
            paths[kind] = tmp / f"{kind}.yml"
            paths[kind].write_text(yaml.safe_dump(config))
        rows = {kind: (Row(kind), Row(kind)) for kind in KINDS}
        bundles = {"seven": Row("seven"), "eight": Row("eight")}
        base_sum, interp = Row("sum"), Row("interpreter")
        entries = {kind: (kind, paths[kind]) for kind in KINDS}
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
            interp.runs.append(interpreter(logs))
            for kind in KINDS:
                rows[kind][0].runs.append(single(kind, base, paths[kind], logs))
                rows[kind][1].runs.append(single(kind, REPO, paths[kind], logs))
                print(f"  {kind}: before {rows[kind][0].runs[-1].mib():.1f} MiB, after "
                      f"{rows[kind][1].runs[-1].mib():.1f} MiB", file=sys.stderr, flush=True)
            base_sum.runs.append(Memory({name: sum(rows[k][0].runs[-1].kib[name] for k in KINDS)
                                         for name in FIELDS}))
            bundles["seven"].runs.append(bundle(entries, tmp, logs))
            bundles["eight"].runs.append(bundle(
                {**entries, "postgres-standby": ("postgres", paths["postgres"])}, tmp, logs))
            print(f"  bundle of seven {bundles['seven'].runs[-1].mib():.1f} MiB, of eight "
                  f"{bundles['eight'].runs[-1].mib():.1f} MiB", file=sys.stderr, flush=True)
        report = render(rows, bundles, base_sum, interp, import_steps(), args,
                        pg.psql("SHOW server_version"))
        (REPO / args.out).write_text(report)
        print(report)
    finally:
        redis.kill()
        pg.stop("immediate")
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
