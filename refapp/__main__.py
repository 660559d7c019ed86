"""`python -m refapp`: run the reference CRM API (see docs/refapp.md)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY

from refapp import frontend
from refapp.app import AppConfig, create_app
from refapp.cli import OneLineParser, parse_listen
from refapp.faults import HEALTH_STATES, FaultError, Faults
from saasmon.runtime.logs import SecretRegistry, setup_logging

log = logging.getLogger("refapp")




def parser() -> OneLineParser:
    env = os.environ.get
    p = OneLineParser(prog="refapp", description="Reference CRM API watched by saasmon.")
    p.add_argument("--listen", default=env("REFAPP_LISTEN", "127.0.0.1:8080"), type=parse_listen,
                   metavar="HOST:PORT", help="address to serve on (default %(default)s)")
    p.add_argument("--dsn", default=env("REFAPP_DSN") or env("DATABASE_URL"),
                   help="PostgreSQL DSN (env REFAPP_DSN or DATABASE_URL)")
    p.add_argument("--redis-url", default=env("REFAPP_REDIS_URL"),
                   help="Redis URL for the cache (env REFAPP_REDIS_URL; none: no cache)")
    p.add_argument("--migrate", action="store_true",
                   help="apply refapp/schema/*.sql at start (idempotent)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated data (default 1)")
    p.add_argument("--ws-interval", type=float, default=1.0, metavar="SECONDS",
                   help="realtime ping/event period per socket (default %(default)s)")
    p.add_argument("--assistant-latency", type=float, default=0.2, metavar="SECONDS",
                   help="mean simulated assistant latency (default %(default)s)")
    p.add_argument("--health-interval", type=float, default=15.0, metavar="SECONDS",
                   help="background health checks for the metrics; 0 = only on request")
    p.add_argument("--faults-token", default=env("REFAPP_FAULTS_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on /-/faults "
                        "(env REFAPP_FAULTS_TOKEN)")
    p.add_argument("--created-series", action="store_true",
                   default=env("REFAPP_CREATED_SERIES", "") in ("1", "true"),
                   help="serve the *_created series of counters and histograms on /metrics "
                        "(env REFAPP_CREATED_SERIES=1; default: left out)")
    p.add_argument("--webvitals-url", default=env("REFAPP_WEBVITALS_URL"), metavar="URL",
                   help="a saasmon webvitals receiver's /beacon URL: the page at / loads the "
                        "Web Vitals snippet and reports there (env REFAPP_WEBVITALS_URL)")
    p.add_argument("--interaction-ms", type=int, default=0, metavar="MS",
                   help="main-thread work of the page's button, what INP measures "
                        "(default %(default)s)")
    p.add_argument("--log-level", choices=["debug", "info", "warn", "error"], default="info")
    knobs = p.add_argument_group("fault knobs (also live through POST /-/faults)")
    knobs.add_argument("--error-rate", type=float, default=0.0)
    knobs.add_argument("--extra-latency", type=float, default=0.0, metavar="SECONDS")
    knobs.add_argument("--extra-latency-ratio", type=float, default=1.0, metavar="SHARE")
    knobs.add_argument("--health", choices=[*HEALTH_STATES, "auto"], default="auto")
    knobs.add_argument("--failing-cron-job", default=None, metavar="NAME")
    knobs.add_argument("--slow-cron-job", default=None, metavar="NAME")
    knobs.add_argument("--slow-cron-seconds", type=float, default=0.0)
    knobs.add_argument("--payment-failure-rate", type=float, default=0.0)
    knobs.add_argument("--message-failure-rate", type=float, default=0.0)
    knobs.add_argument("--ws-delay", type=float, default=0.0, metavar="SECONDS")
    return p


def knobs_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "error_rate": args.error_rate,
        "extra_latency_seconds": args.extra_latency,
        "extra_latency_ratio": args.extra_latency_ratio,
        "health": args.health,
        "failing_cron_job": args.failing_cron_job,
        "slow_cron_job": args.slow_cron_job,
        "slow_cron_seconds": args.slow_cron_seconds,
        "payment_failure_rate": args.payment_failure_rate,
        "message_failure_rate": args.message_failure_rate,
        "ws_delay_seconds": args.ws_delay,
    }


# Knob name -> flag, so a bad value is reported under the flag the user typed.
FLAGS = {"error_rate": "--error-rate", "extra_latency_seconds": "--extra-latency",
         "extra_latency_ratio": "--extra-latency-ratio",
         "health": "--health", "failing_cron_job": "--failing-cron-job",
         "slow_cron_job": "--slow-cron-job", "slow_cron_seconds": "--slow-cron-seconds",
         "payment_failure_rate": "--payment-failure-rate",
         "message_failure_rate": "--message-failure-rate", "ws_delay_seconds": "--ws-delay"}


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.dsn:
        p.error("--dsn: required (or set REFAPP_DSN)")
    for flag, value in (("--ws-interval", args.ws_interval),
                        ("--assistant-latency", args.assistant_latency),
                        ("--health-interval", args.health_interval)):
        if not 0 <= value <= 3600 or (flag == "--ws-interval" and value == 0):
            p.error(f"{flag}: out of range, got {value:g}")
    if args.webvitals_url is not None:
        if not args.webvitals_url.startswith(("http://", "https://")):
            p.error(f"--webvitals-url: must be an http(s) URL, got {args.webvitals_url!r}")
        if not frontend.SNIPPET.is_file():
            p.error(f"--webvitals-url: the snippet {frontend.SNIPPET} is missing "
                    "(build it: cd webvitals-js && npm ci && npm run build)")
    if not 0 <= args.interaction_ms <= 60_000:
        p.error(f"--interaction-ms: out of range 0..60000, got {args.interaction_ms}")
    faults = Faults()
    try:
        faults.update(knobs_of(args))
    except FaultError as exc:
        knob, _, problem = str(exc).partition(": ")
        p.error(f"{FLAGS.get(knob, knob)}: {problem}")
    SecretRegistry.add(args.dsn, args.redis_url, args.faults_token)
    setup_logging("refapp", args.log_level)
    config = AppConfig(dsn=args.dsn, redis_url=args.redis_url, migrate=args.migrate,
                       seed=args.seed, ws_interval_seconds=args.ws_interval,
                       assistant_latency_seconds=args.assistant_latency,
                       health_interval_seconds=args.health_interval,
                       faults_token=args.faults_token, created_series=args.created_series,
                       webvitals_url=args.webvitals_url, interaction_ms=args.interaction_ms,
                       faults=faults)
    # The process-wide registry: process_* and python_* metrics come along.
    app = create_app(config, REGISTRY)
    host, port = args.listen
    log.info("refapp listening on http://%s:%d", host, port)
    try:
        web.run_app(app, host=host, port=port, print=None, access_log=None,
                    shutdown_timeout=5)
    except Exception as exc:
        # Start-up failures (database never came up for --migrate, port taken): one line.
        log.error("refapp stopped: %s", SecretRegistry.mask(f"{type(exc).__name__}: {exc}"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
