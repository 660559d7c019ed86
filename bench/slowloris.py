"""Slow-client (slowloris) benchmark: do half-sent requests hold an exporter's connections?

Not a test: it starts one private Redis and `saasmon redis` (the exporter that needs nothing
but a Redis) in each variant below, opens --connections TCP connections to each that send
a request line and Host header at once and then one byte of a never-ending header every
--byte-seconds, and follows them for a fixed window. The connections come from --attackers
loopback addresses (127.0.0.2, 127.0.0.3, ...) in turn, as from several hosts; with
--reconnect-seconds S, a connection the server closed is opened again S seconds later, as a
persistent attacker would. Meanwhile a normal scrape of /metrics from 127.0.0.1 (no auth
configured, a new connection each time, as Prometheus after a reconnect) runs every
--probe-seconds. It writes a Markdown report (bench/SLOWLORIS.md).

Variants, attacked at the same time (each its own process and port; the attack itself costs
a few hundred bytes a second, so they do not disturb each other):
* `--web.header-timeout N` (default 10),
* the default flags (header timeout 60 s, 256 connections at most, 64 per address),
* for each --old-rev REV, the exporter as of REV (e.g. cad25ed~1, before any slow-client
  fix), run from a temporary `git worktree` with `python -P -m exporters` and PYTHONPATH
  set to it, so the installed (new) package cannot be picked up; the worktree is removed
  after. Revisions from before the package was named saasmon only: their source folder
  `exporters/` is the module name.

Connections "still open at t" count those the server had not closed t seconds after the
attack began, from each connection's close time, so the figures do not depend on when a
sampler happened to wake up. Connections the server refuses at once (503 past the cap) are
closed within milliseconds and never count as open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from bench import (
    REPO,
    ExporterProcess,
    ExporterSpec,
    ProcessRegistry,
    error_lines,
    percentile,
    saasmon_argv,
    sigterm_as_interrupt,
)
from devstack.servers import RedisServer, free_port

# Sent at once: a real request start, so the server has a request in progress to wait for.
HEAD = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris-bench\r\n"
# Dripped a byte at a time; long enough never to end within any sensible window.
DRIP = b"X-Slowloris: " + b"a" * 65536
PROBE_TIMEOUT_SECONDS = 10.0
BASELINE_PROBES = 5
DEFAULT_MAX_CONNECTIONS = 256  # --web.max-connections of every exporter but webvitals
SCRAPER = "127.0.0.1"  # the probe's address; attackers use 127.0.0.2 and up
NEWEST_FLAG = "--web.body-timeout"  # what an old tree's --help must lack
FD_SAMPLE_SECONDS = 0.05


@dataclass(frozen=True)
class Variant:
    label: str
    flags: list[str]
    tree: Path | None = None  # run from this source tree instead of the installed package

    def spec(self, config: Path) -> ExporterSpec:
        port = free_port()
        if self.tree is None:
            argv, env = saasmon_argv(), {}
        else:
            argv, env = [sys.executable, "-P", "-m", "exporters"], {"PYTHONPATH": str(self.tree)}
        return ExporterSpec(
            name=self.label, ours=True,
            argv=[*argv, "redis", "--config.file", str(config),
                  "--web.listen-address", f"127.0.0.1:{port}", *self.flags],
            env=env, port=port)


class SlowClient(asyncio.Protocol):
    """One attacking connection: remembers when it opened, when it closed and what it got."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.opened_at = 0.0
        self.closed_at: float | None = None
        self.closed = asyncio.Event()
        self.reply = b""
        self.ours = False  # closed by us at the end of the window, not by the server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.opened_at = time.monotonic()
        transport.write(HEAD)

    def data_received(self, data: bytes) -> None:
        self.reply = (self.reply + data)[:64]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_at = time.monotonic()
        self.closed.set()


