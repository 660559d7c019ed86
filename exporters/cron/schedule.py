"""A job's schedule: expected run times from its cron expression, in its own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

# A start this close before a scheduled time still counts for it: the database's clock
# (started_at comes from now() there) and ours may differ by a little.
MAX_CLOCK_SKEW_SECONDS = 60.0
# (previous, next) pairs cached per schedule: now, now - grace, and the tolerance lookup.
BRACKETS_KEPT = 4


class ScheduleError(ValueError):
    """An expression or time zone we cannot evaluate; the message is one short line."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def check_expression(expr: str) -> None:
    # Five fields only: cronsim's optional seconds field is not what crontab or Vercel read.
    if len(expr.split()) != 5:
        raise ScheduleError(f"cron expression {expr!r} must have 5 fields "
                            "(minute hour day-of-month month day-of-week)")
    try:
        CronSim(expr, datetime.now(UTC))
    except CronSimError as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from None


class Schedule:
    """Expected run times of one expression; times in and out are Unix seconds."""

    def __init__(self, expr: str, timezone: str) -> None:
        check_expression(expr)
        self.expr = expr
        self.tz = zone(timezone)
        self._cache: list[tuple[float, float]] = []

    def next_after(self, ts: float) -> float | None:
        """First scheduled time strictly after `ts`."""
        return self._bracket(ts)[1]

    def latest_at_or_before(self, ts: float) -> float | None:
        """Last scheduled time at or before `ts`."""
        return self._bracket(ts)[0]

    def _bracket(self, ts: float) -> tuple[float | None, float | None]:
        # Scrapes ask about a clock that moves on slowly between two scheduled times: keep
        # the few recent (previous, next) pairs and answer from them while ts lies inside.
        for prev, nxt in self._cache:
            if prev <= ts < nxt:
                return prev, nxt
        prev_at, next_at = self._compute_prev(ts), self._compute_next(ts)
        if prev_at is not None and next_at is not None:
            self._cache = [(prev_at, next_at), *self._cache[:BRACKETS_KEPT - 1]]
        return prev_at, next_at

    def _compute_next(self, ts: float) -> float | None:
        try:
            return next(CronSim(self.expr, datetime.fromtimestamp(ts, self.tz))).timestamp()
        except StopIteration:  # cronsim gives up after 50 years without a match
            return None

    def _compute_prev(self, ts: float) -> float | None:
        # cronsim's reverse iteration is strictly before its start: nudge one microsecond on.
        start = datetime.fromtimestamp(ts, self.tz) + timedelta(microseconds=1)
        try:
            return next(CronSim(self.expr, start, reverse=True)).timestamp()
        except StopIteration:
            return None

    def early_tolerance(self, scheduled: float) -> float:
        """How early a start may be and still count for `scheduled`: the clock-skew
        allowance, but never more than half the gap to the previous scheduled time, so a
        minutely job's previous run is never mistaken for the current one."""
        previous = self.latest_at_or_before(scheduled - 1)
        if previous is None:
            return MAX_CLOCK_SKEW_SECONDS
        return min(MAX_CLOCK_SKEW_SECONDS, (scheduled - previous) / 2)
