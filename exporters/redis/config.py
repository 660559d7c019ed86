"""Config of the Redis exporter: several targets, optional key-pattern counts."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from saasmon.runtime.config import StrictModel, read_secret_file, require_unique
from saasmon.runtime.overrides import CollectorOverride, CollectorsConfig, Schedule


class RedisTarget(StrictModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    url: SecretStr
    password: SecretStr | None = None
    password_file: str | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: SecretStr) -> SecretStr:
        if urlsplit(url.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return url

    @model_validator(mode="after")
    def _password_source(self) -> RedisTarget:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set only one of password and password_file")
        if self.password_file is not None:
            object.__setattr__(self, "password",
                               read_secret_file(self.password_file, "password_file"))
        return self

    def secrets(self) -> list[str]:
        url = self.url.get_secret_value()
        found = [url, urlsplit(url).password or ""]
        if self.password is not None:
            found.append(self.password.get_secret_value())
        return [s for s in found if s]


class KeyPattern(StrictModel):
    pattern: str = Field(min_length=1, max_length=200)


class RedisConfig(CollectorsConfig[CollectorOverride]):
    targets: list[RedisTarget] = Field(min_length=1, max_length=100)
    interval_seconds: float = Field(default=15.0, ge=0, le=3600)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    top_n_commands: int = Field(default=50, ge=1, le=500)
    top_n_replicas: int = Field(default=20, ge=1, le=500)
    key_patterns: list[KeyPattern] = Field(default=[], max_length=50)
    # SCAN is cheap per step but linear in the keyspace: a pass may span rounds, each
    # round bounded by time and by matching keys, each step by Redis time per step.
    key_patterns_interval_seconds: float = Field(default=300.0, gt=0)
    scan_count: int = Field(default=1000, ge=10, le=100000)
    scan_max_keys: int = Field(default=1_000_000, ge=1)
    scan_budget_seconds: float = Field(default=2.0, gt=0, le=60)
    # A fifth of the 10 ms a step may block Redis: the mean hides the spread between steps.
    scan_step_target_seconds: float = Field(default=0.002, gt=0, le=0.01)

    @field_validator("key_patterns")
    @classmethod
    def _unique_patterns(cls, patterns: list[KeyPattern]) -> list[KeyPattern]:
        require_unique([p.pattern for p in patterns], "patterns")
        return patterns

    @model_validator(mode="after")
    def _unique_names(self) -> RedisConfig:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique, repeated: {', '.join(duplicates)}")
        return self

    def collector_defaults(self) -> dict[str, Schedule]:
        # The names of saasmon.redis.collectors; each runs once per target.
        return {"info": Schedule(self.interval_seconds, self.timeout_seconds),
                "key_patterns": Schedule(self.key_patterns_interval_seconds,
                                         self.timeout_seconds)}
