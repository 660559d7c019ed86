"""Throughput benchmark of the Web Vitals receiver (`saasmon webvitals`).

Not a test: it starts the exporter pinned to CPU 0 (`taskset -c 0`), pins itself to CPU 1
and drives POST /beacon over keep-alive connections, then writes a Markdown report
(bench/WEBVITALS_RESULTS.md).

Runs, one after another against the same exporter process:
1. main: one metric report per request (the worst case for the receiver), until
   --max-beacons or --duration, whichever comes first. RSS is sampled along the way.
2. batch: five reports per request, as a page flushing its queue on `visibilitychange`.
3. aiohttp: the same single-report load from an aiohttp ClientSession, briefly, to show
   why the default client is a raw asyncio protocol: aiohttp's client saturates its own
   core before the exporter does.
4. fill to caps: batches of 20 reports until FILL_REPORTS have been sent over all runs, so
   the dedupe memory has been full and retired a full generation and the client map is at
   its cap whatever the machine's speed: the peak RSS is then the receiver's steady-state
   worst case, checked against the 64 MiB target (issue 16).

Beside wall-clock throughput it reports the exporter's own CPU time per beacon, whose
inverse (beacons per CPU-second) is the one-core capacity: the machine is shared, so wall
numbers move with whatever else runs, CPU-seconds much less.
At the end the exporter's counters must equal what was sent, with nothing rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devstack.process import Process  # noqa: E402
from devstack.servers import free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Reports over all runs before the peak RSS counts: twice the dedupe cap (100,000 ids), so
# a full cache has retired a full generation at least once.
FILL_REPORTS = 200_000
RSS_TARGET_MIB = 64.0  # issue 16 target 5: peak RSS at the benchmark load
ORIGIN = "https://app.example.com"
NAMES = ("LCP", "FCP", "TTFB", "CLS", "INP", "FID")
# 20 configured routes; pages hit them and some unknown paths (-> route "other").
ROUTES = [{"name": f"/section{i}/:id", "glob": f"/section{i}/*"} for i in range(20)]
PATHS = [f"/section{i}/{j}" for i in range(20) for j in range(3)] + [
    f"/unknown/{j}" for j in range(10)]
# Browser addresses as a reverse proxy forwards them: more than rate_limit.max_clients
# (10,000 by default), so the per-client bucket map fills and must stay at its cap.
CLIENTS = [f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(25_000)]
# What Chrome sends with navigator.sendBeacon(url, string), as a proxy passes it on.
BROWSER_HEADERS = (
    "Connection: keep-alive\r\n"
    'sec-ch-ua-platform: "Linux"\r\n'
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36\r\n"
    'sec-ch-ua: "Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"\r\n'
    "sec-ch-ua-mobile: ?0\r\n"
    "Accept: */*\r\n"
    "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n"
    "Referer: https://app.example.com/\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
)


def exporter_config() -> dict[str, object]:
    # Limits far above the load: the benchmark measures the receiver, not the limiter.
    # Dedupe keeps its default size, so memory must plateau once it is full.
    return {
        "allowed_origins": [ORIGIN],
        "routes": ROUTES,
        "trusted_proxies": ["127.0.0.1"],  # the client plays the reverse proxy
        "rate_limit": {"per_client_rate": 1e6, "per_client_burst": 1_000_000,
                       "global_rate": 1e7, "global_burst": 10_000_000},
    }


# -- the exporter process -------------------------------------------------------------
@dataclass
class Proc:
    pid: int

    def status(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def rss(self) -> int:
        return self.status("VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


def fetch(port: int) -> tuple[str, float]:
    """The /metrics text and the seconds the exporter took to serve it."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return text, time.perf_counter() - started


def scrape(port: int) -> dict[str, float]:
    text, _ = fetch(port)
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
                out[key] = sample.value
    return out


