"""Idle resident memory: each exporter alone, and all of them in one `saasmon bundle`.

Not a test: it starts one private PostgreSQL (pg_stat_statements, and the reference app's
schema in database `app` for cron, integrations and business) and one private Redis on
free loopback ports, then starts every exporter with a minimal config against them, one
at a time: waits for /-/ready (the first collection round done), scrapes /metrics a few
times, lets it settle and reads VmRSS, RssAnon and RssFile from /proc/PID/status. This
checkout runs twice: as a regular install (its wheel, built by pip, installed with the pinned
dependencies into a scratch venv, as the Docker image installs it; the verdicts use these)
and from the development venv (an editable install, whose startup hook costs memory). The
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
import shutil
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
    # `import pydantic` is lazy; a model needs pydantic.main, pydantic-core and the plugin
    # loader's importlib.metadata.
    ("pydantic (with pydantic.main, as models need)", "import pydantic, pydantic.main"),
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


def single(kind: str, tree: Path, config: Path, logs: Path, python: Path) -> Memory:
    port = free_port()
    log = logs / f"{tree.name}-{python.parent.parent.name}-{kind}.log"
    # The base tree predates the package's name: its folder is the module it runs as.
    module = "exporters" if tree.name.startswith("base-") else "saasmon"
    argv = [str(python), "-m", module, kind, "--config.file", str(config),
            "--web.listen-address", f"127.0.0.1:{port}"]
    with process(argv, tree, log) as proc:
        return measure(proc, [port], log)


def bundle(entries: dict[str, tuple[str, Path]], tmp: Path, logs: Path,
           python: Path) -> Memory:
    ports = {name: free_port() for name in entries}
    path = tmp / f"bundle-{len(entries)}.yml"
    path.write_text(yaml.safe_dump({"exporters": {
        name: {"exporter": kind, "config.file": str(config),
               "web.listen-address": f"127.0.0.1:{ports[name]}"}
        for name, (kind, config) in entries.items()}}))
    log = logs / f"bundle-{python.parent.parent.name}-{len(entries)}.log"
    argv = [str(python), "-m", "saasmon", "bundle", "--config.file", str(path)]
    with process(argv, tmp, log) as proc:
        return measure(proc, list(ports.values()), log)


def interpreter(logs: Path, python: Path) -> Memory:
    argv = [str(python), "-c", "import time; time.sleep(30)"]
    with process(argv, logs, logs / f"interpreter-{python.parent.parent.name}.log") as proc:
        time.sleep(1.0)
        return proc_status(proc.pid)


def import_steps(python: Path, cwd: Path) -> list[tuple[str, float]]:
    out = subprocess.run([str(python), "-c", IMPORT_PROBE,
                          *(statement for _, statement in IMPORT_STEPS)],
                         cwd=cwd, capture_output=True, text=True, check=True, timeout=120)
    values = [int(v) / 1024 for v in out.stdout.split()]
    rows = [("interpreter (python -c)", values[0])]
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


def wheel_install(tmp: Path) -> Path:
    """The python of a scratch venv holding this checkout as a regular install: a wheel
    built from a copy of what the Docker build copies, installed with constraints.txt."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "constraints.txt", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "exporters", src / "exporters",
                    ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(src)], check=True, timeout=600)
    venv = tmp / "wheel-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(src / "constraints.txt"),
                    str(next(wheels.glob("saasmon-*.whl")))], check=True, timeout=600)
    return python


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False).stdout.strip()


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "FAIL"


