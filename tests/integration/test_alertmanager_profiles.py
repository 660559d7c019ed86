"""Recipients: the shipped config's example addresses are marked placeholders, and each
guide's profile (alertmanager/examples/<guide>.yml) puts that guide's own addresses in, in a
config amtool accepts, with the routing untouched (issue 13 §6, Recipients)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.generator.catalog import GUIDES
from scripts.alertmanager_profile import (
    EXAMPLES,
    PLACEHOLDER_LINE,
    SHIPPED_CONFIG,
    Profile,
    ProfileError,
    apply,
    load_profile,
    placeholders,
)
from tests.support.alertmanager import REPO, amtool

PROFILES = sorted(EXAMPLES.glob("*.yml"))


def test_every_example_value_of_the_shipped_config_is_marked_a_placeholder() -> None:
    unmarked = [line.strip() for line in SHIPPED_CONFIG.read_text().splitlines()
                if "example." in line and not line.lstrip().startswith("#")
                and not PLACEHOLDER_LINE.match(line)]
    assert unmarked == []
    assert set(placeholders(SHIPPED_CONFIG.read_text())) == {
        "smtp.example.com:587", "alertmanager@example.com", "alertmanager.example.com",
        "team@example.com", "devops@example.com"}


def test_the_guides_that_name_recipients_have_a_profile() -> None:
    # nova-crm mails its team and devops lists; dirt-free-crm names one contact address.
    # estimate-library, tpt-erp and saas-ops-module name channel kinds but no address
    # (alertmanager/README.md, Recipients).
    assert [p.stem for p in PROFILES] == ["dirt-free-crm", "nova-crm"]
    for path in PROFILES:
        assert load_profile(path).guide == path.stem


def written(profile_path: Path, tmp_path: Path) -> Path:
    """The profile applied by the CLI, with the templates beside it as installed."""
    directory = tmp_path / profile_path.stem
    directory.mkdir()
    shutil.copytree(SHIPPED_CONFIG.parent / "templates", directory / "templates")
    out = directory / "alertmanager.yml"
    done = subprocess.run([sys.executable, "-m", "scripts.alertmanager_profile",
                           str(profile_path), "-o", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return out


def email_to(config: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["email_configs"][0]["to"] for r in config["receivers"]
            if r.get("email_configs")}


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_a_profile_gives_a_valid_config_with_the_guides_addresses_and_the_same_routing(
        path: Path, tmp_path: Path) -> None:
    profile = load_profile(path)
    out = written(path, tmp_path)
    checked = amtool("check-config", str(out))
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    shipped, mine = yaml.safe_load(SHIPPED_CONFIG.read_text()), yaml.safe_load(out.read_text())
    for key in ("route", "inhibit_rules", "time_intervals", "templates"):
        assert mine[key] == shipped[key], key
    # Only the profile's placeholders changed, each to the guide's value.
    swapped = {r.placeholder: r.value for r in profile.recipients}
    assert email_to(mine) == {name: swapped.get(to, to) for name, to in email_to(shipped).items()}
    left = placeholders(out.read_text())
    assert not set(swapped) & set(left)
    assert set(left) == set(placeholders(SHIPPED_CONFIG.read_text())) - set(swapped)
    # A critical alert of the guide still reaches the team mailbox, now the guide's own.
    routed = amtool("config", "routes", "test", f"--config.file={out}", "alertname=X",
                    "severity=critical", f"guide={profile.guide}")
    assert "email-team" in routed.stdout
    assert email_to(mine)["email-team"] == swapped["team@example.com"]


def test_nova_crm_mails_critical_to_its_team_and_high_to_devops(tmp_path: Path) -> None:
    mine = yaml.safe_load(written(EXAMPLES / "nova-crm.yml", tmp_path).read_text())
    assert email_to(mine) == {"email-team": "team@nova-crm.com",
                              "email-devops": "devops@nova-crm.com"}


def test_a_profile_that_does_not_fit_the_config_is_refused(tmp_path: Path) -> None:
    text = SHIPPED_CONFIG.read_text()
    unknown = Profile(guide="nova-crm", recipients=[{
        "placeholder": "oncall@example.com", "value": "a@b.c", "source": "nova-crm § 1.2"}])
    with pytest.raises(ProfileError, match=re.escape("oncall@example.com is not a placeholder")):
        apply(text, unknown)
    for bad, message in [
        ({"guide": "tpt-erp", "recipients": [{"placeholder": "team@example.com",
                                              "value": "a@b.c", "source": "nova-crm § 1.2"}]},
         "source must cite tpt-erp"),
        ({"guide": "nova-crm", "recipients": [{"placeholder": "team@example.com",
                                               "value": "x@example.com",
                                               "source": "nova-crm § 1.2"}]},
         "an example, not the guide's own"),
        ({"guide": "nova-crm", "recipients": []}, "at least 1 item"),
        ({"guide": "nova-crm", "recipients": [{"placeholder": "team@example.com",
                                               "value": "a@b.c", "source": "nova-crm § 1.2",
                                               "cc": "x"}]}, "Extra inputs"),
    ]:
        path = tmp_path / "bad.yml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ProfileError, match=re.escape(message)):
            load_profile(path)
        done = subprocess.run([sys.executable, "-m", "scripts.alertmanager_profile", str(path)],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_profiles_cite_the_guides_this_bundle_knows() -> None:
    assert {load_profile(p).guide for p in PROFILES} <= set(GUIDES)
