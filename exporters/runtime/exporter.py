"""What every exporter provides to the runtime: a config model and its collectors."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from prometheus_client.core import Metric

from saasmon.runtime.collector import Collector
from saasmon.runtime.overrides import CollectorsConfig

# Every exporter config carries the runtime's `collectors` overrides.
ConfigT = TypeVar("ConfigT", bound=CollectorsConfig[Any])


@dataclass(frozen=True)
class Route:
    """An HTTP endpoint an exporter adds beside /metrics, served by an Instance method.

    Routes are fixed per exporter kind; the handler is looked up on the running instance
    at request time, so a config reload swaps the handler's state with the instance.
    """

    method: str
    path: str  # aiohttp pattern, e.g. "/ping/{job}"
    handler: str  # name of an async Instance method taking the request
    public: bool = False  # served without basic auth: browsers and cron jobs cannot log in


class Instance(abc.ABC):
    """One configured exporter: its collectors and the connections they share."""

    collectors: list[Collector]

    def families(self) -> Iterable[Metric]:
        """Metrics fed by requests rather than collectors (beacons, pings); read per scrape."""
        return ()

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""


class ExporterKind(abc.ABC, Generic[ConfigT]):
    name: str  # the CLI subcommand
    namespace: str  # metric prefix
    default_address: str
    config_model: type[ConfigT]
    routes: ClassVar[tuple[Route, ...]] = ()
    # Open connections served at once (--web.max-connections overrides); more get a 503.
    max_connections: ClassVar[int] = 256

    @abc.abstractmethod
    def secrets(self, config: ConfigT) -> list[str]:
        """Every secret string in the config, so logs and errors can mask it."""

    @abc.abstractmethod
    def build(self, config: ConfigT) -> Instance:
        """Create collectors; must not connect (connections are made lazily)."""

    def summary(self, config: ConfigT) -> str:
        """One line for --config.check, free of secrets."""
        return f"{self.name}: config ok"
