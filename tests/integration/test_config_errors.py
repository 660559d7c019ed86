"""Every bad config: one line naming the key and the problem, exit code 2, no traceback."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest

from devstack.exporter import SAASMON, run_cli

SECRET = "Sup3r-Secret-Value"
PG = f"dsn: postgresql://u:{SECRET}@127.0.0.1:5/db\n"
RD = f"targets:\n  - name: main\n    url: redis://:{SECRET}@127.0.0.1:6379/0\n"

CASES = [
    # (exporter, config text, expected start of the message after "saasmon <kind>: ")
    ("postgres", PG + "intervall_seconds: 5\n", "intervall_seconds: Extra inputs are not permitted"),
    ("postgres", PG + "interval_seconds: soon\n", "interval_seconds: Input should be a valid number"),
    ("postgres", PG + "timeout_seconds: 0\n", "timeout_seconds: Input should be greater than 0"),
    ("postgres", PG + "top_n: 100000\n", "top_n: Input should be less than or equal to 500"),
    ("postgres", "interval_seconds: 5\n", "(top level): Value error, dsn is required"),
    ("postgres", f"dsn: mysql://u:{SECRET}@h/db\n", "(top level): Value error, dsn must be"),
    ("postgres", "dsn_file: /nonexistent/dsn\n", "dsn_file: cannot read file"),
    ("postgres", "dsn: postgresql://u@h:99999/db\n", "(top level): Value error, dsn has an invalid port"),
    ("postgres", PG + "collectors:\n  statments: {enabled: false}\n", "collectors.statments"),
    ("postgres", PG + "collectors:\n  tables: {enabled: maybe}\n",
     "collectors.tables.enabled: Input should be a valid boolean"),
    ("postgres", PG + "slow_query_thresholds_seconds: [0.1, -1]\n",
     "(top level): Value error, slow_query_thresholds_seconds must all be positive"),
    ("postgres", "- just\n- a list\n", "(top level): must be a mapping"),
    ("postgres", PG + "top_n: [1\n", "config.file: invalid YAML at line"),
    ("postgres", PG + "auth_modules:\n  mon: {user: m, password_file: /nonexistent/pw}\n",
     "auth_modules.mon.password_file: cannot read file"),
    ("postgres", PG + "auth_modules:\n  mon: {user: m, dsn_file: /x}\n",
     "auth_modules.mon: Value error, set one of user (with password_file) and dsn_file"),
    ("postgres", PG + "default_auth_module: mon\n", "default_auth_module: no auth module 'mon'"),
    ("postgres", PG + "probe:\n  targets:\n    db1: {host: h, auth_module: nope}\n",
     "probe.targets.db1.auth_module: no auth module 'nope'"),
    ("postgres", PG + "probe:\n  targets:\n    db1: {host: h}\n",
     "probe.targets.db1.auth_module: required when default_auth_module is not set"),
    ("postgres", PG + "probe:\n  targets:\n    'a b': {host: h}\n",
     "probe.targets.a b.[key]: String should match pattern"),
    ("postgres", PG + "probe: {allow_hosts: ['*.internal']}\n",
     "probe.allow_hosts: needs default_auth_module"),
    ("postgres", PG + "probe: {allow_hosts: ['10.0.0.0/40']}\n",
     "probe.allow_hosts.0: '10.0.0.0/40' is not a CIDR network"),
    ("postgres", PG + "probe: {max_targets: 0}\n",
     "probe.max_targets: Input should be greater than or equal to 1"),
    ("postgres", PG + "table_databases: {include: []}\n",
     "table_databases.include: List should have at least 1 item"),
    ("postgres", PG + "table_databases: {include: ['*'], max_databases: 51}\n",
     "table_databases.max_databases: Input should be less than or equal to 50"),
    ("redis", "targets: []\n", "targets: List should have at least 1 item"),
    ("redis", RD + "    passwd: x\n", "targets.0.passwd: Extra inputs are not permitted"),
    ("redis", f"targets:\n  - name: main\n    url: http://:{SECRET}@h:1/\n",
     "targets.0.url: Value error, must be a redis://"),
    ("redis", RD + RD.replace("targets:\n", ""), "(top level): Value error, target names must"),
    ("redis", RD + "key_patterns:\n  - {pattern: ''}\n", "key_patterns.0.pattern: String should"),
    ("redis", RD + "scan_count: 1\n", "scan_count: Input should be greater than or equal to 10"),
    ("redis", RD + "key_patterns:\n  - {pattern: 'a:*'}\n  - {pattern: 'b:*'}\n  - {pattern: 'a:*'}\n",
     "key_patterns: Value error, patterns must be unique, repeated: a:*"),
    ("redis", RD + "scan_step_target_seconds: 0.05\n",
     "scan_step_target_seconds: Input should be less than or equal to 0.01"),
]


@pytest.mark.parametrize(("kind", "text", "expected"), CASES,
                         ids=[f"{k}-{e.split(':')[0]}" for k, _, e in CASES])
def test_bad_config_gives_one_line_and_exit_2(kind: str, text: str, expected: str,
                                              tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(text)
    result = run_cli(kind, "--config.check", "--config.file", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"saasmon {kind}: {expected}"), lines[0]
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_missing_config_file_names_the_flag(tmp_path: Path) -> None:
    result = run_cli("redis", "--config.check", "--config.file", str(tmp_path / "nope.yml"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"saasmon redis: config.file: cannot read '{tmp_path / 'nope.yml'}': "
        "No such file or directory")


def test_bad_listen_address_and_telemetry_path(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(RD)
    bad_addr = run_cli("redis", "--config.file", str(path), "--web.listen-address", "nowhere")
    assert bad_addr.returncode == 2
    assert bad_addr.stderr.strip() == "saasmon redis: web.listen-address: 'nowhere' is not host:port"
    bad_path = run_cli("redis", "--config.file", str(path), "--web.telemetry-path", "metrics")
    assert bad_path.returncode == 2
    assert "web.telemetry-path: must start with /" in bad_path.stderr


def test_env_overrides_and_secret_from_env(tmp_path: Path) -> None:
    result = run_cli("postgres", "--config.check",
                     env={"SAASMON_POSTGRES_DSN": f"postgresql://u:{SECRET}@db.example:6543/app",
                          "SAASMON_POSTGRES_INTERVAL_SECONDS": "30"})
    assert result.returncode == 0, result.stderr
    assert "db.example:6543/app" in result.stdout
    assert "interval 30s" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_dsn_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "dsn"
    secret_file.write_text(f"postgresql://u:{SECRET}@127.0.0.1:5432/app\n")
    path = tmp_path / "pg.yml"
    path.write_text(f"dsn_file: {secret_file}\n")
    result = run_cli("postgres", "--config.check", "--config.file", str(path))
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_env_secret_replaces_the_file_form(tmp_path: Path) -> None:
    """A deployment may keep `dsn_file:` in the file and override it by env, or the reverse."""
    path = tmp_path / "pg.yml"
    path.write_text("dsn_file: /run/secrets/does-not-exist-here\n")
    result = run_cli("postgres", "--config.check", "--config.file", str(path),
                     env={"SAASMON_POSTGRES_DSN": f"postgresql://u:{SECRET}@envhost:5432/app"})
    assert result.returncode == 0, result.stderr
    assert "envhost:5432/app" in result.stdout
    assert SECRET not in result.stdout + result.stderr


# Hostile files (issue 15 item 5): each must be refused before any key is looked at, by
# every exporter, as one line naming the problem; never a traceback from the parser.
ALL_KINDS = ["postgres", "redis", "cron", "integrations", "business", "webvitals", "sms-relay"]
HOSTILE: dict[str, tuple[bytes, str]] = {
    "binary": (bytes(range(256)) * 4, "config.file: "),
    "invalid-utf8": (b"dsn: postgresql://u:pw@h/db\nnote: caf\xe9\n", "config.file: not UTF-8"),
    "deep-list": (b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "config.file: nested"),
    "deep-map": (b"a: " + b"{a: " * 100_000 + b"1" + b"}" * 100_000 + b"\n",
                 "config.file: nested"),
    "huge-int": (b"interval_seconds: " + b"9" * 5000 + b"\n", "config.file: an integer"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_hostile_config_file_exits_2_with_one_line(kind: str, case: str,
                                                   tmp_path: Path) -> None:
    data, expected = HOSTILE[case]
    path = tmp_path / "config.yml"
    path.write_bytes(data)
    result = run_cli(kind, "--config.check", "--config.file", str(path))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"saasmon {kind}: {expected}"), lines[0]
    assert len(lines[0]) < 200  # the file's content is never echoed


@pytest.mark.parametrize("case", ["invalid-utf8", "deep-list", "huge-int"])
def test_hostile_pack_and_web_config_files_exit_2_with_one_line(case: str,
                                                                tmp_path: Path) -> None:
    data, expected = HOSTILE[case]
    hostile = tmp_path / "hostile.yml"
    hostile.write_bytes(data)
    config = tmp_path / "business.yml"
    config.write_text(f"dsn: postgresql://u:{SECRET}@127.0.0.1:5/db\npack_file: {hostile}\n")
    pack = run_cli("business", "--config.check", "--config.file", str(config))
    web = run_cli("redis", "--config.check", "--web.config.file", str(hostile),
                  env={"SAASMON_REDIS_TARGETS": "[]"})
    for kind, result, key in (("business", pack, "pack_file"), ("redis", web, "web.config.file")):
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith(f"saasmon {kind}: {expected.replace('config.file', key)}"), \
            lines[0]


# Files that are not what a key expects (issue 15): an endless device or a huge file must
# cost one bounded read, never hang the start or fill memory.

def run_bounded(*args: str) -> subprocess.CompletedProcess[str]:
    """run_cli with its address space capped, so reading /dev/zero whole (the bug) fails
    fast with a MemoryError instead of taking the machine's memory."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    return subprocess.run([*SAASMON, *args], capture_output=True, text=True, timeout=60,
                          preexec_fn=cap)


