"""Every fault drill, one test each: the drills of devstack/drills/suite.py.

The drills share one stack (devstack/drills/harness.py) and run in the background as soon as
the first drill test needs them, concurrently where they cannot interfere
(devstack/drills/runner.py); each test waits for its own drill's outcome. Run a few with
`-k`: only the selected drills run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import pytest

from devstack.drills.harness import Drill, DrillRun, Stack
from devstack.drills.runner import run_all
from devstack.drills.suite import DRILLS


class Outcomes:
    """The runs of the selected drills, filled by the runner's thread."""

    def __init__(self, names: list[str]) -> None:
        self.futures: dict[str, concurrent.futures.Future[DrillRun]] = {
            name: concurrent.futures.Future() for name in names}

    def done(self, run: DrillRun) -> None:
        self.futures[run.name].set_result(run)

    def fail_all(self, exc: BaseException) -> None:
        """The runner itself broke: every drill still waited for fails with its error."""
        for future in self.futures.values():
            if not future.done():
                future.set_exception(exc)

    def wait(self, name: str, timeout: float) -> DrillRun:
        return self.futures[name].result(timeout)


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest) -> Iterator[Outcomes]:
    wanted = {item.callspec.params["drill"].name for item in request.session.items
              if hasattr(item, "callspec") and "drill" in item.callspec.params}
    selected = [d for d in DRILLS if d.name in wanted]
    found = Outcomes([d.name for d in selected])
    stack = Stack.start()
    loop = asyncio.new_event_loop()
    task: asyncio.Future[None] | None = None

    def runner() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = asyncio.ensure_future(run_all(stack, selected, found.done))
        try:
            loop.run_until_complete(task)
        except BaseException as exc:  # cancelled at teardown, or a bug in the runner
            found.fail_all(exc)

    thread = threading.Thread(target=runner, name="drills", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        # Stopped early (-x, Ctrl-C): cancelling runs every started drill's remove().
        if task is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)
        thread.join(120)
        stack.stop()


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("drill", DRILLS, ids=[d.name for d in DRILLS])
def test_drill(drill: Drill, outcomes: Outcomes) -> None:
    run = outcomes.wait(drill.name, timeout=1100)
    if run.error is not None:
        raise run.error
    for exp in drill.expect:
        assert exp.key in run.first, f"{exp.key} was never delivered"
        if exp.resolves:
            assert exp.key in run.resolved, f"{exp.key} never resolved"
