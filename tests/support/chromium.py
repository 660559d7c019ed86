"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol.

The protocol is JSON over a websocket: aiohttp's websocket client speaks it, so no browser
driver package is needed and the browser is the one Debian ships (a driver such as
Playwright would want its own browser build, which cannot be downloaded here).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from devstack.process import Process

CHROMIUM = "/usr/bin/chromium"
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
Event = tuple[str, dict[str, Any]]


class CdpError(Exception):
    """The browser answered a command with an error."""


@dataclass
class Page:
    """One page target's DevTools session: commands, and every event it sent so far."""

    ws: aiohttp.ClientWebSocketResponse
    events: list[Event] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(CdpError(f"{data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                self.events.append((data["method"], data.get("params", {})))
                self._changed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CdpError("the DevTools connection closed"))

    async def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        return await asyncio.wait_for(future, timeout)

    async def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """A JavaScript expression's value (awaited if it is a promise)."""
        result = await self.call("Runtime.evaluate", timeout=timeout, expression=expression,
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, found: Callable[[list[Event]], bool], timeout: float,
                       what: str) -> None:
        """Until `found(events)` holds; fails naming `what` after `timeout` seconds."""
        async def wait() -> None:
            while not found(self.events):
                self._changed.clear()
                await self._changed.wait()
        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            names = sorted({name for name, _ in self.events})
            raise AssertionError(f"no {what} within {timeout:g} s; events seen: {names}") from None

    async def load(self, method: str, timeout: float, **params: Any) -> None:
        """Page.navigate or Page.reload, then until the new document's load event (the
        command itself answers before the new document replaces the old one)."""
        def loads(events: list[Event]) -> int:
            return sum(1 for name, _ in events if name == "Page.loadEventFired")
        before = loads(self.events)
        await self.call(method, timeout=timeout, **params)
        await self.wait_for(lambda events: loads(events) > before, timeout, f"load after {method}")

    async def click(self, selector: str) -> None:
        """A real (trusted) mouse click at the element's centre, as a user makes it."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            extra: dict[str, Any] = {} if kind == "mouseMoved" else {"button": "left", "clickCount": 1}
            await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)


async def _devtools_url(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    """The browser's websocket address, from the line Chromium prints when it listens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        assert proc.poll() is None, f"chromium exited: {log.read_text(errors='replace')}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"chromium did not listen within {timeout:g} s: {log.read_text()}")


@contextlib.asynccontextmanager
async def chromium_page(timeout: float = 120) -> AsyncIterator[Page]:
    """A headless Chromium with one blank page, its DevTools session open; all removed after."""
    if shutil.which(CHROMIUM) is None:
        raise AssertionError(f"{CHROMIUM} missing: `make deps` installs Debian's chromium")
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    log = profile / "chromium.log"
    # Chromium makes its own temporary directories: inside the profile, removed with it.
    (profile / "tmp").mkdir()
    process = Process("chromium", [
        CHROMIUM, "--headless", "--no-sandbox",  # root (CI) cannot use the sandbox
        "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile / 'profile'}", "--no-first-run", "--no-default-browser-check",
        "--disable-gpu", "--disable-extensions", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--mute-audio",
        "--window-size=1024,768", "about:blank"], log, env={"TMPDIR": str(profile / "tmp")})
    reader: asyncio.Task[None] | None = None
    try:
        process.start()
        assert process.proc is not None
        browser_url = await _devtools_url(process.proc, log, timeout)
        port = browser_url.split("//", 1)[1].split("/", 1)[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{port}/json/list") as response:
                targets = await response.json(content_type=None)
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0,
                                          timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
                page = Page(ws)
                reader = asyncio.create_task(page.read())
                yield page
                reader.cancel()
    finally:
        if reader is not None:
            reader.cancel()
        process.stop()
        shutil.rmtree(profile, ignore_errors=True)
