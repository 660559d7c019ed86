"""Config of the business exporter: where the database is and which query pack to run."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, PrivateAttr, model_validator

from exporters.business.pack import DEFAULT_PACK, Pack, load_pack
from exporters.runtime.config import ConfigError, DsnConfig, StrictModel, key_part

NAMESPACE = "business"


class QueryOverride(StrictModel):
    enabled: bool = True
    interval_seconds: float | None = Field(default=None, ge=1, le=86400)
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)


class BusinessConfig(DsnConfig):
    dsn_env: ClassVar[str | None] = "SAASMON_BUSINESS_DSN"
    target: str = Field(default="app", min_length=1, max_length=64)
    pack_file: str | None = None  # None: the shipped default pack
    queries: dict[str, QueryOverride] = Field(default_factory=dict)
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
        # ConfigError passes through pydantic untouched: its text already names the key.
        pack = load_pack(Path(self.pack_file) if self.pack_file else DEFAULT_PACK, NAMESPACE)
        names = {q.name for q in pack.queries}
        for name in self.queries:
            if name not in names:
                raise ConfigError(f"queries.{key_part(name)}: no such query in the pack "
                                  f"(it has {', '.join(sorted(names))})")
        self._pack = pack
        return self

    @property
    def pack(self) -> Pack:
        assert self._pack is not None
        return self._pack