# -- load generation ------------------------------------------------------------------
class Payloads:
    """Unique, varied beacons: every id is new, so nothing is deduplicated."""

    def __init__(self, run: str, batch: int, browser: bool = True, seed: int = 7) -> None:
        self.run, self.batch, self.browser = run, batch, browser
        self.rand = random.Random(seed)
        self.counter = 0

    def report(self) -> str:
        self.counter += 1
        name = NAMES[self.counter % len(NAMES)]
        value = self.rand.random() * (0.5 if name == "CLS" else 6000.0)
        path = PATHS[self.counter % len(PATHS)]
        return (f'{{"name":"{name}","value":{value:.4f},"id":"v4-{self.run}-{self.counter}",'
                f'"rating":"good","delta":{value:.4f},"navigationType":"navigate",'
                f'"route":"{path}"}}')

    def body(self) -> bytes:
        reports = [self.report() for _ in range(self.batch)]
        return (reports[0] if self.batch == 1 else "[" + ",".join(reports) + "]").encode()

    def request(self, port: int) -> bytes:
        body = self.body()
        if not self.browser:  # the fewest headers the endpoint needs, straight from a client
            return (f"POST /beacon HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {ORIGIN}\r\n"
                    f"Content-Type: text/plain;charset=UTF-8\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        client = CLIENTS[self.counter % len(CLIENTS)]
        head = (f"POST /beacon HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{BROWSER_HEADERS}"
                f"Origin: {ORIGIN}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                f"X-Forwarded-For: {client}\r\nX-Forwarded-Proto: https\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body


@dataclass
class Load:
    """Shared by all connections of one run."""

    port: int
    payloads: Payloads
    stop_at: float
    max_requests: int
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> bool:
        """Whether another request may start."""
        if self.sent >= self.max_requests or time.perf_counter() >= self.stop_at:
            return False
        self.sent += 1
        return True


class KeepAlive(asyncio.Protocol):
    """One keep-alive connection, one request in flight: like a browser's beacon queue,
    and cheap enough on the client side that the exporter, not the client, saturates."""

    def __init__(self, load: Load, finished: asyncio.Future[None]) -> None:
        self.load, self.finished = load, finished
        self.buffer = b""
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if not self.load.take():
            self.transport.close()
            return
        request = self.load.payloads.request(self.load.port)
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                key, _, value = line.partition(":")
                if key.lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            status = int(head.split(" ", 2)[1])
            self.load.statuses[status] = self.load.statuses.get(status, 0) + 1
            self.load.latencies.append(time.perf_counter() - self.started)
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


async def run_raw(load: Load, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    waits: list[asyncio.Future[None]] = []
    for _ in range(concurrency):
        finished: asyncio.Future[None] = loop.create_future()
        waits.append(finished)
        await loop.create_connection(lambda f=finished: KeepAlive(load, f),  # type: ignore[misc]
                                     "127.0.0.1", load.port)
    await asyncio.gather(*waits)


async def run_aiohttp(load: Load, concurrency: int) -> None:
    url = f"http://127.0.0.1:{load.port}/beacon"
    headers = {"Origin": ORIGIN, "Content-Type": "text/plain;charset=UTF-8"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while load.take():
            body = load.payloads.body()
            forwarded = {"X-Forwarded-For": CLIENTS[load.sent % len(CLIENTS)]}
            started = time.perf_counter()
            async with session.post(url, data=body, headers={**headers, **forwarded}) as response:
                await response.read()
            load.statuses[response.status] = load.statuses.get(response.status, 0) + 1
            load.latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


@dataclass
class Result:
    label: str
    client: str
    batch: int
    requests: int
    seconds: float
    cpu_seconds: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    rss_before: int
    rss_after: int
    rss_samples: list[tuple[int, int]]

    @property
    def reports(self) -> int:
        return self.requests * self.batch

    @property
    def rate(self) -> float:
        return self.reports / self.seconds

    @property
    def capacity(self) -> float:
        """Reports per exporter CPU-second: the one-core ceiling."""
        return self.reports / self.cpu_seconds if self.cpu_seconds else 0.0


def percentile(values: array[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def run(label: str, proc: Proc, port: int, *, client: str, batch: int, duration: float,
        max_reports: int, concurrency: int, browser: bool = True,
        sample_every: float = 5.0) -> Result:
    payloads = Payloads(f"{label}{time.time_ns()}", batch, browser)
    load = Load(port, payloads, time.perf_counter() + duration, max_reports // batch)
    samples: list[tuple[int, int]] = []

    async def sampler() -> None:
        while True:
            await asyncio.sleep(sample_every)
            samples.append((load.sent * batch, proc.rss()))

    async def main() -> float:
        task = asyncio.create_task(sampler())
        started = time.perf_counter()
        await (run_raw(load, concurrency) if client == "raw" else run_aiohttp(load, concurrency))
        elapsed = time.perf_counter() - started
        task.cancel()
        return elapsed

    rss_before, cpu_before = proc.rss(), proc.cpu_seconds()
    elapsed = asyncio.run(main())
    cpu = proc.cpu_seconds() - cpu_before
    done = sum(load.statuses.values())
    return Result(label, client, batch, done, elapsed, cpu, dict(load.statuses),
                  percentile(load.latencies, 0.50), percentile(load.latencies, 0.99),
                  rss_before, proc.rss(), samples)


# -- report ---------------------------------------------------------------------------
def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f}"


def git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(results: list[Result], checks: list[str], final: dict[str, float], peak: int,
           args: argparse.Namespace) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Web Vitals receiver benchmark", "",
        f"Generated {now} by `bench/webvitals_bench.py` (saasmon git {git_rev()}). Reproduce:", "",
        "```sh",
        f".venv/bin/python bench/webvitals_bench.py --duration {args.duration:g} "
        f"--max-beacons {args.max_beacons} --concurrency {args.concurrency} "
        "--out bench/WEBVITALS_RESULTS.md",
        "```", "",
        "## Machine", "",
        f"- nproc: `{os.cpu_count()}`; kernel `{platform.release()}`; python "
        f"`{platform.python_version()}`; aiohttp `{aiohttp.__version__}`",
        f"- loadavg at end: `{Path('/proc/loadavg').read_text().split(' ', 3)[:3]}` "
        "(the machine is shared with other jobs: wall-clock rates move with them)", "",
        "## Method", "",
        "- `saasmon webvitals` runs under `taskset -c 0`; the load client pins itself to CPU 1.",
        f"- {args.concurrency} keep-alive connections, one request in flight each, as from a "
        "reverse proxy: Chrome's sendBeacon headers plus `X-Forwarded-For` from 25,000 client "
        "addresses (the exporter trusts 127.0.0.1 as proxy). Bodies are "
        "`text/plain;charset=UTF-8` JSON as `navigator.sendBeacon` sends them, every report "
        "with a new id (no dedupe hits), six metric names, 70 page paths over 20 configured "
        "globs plus unknown paths (route `other`). Rate limits are set far above the load; "
        "dedupe (100,000 ids) and the per-client bucket map (10,000 clients) keep their "
        "default caps, so both fill and then must stay at their caps.",
        "- beacons/s = metric reports accepted per wall-clock second; capacity = reports per "
        "second of exporter CPU time (utime+stime from /proc): the one-core ceiling, "
        "independent of other load. Latency is per request, measured by the client.",
        "- `minimal headers`: the same receiver, sent only Host, Origin, Content-Type and "
        "Content-Length without a proxy (what a bare aiohttp client sends). `batch`: five "
        "reports per request, as the browser snippet sends a page's queue.",
        "- Runs follow each other; other jobs on the machine vary between them, so compare "
        "rows by capacity (CPU-seconds) rather than by wall-clock rate.",
        "- `floor: no-op handler`: the same process and requests as `main`, with the beacon "
        "handler replaced by one that only reads the body and answers 204: the cost of "
        "aiohttp and the shared runtime, the ceiling for any handler on this machine.",
        "- The `raw` client is an asyncio protocol writing pre-formatted HTTP/1.1; the "
        "`aiohttp` row uses aiohttp's ClientSession, which runs out of CPU on its own core "
        "first (see its exporter CPU share).",
        f"- `fill to caps` (only when the runs before sent fewer): batches of 20 reports "
        f"until {FILL_REPORTS:,} reports over all runs, so the dedupe memory has been full "
        "and the client map at its cap on a slow machine too; the peak RSS (VmHWM) is then "
        f"checked against {RSS_TARGET_MIB:g} MiB.", "",
        "## Results", "",
        "| run | client | reports/request | requests | seconds | beacons/s | exporter CPU % "
        "| capacity beacons/CPU-s | p50 ms | p99 ms | RSS before MiB | RSS after MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.client} | {r.batch} | {r.requests:,} | {r.seconds:.1f} "
            f"| {r.rate:,.0f} | {100 * r.cpu_seconds / r.seconds:.0f} | {r.capacity:,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {mib(r.rss_before)} | {mib(r.rss_after)} |")
    main = results[0]
    lines += ["", f"Peak RSS (VmHWM) of the exporter over all runs: {mib(peak)} MiB.", "",
              "### RSS during the main run", "",
              "| beacons sent | RSS MiB |", "|---|---|"]
    lines += [f"| {sent:,} | {mib(rss)} |" for sent, rss in main.rss_samples]
    lines += ["", "### Exporter counters after all runs", ""]
    lines += [f"- `{k}` = {v:,.0f}" for k, v in sorted(final.items())]
    lines += ["", "### Checks", ""] + [f"- {c}" for c in checks] + [""]
    return "\n".join(lines)


# The same process with the beacon handler reduced to "read the body, answer 204": what
# aiohttp and the shared runtime cost per request before the receiver does any work.
FLOOR = """
import asyncio, sys
from aiohttp import web
from saasmon.runtime.config import load_config
from saasmon.runtime.logs import setup_logging
from saasmon.runtime.server import ExporterServer, serve
from saasmon.runtime.webconfig import load_web_config
from saasmon.webvitals.exporter import WebVitalsExporter, WebVitalsInstance

async def beacon(self, request):
    await request.read()
    return web.Response(status=204)

WebVitalsInstance.beacon = beacon
setup_logging("webvitals", "warning")
kind = WebVitalsExporter()
config = load_config(kind.config_model, sys.argv[1], kind.name)
server = ExporterServer(kind, sys.argv[1], "/metrics", load_web_config(None))
asyncio.run(serve([(server, config, sys.argv[2])]))
"""


def start(argv: list[str], port: int, log: Path) -> Process:
    # taskset execs the interpreter: the pid measured is the server's own.
    process = Process(log.stem, ["taskset", "-c", "0", sys.executable, *argv], log,
                      cwd=REPO).start()
    process.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30)
    return process


def stop(process: Process) -> None:
    process.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="main run limit, seconds")
    ap.add_argument("--max-beacons", type=int, default=1_000_000, help="main run limit")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--batch-duration", type=float, default=15.0,
                    help="length of the minimal-headers and batch runs, seconds")
    ap.add_argument("--aiohttp-duration", type=float, default=10.0)
    ap.add_argument("--fill-duration", type=float, default=600.0,
                    help="time limit of the fill-to-caps run, seconds")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("needs two CPUs: exporter on CPU 0, load on CPU 1", file=sys.stderr)
        return 1
    os.sched_setaffinity(0, {1})
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="webvitals-bench-") as tmp:
        config = Path(tmp) / "webvitals.yml"
        config.write_text(yaml.safe_dump(exporter_config()))
        address = f"127.0.0.1:{port}"
        popen = start(["-m", "saasmon", "webvitals", "--config.file", str(config),
                       "--web.listen-address", address], port, Path(tmp) / "exporter.log")
        try:
            proc = Proc(popen.pid)
            common = {"concurrency": args.concurrency}
            run("warm-up", proc, port, client="raw", batch=1, duration=3, max_reports=10**9,
                **common)
            before = scrape(port)
            results = [
                run("main", proc, port, client="raw", batch=1, duration=args.duration,
                    max_reports=args.max_beacons, **common),
                run("minimal headers", proc, port, client="raw", batch=1, browser=False,
                    duration=args.batch_duration, max_reports=10**9, **common),
                run("batch", proc, port, client="raw", batch=5, duration=args.batch_duration,
                    max_reports=10**9, **common),
                run("aiohttp", proc, port, client="aiohttp", batch=1,
                    duration=args.aiohttp_duration, max_reports=10**9, **common),
            ]
            missing = FILL_REPORTS - sum(r.reports for r in results)
            if missing > 0:
                # Whole batches: round up so that at least FILL_REPORTS are sent.
                results.append(run("fill to caps", proc, port, client="raw", batch=20,
                                   duration=args.fill_duration,
                                   max_reports=missing + -missing % 20, **common))
            # The histograms of every run: 21 routes x 6 metrics x 3 ratings.
            scrape_ms = sorted(fetch(port)[1] * 1000 for _ in range(3))[1]
            final = scrape(port)
            peak = proc.status("VmHWM")
        finally:
            stop(popen)
        floor_port = free_port()
        floor = start(["-c", FLOOR, str(config), f"127.0.0.1:{floor_port}"], floor_port,
                      Path(tmp) / "floor.log")
        try:
            run("warm-up", Proc(floor.pid), floor_port, client="raw", batch=1, duration=3,
                max_reports=10**9, **common)
            baseline = run("floor: no-op handler", Proc(floor.pid), floor_port, client="raw",
                           batch=1, duration=args.batch_duration, max_reports=10**9, **common)
        finally:
            stop(floor)
    sent = sum(r.reports for r in results)
    accepted = final["webvitals_beacons_accepted_total"] - before["webvitals_beacons_accepted_total"]
    rejected = sum(v for k, v in final.items() if k.startswith("webvitals_beacons_rejected_total"))
    dedupe, clients = final["webvitals_dedupe_entries"], final["webvitals_rate_limit_clients"]
    counts = sum(v for k, v in final.items() if k.split(",")[0].endswith("_count"))
    bad = {s: n for r in results for s, n in r.statuses.items() if s != 204}
    checks = [
        f"accepted_total grew by {accepted:,.0f} for {sent:,} reports sent: "
        f"{'OK' if accepted == sent else 'MISMATCH'}",
        f"rejected_total over all reasons: {rejected:,.0f} "
        f"({'OK' if rejected == 0 else 'UNEXPECTED'})",
        f"non-204 responses: {bad or 'none'}",
        f"histogram _count sum {counts:,.0f} equals accepted_total "
        f"{final['webvitals_beacons_accepted_total']:,.0f}: "
        f"{'OK' if counts == final['webvitals_beacons_accepted_total'] else 'MISMATCH'}",
        f"scrape of the final state ({sum(1 for k in final if k.split(',')[0].endswith('_count'))} "
        f"histogram series): median of 3 took {scrape_ms:.1f} ms",
        f"memory caps held: dedupe {dedupe:,.0f} <= 100,000, rate-limit clients "
        f"{clients:,.0f} <= 10,000: {'OK' if dedupe <= 100_000 and clients <= 10_000 else 'NO'}",
        f"peak RSS {mib(peak)} MiB after {sent:,} reports (fill target {FILL_REPORTS:,}), "
        f"dedupe and client map at their caps: target <= {RSS_TARGET_MIB:g} MiB: "
        f"{'PASS' if peak <= RSS_TARGET_MIB * 2**20 else 'FAIL'}"
        f"{'' if sent >= FILL_REPORTS else ' (NOT at caps: fewer reports than the fill target)'}",
        f"main run: {results[0].rate:,.0f} beacons/s wall, {results[0].capacity:,.0f} per "
        f"exporter CPU-second; target 5,000/s: "
        f"{'met' if min(results[0].rate, results[0].capacity) >= 5000 else 'NOT met'}",
    ]
    final = {k: v for k, v in final.items()
             if k.startswith(("webvitals_beacons", "webvitals_dedupe", "webvitals_rate_limit"))}
    results.append(baseline)
    text = report(results, checks, final, peak, args)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
