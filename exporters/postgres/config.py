"""Config of the PostgreSQL exporter."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from exporters.runtime.config import StrictModel, read_secret_file

CollectorName = Literal["activity", "database", "statements", "tables", "replication",
                        "checkpoints"]


class CollectorOverride(StrictModel):
    enabled: bool = True
    interval_seconds: float | None = Field(default=None, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)


class PostgresConfig(StrictModel):
    dsn: SecretStr | None = None
    dsn_file: str | None = None
    target: str = Field(default="postgres", min_length=1, max_length=64)
    interval_seconds: float = Field(default=15.0, ge=0, le=3600)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    top_n: int = Field(default=20, ge=1, le=500)
    pool_max_size: int = Field(default=2, ge=1, le=10)
    # nova-crm § slow-query SQL (100 ms), tpt-erp § database thresholds (1 s / 5 s),
    # dirt-free-crm § database health (30 s): every guide's "slow" is a bucket.
    slow_query_thresholds_seconds: list[float] = Field(
        default=[0.1, 1.0, 5.0, 30.0], min_length=1, max_length=10)
    collectors: dict[CollectorName, CollectorOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dsn_source(self) -> PostgresConfig:
        if self.dsn is not None and self.dsn_file is not None:
            raise ValueError("set only one of dsn and dsn_file")
        if self.dsn is None and self.dsn_file is None:
            raise ValueError("dsn is required (or dsn_file, or env SAASMON_POSTGRES_DSN)")
        if self.dsn_file is not None:
            object.__setattr__(self, "dsn", read_secret_file(self.dsn_file, "dsn_file"))
        value = self.dsn.get_secret_value() if self.dsn else ""
        url = urlsplit(value)
        if url.scheme not in ("postgres", "postgresql"):
            raise ValueError("dsn must be a postgresql:// URL")
        try:
            url.port  # noqa: B018 - raises on a non-numeric or out-of-range port
        except ValueError:
            raise ValueError("dsn has an invalid port") from None
        if any(t <= 0 for t in self.slow_query_thresholds_seconds):
            raise ValueError("slow_query_thresholds_seconds must all be positive")
        return self

    @property
    def dsn_value(self) -> str:
        assert self.dsn is not None
        return self.dsn.get_secret_value()

    def password(self) -> str | None:
        return urlsplit(self.dsn_value).password
