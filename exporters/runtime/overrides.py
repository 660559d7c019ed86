"""Per-collector overrides, one model for every exporter: `collectors: {<name>: {...}}`.

The runtime checks the names and bounds and resolves each collector's interval and timeout
once; an exporter builds its collectors and the connections they share from the same
numbers, so a pool's own limits never cut a collector's longer timeout short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from pydantic import Field, model_validator

from saasmon.runtime.collector import ON_SCRAPE_BUDGET
from saasmon.runtime.config import ConfigError, StrictModel, key_part

# One set of bounds for every exporter: a day covers the slowest KPI query, ten minutes
# the longest scan anyone should run against a production database.
MAX_INTERVAL_SECONDS = 86400.0
MAX_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Schedule:
    """How often a collector runs (0: inside the scrape) and how long one run may take."""

    interval: float
    timeout: float


class CollectorOverride(StrictModel):
    enabled: bool = True
    interval_seconds: float | None = Field(default=None, ge=0, le=MAX_INTERVAL_SECONDS)
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS)

    def apply(self, default: Schedule) -> Schedule:
        # `is None`, not `or`: interval 0 (run in the scrape) is a value, not "unset".
        return Schedule(
            default.interval if self.interval_seconds is None else self.interval_seconds,
            default.timeout if self.timeout_seconds is None else self.timeout_seconds)


def budget_problem(schedule: Schedule) -> str | None:
    """Why the schedule's timeout cannot be honoured by the scheduler, or None."""
    if schedule.interval <= 0 and schedule.timeout > ON_SCRAPE_BUDGET:
        return (f"timeout_seconds: {schedule.timeout:g} s does not fit the scrape budget "
                f"({ON_SCRAPE_BUDGET:g} s) of a collector that runs inside the scrape "
                "(interval_seconds 0); give it an interval above 0 to run in the background")
    return None


def longest_timeout(schedules: Iterable[Schedule], default: float) -> float:
    """The timeout a shared connection pool must allow: its slowest collector's."""
    return max((s.timeout for s in schedules), default=default)


OverrideT = TypeVar("OverrideT", bound=CollectorOverride)


class CollectorsConfig(StrictModel, Generic[OverrideT]):
    """Base of every exporter config: the `collectors` overrides and their resolution.

    An exporter names its collectors and their schedules before overrides in
    `collector_defaults`; a name it does not list is an error naming the key.
    """

    collectors: dict[str, OverrideT] = Field(default_factory=dict, max_length=1000)

    def collector_defaults(self) -> dict[str, Schedule]:
        """Every collector this exporter can run, by name, with its configured schedule."""
        return {}

    def override_key(self) -> str:
        """The config key holding the overrides (for error lines)."""
        return "collectors"

    def overrides(self) -> dict[str, OverrideT]:
        return self.collectors

    def unknown_collector(self, known: Iterable[str]) -> str:
        names = ", ".join(sorted(known))
        return f"no such collector (known: {names})" if names else \
            "no such collector (this exporter has none)"

    @model_validator(mode="after")
    def _check_collectors(self) -> Self:
        # ConfigError passes through pydantic untouched: the line names the key.
        defaults = self.collector_defaults()
        for name, override in self.overrides().items():
            at = f"{self.override_key()}.{key_part(name)}"
            if name not in defaults:
                raise ConfigError(f"{at}: {self.unknown_collector(defaults)}")
            # Only what the override changes: the exporter-wide keys keep their own rules.
            changed = override.interval_seconds is not None \
                or override.timeout_seconds is not None
            problem = budget_problem(override.apply(defaults[name])) if changed else None
            if override.enabled and problem is not None:
                raise ConfigError(f"{at}.{problem}")
        return self

    def override(self, name: str) -> OverrideT | None:
        return self.overrides().get(name)

    def schedule(self, name: str) -> Schedule | None:
        """The collector's schedule after its override; None when it is disabled."""
        default = self.collector_defaults()[name]
        override = self.override(name)
        if override is None:
            return default
        return override.apply(default) if override.enabled else None

    def schedules(self) -> dict[str, Schedule]:
        """The enabled collectors' schedules, by name."""
        return {name: s for name in self.collector_defaults()
                if (s := self.schedule(name)) is not None}
