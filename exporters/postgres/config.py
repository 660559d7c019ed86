"""Config of the PostgreSQL exporter."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, model_validator

from saasmon.postgres.targets import AuthModule, ProbeSettings, check_auth
from saasmon.runtime.config import DsnConfig, StrictModel
from saasmon.runtime.overrides import CollectorOverride, CollectorsConfig, Schedule

# The `name` of each collector in saasmon.postgres.collectors, in the order they run,
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


DSN_ENV = "SAASMON_POSTGRES_DSN"
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=63)]


class TableDatabases(StrictModel):
    """Whose table statistics are read besides the DSN's database: names or shell patterns
    matched against pg_database (templates and databases refusing connections left out)."""

    include: list[Pattern] = Field(min_length=1, max_length=100)
    exclude: list[Pattern] = Field(default_factory=list, max_length=100)
    # Each database read costs a connection and top_n x 5 series: a hard cap.
    max_databases: int = Field(default=10, ge=1, le=50)

    def select(self, names: list[str]) -> tuple[list[str], int]:
        """The databases to read (in the order given, at most max_databases), and how many
        matching ones were left out."""
        wanted = [n for n in names
                  if any(fnmatchcase(n, p) for p in self.include)
                  and not any(fnmatchcase(n, p) for p in self.exclude)]
        return wanted[:self.max_databases], max(0, len(wanted) - self.max_databases)


class PostgresConfig(DsnConfig, CollectorsConfig[CollectorOverride]):
    # Optional here: a probe-only exporter (targets or allow_hosts, no DSN) is valid; the
    # validator below says what is required otherwise.
    dsn_env: ClassVar[str | None] = None
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
    # Table statistics of these databases (with a `database` label) instead of the DSN's
    # database alone; applies to probed targets too.
    table_databases: TableDatabases | None = None
    # Multi-target: credentials for /probe by name, and the targets /probe may reach.
    auth_modules: dict[str, AuthModule] = Field(default_factory=dict, max_length=100)
    default_auth_module: str | None = None
    probe: ProbeSettings = Field(default_factory=ProbeSettings)

    @model_validator(mode="after")
    def _thresholds(self) -> PostgresConfig:
        if any(t <= 0 for t in self.slow_query_thresholds_seconds):
            raise ValueError("slow_query_thresholds_seconds must all be positive")
        if self.dsn is None and not self.probing:
            raise ValueError(f"dsn is required (or dsn_file, or env {DSN_ENV}), unless "
                             "probe.targets or probe.allow_hosts are set")
        check_auth(self.auth_modules, self.default_auth_module, self.probe)
        return self

    @property
    def probing(self) -> bool:
        """Whether /probe can reach anything."""
        return bool(self.probe.targets or self.probe.allow_hosts)

    def probe_idle_seconds(self) -> float:
        return self.probe.idle_close_seconds or max(60.0, 4 * self.interval_seconds)

    def all_secrets(self) -> list[str]:
        return [*self.dsn_secrets(),
                *(s for module in self.auth_modules.values() for s in module.secrets())]

    def collector_defaults(self) -> dict[str, Schedule]:
        # interval_seconds 0 (collect during the scrape) stays 0 for every collector.
        return {name: Schedule(self.interval_seconds * INTERVAL_STEPS[name],
                               self.timeout_seconds) for name in COLLECTORS}
