"""What every exporter provides to the runtime: a config model and its collectors."""

from __future__ import annotations

import abc
from typing import Generic, TypeVar

from pydantic import BaseModel

from exporters.runtime.collector import Collector

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class Instance(abc.ABC):
    """One configured exporter: its collectors and the connections they share."""

    collectors: list[Collector]

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""


class ExporterKind(abc.ABC, Generic[ConfigT]):
    name: str  # the CLI subcommand
    namespace: str  # metric prefix
    default_address: str
    config_model: type[ConfigT]

    @abc.abstractmethod
    def secrets(self, config: ConfigT) -> list[str]:
        """Every secret string in the config, so logs and errors can mask it."""

    @abc.abstractmethod
    def build(self, config: ConfigT) -> Instance:
        """Create collectors; must not connect (connections are made lazily)."""

    def summary(self, config: ConfigT) -> str:
        """One line for --config.check, free of secrets."""
        return f"{self.name}: config ok"
