"""Config of the PostgreSQL exporter."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from exporters.runtime.config import DsnConfig
from exporters.runtime.overrides import CollectorOverride, CollectorsConfig, Schedule

# The `name` of each collector in exporters.postgres.collectors, in the order they run,
# with its default interval as a multiple of `interval_seconds`: a collector runs as often
# as its cost allows (measured at 100 / 1,000 / 5,000 tables by bench/pg_scale.py; the
# numbers are in docs/exporters/postgres.md). Cheap reads the fast alerts need (connections,
# locks, replication lag) every interval; reads that grow with the schema less often.
INTERVAL_STEPS: dict[str, int] = {
    "checkpoints": 1,
    "replication": 1,
    "activity": 1,
    "statements": 4,  # PostgresSlowQueries' rate over 5 m keeps several samples
    "tables": 4,
    "database": 8,  # pg_database_size stats every file; storage and deadlock rules wait 5-15 m
    "indexes": 20,  # PostgresUnusedIndexes waits a day
}
COLLECTORS = ("activity", "database", "statements", "tables", "indexes", "replication",
              "checkpoints")


class PostgresConfig(DsnConfig, CollectorsConfig[CollectorOverride]):
    dsn_env: ClassVar[str | None] = "SAASMON_POSTGRES_DSN"
    target: str = Field(default="postgres", min_length=1, max_length=64)
    interval_seconds: float = Field(default=15.0, ge=0, le=3600)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    top_n: int = Field(default=20, ge=1, le=500)
    pool_max_size: int = Field(default=2, ge=1, le=10)
    # nova-crm § slow-query SQL (100 ms), tpt-erp § database thresholds (1 s / 5 s),
    # dirt-free-crm § database health (30 s): every guide's "slow" is a bucket.
    slow_query_thresholds_seconds: list[float] = Field(
        default=[0.1, 1.0, 5.0, 30.0], min_length=1, max_length=10)
    # The size of the volume the databases live on (PostgreSQL cannot tell it): exported as
    # pg_storage_allocated_bytes for PostgresStorageHigh. Unset, PostgresStorageLimitUnset
    # says the storage alert is blind.
    allocated_storage_bytes: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _thresholds(self) -> PostgresConfig:
        if any(t <= 0 for t in self.slow_query_thresholds_seconds):
            raise ValueError("slow_query_thresholds_seconds must all be positive")
        return self

    def collector_defaults(self) -> dict[str, Schedule]:
        # interval_seconds 0 (collect during the scrape) stays 0 for every collector.
        return {name: Schedule(self.interval_seconds * INTERVAL_STEPS[name],
                               self.timeout_seconds) for name in COLLECTORS}