@pytest.fixture
def huge_file(tmp_path: Path) -> Path:
    path = tmp_path / "huge"
    path.write_bytes(b"x" * (64 * 1024 + 1))  # one byte past the secret-file limit
    return path


@pytest.mark.parametrize("source", ["/dev/zero", "huge"])
def test_a_secret_file_larger_than_64_kib_exits_2_naming_the_key(
        source: str, tmp_path: Path, huge_file: Path) -> None:
    secret = "/dev/zero" if source == "/dev/zero" else str(huge_file)
    cases = [("redis", RD + f"    password_file: {secret}\n", "password_file"),
             ("postgres", f"dsn_file: {secret}\n", "dsn_file")]
    for kind, text, key in cases:
        path = tmp_path / f"{kind}.yml"
        path.write_text(text)
        result = run_bounded(kind, "--config.check", "--config.file", str(path))
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip() == (
            f"saasmon {kind}: {key}: file {secret!r} is larger than 64 KiB, not a secret")


def test_a_config_file_larger_than_4_mib_exits_2(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    huge.write_bytes(b"# padding\n" * 500_000)
    for path in ("/dev/zero", str(huge)):
        result = run_bounded("redis", "--config.check", "--config.file", path)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip() == "saasmon redis: config.file: larger than 4 MiB"


@pytest.mark.parametrize(("flag", "bad", "expected"), [
    ("--web.body-timeout", "0", "web.body-timeout: must be more than 0"),
    ("--web.max-connections-per-address", "0", "web.max-connections-per-address: must be at least 1"),
])
def test_bad_slow_client_flags_exit_2_with_one_line(flag: str, bad: str, expected: str,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(RD)
    result = run_cli("redis", "--config.check", "--config.file", str(path), flag, bad)
    assert result.returncode == 2
    assert result.stderr.strip() == f"saasmon redis: {expected}"
