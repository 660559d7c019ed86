"""How a /probe request's target and auth_module resolve, before any connection."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from saasmon.postgres.config import PostgresConfig, TableDatabases
from saasmon.postgres.targets import Refused, Resolved, resolve

SECRET = "p@ss:w/rd"


def config(tmp_path: Path, **probe: object) -> PostgresConfig:
    (tmp_path / "pw").write_text(SECRET + "\n")
    (tmp_path / "dsn").write_text("postgresql://dsnuser:dsnpw@elsewhere:1/dsndb?sslmode=require\n")
    return PostgresConfig.model_validate({
        "auth_modules": {
            "mon": {"user": "monitor", "password_file": str(tmp_path / "pw"),
                    "sslmode": "verify-full"},
            "file": {"dsn_file": str(tmp_path / "dsn")},
        },
        "default_auth_module": "mon",
        "probe": {"targets": {"orders": {"host": "db1.internal", "database": "orders"},
                              "v6": {"host": "::1", "port": 6432, "auth_module": "file"}},
                  **probe},
    })


def run(cfg: PostgresConfig, target: str, module: str = "") -> Resolved:
    return resolve(cfg.probe, cfg.auth_modules, cfg.default_auth_module, target, module)


def refused(cfg: PostgresConfig, target: str, module: str = "") -> Refused:
    with pytest.raises(Refused) as caught:
        run(cfg, target, module)
    return caught.value


def test_named_targets_take_credentials_from_their_module(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    orders = run(cfg, "orders")
    url = urlsplit(orders.dsn)
    assert (orders.label, orders.module) == ("orders", "mon")
    assert (url.hostname, url.port, url.path, url.query) == (
        "db1.internal", 5432, "/orders", "sslmode=verify-full")
    assert (url.username, url.password) == ("monitor", "p%40ss%3Aw%2Frd")  # quoted
    # The DSN file lends user, password and parameters; the target's host and port win,
    # and its database when it names none is the DSN's.
    v6 = urlsplit(run(cfg, "v6").dsn)
    assert (v6.hostname, v6.port, v6.path, v6.username, v6.password, v6.query) == (
        "::1", 6432, "/dsndb", "dsnuser", "dsnpw", "sslmode=require")
    assert run(cfg, "orders", "file").key == ("orders", "file")


def test_unlisted_hosts_are_refused_unless_allow_listed(tmp_path: Path) -> None:
    closed = config(tmp_path)
    assert refused(closed, "db1.internal").status == 403
    assert refused(closed, "10.1.2.3:5432/app").status == 403
    cfg = config(tmp_path, allow_hosts=["*.db.internal", "10.0.0.0/8", "fd00::/8"])
    app = run(cfg, "PG7.db.internal/app")
    assert (app.label, app.module) == ("pg7.db.internal:5432/app", "mon")
    assert run(cfg, "10.1.2.3").label == "10.1.2.3:5432/postgres"
    assert run(cfg, "[fd00::5]:5432/x").label == "[fd00::5]:5432/x"
    for denied in ("db.internal", "evil.com", "11.0.0.1", "10.1.2.3:6432",  # port not allowed
                   "x.db.internal.evil.com", "[fe80::1]"):
        assert refused(cfg, denied).status == 403, denied


@pytest.mark.parametrize("target", [
    f"postgresql://monitor:{SECRET}@db1.internal/orders", "monitor@db1.internal",
    "db1.internal?sslmode=disable", "db1.internal:99999", "db1.internal/a/b", "db 1", "",
])
def test_malformed_or_credential_carrying_targets_are_400_and_not_echoed(
        tmp_path: Path, target: str) -> None:
    error = refused(config(tmp_path, allow_hosts=["*"]), target)
    assert error.status == 400
    assert SECRET not in str(error) and "monitor@" not in str(error)
    assert "\n" not in str(error)


def test_an_unknown_auth_module_is_refused(tmp_path: Path) -> None:
    error = refused(config(tmp_path), "orders", "root")
    assert error.status == 400
    assert "unknown auth_module 'root' (known: file, mon)" in str(error)


def test_table_databases_select_by_pattern_capped() -> None:
    wanted = TableDatabases(include=["app_*", "billing"], exclude=["*_test"], max_databases=2)
    names = ["app_a", "app_b_test", "app_c", "billing", "postgres"]
    assert wanted.select(names) == (["app_a", "app_c"], 1)
