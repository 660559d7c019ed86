"""Strict config loading: YAML file, env overrides, one-line errors naming the key."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator

ModelT = TypeVar("ModelT", bound=BaseModel)
ENV_PREFIX = "SAASMON"


class ConfigError(Exception):
    """A bad config, already phrased as one line: `key.path: what is wrong`."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Far above any password, token, DSN or URL; a file past it is a wrong path (a log, a disk
# image, /dev/zero), and reading it whole would hang the start or a reload and fill memory.
SECRET_FILE_LIMIT = 64 * 1024
# Far above any config or query pack (the shipped pack is 19 KB).
YAML_FILE_LIMIT = 4 * 1024 * 1024


class TooLarge(Exception):
    """A file holds more than its reader's limit."""


def read_limited(path: str, limit: int) -> bytes:
    """The file's bytes, reading at most one past `limit` (TooLarge beyond it), so an endless
    device or a huge file costs one bounded read."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge
    return data


def size_text(limit: int) -> str:
    return f"{limit // 1048576} MiB" if limit % 1048576 == 0 else f"{limit // 1024} KiB"


def read_secret_file(path: str, key: str) -> SecretStr:
    try:
        return SecretStr(read_limited(path, SECRET_FILE_LIMIT).decode("utf-8").strip())
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read file {path!r}: {exc.strerror}") from None
    except TooLarge:
        raise ConfigError(f"{key}: file {path!r} is larger than "
                          f"{size_text(SECRET_FILE_LIMIT)}, not a secret") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: file {path!r} is not UTF-8") from None


class DsnConfig(StrictModel):
    """A PostgreSQL URL set inline (`dsn`) or read from a file (`dsn_file`).

    The base of every exporter config that reads a database, so the rules (one of the two,
    a postgresql:// URL, a numeric port, the secret masked) are written once.
    """

    dsn: SecretStr | None = None
    dsn_file: str | None = None
    # The env variable named in the "required" error; None makes the DSN optional.
    dsn_env: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _dsn_source(self) -> Self:
        if self.dsn is not None and self.dsn_file is not None:
            raise ValueError("set only one of dsn and dsn_file")
        if self.dsn is None and self.dsn_file is None and self.dsn_env is not None:
            raise ValueError(f"dsn is required (or dsn_file, or env {self.dsn_env})")
        if self.dsn_file is not None:
            object.__setattr__(self, "dsn", read_secret_file(self.dsn_file, "dsn_file"))
        if self.dsn is not None:
            url = urlsplit(self.dsn.get_secret_value())
            if url.scheme not in ("postgres", "postgresql"):
                raise ValueError("dsn must be a postgresql:// URL")
            try:
                url.port  # noqa: B018 - raises on a non-numeric or out-of-range port
            except ValueError:
                raise ValueError("dsn has an invalid port") from None
        return self

    @property
    def dsn_value(self) -> str | None:
        return self.dsn.get_secret_value() if self.dsn is not None else None

    @property
    def required_dsn(self) -> str:
        """The DSN of a config whose validator made it required."""
        assert self.dsn is not None
        return self.dsn.get_secret_value()

    def dsn_secrets(self) -> list[str]:
        """The DSN and its password, for the log/error masking registry."""
        value = self.dsn_value
        return [s for s in (value, urlsplit(value).password if value else None) if s]


def require_unique(names: list[str], what: str) -> None:
    """A ValueError naming every repeated entry of a list that must hold each once."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique, repeated: {', '.join(repeated)}")


def key_part(part: object) -> str:
    """One key of a path in an error line; quoted when it holds a line break or another
    unprintable character (a YAML key may), so the error stays one line."""
    text = str(part)
    return text if text.isprintable() else repr(text)


def first_error(exc: ValidationError, prefix: str) -> str:
    err = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(key_part(part) for part in err["loc"]) or "(top level)"
    if prefix:
        loc = f"{prefix}.{loc}" if err["loc"] else prefix
    return f"{loc}: {err['msg']}"


def env_overrides(exporter: str, model: type[BaseModel]) -> dict[str, str]:
    """Top-level keys from SAASMON_<EXPORTER>_<KEY> variables (e.g. SAASMON_POSTGRES_DSN)."""
    found: dict[str, str] = {}
    for name in model.model_fields:
        # sms-relay -> SAASMON_SMS_RELAY_*: a dash cannot appear in a shell variable name.
        prefix = f"{ENV_PREFIX}_{exporter.upper().replace('-', '_')}"
        value = os.environ.get(f"{prefix}_{name.upper()}")
        if value is not None:
            found[name] = value
    return found


# Deeper than any real config; checked after parsing so nothing downstream recurses on it.
MAX_DEPTH = 32
# More values than any real config, aliases counted at each use: nine lines of anchors that
# each repeat the one before ten times ("billion laughs") parse to a small graph that a
# walk (ours, then the model's validation) would visit a billion times.
MAX_VALUES = 100_000


def _shape_problem(node: Any) -> str | None:
    """What is wrong with the size of parsed YAML, walked iteratively (a recursive walk is
    what we guard against): nesting deeper than MAX_DEPTH, or more than MAX_VALUES values."""
    stack, walked = [(node, 1)], 0
    while stack:
        item, level = stack.pop()
        if level > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        walked += 1
        if walked > MAX_VALUES:
            return f"more than {MAX_VALUES} values (aliases counted at each use)"
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return None


def read_yaml(path: str, key: str) -> Any:
    """Parse a YAML file; every problem is one ConfigError naming `key` and never quoting the
    file: a half-edited config holds secrets (a rotated password) the masker cannot know."""
    try:
        text = read_limited(path, YAML_FILE_LIMIT).decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path!r}: {exc.strerror}") from None
    except TooLarge:
        raise ConfigError(f"{key}: larger than {size_text(YAML_FILE_LIMIT)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{key}: not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{key}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{key}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        # The YAML constructors call int() and datetime(): a 5,000-digit number or a 13th
        # month end here; the message carries no file content.
        if "digits" in str(exc):
            raise ConfigError(f"{key}: an integer has too many digits") from None
        raise ConfigError(f"{key}: invalid value: {exc}") from None
    problem = _shape_problem(raw)
    if problem is not None:
        raise ConfigError(f"{key}: {problem}")
    return raw


def load_config(model: type[ModelT], path: str | None, exporter: str) -> ModelT:
    raw: Any = {}
    if path:
        raw = read_yaml(path, "config.file")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("(top level): must be a mapping of keys to values")
    overrides = env_overrides(exporter, model)
    for key in overrides:
        # An env value replaces the file's value in either form: SAASMON_POSTGRES_DSN wins
        # over `dsn_file:` in the file, and SAASMON_POSTGRES_DSN_FILE over `dsn:`.
        raw.pop(f"{key}_file", None)
        raw.pop(key.removesuffix("_file"), None)
    raw = {**raw, **overrides}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(first_error(exc, "")) from None