def render(rows: dict[str, tuple[Row, Row, Row]], bundles: dict[str, tuple[Row, Row]],
           base_sum: Row, interp: tuple[Row, Row], steps: list[tuple[str, float]],
           args: argparse.Namespace, pg_version: str) -> str:
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
        "them (default intervals), as `python -m saasmon <exporter>`.",
        f"- Measured when every port answers `/-/ready` (first collection round done) and has "
        f"been scraped {SCRAPES} times, {SETTLE_SECONDS:g} s later: VmRSS (and its anonymous "
        "and file-backed parts) from /proc/PID/status. One process at a time.",
        "- *after, wheel* (the verdicts): this checkout as a regular install, as the Docker "
        "image has it: its wheel built by pip and installed with constraints.txt into a "
        "scratch venv. *after, editable*: this checkout from the development venv, an "
        "editable install whose startup hook (the interpreter row) a regular install does not "
        "have; an exporter loads most of the hook's modules anyway.",
        f"- *before*: the tree at `{args.base}` (`git archive`), run by the development "
        "venv's interpreter and libraries: compare it with *after, editable*. Each cell is "
        f"the median of {args.runs} run(s); the range is the wheel's min-max.",
        "", "## Results", "",
        "| exporter | before MiB | after, editable MiB | after, wheel MiB | wheel range | "
        "wheel anon / file MiB | target | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, (before, editable, wheel) in rows.items():
        value = wheel.median()
        lines.append(f"| `saasmon {kind}` | {before.median():.1f} | {editable.median():.1f} | "
                     f"{value:.1f} | {wheel.spread()} | {wheel.median('RssAnon'):.1f} / "
                     f"{wheel.median('RssFile'):.1f} | <= {SINGLE_TARGET_MIB:g} | "
                     f"{verdict(value, SINGLE_TARGET_MIB)} |")
    seven_editable, seven = bundles["seven"]
    lines.append(f"| all seven | {base_sum.median():.1f} (seven processes, sum) | "
                 f"{seven_editable.median():.1f} | {seven.median():.1f} (one `saasmon "
                 f"bundle`) | {seven.spread()} | {seven.median('RssAnon'):.1f} / "
                 f"{seven.median('RssFile'):.1f} | <= {BUNDLE_TARGET_MIB:g} | "
                 f"{verdict(seven.median(), BUNDLE_TARGET_MIB)} |")
    eight_editable, eight = bundles["eight"]
    lines.append(f"| the demo's eight (two postgres) | - | {eight_editable.median():.1f} | "
                 f"{eight.median():.1f} (one `saasmon bundle`) | {eight.spread()} | "
                 f"{eight.median('RssAnon'):.1f} / {eight.median('RssFile'):.1f} | | |")
    interp_editable, interp_wheel = interp
    lines.append(f"| python interpreter alone | | {interp_editable.median():.1f} | "
                 f"{interp_wheel.median():.1f} | {interp_wheel.spread()} | "
                 f"{interp_wheel.median('RssAnon'):.1f} / {interp_wheel.median('RssFile'):.1f}"
                 " | | |")
    worst = max(wheel.median() for _, _, wheel in rows.values())
    floor = sum(mib for _, mib in steps[:FLOOR_STEPS])
    lines += [
        "", "## Targets (issue 16, target 1)", "",
        "| target | measured (wheel) | verdict |", "|---|---|---|",
        f"| all seven exporters in one process <= {BUNDLE_TARGET_MIB:g} MiB | "
        f"{seven.median():.1f} MiB | {verdict(seven.median(), BUNDLE_TARGET_MIB)} |",
        f"| any single exporter <= {SINGLE_TARGET_MIB:g} MiB | largest {worst:.1f} MiB | "
        f"{verdict(worst, SINGLE_TARGET_MIB)} |",
        "", "## Where a single exporter's memory goes", "",
        "What a fresh interpreter of the wheel's venv gains in RSS with each group of imports, "
        "in the order an exporter loads them (one run; a group's cost depends on what came "
        "before it).", "",
        "| step | + MiB |", "|---|---|",
        *(f"| {label} | {mib:.1f} |" for label, mib in steps),
        "", f"The interpreter and the libraries every exporter loads (the first {FLOOR_STEPS} "
        f"rows) come to {floor:.1f} MiB before any saasmon code or database driver. A "
        "single exporter already imports only its own package and its own driver, and "
        "frees what start-up left behind (gc, malloc_trim); the rest is the libraries' "
        "code and data, which no choice of imports removes: aiohttp loads its client "
        "(and a default TLS context with the CA store) from its package's __init__, "
        "pydantic's models need pydantic-core and importlib.metadata, prometheus_client's "
        "__init__ loads its HTTP servers (http.server, wsgiref, urllib.request). "
        f"{SINGLE_TARGET_MIB:g} MiB for one exporter would take dropping one of them "
        "(an HTTP server of our own on asyncio streams, hand-written config validation or "
        "exposition). In a bundle those libraries are loaded once: each further exporter "
        "adds its own code, its config models and, for the first that needs it, its driver.",
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
        venv_python = Path(sys.executable)
        wheel_python = wheel_install(tmp)
        paths: dict[str, Path] = {}
        for kind, config in configs(pg, redis).items():
            paths[kind] = tmp / f"{kind}.yml"
            paths[kind].write_text(yaml.safe_dump(config))
        rows = {kind: (Row(kind), Row(kind), Row(kind)) for kind in KINDS}
        bundles = {"seven": (Row("seven"), Row("seven")), "eight": (Row("eight"), Row("eight"))}
        base_sum, interp = Row("sum"), (Row("interpreter"), Row("interpreter"))
        entries = {kind: (kind, paths[kind]) for kind in KINDS}
        pythons = (venv_python, wheel_python)
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
            for row, python in zip(interp, pythons, strict=True):
                row.runs.append(interpreter(logs, python))
            for kind in KINDS:
                before, editable, wheel = rows[kind]
                before.runs.append(single(kind, base, paths[kind], logs, venv_python))
                editable.runs.append(single(kind, REPO, paths[kind], logs, venv_python))
                wheel.runs.append(single(kind, tmp, paths[kind], logs, wheel_python))
                print(f"  {kind}: before {before.runs[-1].mib():.1f} MiB, after "
                      f"{editable.runs[-1].mib():.1f} MiB editable, "
                      f"{wheel.runs[-1].mib():.1f} MiB wheel", file=sys.stderr, flush=True)
            base_sum.runs.append(Memory({name: sum(rows[k][0].runs[-1].kib[name] for k in KINDS)
                                         for name in FIELDS}))
            for row, python in zip(bundles["seven"], pythons, strict=True):
                row.runs.append(bundle(entries, tmp, logs, python))
            for row, python in zip(bundles["eight"], pythons, strict=True):
                row.runs.append(bundle({**entries, "postgres-standby": ("postgres",
                                                                        paths["postgres"])},
                                       tmp, logs, python))
            print(f"  bundle of seven {bundles['seven'][1].runs[-1].mib():.1f} MiB, of eight "
                  f"{bundles['eight'][1].runs[-1].mib():.1f} MiB (wheel)", file=sys.stderr,
                  flush=True)
        report = render(rows, bundles, base_sum, interp, import_steps(wheel_python, tmp), args,
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
