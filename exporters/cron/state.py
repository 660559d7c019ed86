"""What the exporter knows about one job's runs, whichever source reported them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saasmon.cron.schedule import Schedule

FINISHED = ("success", "failed")
# Runs a job may have open at once (overlapping or crashed runs); older ones are dropped.
MAX_OPEN_RUNS = 10


@dataclass
class JobState:
    """Run history reduced to what the metrics need. Times are Unix seconds."""

    # Scheduled times before this cannot be judged (nothing was watching then).
    known_since: float
    last_start: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_finish: float | None = None
    last_status: str | None = None  # of the most recently finished run
    last_duration: float | None = None  # of that run; None when its start is unknown
    consecutive_failures: int = 0
    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINISHED, 0))
    open_runs: dict[str, float] = field(default_factory=dict)  # run key -> started at

    # -- events --------------------------------------------------------------------
    def start(self, key: str, at: float) -> None:
        self.last_start = at if self.last_start is None else max(self.last_start, at)
        self.open_runs[key] = at
        if len(self.open_runs) > MAX_OPEN_RUNS:
            del self.open_runs[min(self.open_runs, key=self.open_runs.__getitem__)]

    def finish(self, key: str, status: str, started: float | None, finished: float,
               duration: float | None) -> None:
        """A run ended while we watched (history read at start-up is not counted, so an
        exporter restart is a clean counter reset rather than a phantom run)."""
        self.open_runs.pop(key, None)
        if started is not None:
            self.last_start = started if self.last_start is None else max(self.last_start, started)
        self.runs[status] += 1
        if status == "success":
            self.last_success = max(self.last_success or finished, finished)
            self.consecutive_failures = 0
        else:
            self.last_failure = max(self.last_failure or finished, finished)
            self.consecutive_failures += 1
        if self.last_finish is None or finished >= self.last_finish:
            self.last_finish = finished
            self.last_status = status
            self.last_duration = None if duration is None else max(0.0, duration)

    # -- derived -------------------------------------------------------------------
    def running_since(self) -> float | None:
        """Start of the latest run if that run is still open, else None."""
        if not self.open_runs:
            return None
        latest = max(self.open_runs.values())
        return latest if self.last_start is not None and latest >= self.last_start else None

    def last_activity(self) -> float | None:
        seen = [t for t in (self.last_start, self.last_success, self.last_failure) if t is not None]
        return max(seen) if seen else None

    def missed(self, schedule: Schedule, grace: float, now: float) -> bool:
        """The latest scheduled time whose grace has run out saw no start (or end) since."""
        due = schedule.latest_at_or_before(now - grace)
        if due is None or due < self.known_since:
            return False
        activity = self.last_activity()
        return activity is None or activity < due - schedule.early_tolerance(due)

    def slow(self, max_runtime: float, now: float) -> bool:
        running = self.running_since()
        if running is not None and now - running > max_runtime:
            return True
        return self.last_duration is not None and self.last_duration > max_runtime

    # -- persistence (heartbeat state file) ----------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "known_since": self.known_since, "last_start": self.last_start,
            "last_success": self.last_success, "last_failure": self.last_failure,
            "last_finish": self.last_finish, "last_status": self.last_status,
            "last_duration": self.last_duration,
            "consecutive_failures": self.consecutive_failures,
            "runs": self.runs, "open_runs": self.open_runs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobState:
        """Raises ValueError on anything a metric could not carry as a time: NaN, infinity
        or 1e308 would be exported as is and break every alert comparing against them."""
        def num(key: str) -> float | None:
            v = data.get(key)
            return None if v is None else seconds(v, key)

        known = num("known_since")
        if known is None:
            raise ValueError("known_since missing")
        status = data.get("last_status")
        runs = data.get("runs") or {}
        opened = data.get("open_runs") or {}
        if not isinstance(runs, dict) or not isinstance(opened, dict):
            raise ValueError("runs and open_runs must be objects")
        return cls(
            known_since=known, last_start=num("last_start"), last_success=num("last_success"),
            last_failure=num("last_failure"), last_finish=num("last_finish"),
            last_status=status if status in FINISHED else None,
            last_duration=num("last_duration"),
            consecutive_failures=count(data.get("consecutive_failures"), "consecutive_failures"),
            runs={s: count(runs.get(s), f"runs.{s}") for s in FINISHED},
            open_runs={str(k): seconds(v, "open_runs") for k, v in opened.items()},
        )


# Unix seconds a state file may hold: up to the year 2286 (durations are far smaller).
MAX_SECONDS = 1e10


def seconds(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= MAX_SECONDS:  # NaN fails every comparison
        raise ValueError(f"{key}: not a time in seconds")
    return float(value)


def count(value: Any, key: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValueError(f"{key}: not a count")
    return value
