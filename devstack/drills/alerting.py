"""Prometheus and Alertmanager for drills: the shipped Alertmanager routing with its timers
scaled, the routing questions a drill asks (which receivers, which group_wait), and the
scaled rules a real Prometheus (devstack/prometheus.py) evaluates.
"""

from __future__ import annotations

import functools
import math
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alert_rules.generator.catalog import load_catalog
from alert_rules.generator.scaled import seconds, write_scaled
from devstack.alertmanager import AMTOOL
from devstack.prometheus import Prometheus

# Re-exported: the drills and a few integration tests take the Prometheus from here.
__all__ = ["Prometheus", "Route", "amtool_receivers", "routes", "scale_timers",
           "without_quiet_hours", "write_rules"]
TIMER = re.compile(r"^(?P<lead>\s*(?:group_wait|group_interval|repeat_interval):\s*)"
                   r"(?P<value>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)(?P<rest>.*)$",
                   re.MULTILINE)


def scale_ms(duration: str, scale: float) -> str:
    """An Alertmanager timer times `scale`, in whole milliseconds (0 stays 0)."""
    ms = math.floor(seconds(duration) * 1000 * scale + 1e-6)
    return f"{max(ms, 1) if seconds(duration) else 0}ms"


def scale_timers(config_text: str, scale: float) -> str:
    """group_wait, group_interval and repeat_interval of every route times `scale`;
    nothing else of the file changes (comments and all)."""
    return TIMER.sub(lambda m: m["lead"] + scale_ms(m["value"], scale) + m["rest"], config_text)


QUIET_HOURS = re.compile(r"^\s*mute_time_intervals:\s*\[quiet-hours\]\s*\n", re.MULTILINE)


def without_quiet_hours(config_text: str) -> str:
    """The config with the low route's quiet hours taken off. They follow the wall clock,
    and a drill must give the same result at any hour (issue 13 §1): a low level of another
    guide's ladder is expected at #monitoring at 23:00 as at noon. The quiet hours are
    tested with amtool (tests/unit/test_alertmanager_config.py)."""
    out, found = QUIET_HOURS.subn("", config_text)
    if found != 1:
        raise AssertionError(f"expected one route muted by quiet-hours, found {found}")
    return out


# -- routing ---------------------------------------------------------------------------------------
def amtool_receivers(config: Path, labels: Mapping[str, str]) -> frozenset[str]:
    """`amtool config routes test`: every receiver a label set is routed to."""
    out = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={config}",
         *(f"{k}={v}" for k, v in sorted(labels.items()))],
        capture_output=True, text=True, timeout=30, check=True)
    return frozenset(r for r in out.stdout.strip().split(",") if r)


def _matches(matcher: str, labels: Mapping[str, str]) -> bool:
    name, op, value = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*', matcher).groups()  # type: ignore[union-attr]
    have = labels.get(name, "")
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    found = re.fullmatch(value, have) is not None
    return found if op == "=~" else not found


@dataclass(frozen=True)
class Route:
    receiver: str
    group_wait: float
    group_interval: float
    repeat_interval: float


def routes(config: Mapping[str, Any], labels: Mapping[str, str]) -> list[Route]:
    """The leaf routes a label set reaches, with inherited timers, in Alertmanager's order
    (depth first; `continue` goes on to siblings). Only `matchers` are used by our config."""
    defaults = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}

    def walk(node: Mapping[str, Any], inherited: dict[str, Any]) -> list[Route]:
        here = {**inherited, **{k: node[k] for k in (*defaults, "receiver") if k in node}}
        found: list[Route] = []
        for child in node.get("routes", []):
            if all(_matches(m, labels) for m in child.get("matchers", [])):
                found += walk(child, here)
                if not child.get("continue", False):
                    break
        if found:
            return found
        return [Route(here["receiver"], *(seconds(here[k]) for k in defaults))]

    return walk(config["route"], defaults)


# -- Prometheus -----------------------------------------------------------------------------------
def write_rules(directory: Path, scale: float, scrape_interval: float) -> list[Path]:
    """The generated rules with every `for`, window and offset scaled: the mixin rendered
    with `_config.timeScale` (alert_rules/generator/scaled.py). The render takes about half a
    minute of CPU, so a process renders each scale once and every drill stack copies it."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in _scaled_texts(scale, scrape_interval).items():
        (directory / name).write_text(text)
        paths.append(directory / name)
    return paths


@functools.cache
def _scaled_texts(scale: float, scrape_interval: float) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="saasmon-scaled-") as tmp:
        return {path.name: path.read_text()
                for path in write_scaled(load_catalog(), scale, Path(tmp), scrape_interval)}
