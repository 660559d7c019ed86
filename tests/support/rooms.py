"""The rooms of the test suite: every test is `unit`, `integration` or `system`.

A test's room is its folder (tests/unit, tests/integration, tests/system) unless the test
carries one of the three markers itself: a file of one room may hold a test of another (a
rule file's test that needs the live exporters is `integration`). A test outside the three
folders without a marker, a test with two rooms, or a unit test that starts servers is a
collection error, so `pytest -m unit` never silently misses or gains a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

ROOMS = ("unit", "integration", "system")
TESTS = Path(__file__).resolve().parent.parent

# Fixtures that start PostgreSQL, Redis or exporter processes: a test asking for one (even
# through another fixture) is not a unit test.
SERVER_FIXTURES = frozenset({"workdir", "postgres", "redis_server", "exporters", "run_exporter",
                             "live_metrics"})


def folder_room(item: pytest.Item) -> str | None:
    try:
        first = item.path.resolve().relative_to(TESTS).parts[0]
    except ValueError:
        return None
    return first if first in ROOMS else None


def room_of(item: pytest.Item) -> str:
    """The room `assign` gave the item."""
    (room,) = [m.name for m in item.iter_markers() if m.name in ROOMS]
    return room


def assign(items: Sequence[pytest.Item]) -> None:
    """Mark every item with its room; raise a UsageError naming every misplaced test."""
    problems: list[str] = []
    for item in items:
        explicit = {m.name for m in item.iter_markers() if m.name in ROOMS}
        if len(explicit) > 1:
            problems.append(f"{item.nodeid}: marked {' and '.join(sorted(explicit))}")
            continue
        room = next(iter(explicit), None) or folder_room(item)
        if room is None:
            problems.append(f"{item.nodeid}: no room (move it under tests/unit, "
                            "tests/integration or tests/system, or mark it)")
            continue
        servers = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if room == "unit" and servers:
            problems.append(f"{item.nodeid}: a unit test using {', '.join(sorted(servers))} "
                            "(mark it integration)")
            continue
        if not explicit:
            item.add_marker(room)
    if problems:
        raise pytest.UsageError("tests without a room:\n  " + "\n  ".join(problems))


def order(items: list[pytest.Item], *, distributed: bool = False) -> None:
    """Unit tests first, then integration, then system; the order within a room is kept.

    `distributed` (pytest-xdist): the system room first instead. It is one long unit of work
    (the drills share one stack) that mostly waits on the clock, so one worker starts it at
    once while the others take the CPU-bound unit and integration files."""
    first = ("system", "unit", "integration") if distributed else ROOMS
    items.sort(key=lambda item: first.index(room_of(item)))


def work_unit(nodeid: str) -> str:
    """The pytest-xdist work unit of a test (tests/conftest.py's scheduler): the whole
    system room is one (the demo and the drills each hold one stack and must not overlap),
    every other file is one (its module fixtures are built once, on one worker). Decided from
    the node id alone: the controller that schedules has no items."""
    path = nodeid.split("::", 1)[0]
    return "system" if path.startswith("tests/system/") else path
