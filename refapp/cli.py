"""Command-line pieces shared by the reference app's programs (app, load, cron runner,
stand-in receivers)."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line and exit 2, like every saasmon config error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[v6]:PORT` too; an empty host means loopback) as an argparse type."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)