@dataclass(frozen=True)
class Probe:
    at: float  # seconds since the attack began
    status: int  # 0: no HTTP answer
    error: str
    ms: float


@dataclass
class Outcome:
    variant: Variant
    clients: list[SlowClient] = field(default_factory=list)
    connect_errors: int = 0
    opening_seconds: float = 0.0
    started: float = 0.0
    baseline_ms: list[float] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    fds: dict[int, int] = field(default_factory=dict)  # checkpoint -> exporter's open FDs
    idle_fds: int = -1  # before the attack
    peak_fds: int = -1  # the most seen during it (sampled every FD_SAMPLE_SECONDS)
    first_wave: int = 0  # connections opened at the start (the rest are reconnections)
    log_errors: list[str] = field(default_factory=list)

    def open_at(self, seconds: float) -> int:
        limit = self.started + seconds
        return sum(1 for c in self.clients
                   if c.transport is not None and c.opened_at <= limit
                   and (c.closed_at is None or c.closed_at > limit))

    def closes(self) -> tuple[list[float], list[float]]:
        """Close times since the attack began: (refused with a 503, closed by the server
        without an answer: timed out, or gave its slot to a newer connection)."""
        refused: list[float] = []
        closed: list[float] = []
        for c in self.clients:
            if c.closed_at is None or c.ours:
                continue
            busy = c.reply.startswith(b"HTTP/1.1 503")
            (refused if busy else closed).append(c.closed_at - self.started)
        return refused, closed

    def answers(self) -> dict[str, int]:
        """What the attacking connections got before the close, by first line."""
        out: dict[str, int] = {}
        for c in self.clients:
            if c.closed_at is None or c.ours:
                continue
            key = c.reply.split(b"\r\n", 1)[0].decode("latin-1") or "nothing (closed)"
            out[key] = out.get(key, 0) + 1
        return out


# ---------------------------------------------------------------------------
# Measuring


async def probe(session: aiohttp.ClientSession, url: str, started: float) -> Probe:
    began = time.monotonic()
    status, error = 0, ""
    try:
        async with session.get(url) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = type(exc).__name__
    return Probe(began - started, status, error, (time.monotonic() - began) * 1000)


async def wait_ready(session: aiohttp.ClientSession, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"http://127.0.0.1:{port}/-/ready") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"exporter on port {port} not ready within {timeout:.0f}s")


