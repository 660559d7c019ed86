"""`python -m alert_rules.generator [--check]`: regenerate rules, tests and runbooks.

`--time-scale F --out DIR` instead writes only the two rule files with every duration
scaled by F (the mixin's _config.timeScale), for fault drills (alert_rules/generator/scaled.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alert_rules.generator.catalog import CatalogError, load_catalog
from alert_rules.generator.mixin import REPO
from alert_rules.generator.render import artefacts, stale, write
from alert_rules.generator.scaled import write_scaled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alert_rules.generator")
    parser.add_argument("--check", action="store_true",
                        help="only report generated files that are out of date (exit 1)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the generated tree under DIR instead of the repository")
    parser.add_argument("--time-scale", type=float, metavar="F",
                        help="write drill copies of the rule files with `for`, range windows "
                             "and offsets multiplied by F (0 < F <= 1); needs --out")
    parser.add_argument("--scrape-interval", type=float, default=1.0, metavar="SECONDS",
                        help="with --time-scale: the drill's scrape interval; windows are "
                             "kept at least 4 of them long (default %(default)s)")
    args = parser.parse_args(argv)
    if args.time_scale is not None:
        # The committed files keep the real durations: a scaled copy only goes elsewhere.
        if args.out is None or args.check:
            parser.error("--time-scale needs --out DIR and cannot be combined with --check")
        if not 0 < args.time_scale <= 1 or args.scrape_interval <= 0:
            parser.error("--time-scale must be in (0, 1] and --scrape-interval positive")
        try:
            paths = write_scaled(load_catalog(), args.time_scale, args.out, args.scrape_interval)
        except CatalogError as exc:
            print(f"catalog: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {', '.join(map(str, paths))} (time scale {args.time_scale:g})")
        return 0
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
