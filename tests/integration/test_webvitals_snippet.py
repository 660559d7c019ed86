"""The shipped Web Vitals snippet: built from the pinned npm packages, committed up to date.

`webvitals-js/dist/saasmon-vitals.js` is what the reference app serves and what users can
load with a script tag. It is committed, so the app, the demo and the compose image need no
node; this test rebuilds it from a clean `npm ci` of the committed lockfile (the registry's
web-vitals and esbuild, versions pinned) and fails when the committed file differs.
Rebuild with: `cd webvitals-js && npm ci && npm run build`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "webvitals-js"
NPM_TIMEOUT = 600  # seconds: a registry download on a loaded machine


def test_package_pins_web_vitals_5_exactly() -> None:
    package = json.loads((SNIPPET / "package.json").read_text())
    lock = json.loads((SNIPPET / "package-lock.json").read_text())
    pinned = package["dependencies"]["web-vitals"]
    assert pinned.split(".")[0] == "5" and pinned.replace(".", "").isdigit(), pinned
    assert lock["packages"]["node_modules/web-vitals"]["version"] == pinned
    assert package["devDependencies"]["esbuild"].replace(".", "").isdigit()


@pytest.mark.timeout(NPM_TIMEOUT * 2 + 60)
def test_committed_bundle_is_what_npm_ci_and_the_build_make(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    assert npm is not None, "npm missing: `make deps` installs it"
    work = tmp_path / "webvitals-js"
    work.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SNIPPET / name, work / name)
    shutil.copytree(SNIPPET / "src", work / "src")
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
           "npm_config_audit": "false", "npm_config_cache": str(tmp_path / "npm-cache")}
    for args in (["ci"], ["run", "build"]):
        done = subprocess.run([npm, *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=NPM_TIMEOUT, check=False)
        assert done.returncode == 0, f"npm {' '.join(args)}: {done.stdout}{done.stderr}"
    built = (work / "dist" / "saasmon-vitals.js").read_bytes()
    committed = (SNIPPET / "dist" / "saasmon-vitals.js").read_bytes()
    assert built == committed, ("webvitals-js/dist/saasmon-vitals.js is stale: "
                                "cd webvitals-js && npm ci && npm run build, then commit it")
