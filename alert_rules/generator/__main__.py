"""`python -m alert_rules.generator [--check]`: regenerate rules, tests and runbooks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alert_rules.generator.catalog import CatalogError, load_catalog
from alert_rules.generator.render import REPO, artefacts, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alert_rules.generator")
    parser.add_argument("--check", action="store_true",
                        help="only report generated files that are out of date (exit 1)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the generated tree under DIR instead of the repository")
    args = parser.parse_args(argv)
    try:
        files = artefacts(load_catalog())
    except CatalogError as exc:
        print(f"catalog: {exc}", file=sys.stderr)
        return 2
    if args.check:
        out = stale(files)
        for path in out:
            print(f"stale: {path.relative_to(REPO)}", file=sys.stderr)
        if out:
            print("run `make rules` and commit the result", file=sys.stderr)
        return 1 if out else 0
    if args.out is not None:
        files = {args.out / p.relative_to(REPO): text for p, text in files.items()}
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        print(f"wrote {len(files)} files under {args.out}")
        return 0
    write(files)
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
