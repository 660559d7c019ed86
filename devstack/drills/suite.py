"""Every fault drill, in the order the runner schedules them: the infrastructure drills
(devstack/drills/infra.py), then the application drills (devstack/drills/app.py). The tests
(tests/system/drills/test_drills.py) and the time-to-page bench (bench/time_to_page.py) both
run this list."""

from __future__ import annotations

from devstack.drills import app, infra
from devstack.drills.harness import Drill

DRILLS: list[Drill] = [*infra.DRILLS, *app.DRILLS]
