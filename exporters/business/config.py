"""Config of the business exporter: where the database is and which query pack to run."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from pydantic import Field, PrivateAttr, model_validator

from saasmon.business.pack import DEFAULT_PACK, Pack, load_pack
from saasmon.runtime.config import DsnConfig
from saasmon.runtime.overrides import CollectorOverride, CollectorsConfig, Schedule

NAMESPACE = "business"


class BusinessConfig(DsnConfig, CollectorsConfig[CollectorOverride]):
    dsn_env: ClassVar[str | None] = "SAASMON_BUSINESS_DSN"
    target: str = Field(default="app", min_length=1, max_length=64)
    pack_file: str | None = None  # None: the shipped default pack
    # The older name of `collectors` (one collector per pack query), still accepted.
    queries: dict[str, CollectorOverride] = Field(default_factory=dict, max_length=1000)
    # Two lanes of connections: queries running more often than slow_interval_seconds
    # share one, the rest the other, so an hourly 30-day scan never delays the minute
    # KPIs, and the frequent queries stay on a connection that has them prepared.
    pool_max_size: int = Field(default=1, ge=1, le=10)
    slow_interval_seconds: float = Field(default=900.0, ge=1, le=86400)
    max_series_per_metric: int = Field(default=50, ge=1, le=10000)
    label_value_max_length: int = Field(default=128, ge=8, le=1024)

    _pack: Pack | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> BusinessConfig:
        self.pack  # noqa: B018 - loads and checks the pack now, not at the first run
        if self.queries and self.collectors:
            raise ValueError("set only one of collectors and queries (its older name)")
        return self

    @property
    def pack(self) -> Pack:
        """The query pack, read and checked once (the collectors check needs it first)."""
        if self._pack is None:
            # ConfigError passes through pydantic untouched: its text already names the key.
            self._pack = load_pack(Path(self.pack_file) if self.pack_file else DEFAULT_PACK,
                                   NAMESPACE)
        return self._pack

    def collector_defaults(self) -> dict[str, Schedule]:
        return {q.name: Schedule(q.interval_seconds, q.timeout_seconds)
                for q in self.pack.queries}

    def override_key(self) -> str:
        return "queries" if self.queries else "collectors"

    def overrides(self) -> dict[str, CollectorOverride]:
        return self.queries or self.collectors

    def unknown_collector(self, known: Iterable[str]) -> str:
        return f"no such query in the pack (it has {', '.join(sorted(known))})"
