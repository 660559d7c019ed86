"""A guide's own recipients in the shipped Alertmanager config.

alertmanager/alertmanager.yml marks every value that is only an example with a trailing
`# placeholder` comment. A profile (alertmanager/examples/<guide>.yml) maps some of those
placeholders to the addresses a guide names, each with its `guide § section`. This writes
the shipped config with them substituted; routing, inhibition, comments and templates stay
as shipped, and the placeholders the profile leaves alone stay marked:

    python -m scripts.alertmanager_profile alertmanager/examples/nova-crm.yml \\
        -o /etc/alertmanager/alertmanager.yml

Install `alertmanager/templates/` beside the written file, as for the shipped one.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alert_rules.generator.catalog import GUIDES

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
EXAMPLES = REPO / "alertmanager" / "examples"
# `  key: value  # placeholder` (a YAML scalar that is only an example).
PLACEHOLDER_LINE = re.compile(r"^(?P<lead>\s*[\w-]+:\s*)(?P<value>\S+)(?P<gap>\s+)# placeholder\s*$")


class ProfileError(Exception):
    """A profile that does not fit the config; the message names the key."""


class Recipient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    placeholder: str = Field(min_length=1)  # a value the shipped config marks `# placeholder`
    value: str = Field(min_length=1, pattern=r"^\S+$")
    source: str = Field(min_length=1)  # `guide § section` where the guide names it


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    guide: Literal[GUIDES]  # type: ignore[valid-type]
    recipients: list[Recipient] = Field(min_length=1)

    @model_validator(mode="after")
    def _own(self) -> Profile:
        for item in self.recipients:
            if not item.source.startswith(f"{self.guide} § "):
                raise ValueError(f"recipients: {item.value}: source must cite {self.guide} § ...")
            if "example.com" in item.value:
                raise ValueError(f"recipients: {item.value}: an example, not the guide's own")
        placeholders = [item.placeholder for item in self.recipients]
        if len(set(placeholders)) != len(placeholders):
            raise ValueError("recipients: a placeholder is given twice")
        return self


def placeholders(text: str) -> dict[str, int]:
    """Each value marked `# placeholder` in a config, with how many lines carry it."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = PLACEHOLDER_LINE.match(line)
        if match:
            found[match["value"]] = found.get(match["value"], 0) + 1
    return found


def load_profile(path: Path) -> Profile:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path.name}: {exc}") from exc
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ProfileError(f"{path.name}: {where}: {err['msg']}".replace(": : ", ": ")) from exc


def apply(text: str, profile: Profile) -> str:
    """The config with each of the profile's placeholders replaced by the guide's value;
    the line's marker becomes the source. A placeholder the config does not have fails."""
    known = placeholders(text)
    wanted = {item.placeholder: item for item in profile.recipients}
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ProfileError(f"{profile.guide}: {', '.join(unknown)} is not a placeholder of the "
                           "config (a line ending in `# placeholder`)")
    out = []
    for line in text.splitlines(keepends=True):
        match = PLACEHOLDER_LINE.match(line.rstrip("\n"))
        item = wanted.get(match["value"]) if match else None
        if match is None or item is None:
            out.append(line)
            continue
        out.append(f"{match['lead']}{item.value}{match['gap']}# {item.source}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.alertmanager_profile",
                                     description="Write the Alertmanager config with a guide's "
                                                 "recipients.")
    parser.add_argument("profile", type=Path, help="alertmanager/examples/<guide>.yml")
    parser.add_argument("--config", type=Path, default=SHIPPED_CONFIG,
                        help="the config to start from (default: the shipped one)")
    parser.add_argument("-o", "--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        text = apply(args.config.read_text(), load_profile(args.profile))
    except (ProfileError, OSError) as exc:
        print(f"alertmanager profile: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
