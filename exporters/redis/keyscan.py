"""Key-pattern counts by SCAN, the cursor carried from one collection round to the next.

A pass is one whole SCAN of the keyspace for one pattern, from cursor 0 back to 0. Each
round of the key_patterns collector advances every pattern's pass by a bounded amount of
work and keeps the cursor; the next round goes on from it. A pattern's count is published
only when its pass ends, and stays until the next pass ends: no scrape sees a partial count.

A carried cursor only means something on the keyspace it came from. Before going on, each
round starts the passes in progress again when that keyspace may have been replaced:

- the server's run_id changed: a restart, or the target's address now reaches another server;
- FLUSHALL, FLUSHDB or SWAPDB ran since the last round (their calls in INFO commandstats);
- the database holds fewer keys than the pass has already counted (keys went by other
  means, e.g. a replica's full resync).

Within a pass SCAN's own guarantee holds: a key present for the whole pass is counted once;
a key added or removed during the pass may or may not be.

The state lives in a ScanStore held by the exporter kind, so a config reload that keeps a
target (same name and URL) and its patterns keeps their counts and passes in progress.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from saasmon.redis.config import RedisConfig, RedisTarget

RESTART_REASONS = ("server_restarted", "flushed", "keys_removed")
# Commands that replace a database's keys wholesale: a rise in their calls ends the passes.
FLUSH_COMMANDS = ("cmdstat_flushall", "cmdstat_flushdb", "cmdstat_swapdb")
# SCAN COUNT bounds. A step's Redis time is about its COUNT times the cost of one key, and
# that cost depends on the pattern and the keys: about a microsecond for `prefix:*` on
# short keys (bench/REDIS_SCAN.md), ten times that for `*word*` on keys of 1 KB. So each
# pattern's first step uses 100 keys (1 ms at 10 µs a key) and every step after follows the
# Redis time the one before took; below 10 keys the round trips dominate.
START_STEP_KEYS = 100
MIN_STEP_KEYS = 10


@dataclass(frozen=True)
class CompletedPass:
    keys: int
    finished_at: float  # Unix time of the last step
    duration: float  # seconds from the first step's start to the last step's end


@dataclass
class PatternScan:
    """One pattern's passes over one target's keyspace."""

    pattern: str
    cursor: int = 0
    counted: int = 0  # keys matched so far by the pass in progress
    started_at: float | None = None  # None: no pass in progress
    last: CompletedPass | None = None
    passes: int = 0
    # SCAN COUNT of this pattern's next step (the config's scan_count caps it at use).
    step_keys: int = START_STEP_KEYS
    restarts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESTART_REASONS, 0))

    def restart(self, reason: str) -> None:
        """Drop the pass in progress, if any; the next step starts a new one at cursor 0."""
        if self.started_at is None:
            return
        self.cursor, self.counted, self.started_at = 0, 0, None
        self.restarts[reason] += 1

    def step(self, started: float, cursor: int, found: int, now: float) -> bool:
        """Record a SCAN step begun at `started` (Unix time) that returned `cursor` and
        `found` matching keys; True when it ended the pass."""
        if self.started_at is None:
            self.started_at = started
        self.counted += found
        self.cursor = cursor
        if cursor != 0:
            return False
        self.last = CompletedPass(self.counted, now, max(0.0, now - self.started_at))
        self.passes += 1
        self.counted, self.started_at = 0, None
        return True


@dataclass
class StepTimes:
    """Redis time of the SCAN steps of one round, from INFO commandstats."""

    steps: int = 0
    total: float = 0.0
    slowest: float = 0.0

    def add(self, seconds: float) -> None:
        self.steps += 1
        self.total += seconds
        self.slowest = max(self.slowest, seconds)


@dataclass
class TargetScan:
    """The passes of every pattern on one target, and what the rounds learnt of the server."""

    patterns: dict[str, PatternScan]
    # One round at a time: after a reload the old instance's last round and the new one's
    # first would otherwise advance the same cursors.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    run_id: str | None = None
    flushes: int | None = None
    last_round: StepTimes | None = None  # the Redis time of the last round's steps

    def check(self, run_id: str, flushes: int, dbsize: int) -> None:
        """Start the passes in progress again if their keyspace may have been replaced."""
        reason = None
        if self.run_id is not None and run_id != self.run_id:
            reason = "server_restarted"
        elif self.flushes is not None and flushes != self.flushes:
            reason = "flushed"  # a fall (CONFIG RESETSTAT) cannot rule a flush out either
        self.run_id, self.flushes = run_id, flushes
        for scan in self.patterns.values():
            if reason is not None:
                scan.restart(reason)
            elif scan.counted > dbsize:
                scan.restart("keys_removed")


def step_seconds(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Redis time of one step from SCAN's (calls, usec) in INFO commandstats read before and
    after it (the after read pipelined behind the SCAN). Other clients' SCANs that ran in
    between count as ours: that can only make the next COUNT smaller. None when no SCAN
    was counted or the stats were reset."""
    calls, usec = after[0] - before[0], after[1] - before[1]
    if calls <= 0 or usec < 0:
        return None
    return usec / 1e6


def next_step_keys(step: int, mean_seconds: float, target: float, ceiling: int) -> int:
    """The COUNT for the next step: shrunk in proportion when a step took longer than
    `target`, doubled when it took under a quarter of it, within [MIN_STEP_KEYS, ceiling]."""
    if mean_seconds > target:
        step = int(step * target / mean_seconds)
    elif mean_seconds < target / 4:
        step *= 2
    return max(MIN_STEP_KEYS, min(ceiling, step))


def flush_calls(commandstats: Mapping[str, Any]) -> int:
    return sum(int(_stat(commandstats, name)[0]) for name in FLUSH_COMMANDS)


def scan_usage(commandstats: Mapping[str, Any]) -> tuple[int, int]:
    """SCAN's (calls, usec) so far."""
    calls, usec = _stat(commandstats, "cmdstat_scan")
    return int(calls), int(usec)


def _stat(commandstats: Mapping[str, Any], name: str) -> tuple[float, float]:
    stat = commandstats.get(name)
    if not isinstance(stat, dict):
        return 0.0, 0.0
    return float(stat.get("calls", 0)), float(stat.get("usec", 0))


def _identity(target: RedisTarget) -> tuple[str, str]:
    # A digest, so the store keeps no second copy of a URL that may hold a password.
    url = target.url.get_secret_value()
    return target.name, hashlib.sha256(url.encode()).hexdigest()


class ScanStore:
    """Scan state per target, outliving config reloads (held by the exporter kind)."""

    def __init__(self) -> None:
        self._targets: dict[tuple[str, str], TargetScan] = {}

    def states(self, config: RedisConfig) -> dict[str, TargetScan]:
        """The state of each configured target by name: kept from the running config when
        the target's name and URL are unchanged (and each kept pattern's), else new."""
        kept: dict[tuple[str, str], TargetScan] = {}
        for target in config.targets:
            key = _identity(target)
            old = self._targets.get(key)
            patterns = {p.pattern: (old.patterns.get(p.pattern) if old else None)
                        or PatternScan(p.pattern) for p in config.key_patterns}
            if old is None:
                kept[key] = TargetScan(patterns)
            else:
                old.patterns = patterns  # a round running now iterates the dict it took
                kept[key] = old
        self._targets = kept
        return {name: state for (name, _), state in kept.items()}