async def pause(client: SlowClient, seconds: float) -> None:
    """Sleep, waking early when the server closes the connection."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.closed.wait(), timeout=max(0.0, seconds))


async def drip(client: SlowClient, offset: float, every: float, stop_at: float) -> None:
    # Offsets spread the writes over the period, as independent attackers would.
    await pause(client, offset)
    for i in range(len(DRIP)):
        if client.closed_at is not None or client.transport is None or time.monotonic() >= stop_at:
            return
        client.transport.write(DRIP[i : i + 1])
        await pause(client, every)


async def keep_attacking(outcome: Outcome, client: SlowClient, source: str, port: int,
                         offset: float, args: argparse.Namespace, stop_at: float) -> None:
    """Drip on the connection; with --reconnect-seconds, open it again each time the
    server closes it, until the window ends."""
    loop = asyncio.get_running_loop()
    while True:
        await drip(client, offset, args.byte_seconds, stop_at)
        if not args.reconnect_seconds or client.closed_at is None:
            return
        await asyncio.sleep(args.reconnect_seconds)
        if time.monotonic() >= stop_at:
            return
        try:
            _, client = await loop.create_connection(SlowClient, "127.0.0.1", port,
                                                     local_addr=(source, 0))
        except OSError:
            outcome.connect_errors += 1
            return
        outcome.clients.append(client)
        offset = 0.0


def attacker_address(index: int, attackers: int) -> str:
    return f"127.0.0.{2 + index % attackers}"


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


async def attack(proc: ExporterProcess, outcome: Outcome, args: argparse.Namespace,
                 ready: asyncio.Event, go: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    port = proc.spec.port
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
    # force_close: every probe on a new connection, which is what needs a free slot.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await wait_ready(session, port)
        for _ in range(BASELINE_PROBES):
            outcome.baseline_ms.append((await probe(session, proc.spec.url, 0.0)).ms)
        outcome.idle_fds = open_fds(proc.pid)
        ready.set()
        await go.wait()  # every variant starts its attack at the same moment
        outcome.started = time.monotonic()
        window = max(args.checkpoints) + 2.0
        stop_at = outcome.started + window

        async def sample_fds() -> None:
            while time.monotonic() < stop_at:
                outcome.peak_fds = max(outcome.peak_fds, open_fds(proc.pid))
                await asyncio.sleep(FD_SAMPLE_SECONDS)

        sampler = asyncio.create_task(sample_fds())
        first: list[tuple[SlowClient, str]] = []
        for i in range(args.connections):
            source = attacker_address(i, args.attackers)
            try:
                _, client = await loop.create_connection(SlowClient, "127.0.0.1", port,
                                                         local_addr=(source, 0))
            except OSError:
                outcome.connect_errors += 1
                continue
            outcome.clients.append(client)
            first.append((client, source))
        outcome.opening_seconds = time.monotonic() - outcome.started
        outcome.first_wave = len(first)
        drips = [asyncio.create_task(keep_attacking(
                     outcome, c, source, port, i * args.byte_seconds / len(first), args, stop_at))
                 for i, (c, source) in enumerate(first)]

        async def checkpoints() -> None:
            for mark in sorted(args.checkpoints):
                await asyncio.sleep(max(0.0, outcome.started + mark - time.monotonic()))
                outcome.fds[mark] = open_fds(proc.pid)

        marks = asyncio.create_task(checkpoints())
        next_probe = outcome.started + 1.0
        while next_probe < stop_at:
            await asyncio.sleep(max(0.0, next_probe - time.monotonic()))
            outcome.probes.append(await probe(session, proc.spec.url, outcome.started))
            next_probe = max(next_probe + args.probe_seconds, time.monotonic())
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        await marks
        await sampler
        for task in drips:
            task.cancel()
        await asyncio.gather(*drips, return_exceptions=True)
        for client in outcome.clients:
            if client.transport is not None and client.closed_at is None:
                client.ours = True
                client.transport.close()


async def all_set(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


async def run_all(registry: ProcessRegistry, variants: list[Variant], config: Path,
                  args: argparse.Namespace) -> list[Outcome]:
    outcomes = [Outcome(v) for v in variants]
    go = asyncio.Event()
    readies = [asyncio.Event() for _ in variants]
    async with contextlib.AsyncExitStack() as stack:
        procs = [await stack.enter_async_context(registry.running(v.spec(config)))
                 for v in variants]
        tasks = [asyncio.create_task(attack(p, o, args, r, go))
                 for p, o, r in zip(procs, outcomes, readies, strict=True)]
        # All exporters ready and baselined before anyone attacks; a task that failed on
        # the way ends the wait too, and the gather below raises its error.
        all_ready = asyncio.create_task(all_set(readies))
        await asyncio.wait([all_ready, *tasks], timeout=60,
                           return_when=asyncio.FIRST_COMPLETED)
        all_ready.cancel()
        window = max(args.checkpoints) + 2.0
        print(f"attacking {len(variants)} exporter(s) with {args.connections} connections "
              f"each for {window:.0f}s", flush=True)
        go.set()
        await asyncio.gather(*tasks)
    for proc, outcome in zip(procs, outcomes, strict=True):
        outcome.log_errors = error_lines(proc.log_path)
    return outcomes


# ---------------------------------------------------------------------------
# The tree before the fix


def git(*argv: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.strip()


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="old-saasmon-"))
    path = base / "tree"
    git("worktree", "add", "--detach", str(path), rev)
    try:
        yield path
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            git("worktree", "remove", "--force", str(path))
        shutil.rmtree(base, ignore_errors=True)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            git("worktree", "prune")


def check_old_tree(tree: Path) -> None:
    """The old code must be what runs: its CLI does not know the newest flag."""
    out = subprocess.run([sys.executable, "-P", "-m", "exporters", "redis", "--help"],
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True, timeout=60, check=True)
    if NEWEST_FLAG in out.stdout:
        raise RuntimeError(f"{tree} already has {NEWEST_FLAG}: not the old code")


# ---------------------------------------------------------------------------
# Report


def spans(probes: list[Probe]) -> str:
    """Consecutive probes with the same answer, as `from-to s: answer (n)`."""
    parts: list[str] = []
    run: list[Probe] = []

    def answer(p: Probe) -> str:
        return str(p.status) if p.status else p.error or "no answer"

    def flush() -> None:
        if run:
            parts.append(f"{run[0].at:.0f}-{run[-1].at:.0f} s: {answer(run[0])} ({len(run)})")

    for p in probes:
        if run and answer(p) != answer(run[-1]):
            flush()
            run = []
        run.append(p)
    flush()
    return "; ".join(parts)


def seconds_range(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{len(values)} at {min(values):.1f}-{max(values):.1f} s"


def reading(outcomes: list[Outcome], marks: list[int], args: argparse.Namespace) -> list[str]:
    """One line per variant in words, then what the numbers mean together."""
    lines = []
    for o in outcomes:
        refused, closed = o.closes()
        text = (f"- {o.variant.label}: {o.open_at(o.opening_seconds + 0.5)} connections "
                "open just after the burst; "
                f"the exporter's FDs peaked {o.peak_fds - o.idle_fds} above idle "
                f"({o.idle_fds} → {o.peak_fds})")
        if refused:
            text += f"; {len(refused)} refused with a 503"
        text += (f"; the server closed {len(closed)} without an answer at "
                 f"{min(closed):.1f}-{max(closed):.1f} s" if closed
                 else "; the server closed none without an answer")
        after = [m for m in marks if any(m < t <= m + 1 for t in closed)]
        if after and not args.reconnect_seconds:
            text += (f" (so some still count as open at {', '.join(f'{m} s' for m in after)}, "
                     "a moment before they go)")
        failed = [p for p in o.probes if p.status != 200]
        if failed:
            answers = sorted({str(p.status) if p.status else p.error for p in failed})
            oks = [p.at for p in o.probes if p.status == 200 and p.at > failed[-1].at]
            text += (f"; {len(failed)} normal scrapes got {', '.join(answers)} "
                     f"(the last at {failed[-1].at:.0f} s)"
                     + (f", 200 from {oks[0]:.0f} s on" if oks else ""))
        else:
            text += "; every normal scrape succeeded"
        lines.append(text + ".")
    lines += [
        "",
        "Each held connection costs the exporter a descriptor: without a cap enough of them "
        f"(the soft limit here is {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}) exhaust "
        "the process. A cap alone protects the process, not scrape availability: while slow "
        "clients fill it a scrape on a new connection gets a 503 until they time out, and an "
        "attacker that reconnects keeps it full. With connection slots (this tree) a "
        "connection that finds no free slot takes the slot of the connection that has waited "
        "longest on its client (half-sent headers, idle keep-alive, a body still arriving); "
        "a scrape sends its whole request at once and is answered before the connections "
        "that follow could push it out. One client address holds at most "
        "--web.max-connections-per-address slots (64 of 256 by default); a 503 is left for "
        "when every slot owes an answer. Connections are counted when made, so a burst no "
        f"longer leaves more open than the cap ({DEFAULT_MAX_CONNECTIONS}): the old code "
        "counted a connection only once aiohttp had registered it, after the event-loop pass "
        "that accepted it. The FD peak is a moment's: during a burst it also holds sockets "
        "the event loop has accepted (up to 100 per pass) but not yet handed to the server, "
        "and displaced ones it closes on its next pass.",
    ]
    if args.reconnect_seconds:
        reconnections = sum(len(o.clients) - o.first_wave for o in outcomes)
        window = max(marks) + 2.0
        lines += [
            "",
            "Scrape latencies in this run are measured by the process that also drives the "
            f"attack: {reconnections} reconnections in {window:.0f} s over all variants, on "
            "the same cores as the exporters. They mostly show that process's own delay: "
            "compare the variants with one another, not with the baseline taken before the "
            "attack.",
        ]
    return lines


def render(outcomes: list[Outcome], args: argparse.Namespace, command: str,
           started: dt.datetime, old_revs: list[str]) -> str:
    marks = sorted(args.checkpoints)
    window = max(marks) + 2.0
    out = [
        "# Slow clients (slowloris) against saasmon",
        "",
        f"Generated {started:%Y-%m-%d %H:%M UTC} by `bench/slowloris.py` "
        f"(saasmon git {git('rev-parse', '--short', 'HEAD')}). Reproduce with:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Machine: nproc `{os.cpu_count()}`, kernel `{platform.release()}`, python "
        f"`{platform.python_version()}`, aiohttp `{aiohttp.__version__}`, loadavg at end "
        f"`{' '.join(Path('/proc/loadavg').read_text().split()[:3])}`.",
        "",
        "## Method",
        "",
        f"- `saasmon redis` against a private Redis, all on loopback. {args.connections} TCP "
        "connections per exporter, opened one after another at the start, from "
        f"{args.attackers} attacker address(es) in turn ({attacker_address(0, args.attackers)}"
        + (f" to {attacker_address(args.attackers - 1, args.attackers)}"
           if args.attackers > 1 else "")
        + "); each sends "
        f"`GET /metrics HTTP/1.1`, `Host` and `User-Agent` at once, then one byte of an endless "
        f"`X-Slowloris: aaaa...` header every {args.byte_seconds:g} s (offsets spread over the "
        "period). "
        + (f"A connection the server closes is opened again {args.reconnect_seconds:g} s "
           "later (same address), for the whole window." if args.reconnect_seconds
           else "Closed connections are not reopened."),
        "- *Still open at t*: connections open (as the client sees them) t s after the attack "
        "began, from each connection's open and close times; a connection the server has not "
        "accepted yet (in the listen backlog) counts as open. *FDs*: entries in /proc/PID/fd "
        f"of the exporter at that moment; the peak is sampled every {FD_SAMPLE_SECONDS:g} s "
        "(the exporter's own FDs, Redis connection included, are the idle count).",
        f"- Scrape during the attack: `GET /metrics` from {SCRAPER}, without credentials "
        "(no auth configured), "
        f"on a new connection every {args.probe_seconds:g} s from 1 s on, "
        f"{PROBE_TIMEOUT_SECONDS:g} s timeout. Baseline: {BASELINE_PROBES} such scrapes just "
        "before the attack.",
        f"- The variants run at the same time, each its own process and port, for {window:.0f} s.",
    ]
    for rev in old_revs:
        out.append(f"- *as of {rev}*: that revision, run from a temporary git worktree "
                   "(`python -P -m exporters` with PYTHONPATH set to it; its `--help` was "
                   f"checked to lack `{NEWEST_FLAG}`).")
    head = ["variant", *(f"open at {m} s" for m in marks), "exporter FDs idle → peak",
            "closed by the server without an answer", "refused (503)",
            *(f"FDs at {m} s" for m in (marks[0], marks[-1])),
            "scrapes OK during attack", "OK scrape p50 / max ms", "baseline p50 ms"]
    out += ["", "## Results", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for o in outcomes:
        refused, later = o.closes()
        ok = [p.ms for p in o.probes if p.status == 200]
        latency = f"{percentile(ok, 50):.1f} / {max(ok):.1f}" if ok else "n/a"
        base = f"{percentile(o.baseline_ms, 50):.1f}" if o.baseline_ms else "n/a"
        flags = " ".join(o.variant.flags) or "default flags"
        label = o.variant.label if o.variant.tree is not None else f"`{flags}`"
        cells = [label, *(str(o.open_at(m)) for m in marks), f"{o.idle_fds} → {o.peak_fds}",
                 seconds_range(later),
                 str(len(refused)), *(str(o.fds.get(m, -1)) for m in (marks[0], marks[-1])),
                 f"{len(ok)} / {len(o.probes)}", latency, base]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## Reading", "", *reading(outcomes, marks, args), "", "## Details", ""]
    for o in outcomes:
        answers = ", ".join(f"{k!r}: {n}" for k, n in sorted(o.answers().items()))
        out += [f"### {o.variant.label}", "",
                f"- connections opened: {o.first_wave} in {o.opening_seconds:.2f} s, then "
                f"{len(o.clients) - o.first_wave} reconnections ({o.connect_errors} failed "
                "to connect)",
                f"- what the closed ones received first: {answers or 'none closed'}",
                "- exporter FDs at each mark: "
                + ", ".join(f"{m} s: {o.fds.get(m, -1)}" for m in marks),
                f"- scrapes during the attack (from-to: status (count)): {spans(o.probes)}"]
        if o.log_errors:
            out += [f"- log: `{line[:300]}`" for line in o.log_errors]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "SLOWLORIS.md")
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--byte-seconds", type=float, default=5.0,
                        help="seconds between two bytes of one connection")
    parser.add_argument("--checkpoints", type=lambda s: [int(x) for x in s.split(",")],
                        default=[15, 30, 60, 75], help="seconds, comma separated")
    parser.add_argument("--probe-seconds", type=float, default=2.5)
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="the --web.header-timeout of the first variant")
    parser.add_argument("--attackers", type=int, default=8,
                        help="loopback addresses the attack comes from (127.0.0.2 and up)")
    parser.add_argument("--reconnect-seconds", type=float, default=0.0,
                        help="reopen a connection the server closed after this long (0: never)")
    parser.add_argument("--old-rev", action="append", default=[],
                        help="also attack the exporter as of this git revision (repeatable)")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 5000 or max(args.checkpoints) > 600:
        parser.error("1 <= --connections <= 5000 and checkpoints <= 600 s keep it bounded")
    if not 1 <= args.attackers <= 250:
        parser.error("--attackers must be 1..250 (127.0.0.2 to 127.0.0.251)")
    if args.reconnect_seconds and args.reconnect_seconds < 0.1:
        parser.error("--reconnect-seconds below 0.1 would only measure a busy loop")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    command = ".venv/bin/python bench/slowloris.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="saasmon-slowloris-"))
    registry = ProcessRegistry(tmp)
    redis = RedisServer(tmp / "redis")
    config = tmp / "redis.yml"
    variants = [Variant(f"--web.header-timeout {args.header_timeout:g}",
                        ["--web.header-timeout", f"{args.header_timeout:g}"]),
                Variant("default flags", [])]
    old_revs: list[str] = []
    try:
        with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
            for rev in args.old_rev:
                tree = stack.enter_context(worktree(rev))
                # Registered after the worktree, so it runs first: no process outlives its tree.
                stack.callback(registry.stop_all)
                check_old_tree(tree)
                old_revs.append(f"{rev} = {git('rev-parse', '--short', rev)}")
                variants.append(Variant(f"as of {rev}", [], tree))
            redis.start()
            config.write_text(yaml.safe_dump({"targets": [{"name": "main", "url": redis.url}]}))
            outcomes = asyncio.run(run_all(registry, variants, config, args))
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        registry.stop_all()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report = render(outcomes, args, command, started, old_revs)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
