"""Authorized scrape latency while clients flood an exporter with bad basic-auth passwords.

Not a test. Starts `saasmon webvitals` (no target to stand up) on loopback with a web
config holding one bcrypt user (cost 10, the `htpasswd -B` default), then for --duration
seconds (or until --max-requests bad requests) runs --clients concurrent clients sending
wrong passwords while one client scrapes /metrics with the right one, one scrape at a
time. Prints the authorized scrape latencies (median, p95, max) and the flood's rate.

    .venv/bin/python bench/auth_flood.py                  # this tree
    .venv/bin/python bench/auth_flood.py --root /tmp/old  # another checkout, for before/after
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import bcrypt
import yaml

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from devstack.process import Process
from devstack.servers import free_port

USER, PASSWORD = "prometheus", "right-password"


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def wait_up(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        try:
            async with session.get(url + "/-/ready", headers=basic(PASSWORD)) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("exporter did not become ready")


async def run(url: str, clients: int, duration: float, max_requests: int) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=clients + 1)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await wait_up(session, url)
        # One authorized scrape first, as Prometheus would have done long before a flood.
        async with session.get(url + "/metrics", headers=basic(PASSWORD)) as response:
            assert response.status == 200
        stop = time.monotonic() + duration
        sent = 0
        latencies: list[float] = []

        async def flood(index: int) -> None:
            nonlocal sent
            while time.monotonic() < stop and sent < max_requests:
                sent += 1
                async with session.get(url + "/metrics",
                                       headers=basic(f"wrong-{index}-{sent}")) as response:
                    assert response.status == 401
                    await response.read()

        async def scrape() -> None:
            await asyncio.sleep(0.5)  # let the flood build up
            while time.monotonic() < stop and sent < max_requests:
                started = time.monotonic()
                async with session.get(url + "/metrics", headers=basic(PASSWORD)) as response:
                    assert response.status == 200
                    await response.read()
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.1)

        started = time.monotonic()
        await asyncio.gather(scrape(), *(flood(i) for i in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    if not latencies:
        raise SystemExit("no authorized scrape finished within the run")
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(f"bad-password requests: {sent} in {elapsed:.1f}s ({sent / elapsed:.0f}/s), "
          f"{clients} clients")
    print(f"authorized scrapes: {len(latencies)}; latency median "
          f"{statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                      help="checkout whose exporter to run (default: this one)")
    args.add_argument("--clients", type=int, default=64)
    args.add_argument("--duration", type=float, default=10.0, help="seconds (at most 60)")
    args.add_argument("--max-requests", type=int, default=20_000)
    opts = args.parse_args()
    duration = min(opts.duration, 60.0)
    with tempfile.TemporaryDirectory(prefix="auth-flood-") as tmp:
        web = Path(tmp) / "web.yml"
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
        web.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
        config = Path(tmp) / "webvitals.yml"
        config.write_text(yaml.safe_dump({"allowed_origins": ["https://app.example"]}))
        port = free_port()
        proc = Process("webvitals exporter", [
            sys.executable, "-m", "saasmon", "webvitals", "--config.file", str(config),
            "--web.config.file", str(web), "--web.listen-address", f"127.0.0.1:{port}"],
            Path(tmp) / "exporter.log", {"PYTHONPATH": str(opts.root)}, cwd=opts.root).start()
        try:
            proc.wait_port(port, timeout=60)
            asyncio.run(run(f"http://127.0.0.1:{port}", opts.clients, duration,
                            opts.max_requests))
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
