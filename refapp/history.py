"""A SYNTHETIC week of the reference app's raw request counters, for `make demo`.

Week-over-week panels and the traffic-baseline alert compare now with `offset 1w`; a demo
that started minutes ago has no last week. This module writes one, in OpenMetrics for
`promtool tsdb create-blocks-from openmetrics`: http_requests_total and
http_request_duration_seconds_{bucket,sum,count} with the label sets, bucket shares and
mean latencies the running app exports at the time of the snapshot, `job`/`instance` as
Prometheus scrapes it, and a made-up daily shape (busy afternoons, quiet nights, quieter
weekends) scaled so that the same time last week carries the app's current request rate.
None of it was measured.

Sample spacing: 15 s (the demo's scrape interval, so `rate(...[1m] offset 1w)` works as on
live data) from 6 h before to 6 h after "now minus one week", 5 min elsewhere (enough for
5-minute rate windows and for day/week views); that keeps promtool's input near 10^6 lines.
"""

from __future__ import annotations

import math
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

PROMTOOL = "/usr/bin/promtool"
WEEK = 7 * 86400.0
DENSE_STEP = 15.0
SPARSE_STEP = 300.0
DENSE_HALF_WIDTH = 6 * 3600.0
REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"
LabelSet = tuple[tuple[str, str], ...]


@dataclass
class Snapshot:
    """The app's request series at one scrape: counts per label set."""

    requests: dict[LabelSet, float] = field(default_factory=dict)
    # (method, route) labels -> le -> cumulative count; and their sums and counts.
    buckets: dict[LabelSet, dict[str, float]] = field(default_factory=dict)
    sums: dict[LabelSet, float] = field(default_factory=dict)
    counts: dict[LabelSet, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.requests.values())


def parse_snapshot(metrics_text: str) -> Snapshot:
    snapshot = Snapshot()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if sample.name == REQUESTS:
                snapshot.requests[tuple(sorted(labels.items()))] = sample.value
            elif sample.name == DURATION + "_bucket":
                le = labels.pop("le")
                key = tuple(sorted(labels.items()))
                snapshot.buckets.setdefault(key, {})[le] = sample.value
            elif sample.name == DURATION + "_sum":
                snapshot.sums[tuple(sorted(labels.items()))] = sample.value
            elif sample.name == DURATION + "_count":
                snapshot.counts[tuple(sorted(labels.items()))] = sample.value
    return snapshot


def daily_shape(ts: float) -> float:
    """Relative traffic at Unix time `ts` (UTC): lowest at 03:00, highest at 15:00, weekends
    at 60 %. Made up, like every number of this history."""
    hour = (ts % 86400.0) / 3600.0
    day = 0.25 + 0.75 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 3.0) / 24.0))
    weekday = int(ts // 86400.0 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    return day * (0.6 if weekday >= 5 else 1.0)


def timeline(end: float, days: float, now: float) -> list[float]:
    """Sample times from `end - days` to `end`: dense around `now - 1 week`, sparse elsewhere."""
    start = end - days * 86400.0
    dense_from, dense_to = now - WEEK - DENSE_HALF_WIDTH, now - WEEK + DENSE_HALF_WIDTH
    times: list[float] = []
    t = start
    while t <= end:
        times.append(t)
        t += DENSE_STEP if dense_from <= t < dense_to else SPARSE_STEP
    return times


def cumulative_requests(times: list[float], rate_now: float, now: float,
                        seed: int) -> list[float]:
    """Total requests since the history's start at each time: the shape scaled to
    `rate_now` at `now - 1 week`, with a little seeded noise per step."""
    level = rate_now / daily_shape(now - WEEK)
    rng = random.Random(seed)
    total, previous, out = 0.0, times[0], []
    for t in times:
        total += level * daily_shape(t) * (t - previous) * rng.lognormvariate(0.0, 0.08)
        previous = t
        out.append(total)
    return out


def _labels(base: LabelSet, target: dict[str, str], **extra: str) -> str:
    items = [*target.items(), *base, *extra.items()]
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(snapshot: Snapshot, target: dict[str, str], times: list[float],
                totals: list[float]) -> Iterator[str]:
    """Lines of the OpenMetrics input, one series after the other, times ascending."""
    all_requests = snapshot.total
    stamps = [f"{t:.3f}" for t in times]
    for labels, count in sorted(snapshot.requests.items()):
        name = REQUESTS + _labels(labels, target)
        share = count / all_requests
        for stamp, total in zip(stamps, totals, strict=True):
            yield f"{name} {math.floor(total * share)} {stamp}\n"
    for labels, observed in sorted(snapshot.counts.items()):
        if observed <= 0:
            continue
        share = observed / all_requests
        mean = snapshot.sums.get(labels, 0.0) / observed
        counts = [math.floor(total * share) for total in totals]
        for le, cumulative in snapshot.buckets.get(labels, {}).items():
            name = DURATION + "_bucket" + _labels(labels, target, le=le)
            fraction = cumulative / observed
            for stamp, n in zip(stamps, counts, strict=True):
                yield f"{name} {math.floor(n * fraction)} {stamp}\n"
        name = _labels(labels, target)
        for stamp, n in zip(stamps, counts, strict=True):
            yield f"{DURATION}_count{name} {n} {stamp}\n"
        for stamp, n in zip(stamps, counts, strict=True):
            yield f"{DURATION}_sum{name} {n * mean:.6f} {stamp}\n"
    yield "# EOF\n"


def write_history(path: Path, snapshot: Snapshot, target: dict[str, str], rate_now: float,
                  now: float, days: float = 8.0, gap: float = 180.0, seed: int = 7) -> int:
    """Write the OpenMetrics file; the history ends `gap` seconds before `now` (so it never
    overlaps what Prometheus will scrape). Returns the number of samples."""
    if snapshot.total <= 0:
        raise ValueError("the app has answered no request yet: nothing to shape a history on")
    times = timeline(now - gap, days, now)
    totals = cumulative_requests(times, rate_now, now, seed)
    lines = 0
    with path.open("w") as out:
        for line in openmetrics(snapshot, target, times, totals):
            out.write(line)
            lines += 1
    return lines - 1


def create_blocks(openmetrics_file: Path, tsdb_dir: Path, days: float = 8.0) -> None:
    """Blocks in Prometheus' storage directory (before Prometheus starts). One block
    range covers the whole history: promtool re-reads its input once per block range."""
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    # --max-block-duration is a hidden flag of promtool 2.x's backfill.
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                    f"--max-block-duration={int((days + 2) * 24)}h",
                    str(openmetrics_file), str(tsdb_dir)],
                   check=True, capture_output=True, text=True, timeout=300)
