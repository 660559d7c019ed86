"""A single exporter imports only what it uses: its own package and its own driver.

Each exporter's process loads the libraries every exporter shares (aiohttp, pydantic,
prometheus_client), then only its own code: another exporter's package or a driver it does
not use would be resident memory for nothing (issue 16, target 1). Checked in a fresh
interpreter per exporter that loads and prepares it as `saasmon <exporter>` does, without
starting it (no server needed: the DSNs are never dialled).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from saasmon.cli import EXPORTERS

# Top-level modules that only some exporters may load, and which ones.
DRIVERS = {
    "asyncpg": {"postgres", "cron", "integrations", "business"},
    "redis": {"redis"},
    "cronsim": {"cron"},
    "bcrypt": set(),  # basic auth in a web config only; none is configured here
}
PACKAGES = {kind: EXPORTERS[kind][0].split(".")[1] for kind in EXPORTERS}
DSN = "postgresql://postgres@127.0.0.1:1/app"
CONFIGS = {
    "postgres": {"dsn": DSN},
    "redis": {"targets": [{"name": "main", "url": "redis://127.0.0.1:1/0"}]},
    "cron": {"dsn": DSN},
    "integrations": {"dsn": DSN, "builtin_targets": False},
    "business": {"dsn": DSN},
    "webvitals": {"allowed_origins": ["http://127.0.0.1:8080"]},
    "sms-relay": {"twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "test-token",
                             "from_number": "+15005550006"},
                  "recipients": ["+15005550001"]},
}
# Loads and prepares one exporter as `saasmon <exporter>` does before serving, then prints
# the modules loaded.
PROBE = """
import json, sys
from saasmon.cli import load_kind
from saasmon.runtime.options import Options, prepare
kind = load_kind(sys.argv[1])
prepare(kind, Options("127.0.0.1:1", "/metrics", None, None, None, 60.0, 10.0, sys.argv[2]))
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(kind: str, tmp_path: Path) -> set[str]:
    config = tmp_path / f"{kind}.yml"
    config.write_text(yaml.safe_dump(CONFIGS[kind]))
    done = subprocess.run([sys.executable, "-c", PROBE, kind, str(config)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout))


def test_every_exporter_has_a_config_here() -> None:
    assert set(CONFIGS) == set(EXPORTERS)


@pytest.mark.parametrize("kind", sorted(EXPORTERS))
def test_an_exporter_loads_only_its_package_and_its_driver(kind: str, tmp_path: Path) -> None:
    modules = loaded_modules(kind, tmp_path)
    assert f"saasmon.{PACKAGES[kind]}" in modules
    others = sorted(f"saasmon.{package}" for other, package in PACKAGES.items()
                    if other != kind and f"saasmon.{package}" in modules)
    assert others == [], f"{kind} imports other exporters' packages"
    unused = sorted(driver for driver, users in DRIVERS.items()
                    if driver in modules and kind not in users)
    assert unused == [], f"{kind} imports drivers it does not use"
    # The bundle's own code is for `saasmon bundle` only.
    assert "saasmon.bundle" not in modules
